// products.js - the products: counts, active version and threshold, the
// last inspection and today's OK/NG; create; edit the settings.
import { api, enc } from './api.js';
import { busy, el, fmtNum, fmtTime, loading, showInfo } from './ui.js';
import { readSettings, settingsFields } from './settings_form.js';

function midnight() {
  const d = new Date();
  d.setHours(0, 0, 0, 0);
  return d.toISOString();
}

// How many inspections of a decision today: pages of up to 1000, counted.
async function countToday(id, decision, signal) {
  const page = await api('GET', `/v1/inspections?product=${enc(id)}&decision=${decision}&since=${enc(midnight())}&limit=1000`, { signal });
  return page.inspections.length + (page.next_cursor ? '+' : '');
}

async function row(p, signal, onPick) {
  const [last, ok, ng] = await Promise.all([
    api('GET', `/v1/inspections?product=${enc(p.id)}&limit=1`, { signal }),
    countToday(p.id, 'OK', signal), countToday(p.id, 'NG', signal)]);
  const l = last.inspections[0];
  return el('tr', {},
    el('td', {}, el('button.secondary', { type: 'button', onclick: () => onPick(p.id), text: p.id,
      'aria-label': `Choose product ${p.id}` })),
    el('td', { text: p.name }),
    el('td.num', { text: p.image_count }),
    el('td.num', { text: p.active_version ?? '–' }),
    el('td.num', { text: fmtNum(p.threshold) }),
    el('td', { text: l ? `${fmtTime(l.created_at)} (${l.verdict || l.decision})` : 'never' }),
    el('td.num', { text: ok }), el('td.num', { text: ng }));
}

async function listCard(ctx) {
  const card = el('section.card', { 'aria-labelledby': 'products-h' },
    el('h2', { id: 'products-h', text: 'Products' }), loading());
  ctx.view.append(card);
  const list = await ctx.refreshProducts();
  const pick = (id) => { ctx.selectProduct(id); location.hash = '#/images'; };
  const rows = await Promise.all(list.map((p) => row(p, ctx.signal, pick)));
  card.lastChild.replaceWith(list.length ? el('div.table-wrap', {}, el('table', {},
    el('thead', {}, el('tr', {}, ['Product', 'Name', 'Images', 'Active version', 'Threshold',
      'Last inspection', 'OK today', 'NG today'].map((h) => el('th', { scope: 'col', text: h })))),
    el('tbody', {}, rows))) : el('p', { text: 'No product yet: create one below.' }));
}

async function createCard(ctx) {
  const fields = await settingsFields('new');
  const form = el('form.card', { 'aria-labelledby': 'create-h' },
    el('h2', { id: 'create-h', text: 'Create a product' }),
    el('label', { for: 'new-id', text: 'Id' }),
    el('input', { id: 'new-id', type: 'text', required: true, pattern: '[A-Za-z0-9._\\-]{1,64}',
      'aria-describedby': 'new-id-help' }),
    el('p.help', { id: 'new-id-help', text: '1-64 letters, digits, dot, dash or underscore; it names the product in every address.' }),
    el('label', { for: 'new-name', text: 'Name' }),
    el('input', { id: 'new-name', type: 'text', maxlength: 256 }),
    el('details', {}, el('summary', { text: 'Training settings (empty fields keep the server defaults)' }), fields),
    el('div.row', {}, el('button', { type: 'submit', text: 'Create product' })));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(form.querySelector('button'), async () => {
      const id = form.querySelector('#new-id').value.trim();
      await api('POST', '/v1/products', { json: { id, name: form.querySelector('#new-name').value, settings: readSettings(fields) } });
      ctx.selectProduct(id);
      showInfo(`Product ${id} created. Next: upload good images to its training set.`);
      location.hash = '#/images';
    });
  });
  ctx.view.append(form);
}

async function settingsCard(ctx) {
  if (!ctx.product) return;
  const p = await api('GET', `/v1/products/${enc(ctx.product)}`, { signal: ctx.signal });
  const fields = await settingsFields('edit', p.settings);
  const form = el('form.card', { 'aria-labelledby': 'edit-h' },
    el('h2', { id: 'edit-h', text: `Settings of ${p.id}` }),
    el('p.help', { text: 'Used by the next training of this product; a train request may still override them.' }),
    fields, el('div.row', {}, el('button', { type: 'submit', text: 'Save settings' })));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(form.querySelector('button'), async () => {
      await api('PATCH', `/v1/products/${enc(p.id)}`, { json: { settings: readSettings(fields) } });
      showInfo(`Settings of ${p.id} saved.`);
    });
  });
  ctx.view.append(form);
}

export async function render(ctx) {
  await listCard(ctx);
  await createCard(ctx);
  await settingsCard(ctx);
}
