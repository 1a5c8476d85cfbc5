// threshold.js - choose the threshold from the held-out good scores of the
// active model (its figures) and the scores of inspected parts: a histogram
// with the threshold as a handle (drag it, or use the slider or the number),
// the expected false-alarm rate shown live, saved with PUT .../threshold.
import { api, enc, listAll } from './api.js';
import { busy, el, fmtNum, showInfo, svg } from './ui.js';

const W = 720, H = 260, PAD = 34, BINS = 40;

function bins(values, lo, hi) {
  const n = new Array(BINS).fill(0);
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    n[Math.min(BINS - 1, Math.max(0, Math.floor(((v - lo) / (hi - lo)) * BINS)))]++;
  }
  return n;
}

// The fraction of good held-out scores at or above t: the false alarms
// that threshold would have raised on them.
const farAt = (good, t) => (good.length ? good.filter((s) => s >= t).length / good.length : NaN);

function histogram(good, parts, lo, hi) {
  const X = (v) => PAD + ((v - lo) / (hi - lo)) * (W - 2 * PAD);
  const g = bins(good, lo, hi), p = bins(parts, lo, hi);
  const gMax = Math.max(1, ...g), pMax = Math.max(1, ...p);
  const bw = (W - 2 * PAD) / BINS, hh = H - 2 * PAD;
  const chart = svg('svg', { class: 'chart', id: 'histogram', viewBox: `0 0 ${W} ${H}`, role: 'img',
    'aria-label': `Histogram of ${good.length} held-out good scores and ${parts.length} inspected parts` });
  g.forEach((c, i) => c && chart.append(svg('rect', { class: 'bar-good', x: PAD + i * bw + 1, width: bw / 2 - 1, y: H - PAD - (c / gMax) * hh, height: (c / gMax) * hh })));
  p.forEach((c, i) => c && chart.append(svg('rect', { class: 'bar-parts', x: PAD + i * bw + bw / 2, width: bw / 2 - 1, y: H - PAD - (c / pMax) * hh, height: (c / pMax) * hh })));
  chart.append(svg('line', { class: 'axis', x1: PAD, y1: H - PAD, x2: W - PAD, y2: H - PAD }));
  for (let k = 0; k <= 4; k++) {
    const v = lo + ((hi - lo) * k) / 4;
    chart.append(svg('text', { x: X(v) - 10, y: H - PAD + 16 }, fmtNum(v)));
  }
  chart.append(svg('text', { x: PAD, y: 14 }, 'blue: held-out good   grey: inspected parts'));
  return { chart, X, toValue: (px) => lo + ((px - PAD) / (W - 2 * PAD)) * (hi - lo) };
}

function handle(cls, label) {
  return svg('g', { class: cls }, svg('line', { y1: PAD - 10, y2: H - PAD }),
    svg('circle', { r: 8, cy: PAD - 10, 'aria-hidden': 'true' }), svg('title', {}, label));
}

// Makes the handle follow pointer drags on the chart.
function draggable(chart, toValue, set) {
  let dragging = false;
  const at = (e) => {
    const r = chart.getBoundingClientRect();
    return toValue(((e.clientX - r.left) / r.width) * W);
  };
  chart.addEventListener('pointerdown', (e) => { dragging = true; chart.setPointerCapture(e.pointerId); set(at(e)); });
  chart.addEventListener('pointermove', (e) => { if (dragging) set(at(e)); });
  chart.addEventListener('pointerup', () => { dragging = false; });
}

export async function render(ctx) {
  if (!ctx.product) return ctx.view.append(el('p.card', {}, 'Choose a product first.'));
  const { models } = await api('GET', `/v1/products/${enc(ctx.product)}/models?limit=50`, { signal: ctx.signal });
  const model = models.find((m) => m.active);
  if (!model) return ctx.view.append(el('p.card', {}, 'No active model yet: ', el('a', { href: '#/training', text: 'train one' }), ' first.'));
  const good = (model.figures.calibration_scores || []).filter(Number.isFinite);
  const { items } = await listAll(`/v1/inspections?product=${enc(ctx.product)}`, 'inspections', 1000);
  const parts = items.filter((i) => i.model_version === model.version).map((i) => i.score);
  const tNg = model.threshold_ng ?? model.figures.threshold_ng;
  const all = [...good, ...parts, model.threshold, ...(Number.isFinite(tNg) ? [tNg] : [])];
  const lo = 0, hi = Math.max(...all) * 1.15 || 1;
  const { chart, X, toValue } = histogram(good, parts, lo, hi);
  const h = handle('handle', 'threshold');
  chart.append(h);
  if (Number.isFinite(tNg)) {
    const hn = handle('handle-ng', 'NG threshold');
    hn.setAttribute('transform', `translate(${X(tNg)},0)`);
    chart.append(hn);
  }
  const step = (hi - lo) / 1000;
  const range = el('input', { type: 'range', id: 'threshold-range', min: lo, max: hi, step, 'aria-label': 'Threshold (slider)' });
  const number = el('input', { type: 'number', id: 'threshold-value', min: step, max: hi, step: 'any' });
  const far = el('p', { id: 'far', role: 'status' });
  const set = (t) => {
    t = Math.min(hi, Math.max(step, t));
    h.setAttribute('transform', `translate(${X(t)},0)`);
    range.value = t;
    number.value = Number(t.toPrecision(5));
    const f = farAt(good, t), n = parts.filter((s) => s >= t).length;
    far.textContent = (Number.isFinite(f)
      ? `Expected false-alarm rate: ${(f * 100).toFixed(1)}% (${Math.round(f * good.length)} of ${good.length} held-out good images at or above it).`
      : 'No held-out scores in this model\'s figures.') + ` ${n} of ${parts.length} inspected parts would be NG.`;
  };
  range.addEventListener('input', () => set(parseFloat(range.value)));
  number.addEventListener('change', () => set(parseFloat(number.value)));
  draggable(chart, toValue, set);
  const save = el('button', { type: 'button', id: 'save-threshold', text: 'Save threshold',
    onclick: (e) => busy(e.currentTarget, async () => {
      const p = await api('PUT', `/v1/products/${enc(ctx.product)}/threshold`, { json: { threshold: parseFloat(number.value) } });
      showInfo(`Threshold of ${ctx.product} (v${model.version}) saved: ${fmtNum(p.threshold, 5)}.`);
    }) });
  ctx.view.append(el('section.card', { 'aria-labelledby': 'thr-h' },
    el('h2', { id: 'thr-h', text: `Threshold of ${ctx.product}, version ${model.version}` }),
    el('p.help', { text: `Now ${fmtNum(model.threshold, 5)}${Number.isFinite(tNg) ? `; NG from ${fmtNum(tNg, 5)} (dashed)` : ''}. Drag the red handle, or use the slider or the number.` }),
    chart, el('label', { for: 'threshold-range', text: 'Threshold' }), range,
    el('div.row', {}, el('label.inline', { for: 'threshold-value' }, 'Value', number), save), far));
  set(model.threshold);
}
