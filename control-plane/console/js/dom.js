// DOM helpers shared by every view. Everything is built with createElement/textContent:
// data from the API never goes through innerHTML.

let lastId = 0;

/** A document-unique id, e.g. `uid('name')` → `name-7`. */
export function uid(prefix = 'el') {
  lastId += 1;
  return `${prefix}-${lastId}`;
}

/**
 * Build an element: `h('a', { href, class: 'button', onclick }, 'text', childNode, [more])`.
 * Attributes that are null, undefined or false are left out; `true` sets an empty attribute
 * (so `checked`/`selected` are defaults that form.reset() returns to); `on<event>` functions
 * become listeners. Children may be strings, numbers, nodes or (nested) arrays; null,
 * undefined and booleans are skipped.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  append(el, children);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'value') {
      setValue(el, value);
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  return el;
}

// Inputs and textareas get a default value, so that form.reset() goes back to it; a select's
// (or a progress bar's) value only exists as a property.
function setValue(el, value) {
  if (el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement) el.defaultValue = String(value);
  else el.value = value;
}

function append(parent, children) {
  for (const child of children) {
    if (child === null || child === undefined || typeof child === 'boolean') continue;
    if (Array.isArray(child)) append(parent, child);
    else if (child instanceof Node) parent.append(child);
    else parent.append(document.createTextNode(String(child)));
  }
}

/** Replace `el`'s children, with the same child rules as `h()`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// ---------------------------------------------------------------- layout pieces

/** Page heading row: the h1 plus optional actions on the right. */
export function pageHeader(title, ...actions) {
  return h('div', { class: 'page-header' }, h('h1', {}, title), h('div', { class: 'page-actions' }, actions));
}

/** A card section labelled by its h2. */
export function card(title, ...children) {
  const id = uid('card');
  return h('section', { class: 'card', 'aria-labelledby': id }, h('h2', { id }, title), children);
}

/** `card()` with `aside` (a badge, say) on the heading's row, outside the heading's name. */
export function cardWithAside(title, aside, ...children) {
  const id = uid('card');
  return h('section', { class: 'card', 'aria-labelledby': id },
    h('div', { class: 'card-head' }, h('h2', { id }, title), aside), children);
}

/** A static message box; errors are announced (`role="alert"`). */
export function alertBox(message, kind = 'error') {
  return h('div', { class: `alert alert-${kind}`, role: kind === 'error' ? 'alert' : null }, message);
}

export function emptyState(text) {
  return h('p', { class: 'empty' }, text);
}

export function loading(text = 'Loading…') {
  return h('p', { class: 'loading', role: 'status' }, text);
}

/** `<span class="badge badge-<state>">` — colours live in style.css. */
export function badge(state, text = state) {
  return h('span', { class: `badge badge-${state}` }, text);
}

/**
 * A table: `columns` are `{ label, cell: row => node|string, class?, hideLabel? }`.
 * Labelled with aria-label since the page's h1 already says what it is.
 */
export function table(columns, rows, label) {
  const head = columns.map((c) =>
    h('th', { scope: 'col', class: c.class }, c.hideLabel ? h('span', { class: 'visually-hidden' }, c.label) : c.label));
  const body = rows.map((row) => h('tr', {}, columns.map((c) => h('td', { class: c.class }, c.cell(row)))));
  return h('div', { class: 'table-wrap' },
    h('table', { 'aria-label': label }, h('thead', {}, h('tr', {}, head)), h('tbody', {}, body)));
}

// ---------------------------------------------------------------- dates

export function formatDate(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso ?? '') : d.toLocaleString();
}

/** `<time>` showing local time, with the exact ISO value on hover. */
export function dateTime(iso) {
  return h('time', { datetime: iso, title: iso }, formatDate(iso));
}

const UNITS = [
  ['year', 365 * 24 * 3600],
  ['month', 30 * 24 * 3600],
  ['day', 24 * 3600],
  ['hour', 3600],
  ['minute', 60],
];

