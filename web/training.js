// training.js - start a training, watch it live (Server-Sent Events of the
// job, else polling), elapsed, ETA and the loss curve, cancel; the model
// versions side by side with their figures; activate and roll back.
import { api, enc } from './api.js';
import { busy, el, fmtDuration, fmtNum, fmtTime, loading, showInfo, svg } from './ui.js';
import { readSettings, settingsFields } from './settings_form.js';

const TRAIN_FIELDS = ['epochs', 'batch_size', 'resize_h', 'resize_w', 'crop_h', 'crop_w', 'gamma_c', 'gamma_d',
  'holdout', 'target_far', 'activate'];
const POLL_MS = 500;
const DONE = ['succeeded', 'failed', 'canceled'];

// The loss at each epoch seen, as an SVG polyline.
function lossChart(points) {
  const W = 360, H = 120, P = 28;
  const chart = svg('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'Training loss by epoch' });
  if (points.length < 1) return chart;
  const maxE = Math.max(1, ...points.map((p) => p.x)), ys = points.map((p) => p.y);
  const lo = Math.min(...ys), hi = Math.max(...ys), span = hi - lo || 1;
  const X = (x) => P + (x / maxE) * (W - 2 * P), Y = (y) => H - P - ((y - lo) / span) * (H - 2 * P);
  chart.append(svg('line', { class: 'axis', x1: P, y1: H - P, x2: W - P, y2: H - P }),
    svg('polyline', { class: 'loss', points: points.map((p) => `${X(p.x)},${Y(p.y)}`).join(' ') }),
    svg('text', { x: 2, y: 12 }, fmtNum(hi)), svg('text', { x: 2, y: H - P }, fmtNum(lo)),
    svg('text', { x: W - P - 40, y: H - 8 }, `epoch ${maxE}`));
  return chart;
}

function progressCard() {
  const card = el('section.card', { 'aria-labelledby': 'job-h', id: 'job' },
    el('h2', { id: 'job-h', text: 'Training progress' }),
    el('progress', { id: 'train-progress', max: 1, value: 0, 'aria-label': 'Training progress' }),
    el('p', { id: 'train-status', role: 'status', text: 'No training running.' }),
    el('div', { id: 'loss' }),
    el('div.row', {}, el('button.danger', { type: 'button', id: 'cancel', text: 'Cancel training', disabled: true })));
  return card;
}

// The job's states as they come: Server-Sent Events from GET
// /v1/jobs/{id}/events read through fetch() (EventSource cannot send the
// Authorization header), or, where the stream is not available, polling.
async function* jobStates(ctx, job) {
  let resp = null;
  try {
    resp = await api('GET', `/v1/jobs/${enc(job.id)}/events`, { as: 'response', signal: ctx.signal });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
  }
  if (resp && resp.body) {
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      let cut;
      while ((cut = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5)).join('\n');
        if (data) yield { job: JSON.parse(data), source: 'events' };
      }
    }
  }
  while (!ctx.signal.aborted) {
    yield { job: await api('GET', `/v1/jobs/${enc(job.id)}`, { signal: ctx.signal }), source: 'polling' };
    await new Promise((res) => setTimeout(res, POLL_MS));
  }
}

// Follows the job until it ends; updates the bar, the words and the curve.
async function watch(ctx, card, job, onDone) {
  const bar = card.querySelector('#train-progress'), status = card.querySelector('#train-status');
  const cancel = card.querySelector('#cancel');
  const losses = [];
  let updates = 0;
  cancel.disabled = false;
  cancel.onclick = () => busy(cancel, () => api('POST', `/v1/jobs/${enc(job.id)}/cancel`));
  for await (const { job: j, source } of jobStates(ctx, job)) {
    job = j;
    card.dataset.source = source;
    card.dataset.updates = String(++updates);
    const pr = job.progress || {}, f = pr.fraction || 0;
    const started = job.started_at ? Date.parse(job.started_at) : null;
    const end = job.finished_at ? Date.parse(job.finished_at) : Date.now();
    const elapsed = started ? (end - started) / 1000 : 0;
    const eta = f > 0 && f < 1 ? elapsed * (1 - f) / f : NaN;
    if (Number.isFinite(pr.loss) && pr.epoch > 0 && !losses.some((p) => p.x === pr.epoch)) {
      losses.push({ x: pr.epoch, y: pr.loss });
      card.querySelector('#loss').replaceChildren(lossChart(losses));
    }
    bar.value = job.state === 'succeeded' ? 1 : f;
    status.textContent = `${job.state}${pr.phase ? ', ' + pr.phase : ''}: epoch ${pr.epoch ?? 0} of ${pr.epochs ?? '?'}, ` +
      `${Math.round(bar.value * 100)}%, loss ${fmtNum(pr.loss)}, elapsed ${fmtDuration(elapsed)}` +
      (Number.isFinite(eta) ? `, about ${fmtDuration(eta)} left` : '') +
      (job.state === 'succeeded' ? `. Model version ${job.model_version}.` : '') + (job.error ? `. ${job.error}` : '');
    if (DONE.includes(job.state)) break;
  }
  cancel.disabled = true;
  if (DONE.includes(job.state)) onDone(job);
}

