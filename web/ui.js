// ui.js - small DOM helpers shared by the pages.

// el('tag.class', {attr: value, onclick: fn}, child, ...): an element.
export function el(spec, attrs = {}, ...children) {
  const [tag, ...classes] = spec.split('.');
  const e = document.createElement(tag);
  if (classes.length) e.className = classes.join(' ');
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'text') e.textContent = v;
    else if (k in e && typeof v !== 'string') e[k] = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

export const svgNS = 'http://www.w3.org/2000/svg';
export function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

const alertBox = () => document.getElementById('alert');

// Shows an error (an ApiError's words) or a notice above the page.
export function showError(err) {
  const box = alertBox();
  box.className = 'alert';
  box.textContent = err && err.message ? err.message : String(err);
  box.hidden = false;
}

export function showInfo(text) {
  const box = alertBox();
  box.className = 'alert info';
  box.textContent = text;
  box.hidden = false;
}

export function clearAlert() { alertBox().hidden = true; }

export function loading(text = 'Loading…') {
  return el('p.loading', { role: 'status', text });
}

// Runs an async action from a button: disabled while it runs, errors shown.
export async function busy(button, fn) {
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    clearAlert();
    return await fn();
  } catch (e) {
    showError(e);
    return undefined;
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

export function fmtNum(v, digits = 3) {
  return typeof v === 'number' && Number.isFinite(v) ? Number(v.toPrecision(digits)).toString() : '–';
}

export function fmtTime(s) {
  return s ? new Date(s).toLocaleString() : '–';
}

export function fmtDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return '–';
  const m = Math.floor(seconds / 60), s = Math.round(seconds % 60);
  return m ? `${m} min ${s} s` : `${s} s`;
}

// The three-way verdict when the server gives one, else the decision.
export function verdictOf(result) {
  return result.verdict || result.decision;
}

export function badge(v) {
  return el('span.badge.' + v, { text: v });
}