/** "in 3 months", "2 days ago", "now". */
export function relativeTime(iso, now = Date.now()) {
  const seconds = (new Date(iso).getTime() - now) / 1000;
  if (Number.isNaN(seconds)) return '';
  const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size) return rtf.format(Math.round(seconds / size), unit);
  }
  return rtf.format(0, 'minute');
}

export function days(n) {
  return n === 1 ? '1 day' : `${n} days`;
}

// ---------------------------------------------------------------- forms

/**
 * Label + optional hint + control, as `<div class="field">`. The control gets an id if it has
 * none, and `aria-describedby` pointing at the hint.
 */
export function field(label, input, hint) {
  if (!input.id) input.id = uid(input.name || 'field');
  const parts = [h('label', { for: input.id }, label)];
  if (hint) {
    const hintEl = h('p', { class: 'hint', id: `${input.id}-hint` }, hint);
    input.setAttribute('aria-describedby', hintEl.id);
    parts.push(hintEl);
  }
  parts.push(input);
  return h('div', { class: 'field' }, parts);
}

/** `field()` for a fresh `<input>` built from `attrs`. */
export function inputField(label, attrs, hint) {
  return field(label, h('input', { type: 'text', ...attrs }), hint);
}

/** A read-only input holding a secret or link, with a Copy button next to it. */
export function copyField(label, value) {
  const input = h('input', { type: 'text', readonly: true, value, class: 'mono', spellcheck: 'false' });
  input.addEventListener('focus', () => input.select());
  const f = field(label, input);
  const row = h('div', { class: 'copy-input' });
  input.replaceWith(row);
  row.append(input, copyButton(() => input.value));
  return f;
}

/** Value of a form control by name ('' when absent). */
export function formValue(form, name) {
  const el = form.elements.namedItem(name);
  return el && 'value' in el ? el.value : '';
}

/** A number input's value as a number, or the raw text when it is not one (the server says why). */
export function numberValue(form, name) {
  const raw = formValue(form, name).trim();
  const n = Number(raw);
  return raw !== '' && Number.isFinite(n) ? n : raw || null;
}

/** Show an ApiError next to the control it names (details.field), else as a form alert. */
export function showFieldErrors(form, err, { aliases = {} } = {}) {
  const name = err && err.field;
  const control = name ? form.elements.namedItem(aliases[name] || name) : null;
  // A control the user cannot see (an unchosen option's section) cannot show its error.
  if (!control || control instanceof RadioNodeList || control.closest('[hidden]')) {
    formAlert(form, errorText(err));
    return;
  }
  markInvalid(control, err.reason || err.message);
  focusControl(control);
}

function markInvalid(control, message) {
  if (!control.id) control.id = uid('field');
  const error = h('p', { class: 'field-error', id: `${control.id}-error` }, message);
  // A fieldset (radio group) takes its error inside, after the options.
  if (control.tagName === 'FIELDSET') control.append(error);
  else control.after(error);
  control.setAttribute('aria-invalid', 'true');
  const described = control.getAttribute('aria-describedby');
  control.setAttribute('aria-describedby', described ? `${error.id} ${described}` : error.id);
}

function focusControl(control) {
  const target = control.tagName === 'FIELDSET'
    ? control.querySelector('input:checked, input, select, textarea')
    : control;
  if (target) target.focus();
}

/** A form-level `role="alert"`, at the form's `[data-alert-slot]` or at its top. */
export function formAlert(form, message) {
  form.querySelector(':scope .form-alert')?.remove();
  const alert = h('div', { class: 'alert alert-error form-alert', role: 'alert' }, message);
  const slot = form.querySelector('[data-alert-slot]');
  if (slot) slot.append(alert);
  else form.prepend(alert);
  alert.scrollIntoView?.({ block: 'nearest' });
}

