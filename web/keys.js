// keys.js - API keys (admin): create with a role (the secret is shown once),
// list, revoke.
import { api, enc, listAll } from './api.js';
import { busy, el, fmtTime, loading, showInfo } from './ui.js';

async function list(card) {
  card.replaceChildren(el('h2', { id: 'keys-h', text: 'Keys' }), loading());
  const { items } = await listAll('/v1/keys', 'keys', 1000);
  const revoke = (k) => (e) => {
    if (!window.confirm(`Revoke key ${k.name || k.id}? Clients using it are refused from now on.`)) return;
    busy(e.currentTarget, async () => {
      await api('DELETE', `/v1/keys/${enc(k.id)}`);
      showInfo(`Key ${k.name || k.id} revoked.`);
      await list(card);
    });
  };
  card.replaceChildren(el('h2', { id: 'keys-h', text: 'Keys' }), el('div.table-wrap', {}, el('table', { id: 'keys-table' },
    el('thead', {}, el('tr', {}, ['Name', 'Role', 'Id', 'Created', 'Revoked', ''].map((h) => el('th', { scope: 'col', text: h })))),
    el('tbody', {}, items.map((k) => el('tr', { 'data-key': k.id },
      el('td', { text: k.name || '–' }), el('td', { text: k.role }), el('td', { text: k.id }),
      el('td', { text: fmtTime(k.created_at) }), el('td', { class: 'revoked', text: k.revoked_at ? fmtTime(k.revoked_at) : 'no' }),
      el('td', {}, k.revoked_at ? '' : el('button.danger', { type: 'button', text: 'Revoke',
        'aria-label': `Revoke key ${k.name || k.id}`, onclick: revoke(k) }))))))));
}

function createForm(card) {
  const secret = el('div', { id: 'new-secret', 'aria-live': 'polite' });
  const form = el('form.card', { 'aria-labelledby': 'newkey-h' },
    el('h2', { id: 'newkey-h', text: 'Create a key' }),
    el('label', { for: 'key-name', text: 'Name' }), el('input', { type: 'text', id: 'key-name', maxlength: 256 }),
    el('label', { for: 'key-role', text: 'Role' }),
    el('select', { id: 'key-role' }, ['inspect', 'operate', 'admin'].map((r) => el('option', { value: r, text: r }))),
    el('p.help', { text: 'inspect: inspect and read results; operate: also products, training, thresholds; admin: also keys.' }),
    el('div.row', {}, el('button', { type: 'submit', text: 'Create key' })), secret);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(form.querySelector('button'), async () => {
      const k = await api('POST', '/v1/keys', { json: { name: form.querySelector('#key-name').value, role: form.querySelector('#key-role').value } });
      secret.replaceChildren(el('p', {}, el('strong', { text: 'Copy this secret now: it is shown only once.' })),
        el('p.secret', { id: 'secret-value', text: k.key }));
      await list(card);
    });
  });
  return form;
}

export async function render(ctx) {
  const card = el('section.card', { 'aria-labelledby': 'keys-h' });
  ctx.view.append(el('div.grid2', {}, card, createForm(card)));
  await list(card);
}