const ROWS = [
  ['Threshold', (m) => fmtNum(m.threshold, 4)],
  ['Threshold NG', (m) => fmtNum(m.threshold_ng ?? m.figures.threshold_ng, 4)],
  ['Created', (m) => fmtTime(m.created_at)],
  ['Train loss', (m) => fmtNum(m.figures.train_loss, 4)],
  ['Train images', (m) => m.figures.train_images ?? '–'],
  ['Held-out images', (m) => m.figures.holdout_images ?? '–'],
  ['Calibrated on', (m) => m.figures.calibration ?? '–'],
  ['Calibration mean / max', (m) => `${fmtNum(m.figures.calibration_mean)} / ${fmtNum(m.figures.calibration_max)}`],
  ['Target false-alarm rate', (m) => fmtNum(m.figures.target_far)],
  ['Epochs', (m) => m.figures.params?.epochs ?? '–'],
  ['Features / epoch / total s', (m) => `${fmtNum(m.figures.feature_seconds)} / ${fmtNum(m.figures.epoch_seconds)} / ${fmtNum(m.figures.total_seconds)}`],
];

async function versionsCard(ctx, card) {
  card.replaceChildren(el('h2', { id: 'versions-h', text: 'Model versions' }), loading());
  const { models } = await api('GET', `/v1/products/${enc(ctx.product)}/models?limit=6`, { signal: ctx.signal });
  const activate = (v) => async (e) => busy(e.currentTarget, async () => {
    await api('POST', `/v1/products/${enc(ctx.product)}/models/${v}/activate`);
    showInfo(`Version ${v} of ${ctx.product} is active: inspections use it from the next request on.`);
    await versionsCard(ctx, card);
  });
  const active = models.find((m) => m.active);
  const older = active && models.find((m) => m.version < active.version);
  if (!models.length) return card.replaceChildren(el('h2', { id: 'versions-h', text: 'Model versions' }), el('p', { text: 'No model yet.' }));
  card.replaceChildren(el('h2', { id: 'versions-h', text: 'Model versions' }),
    el('div.table-wrap', {}, el('table.versions', {},
      el('thead', {}, el('tr', {}, el('th', { scope: 'col', text: 'Version' }),
        models.map((m) => el('th', { scope: 'col', class: m.active ? 'active' : null, text: `v${m.version}${m.active ? ' (active)' : ''}` })))),
      el('tbody', {}, ROWS.map(([name, f]) => el('tr', {}, el('th', { scope: 'row', text: name }),
        models.map((m) => el('td', { class: m.active ? 'active' : null, text: f(m) })))),
      el('tr', {}, el('th', { scope: 'row', text: 'Use' }), models.map((m) => el('td', { class: m.active ? 'active' : null },
        m.active ? 'in use' : el('button', { type: 'button', text: `Activate v${m.version}`, onclick: activate(m.version) }))))))),
    older ? el('div.row', {}, el('button.secondary', { type: 'button', id: 'rollback', text: `Roll back to v${older.version}`, onclick: activate(older.version) })) : null);
}

export async function render(ctx) {
  if (!ctx.product) return ctx.view.append(el('p.card', {}, 'Choose a product first.'));
  const fields = await settingsFields('train', {}, TRAIN_FIELDS);
  const versions = el('section.card', { 'aria-labelledby': 'versions-h' });
  const prog = progressCard();
  const form = el('form.card', { 'aria-labelledby': 'train-h' },
    el('h2', { id: 'train-h', text: `Train ${ctx.product}` }),
    el('p.help', { text: 'Empty fields use the product\'s settings, then the server\'s defaults.' }),
    fields, el('div.row', {}, el('button', { type: 'submit', id: 'start', text: 'Start training' })));
  const done = (job) => {
    if (job.state === 'succeeded') showInfo(`Training finished: version ${job.model_version}.`);
    versionsCard(ctx, versions).catch(() => {});
  };
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(form.querySelector('#start'), async () => {
      const res = await api('POST', `/v1/products/${enc(ctx.product)}/train`, { json: readSettings(fields) });
      watch(ctx, prog, res.job, done).catch((e) => { if (e.name !== 'AbortError') prog.querySelector('#train-status').textContent = e.message; });
    });
  });
  ctx.view.append(el('div.grid2', {}, form, prog), versions);
  const { jobs } = await api('GET', `/v1/jobs?product=${enc(ctx.product)}&limit=1`, { signal: ctx.signal });
  if (jobs.length && !DONE.includes(jobs[0].state)) watch(ctx, prog, jobs[0], done).catch(() => {});
  await versionsCard(ctx, versions);
}