/** Remove every error shown by `showFieldErrors`/`formAlert`. */
export function clearErrors(form) {
  form.querySelectorAll('.form-alert, .field-error').forEach((el) => el.remove());
  form.querySelectorAll('[aria-invalid]').forEach((el) => {
    el.removeAttribute('aria-invalid');
    const rest = (el.getAttribute('aria-describedby') || '').split(/\s+/)
      .filter((id) => id && !id.endsWith('-error'));
    if (rest.length) el.setAttribute('aria-describedby', rest.join(' '));
    else el.removeAttribute('aria-describedby');
  });
}

/**
 * Submit `form` through `action` (no page load): clears old errors, marks the submit button
 * busy, and shows a thrown error next to its field or as a form alert. `onError(err)` may
 * handle an error itself by returning true.
 */
export function onSubmit(form, action, { busyLabel, aliases, onError } = {}) {
  form.setAttribute('novalidate', '');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const button = form.querySelector('button[type="submit"]');
    if (button && button.disabled) return;
    clearErrors(form);
    const restore = button ? busy(button, busyLabel) : () => {};
    try {
      await action(event);
    } catch (err) {
      if (!(onError && onError(err))) showFieldErrors(form, err, { aliases });
    } finally {
      restore();
    }
  });
  return form;
}

export function errorText(err) {
  return (err && err.message) || 'Something went wrong. Try again.';
}

/**
 * Mark a button busy (disabled, optional label) while its request runs.
 * Returns a function that restores it.
 */
export function busy(button, label) {
  const text = button.textContent;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  if (label) button.textContent = label;
  return () => {
    button.disabled = false;
    button.removeAttribute('aria-busy');
    button.textContent = text;
  };
}

// ---------------------------------------------------------------- progress

const STATE_TEXT = {
  pending: 'Waiting to start…',
  in_progress: 'Working…',
  fulfilled: 'Done',
  failed: 'Failed',
  cancelled: 'Cancelled',
};

/**
 * Operation progress: a title, a `role="progressbar"` and a polite live step text.
 * `update(operation)` follows an Operation; `fail(message)` shows an error in place.
 */
export function progressPanel(title = '') {
  const heading = h('p', { class: 'progress-title' }, title);
  const bar = h('progress', {
    role: 'progressbar', 'aria-label': 'Operation progress',
    'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': '0', max: '100', value: 0,
  });
  const step = h('p', { class: 'progress-step', 'aria-live': 'polite' }, STATE_TEXT.pending);
  const el = h('div', { class: 'progress-panel is-running' }, heading, bar, step);
  return {
    el,
    setTitle(text) { heading.textContent = text; },
    update(op) {
      const done = op.state === 'fulfilled';
      const pct = done ? 100 : Math.max(0, Math.min(100, Math.round((op.progress || 0) * 100)));
      bar.value = pct;
      bar.setAttribute('aria-valuenow', String(pct));
      step.textContent = humanStep(op.step) || STATE_TEXT[op.state] || op.state;
      el.classList.toggle('is-running', !['fulfilled', 'failed', 'cancelled'].includes(op.state));
    },
    fail(message) {
      el.classList.remove('is-running');
      el.classList.add('is-failed');
      step.textContent = 'Failed';
      el.append(alertBox(message));
    },
  };
}

// Steps arrive as identifiers ("issue_certificates"); make them read like a sentence.
function humanStep(step) {
  if (!step) return '';
  const text = String(step).replace(/[_-]+/g, ' ').trim();
  return text.charAt(0).toUpperCase() + text.slice(1);
}

// ---------------------------------------------------------------- dialogs

/**
 * A modal confirmation built on `<dialog>`. Resolves with `onConfirm`'s result (true when it
 * has none) once confirmed, null when cancelled. While `onConfirm` runs the button is busy; if it throws, the
 * error is shown inside the dialog, which stays open. With `requireText`, the confirm button is
 * enabled only once the user typed exactly that text.
 */
