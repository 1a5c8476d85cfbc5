// inspections.js - the live feed of a product's inspections (NG filter),
// inspecting an image by hand, and one inspection: the image with its
// heatmap overlaid (opacity slider), the regions as boxes, the score
// against the threshold, and the operator's label (false alarm / defect).
import { api, enc, imageUrl } from './api.js';
import { badge, busy, el, fmtNum, fmtTime, loading, showError, showInfo, svg, verdictOf } from './ui.js';

const FEED_MS = 2000;

const partOf = (i) => i.part_id ?? i.part?.id ?? '–';

function feedRow(i) {
  return el('tr', {},
    el('td', { text: fmtTime(i.created_at) }),
    el('td', { text: partOf(i) }),
    el('td.num', { text: fmtNum(i.score, 4) }),
    el('td.num', { text: fmtNum(i.threshold, 4) }),
    el('td', {}, badge(verdictOf(i))),
    el('td', {}, el('a', { href: `#/inspection/${enc(i.inspection_id)}`, text: 'Open',
      'aria-label': `Open inspection ${i.inspection_id}` })));
}

async function refreshFeed(ctx, body, ngOnly) {
  const q = `/v1/inspections?product=${enc(ctx.product)}&limit=50${ngOnly ? '&decision=NG' : ''}`;
  const { inspections } = await api('GET', q, { signal: ctx.signal });
  body.replaceChildren(...(inspections.length ? inspections.map(feedRow)
    : [el('tr', {}, el('td', { colspan: 6, text: 'No inspection yet.' }))]));
}

function uploadCard(ctx) {
  const input = el('input', { type: 'file', id: 'inspect-file', accept: 'image/jpeg,image/png' });
  const form = el('form.card', { 'aria-labelledby': 'manual-h' },
    el('h2', { id: 'manual-h', text: 'Inspect an image by hand' }),
    el('label', { for: 'inspect-file', text: 'Image (JPEG or PNG)' }), input,
    el('div.row', {}, el('button', { type: 'submit', id: 'inspect-btn', text: 'Inspect' })));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const f = input.files[0];
    if (!f) return showError(new Error('Choose an image to inspect first.'));
    busy(form.querySelector('button'), async () => {
      const res = await api('POST', `/v1/products/${enc(ctx.product)}/inspect`, { body: f, type: f.type || 'image/png' });
      location.hash = `#/inspection/${enc(res.inspection_id)}`;
    });
  });
  return form;
}

async function feed(ctx) {
  const body = el('tbody', { id: 'feed' });
  const ng = el('input', { type: 'checkbox', id: 'ng-only' });
  const live = el('input', { type: 'checkbox', id: 'live', checked: true });
  ctx.view.append(el('div.grid2', {},
    el('section.card', { 'aria-labelledby': 'feed-h' },
      el('h2', { id: 'feed-h', text: `Inspections of ${ctx.product}` }),
      el('div.row', {}, el('label.inline', { for: 'ng-only' }, ng, 'NG only'),
        el('label.inline', { for: 'live' }, live, 'Live (every 2 s)')),
      el('div.table-wrap', {}, el('table', {}, el('thead', {}, el('tr', {},
        ['Time', 'Part', 'Score', 'Threshold', 'Result', ''].map((h) => el('th', { scope: 'col', text: h })))), body))),
    uploadCard(ctx)));
  const update = () => refreshFeed(ctx, body, ng.checked).catch((e) => { if (e.name !== 'AbortError') showError(e); });
  ng.addEventListener('change', update);
  await refreshFeed(ctx, body, false);
  const timer = setInterval(() => { if (live.checked) update(); }, FEED_MS);
  return () => clearInterval(timer);
}

// The image, the heatmap over it and the regions' boxes, in image pixels.
function stage(ins, base, heat) {
  const w = ins.width || base.naturalWidth, h = ins.height || base.naturalHeight;
  const boxes = svg('svg', { viewBox: `0 0 ${w} ${h}`, preserveAspectRatio: 'none', 'aria-hidden': 'true', id: 'regions' },
    ...(ins.regions || []).map((r) => svg('rect', { x: r.x, y: r.y, width: r.width, height: r.height })));
  const box = el('div.stage', { id: 'stage' }, base, heat, boxes);
  if (w && h) box.style.setProperty('--aspect', String(w / h));
  return box;
}

function scoreMeter(ins) {
  const top = Math.max(ins.score, ins.threshold_ng || 0, ins.threshold) * 1.25;
  const meter = el('div.meter', { role: 'img', 'aria-label': `score ${fmtNum(ins.score, 4)} against threshold ${fmtNum(ins.threshold, 4)}` },
    el('span'), el('i'));
  meter.firstChild.style.width = `${(ins.score / top) * 100}%`;
  meter.lastChild.style.left = `${(ins.threshold / top) * 100}%`;
  return meter;
}

