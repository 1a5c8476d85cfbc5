// images.js - the training set: drag-and-drop upload of many good images
// with a progress bar, thumbnails, delete.
import { api, enc, imageUrl, listAll } from './api.js';
import { busy, el, loading, showError, showInfo } from './ui.js';

const BATCH = 16; // images per multipart request (the API takes up to 256)

function needProduct(ctx) {
  ctx.view.append(el('p.card', {}, 'Choose or ', el('a', { href: '#/products', text: 'create a product' }), ' first.'));
}

// Uploads files in batches, advancing the bar by bytes sent.
async function upload(product, files, bar, status) {
  const total = files.reduce((n, f) => n + f.size, 0);
  let sent = 0, stored = 0;
  bar.max = total || 1;
  bar.value = 0;
  for (let i = 0; i < files.length; i += BATCH) {
    const form = new FormData();
    const part = files.slice(i, i + BATCH);
    part.forEach((f, k) => form.append('image' + (i + k), f, f.name));
    status.textContent = `Uploading ${i + 1}–${i + part.length} of ${files.length}…`;
    const res = await api('POST', `/v1/products/${enc(product)}/images`, { body: form });
    stored += res.images.length;
    sent += part.reduce((n, f) => n + f.size, 0);
    bar.value = sent;
  }
  status.textContent = `${stored} of ${files.length} images uploaded.`;
  return stored;
}

function dropZone(onFiles) {
  const input = el('input', { type: 'file', id: 'files', multiple: true, accept: 'image/jpeg,image/png', hidden: true,
    onchange: () => { onFiles([...input.files]); input.value = ''; } });
  const zone = el('div.drop', { id: 'drop', role: 'button', tabindex: '0', 'aria-describedby': 'drop-help',
    onclick: () => input.click(),
    onkeydown: (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); input.click(); } },
    ondragover: (e) => { e.preventDefault(); zone.classList.add('over'); },
    ondragleave: () => zone.classList.remove('over'),
    ondrop: (e) => {
      e.preventDefault();
      zone.classList.remove('over');
      onFiles([...e.dataTransfer.files].filter((f) => /^image\/(jpeg|png)$/.test(f.type)));
    } },
  el('strong', { text: 'Drop good images here' }), el('br'), 'or press to choose files (JPEG or PNG)');
  return el('div', {}, zone, el('p.help', { id: 'drop-help', text: 'Only good parts: the model learns what normal looks like.' }), input);
}

function thumb(product, im, urls, onDelete) {
  const img = el('img', { alt: `training image ${im.id.slice(0, 8)}`, width: 120, height: 100, loading: 'lazy' });
  imageUrl(`/v1/products/${enc(product)}/images/${im.id}/thumbnail`)
    .then((u) => { urls.push(u); img.src = u; })
    .catch(() => { img.alt = 'thumbnail unavailable'; });
  const fig = el('figure', {}, img,
    el('figcaption', {}, el('span', { text: `${im.width}×${im.height}` }),
      el('button.secondary', { type: 'button', 'aria-label': `Delete image ${im.id.slice(0, 8)}`, text: 'Delete',
        onclick: (e) => busy(e.currentTarget, async () => { await onDelete(im); fig.remove(); }) })));
  return fig;
}

async function gallery(ctx, card, urls) {
  card.replaceChildren(el('h2', { id: 'set-h', text: 'Training set' }), loading());
  const { items, more } = await listAll(`/v1/products/${enc(ctx.product)}/images`, 'images', 1000);
  const del = (im) => api('DELETE', `/v1/products/${enc(ctx.product)}/images/${im.id}`);
  card.replaceChildren(el('h2', { id: 'set-h', text: `Training set: ${items.length}${more ? '+' : ''} images` }),
    items.length ? el('div.thumbs', { id: 'thumbs' }, items.map((im) => thumb(ctx.product, im, urls, del)))
      : el('p', { text: 'No image yet.' }));
}

export async function render(ctx) {
  if (!ctx.product) return needProduct(ctx);
  const urls = [];
  const bar = el('progress', { id: 'upload-progress', value: 0, max: 1, 'aria-label': 'Upload progress' });
  const status = el('p', { id: 'upload-status', role: 'status' });
  const setCard = el('section.card', { 'aria-labelledby': 'set-h' });
  const onFiles = async (files) => {
    if (!files.length) return showError(new Error('No JPEG or PNG image among the dropped files.'));
    try {
      await upload(ctx.product, files, bar, status);
      showInfo(`Uploaded ${files.length} images to ${ctx.product}.`);
      await gallery(ctx, setCard, urls);
    } catch (e) {
      status.textContent = 'Upload stopped.';
      showError(e);
    }
  };
  ctx.view.append(el('section.card', { 'aria-labelledby': 'up-h' },
    el('h2', { id: 'up-h', text: `Upload good images to ${ctx.product}` }), dropZone(onFiles), bar, status), setCard);
  await gallery(ctx, setCard, urls);
  return () => urls.forEach((u) => URL.revokeObjectURL(u));
}