export function confirmDialog({
  title, body, confirmLabel = 'Confirm', busyLabel, danger = false,
  requireText, requireLabel, onConfirm,
}) {
  return new Promise((resolve) => {
    const opener = document.activeElement;
    const headingId = uid('dialog-title');
    const confirm = h('button', { type: 'submit', class: danger ? 'button button-danger' : 'button' }, confirmLabel);
    const cancel = h('button', { type: 'button', class: 'button button-secondary' }, 'Cancel');
    let input = null;
    if (requireText !== undefined) {
      input = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', class: 'mono' });
      input.addEventListener('input', () => { confirm.disabled = input.value !== requireText; });
      confirm.disabled = true;
    } else {
      // Without a typed confirmation, start on the harmless choice.
      cancel.setAttribute('autofocus', '');
    }
    const form = h('form', { novalidate: true, class: 'dialog-form' },
      h('h2', { id: headingId }, title),
      typeof body === 'string' ? h('p', {}, body) : body,
      input && field(requireLabel || `Type "${requireText}" to confirm`, input),
      h('div', { 'data-alert-slot': '' }),
      h('div', { class: 'dialog-actions' }, cancel, confirm));
    const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': headingId }, form);

    let running = false;
    let result = null;
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (confirm.disabled || running) return;
      clearErrors(form);
      if (!onConfirm) {
        result = true;
        dialog.close();
        return;
      }
      running = true;
      const restore = busy(confirm, busyLabel);
      cancel.disabled = true;
      try {
        // A 204 answers null, which must not read as "cancelled".
        result = (await onConfirm()) ?? true;
        dialog.close();
      } catch (err) {
        restore();
        cancel.disabled = false;
        formAlert(form, errorText(err));
      } finally {
        running = false;
      }
    });
    cancel.addEventListener('click', () => dialog.close());
    dialog.addEventListener('cancel', (event) => { if (running) event.preventDefault(); });
    dialog.addEventListener('close', () => {
      dialog.remove();
      if (opener && opener.isConnected && typeof opener.focus === 'function') opener.focus();
      resolve(result);
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

// ---------------------------------------------------------------- files and clipboard

/** Save `text` as a file named `filename`. */
export function download(filename, text, type = 'application/x-pem-file') {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = h('a', { href: url, download: filename, class: 'visually-hidden' });
  document.body.append(link);
  link.click();
  link.remove();
  // Revoking synchronously can cancel the download in some browsers.
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // The async clipboard needs a secure context and permission; fall back to the old command.
    const active = document.activeElement;
    const scratch = h('textarea', { class: 'visually-hidden', readonly: true, value: text });
    document.body.append(scratch);
    scratch.select();
    let ok = false;
    try { ok = document.execCommand('copy'); } catch { ok = false; }
    scratch.remove();
    if (active && typeof active.focus === 'function') active.focus();
    return ok;
  }
}

/**
 * A "Copy" button copying `getText()`. Its name stays "Copy"; the outcome is announced by a
 * status text next to it.
 */
export function copyButton(getText, label = 'Copy') {
  const status = h('span', { class: 'copy-status', role: 'status' });
  let timer = 0;
  const button = h('button', {
    type: 'button',
    class: 'button button-secondary button-small',
    onclick: async () => {
      const ok = await copyText(getText());
      status.textContent = ok ? 'Copied' : 'Copy failed — select the text and copy it by hand';
      clearTimeout(timer);
      timer = setTimeout(() => { status.textContent = ''; }, 2500);
    },
  }, label);
  return h('span', { class: 'copy' }, button, status);
}

// ---------------------------------------------------------------- toasts

let toastRegion = null;

/** A short message in the corner, for outcomes that have no form to live in. */
export function notify(message, kind = 'info') {
  if (!toastRegion) {
    toastRegion = h('div', { class: 'toasts', role: 'status', 'aria-live': 'polite' });
    document.body.append(toastRegion);
  }
  const toast = h('div', { class: `toast toast-${kind}` }, message);
  toastRegion.append(toast);
  setTimeout(() => toast.remove(), 6000);
}
