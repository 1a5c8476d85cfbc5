// settings_form.js - a form for the training settings, made from the
// TrainingSettings schema of /v1/openapi.json: each field with its type,
// range and help text, so the console cannot lag the server's table.
import { api } from './api.js';
import { el } from './ui.js';

let schemaPromise = null;

export function trainingSchema() {
  if (!schemaPromise) {
    schemaPromise = fetch('/v1/openapi.json').then((r) => r.json())
      .then((doc) => doc.components.schemas.TrainingSettings)
      .catch((e) => { schemaPromise = null; throw e; });
  }
  return schemaPromise;
}

function field(prefix, name, prop, value) {
  const id = `${prefix}-${name}`;
  const help = el('p.help', { id: id + '-help' },
    prop.description || '',
    prop.minimum !== undefined ? ` Range ${prop.minimum} – ${prop.maximum}.` : '');
  let input;
  if (prop.type === 'boolean') {
    input = el('select', { id, name, 'aria-describedby': id + '-help' },
      el('option', { value: '', text: `default (${prop.default})` }),
      el('option', { value: 'true', text: 'true' }), el('option', { value: 'false', text: 'false' }));
  } else if (prop.enum) {
    input = el('select', { id, name, 'aria-describedby': id + '-help' },
      el('option', { value: '', text: `default (${prop.default})` }),
      ...prop.enum.map((v) => el('option', { value: v, text: v })));
  } else {
    input = el('input', {
      id, name, type: 'number', 'aria-describedby': id + '-help', placeholder: `default ${prop.default}`,
      min: prop.minimum, max: prop.maximum, step: prop.type === 'integer' ? '1' : 'any',
    });
  }
  input.dataset.kind = prop.type;
  if (value !== undefined) input.value = String(value);
  return el('div', {}, el('label', { for: id, text: name }), input, help);
}

// The fields of the schema; only wanted ones when given (a train form does
// not need every knob), with the current values filled in.
export async function settingsFields(prefix, values = {}, only = null) {
  const schema = await trainingSchema();
  const names = Object.keys(schema.properties).filter((n) => !only || only.includes(n));
  return el('div.fields', {}, names.map((n) => field(prefix, n, schema.properties[n], values[n])));
}

// The values the operator filled in, typed; empty fields are left out so
// the server's defaults apply.
export function readSettings(container) {
  const out = {};
  for (const input of container.querySelectorAll('[data-kind]')) {
    if (input.value === '') continue;
    const kind = input.dataset.kind;
    out[input.name] = kind === 'boolean' ? input.value === 'true'
      : kind === 'integer' ? parseInt(input.value, 10)
        : kind === 'number' ? parseFloat(input.value) : input.value;
  }
  return out;
}

export { api };
