// api.js - the public API over fetch(), with the key typed in once. The key
// lives in sessionStorage (this tab only) and travels in the Authorization
// header, never in an address: <img src> cannot send a header, so images are
// fetched here and shown through blob: URLs.
const KEY = 'cfa.key';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const session = {
  get key() { return sessionStorage.getItem(KEY); },
  set key(v) { if (v) sessionStorage.setItem(KEY, v); else sessionStorage.removeItem(KEY); },
};

// The API's error object in words: its message, then the status and code.
async function failure(resp) {
  let code = 'http_' + resp.status, message = resp.statusText || 'request failed';
  try {
    const body = await resp.json();
    if (body && body.error) ({ code, message } = body.error);
  } catch (_) { /* not JSON: keep the status line */ }
  return new ApiError(resp.status, code, `${message} (HTTP ${resp.status}, ${code})`);
}

// method, path (under the same origin), options: json (an object sent as
// JSON), body + type (raw bytes), as: 'json' (default), 'blob', 'response'.
export async function api(method, path, opts = {}) {
  const headers = { Authorization: 'Bearer ' + session.key };
  let body = opts.body;
  if (opts.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.json);
  } else if (opts.type) {
    headers['Content-Type'] = opts.type;
  }
  let resp;
  try {
    resp = await fetch(path, { method, headers, body, signal: opts.signal, cache: opts.cache });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'the server cannot be reached: ' + e.message);
  }
  if (!resp.ok) throw await failure(resp);
  if (opts.as === 'response') return resp;
  if (resp.status === 204) return null;
  if (opts.as === 'blob') return resp.blob();
  return resp.json();
}

// An image the API serves, as an object URL (the caller revokes it).
export async function imageUrl(path, signal) {
  return URL.createObjectURL(await api('GET', path, { as: 'blob', signal }));
}

// Every page of a list, up to max rows.
export async function listAll(path, name, max = 1000) {
  const out = [];
  let cursor = null;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const page = await api('GET', path + sep + 'limit=' + Math.min(1000, max - out.length) +
                           (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''));
    out.push(...page[name]);
    cursor = page.next_cursor;
  } while (cursor && out.length < max);
  return { items: out, more: Boolean(cursor) };
}

export const enc = encodeURIComponent;
