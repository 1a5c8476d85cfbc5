// app.js - the console's shell: the key, the product chosen, and a router
// over the location hash (#/page/arg) that renders one page at a time.
import { api, session } from './api.js';
import { clearAlert, el, showError } from './ui.js';
import * as products from './products.js';
import * as images from './images.js';
import * as training from './training.js';
import * as threshold from './threshold.js';
import * as inspections from './inspections.js';
import * as keys from './keys.js';

const pages = { products, images, training, threshold, inspections, inspection: inspections, keys };
const PRODUCT = 'cfa.product';
let current = null; // { controller, cleanup }

const $ = (id) => document.getElementById(id);

export function selectedProduct() { return sessionStorage.getItem(PRODUCT); }

export function selectProduct(id) {
  if (id) sessionStorage.setItem(PRODUCT, id);
  else sessionStorage.removeItem(PRODUCT);
  const sel = $('product-select');
  if (id && ![...sel.options].some((o) => o.value === id)) sel.append(el('option', { value: id, text: id }));
  sel.value = id || '';
}

// Fills the product menu; keeps the selection when it still exists.
export async function refreshProducts() {
  const { products: list } = await api('GET', '/v1/products?limit=1000');
  const sel = $('product-select');
  sel.replaceChildren(el('option', { value: '', text: list.length ? '(choose)' : '(none yet)' }),
    ...list.map((p) => el('option', { value: p.id, text: p.name ? `${p.id} – ${p.name}` : p.id })));
  const keep = selectedProduct();
  if (keep && list.some((p) => p.id === keep)) sel.value = keep;
  else if (list.length) selectProduct(list[0].id);
  else selectProduct(null);
  return list;
}

async function route() {
  if (!session.key) return showLogin();
  const [, name = 'products', ...args] = (location.hash || '#/products').slice(1).split('/');
  const page = pages[name] || products;
  if (current) {
    current.controller.abort();
    if (current.cleanup) current.cleanup();
  }
  const controller = new AbortController();
  current = { controller, cleanup: null };
  clearAlert();
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.page === (name === 'inspection' ? 'inspections' : name)) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const view = $('view');
  view.replaceChildren();
  view.setAttribute('aria-busy', 'true');
  try {
    current.cleanup = await page.render({
      view, args: args.map(decodeURIComponent), get product() { return selectedProduct(); },
      signal: controller.signal, refreshProducts, selectProduct,
    }) || null;
  } catch (e) {
    if (e.name !== 'AbortError') {
      showError(e);
      if (e.status === 401) { session.key = null; showLogin(); }
    }
  } finally {
    view.removeAttribute('aria-busy');
  }
}

function showLogin() {
  $('nav').hidden = true;
  $('session').hidden = true;
  const view = $('view');
  const form = $('login') || buildLogin();
  view.replaceChildren(form);
  $('key-input').focus();
}

function buildLogin() {
  return el('form.card.narrow', { id: 'login', onsubmit: login },
    el('h2', { text: 'Enter an API key' }),
    el('p', { text: 'The key is kept in this browser tab only (session storage) and sent in the Authorization header; it never appears in an address.' }),
    el('label', { for: 'key-input', text: 'API key' }),
    el('input', { id: 'key-input', type: 'password', autocomplete: 'off', required: true }),
    el('button', { type: 'submit', text: 'Use this key' }));
}

async function login(ev) {
  ev.preventDefault();
  const input = $('key-input');
  session.key = input.value.trim();
  try {
    await api('GET', '/v1/info'); // proves the key before any page
    input.value = '';
    await start();
  } catch (e) {
    session.key = null;
    showError(e.status === 401 ? new Error('This key was refused: ' + e.message) : e);
  }
}

async function start() {
  $('nav').hidden = false;
  $('session').hidden = false;
  await refreshProducts();
  await route();
}

function init() {
  $('login').addEventListener('submit', login);
  $('logout').addEventListener('click', () => { session.key = null; sessionStorage.removeItem(PRODUCT); showLogin(); });
  $('product-select').addEventListener('change', (e) => { selectProduct(e.target.value); route(); });
  window.addEventListener('hashchange', route);
  if (session.key) start().catch((e) => { showError(e); session.key = null; showLogin(); });
  else showLogin();
}

init();