function labelCard(ins) {
  const status = el('p', { id: 'label-status', role: 'status', text: ins.label ? `Labelled ${ins.label.label}${ins.label.note ? ': ' + ins.label.note : ''}.` : 'Not labelled.' });
  const note = el('input', { type: 'text', id: 'label-note', maxlength: 256 });
  const add = el('input', { type: 'checkbox', id: 'label-train' });
  const send = (label) => (e) => busy(e.currentTarget, async () => {
    const res = await api('POST', `/v1/inspections/${enc(ins.inspection_id)}/label`,
      { json: { label, note: note.value, add_to_training: label === 'false_alarm' && add.checked } });
    const l = res.label && typeof res.label === 'object' ? res.label : res;
    status.textContent = `Labelled ${l.label}${l.note ? ': ' + l.note : ''}.`;
    showInfo(`Inspection labelled ${l.label}.`);
  });
  return el('section.card', { 'aria-labelledby': 'label-h' },
    el('h3', { id: 'label-h', text: 'Operator label' }),
    el('label', { for: 'label-note', text: 'Note (optional)' }), note,
    el('label.inline', { for: 'label-train' }, add, 'Add a false alarm to the training set'),
    el('div.row', {},
      el('button', { type: 'button', id: 'mark-false-alarm', text: 'Mark false alarm', onclick: send('false_alarm') }),
      el('button.danger', { type: 'button', id: 'mark-defect', text: 'Confirm defect', onclick: send('defect') })),
    status);
}

async function detail(ctx, id) {
  ctx.view.append(loading('Loading the inspection…'));
  const ins = await api('GET', `/v1/inspections/${enc(id)}`, { signal: ctx.signal });
  const urls = [];
  const base = el('img', { alt: `inspected image of ${ins.product}`, id: 'base-image' });
  const heat = el('img.overlay', { alt: 'anomaly heatmap', id: 'heatmap' });
  const opacity = el('input', { type: 'range', id: 'opacity', min: 0, max: 1, step: 0.05, value: 0.6 });
  heat.style.opacity = '0.6';
  opacity.addEventListener('input', () => { heat.style.opacity = opacity.value; });
  const loadImg = (img, path) => imageUrl(path, ctx.signal).then((u) => {
    urls.push(u);
    return new Promise((res, rej) => { img.onload = res; img.onerror = () => rej(new Error('cannot show ' + path)); img.src = u; });
  });
  const v = verdictOf(ins);
  ctx.view.replaceChildren(el('div.grid2', {},
    el('section.card', { 'aria-labelledby': 'ins-h' },
      el('h2', { id: 'ins-h' }, `Inspection of ${ins.product} `, badge(v)),
      stage(ins, base, heat),
      el('label', { for: 'opacity', text: 'Heatmap opacity' }), opacity),
    el('div', {},
      el('section.card', { 'aria-labelledby': 'score-h' },
        el('h3', { id: 'score-h', text: 'Score against threshold' }), scoreMeter(ins),
        el('dl.kv', {},
          el('dt', { text: 'Score' }), el('dd', { id: 'score', text: fmtNum(ins.score, 5) }),
          el('dt', { text: 'Threshold' }), el('dd', { text: fmtNum(ins.threshold, 5) }),
          ins.threshold_ng !== undefined ? [el('dt', { text: 'NG from' }), el('dd', { text: fmtNum(ins.threshold_ng, 5) })] : null,
          el('dt', { text: 'Result' }), el('dd', { text: v }),
          el('dt', { text: 'Part' }), el('dd', { text: partOf(ins) }),
          el('dt', { text: 'Model version' }), el('dd', { text: ins.model_version }),
          el('dt', { text: 'Regions' }), el('dd', { text: (ins.regions || []).length }),
          el('dt', { text: 'Time' }), el('dd', { text: fmtTime(ins.created_at) }))),
      labelCard(ins),
      el('p', {}, el('a', { href: '#/inspections', text: '← Back to the feed' })))));
  try {
    await loadImg(base, `/v1/inspections/${enc(id)}/image`);
    document.getElementById('stage').replaceWith(stage(ins, base, heat));
    await loadImg(heat, `/v1/inspections/${enc(id)}/heatmap.png`);
    heat.dataset.loaded = 'true';
  } catch (e) {
    if (e.name !== 'AbortError') showError(e);
  }
  return () => urls.forEach((u) => URL.revokeObjectURL(u));
}

export async function render(ctx) {
  if (ctx.args[0]) return detail(ctx, ctx.args[0]);
  if (!ctx.product) return ctx.view.append(el('p.card', {}, 'Choose a product first.'));
  return feed(ctx);
}
