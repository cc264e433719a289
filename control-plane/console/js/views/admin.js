// Platform-admin pages: the admin token, rollouts (list and start, detail).
//
// The platform operator has no user account: these pages call /api/v1/admin with the
// platform-admin token as a bearer token, kept in sessionStorage (this tab only), and work
// with or without a tenant session.

import { get, post, getAll, request, withQuery, delay, seg } from '../api.js';
import {
  h, fill, pageHeader, card, cardWithAside, badge, table, emptyState, loading, alertBox, dateTime,
  field, onSubmit, formAlert, formValue, errorText, busy, confirmDialog, notify,
} from '../dom.js';
import { authPage, submitRow } from './auth.js';

export const ADMIN_HOME = '/console/admin/rollouts';

const TOKEN_KEY = 'tessera.adminToken';
const LIST_REFRESH_MS = 3000;
const DETAIL_REFRESH_MS = 2000;
const FINISHED = new Set(['done', 'halted', 'aborted']);

const ended = (rollout) => FINISHED.has(rollout.status);
const apiPath = (id) => `/rollouts/${seg(id)}`;
const pagePath = (id) => `${ADMIN_HOME}/${seg(id)}`;
const refused = (err) => err.status === 401 || err.status === 403;

// ================================================================ the token

// Kept in memory too, so the pages still work where sessionStorage is unavailable.
let token = readToken();
/** Set when the held token was refused, so that the token page says why it is back. */
let tokenWasRefused = false;

function readToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

function keepToken(value) {
  token = value;
  try {
    sessionStorage.setItem(TOKEN_KEY, value);
  } catch {
    // Private modes may refuse storage: the token then lasts until the page reloads.
  }
}

export function hasToken() {
  return Boolean(token);
}

export function forgetToken() {
  token = null;
  try {
    sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // Nothing was stored.
  }
}

/**
 * The /admin API as the held token, for one page. A refused token (rotated on the server) is
 * forgotten, and the page asks for a token again.
 */
function adminApi(ctx) {
  const guard = (promise) => promise.catch((err) => {
    if (refused(err) && token && !ctx.signal.aborted) {
      forgetToken();
      tokenWasRefused = true;
      ctx.rerender();
    }
    throw err;
  });
  return {
    get: (path) => guard(get(`/admin${path}`, { token })),
    all: (path) => guard(getAll(`/admin${path}`, { token })),
    post: (path, body) => guard(post(`/admin${path}`, body, { token })),
  };
}

/** Shown instead of any admin page while no token is held; on success, shows that page. */
export function tokenPage(ctx) {
  const form = h('form', { class: 'stack' },
    field('Admin token',
      h('input', { type: 'password', name: 'token', id: 'admin-token', autocomplete: 'off', spellcheck: 'false' }),
      'The contents of <data-dir>/admin-token on the control plane. It is kept in this browser tab only.'),
    submitRow('Use token'));
  onSubmit(form, async () => {
    const candidate = formValue(form, 'token').trim();
    if (!candidate) throw { field: 'token', message: 'Enter the admin token.' };
    // A header value must be visible ASCII; anything else cannot be the token.
    if (!/^[\x21-\x7e]+$/.test(candidate)) throw notAdminToken();
    try {
      await request('GET', withQuery('/admin/rollouts', { page_size: 1 }), undefined, { token: candidate });
    } catch (err) {
      throw refused(err) ? notAdminToken() : err;
    }
    keepToken(candidate);
    tokenWasRefused = false;
    ctx.rerender();
  }, { busyLabel: 'Checking…' });

  const notice = tokenWasRefused
    ? alertBox('The saved admin token was refused: it may have been rotated. Enter the current one.', 'info')
    : null;
  return {
    title: 'Platform admin',
    node: authPage(
      h('h1', {}, 'Platform admin'),
      h('p', { class: 'lead' }, 'Manage the platform with the platform-admin token.'),
      notice,
      form),
  };
}

function notAdminToken() {
  return { field: 'token', message: 'This is not a platform-admin token' };
}

// ================================================================ shared pieces

/** A fraction (0–1) as a whole percentage. */
function percent(fraction) {
  const n = Number(fraction);
  return Number.isFinite(n) ? Math.max(0, Math.min(100, Math.round(n * 100))) : 0;
}

/** A labelled `<progress>` with its percentage next to it. */
function meter(label, fraction) {
  const pct = percent(fraction);
  return h('div', { class: 'meter' },
    h('progress', { 'aria-label': label, max: '100', value: pct }),
    h('span', { class: 'meter-value' }, `${pct}%`));
}

const progressOf = (rollout) => rollout.progress || {};
const ringsOf = (rollout) => progressOf(rollout).rings || [];

// ================================================================ list and start

export function rollouts(ctx) {
  const api = adminApi(ctx);
  const listSlot = h('div', { class: 'list-slot', tabindex: '-1' }, loading());
  followRollouts(ctx, api, listSlot);
  return {
    title: 'Rollouts',
    node: h('div', { class: 'stack-lg' }, pageHeader('Rollouts'), startCard(ctx, api), listSlot),
  };
}

function startCard(ctx, api) {
  const select = h('select', { name: 'release', id: 'rollout-release' }, h('option', { value: '' }, 'Loading releases…'));
  const submit = h('button', { type: 'submit', class: 'button' }, 'Start rollout');
  const form = h('form', { class: 'stack' },
    field('Release', select, 'It goes through the deployment rings one batch of cells at a time.'),
    h('div', { class: 'form-actions' }, submit));
  onSubmit(form, async () => {
    const release = formValue(form, 'release');
    if (!release) throw { field: 'release', message: 'Choose a release.' };
    const { rollout } = await api.post('/rollouts', { release });
    ctx.navigate(pagePath(rollout.id));
  }, { busyLabel: 'Starting…' });
  loadReleases(ctx, api, { form, select, submit });
  return card('Start a rollout', form);
}

async function loadReleases(ctx, api, { form, select, submit }) {
  try {
    const releases = await api.all('/releases');
    if (ctx.signal.aborted) return;
    if (!releases.length) {
      select.replaceChildren(h('option', { value: '' }, 'No releases yet'));
      select.disabled = true;
      submit.disabled = true;
      return;
    }
    select.replaceChildren(...releases.map((r) =>
      h('option', { value: r.version }, r.runtime ? `${r.version} (runtime ${r.runtime.version})` : r.version)));
  } catch (err) {
    if (ctx.signal.aborted) return;
    select.replaceChildren(h('option', { value: '' }, 'Releases could not be loaded'));
    formAlert(form, `Could not load releases: ${errorText(err)}`);
  }
}

async function followRollouts(ctx, api, slot) {
  let shown = null;
  while (!ctx.signal.aborted) {
    try {
      const items = await api.all('/rollouts');
      const key = JSON.stringify(items);
      if (key !== shown && !ctx.signal.aborted) {
        slot.replaceChildren(rolloutTable(items));
        shown = key;
      }
      if (items.every(ended)) return;
    } catch (err) {
      // Once a list is on screen, a failed background refresh just waits for the next one.
      if (shown === null) {
        if (!ctx.signal.aborted) slot.replaceChildren(alertBox(errorText(err)));
        return;
      }
    }
    await delay(LIST_REFRESH_MS, ctx.signal);
  }
}

function rolloutTable(items) {
  if (!items.length) {
    return h('div', { class: 'card empty-card' },
      emptyState('No rollouts yet.'),
      h('p', { class: 'muted' }, 'Start one to take a release through the deployment rings.'));
  }
  return table([
    { label: 'Release', cell: (r) => h('a', { href: pagePath(r.id), class: 'strong' }, r.release) },
    { label: 'Status', cell: (r) => badge(r.status) },
    { label: 'Progress', cell: (r) => meter(`Progress of ${r.release}`, progressOf(r).fraction) },
    { label: 'Started', cell: (r) => dateTime(r.created_at) },
  ], items, 'Rollouts');
}

// ================================================================ detail

export function rolloutDetail(ctx) {
  const id = ctx.params[0];
  const node = h('div', { class: 'detail' }, loading());
  loadRollout(ctx, adminApi(ctx), id, node);
  return { title: 'Rollout', node };
}

async function loadRollout(ctx, api, id, node) {
  let rollout;
  try {
    rollout = await api.get(apiPath(id));
  } catch (err) {
    if (ctx.signal.aborted) return;
    if (err.status === 404) {
      ctx.setTitle('Rollout not found');
      node.replaceChildren(h('h1', {}, 'Rollout not found'),
        h('p', {}, 'There is no rollout with this id.'),
        h('p', {}, h('a', { href: ADMIN_HOME }, 'Back to rollouts')));
    } else {
      node.replaceChildren(pageHeader('Rollout'), alertBox(errorText(err)));
    }
    return;
  }
  if (ctx.signal.aborted) return;
  ctx.setTitle(`Rollout of ${rollout.release}`);
  node.replaceChildren(detailPage(ctx, api, rollout));
}

/**
 * Like the namespace page: parts `{el, update(rollout)}` that `page.apply(rollout)` refreshes
 * in place, so buttons keep their focus across the 2 s refreshes.
 */
function detailPage(ctx, api, initial) {
  const page = {
    ctx,
    api,
    rollout: initial,
    apply(rollout) {
      page.rollout = rollout;
      parts.forEach((p) => p.update(rollout));
    },
    async refresh() {
      try {
        page.apply(await api.get(apiPath(page.rollout.id)));
      } catch {
        // The next refresh or the user's next action will show what is wrong.
      }
    },
  };
  const parts = [headerPart(page), progressPart(page), ringsPart(page)];
  follow(page);
  return h('div', { class: 'stack-lg' }, parts.map((p) => p.el));
}

/** Refresh until the rollout ends (it never starts again) or the user leaves the page. */
async function follow(page) {
  const { signal } = page.ctx;
  while (!ended(page.rollout) && !signal.aborted) {
    await delay(DETAIL_REFRESH_MS, signal);
    if (!signal.aborted) await page.refresh();
  }
}

function headerPart(page) {
  const { rollout } = page;
  const state = h('span', { class: 'state-slot', role: 'status' }, badge(rollout.status));
  const el = h('div', { class: 'page-header detail-header' },
    h('div', {},
      h('p', { class: 'crumb' }, h('a', { href: ADMIN_HOME }, h('span', { 'aria-hidden': 'true' }, '← '), 'All rollouts')),
      h('div', { class: 'title-row' }, h('h1', {}, `Rollout of ${rollout.release}`), state),
      h('p', { class: 'muted meta' }, 'Started ', dateTime(rollout.created_at), ' · ', h('code', {}, rollout.id))));
  return {
    el,
    update(r) {
      if (state.textContent !== r.status) state.replaceChildren(badge(r.status));
    },
  };
}

// ---------------------------------------------------------------- progress and controls

const waitingRing = (rollout) => ringsOf(rollout).find((ring) => ring.state === 'awaiting_approval');

const STATUS_TEXT = {
  running: () => 'Rolling out, one batch of cells at a time.',
  paused: () => 'Paused: nothing new starts until the rollout is resumed.',
  awaiting_approval: (r) => {
    const ring = waitingRing(r);
    return ring ? `Waiting for approval to start ring ${ring.name}.` : 'Waiting for approval to start the next ring.';
  },
  rolling_back: () => 'Rolling the failed batch back.',
  done: () => 'Done: every ring runs the release.',
  halted: () => 'Halted: the rollout stopped after a failure.',
  aborted: () => 'Aborted: batches that passed keep the release.',
};

function progressPart(page) {
  const line = h('p', {});
  const reasonSlot = h('div', {});
  const bake = bakeNotice(page.ctx.signal);
  const bar = h('progress', { 'aria-label': 'Rollout progress', max: '100', value: 0 });
  const pctText = h('span', { class: 'meter-value' });
  const controls = controlsPart(page);
  let shownReason = '';

  const update = (r) => {
    const progress = progressOf(r);
    const describe = STATUS_TEXT[r.status];
    line.textContent = describe ? describe(r) : r.status;
    // Re-rendered only when it changes: an error alert is announced each time it appears.
    const reasonKey = JSON.stringify([r.status, progress.reason]);
    if (reasonKey !== shownReason) {
      shownReason = reasonKey;
      fill(reasonSlot, reasonBox(r.status, progress.reason));
      reasonSlot.hidden = !reasonSlot.hasChildNodes();
    }
    bake.update(ended(r) ? null : progress.bake_until);
    const pct = percent(progress.fraction);
    bar.value = pct;
    pctText.textContent = `${pct}%`;
    controls.update(r);
  };
  update(page.rollout);

  return {
    el: card('Progress',
      h('div', { class: 'stack' },
        line, reasonSlot, bake.el,
        h('div', { class: 'meter meter-large' }, bar, pctText),
        controls.el)),
    update,
  };
}

function reasonBox(status, reason) {
  if (!reason) return null;
  if (status === 'halted') return alertBox(reason);
  if (status === 'rolling_back') return alertBox(`Rolling back: ${reason}`, 'warning');
  return null;
}

const pad = (n) => String(n).padStart(2, '0');

/** Local wall-clock time, HH:MM:SS. */
function clock(date) {
  return [date.getHours(), date.getMinutes(), date.getSeconds()].map(pad).join(':');
}

/** A duration as M:SS, or H:MM:SS from an hour on. */
function countdown(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const hours = Math.floor(s / 3600);
  const rest = `${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}`;
  return hours ? `${hours}:${rest}` : rest.replace(/^0/, '');
}

/** "Baking until HH:MM:SS (M:SS left)", ticking each second while a bake is on. */
function bakeNotice(signal) {
  const time = h('time', {});
  const left = h('span', { class: 'muted' });
  const el = h('p', { class: 'bake', hidden: true }, 'Baking until ', time, ' ', left);
  let until = null;
  let timer = 0;
  const tick = () => {
    const ms = until - Date.now();
    left.textContent = ms > 0 ? `(${countdown(ms)} left)` : '(ending now)';
  };
  const stop = () => {
    clearInterval(timer);
    timer = 0;
  };
  signal.addEventListener('abort', stop);
  return {
    el,
    update(iso) {
      const date = iso ? new Date(iso) : null;
      if (!date || Number.isNaN(date.getTime()) || signal.aborted) {
        until = null;
        el.hidden = true;
        stop();
        return;
      }
      until = date.getTime();
      time.dateTime = iso;
      time.title = iso;
      time.textContent = clock(date);
      el.hidden = false;
      tick();
      if (!timer) timer = setInterval(tick, 1000);
    },
  };
}

/** The controls each status offers; none once the rollout has ended. */
const CONTROLS = {
  running: ['pause', 'abort'],
  awaiting_approval: ['approve', 'pause', 'abort'],
  paused: ['resume', 'abort'],
  // Pause does not hold a rollback (a safety action), so only abort is offered.
  rolling_back: ['abort'],
};

function controlsPart(page) {
  const status = h('div', { class: 'inline-status' });
  const approveBody = () => {
    const ring = waitingRing(page.rollout);
    return ring ? { ring: ring.name } : {};
  };
  const control = (action, label, className, busyLabel, body = () => undefined) => h('button', {
    type: 'button', class: className, onclick: (e) => act(page, e.currentTarget, status, action, body(), busyLabel),
  }, label);
  const buttons = {
    approve: control('approve', 'Approve', 'button', 'Approving…', approveBody),
    pause: control('pause', 'Pause', 'button button-secondary', 'Pausing…'),
    resume: control('resume', 'Resume', 'button button-secondary', 'Resuming…'),
    abort: h('button', { type: 'button', class: 'button button-danger', onclick: () => abort(page, status) }, 'Abort'),
  };
  const row = h('div', { class: 'button-row' }, Object.values(buttons));
  const el = h('div', { class: 'rollout-controls' }, row, status);

  return {
    el,
    update(r) {
      const offered = CONTROLS[r.status] || [];
      for (const [name, b] of Object.entries(buttons)) b.hidden = !offered.includes(name);
      row.hidden = !offered.length;
      // Once the rollout has ended, only an error of the last action is left to show.
      el.hidden = !offered.length && !status.hasChildNodes();
      // A busy button shows its busy label until its request is done.
      if (!buttons.approve.hasAttribute('aria-busy')) {
        const ring = waitingRing(r);
        buttons.approve.textContent = ring ? `Approve ${ring.name}` : 'Approve';
      }
    },
  };
}

async function act(page, button, status, action, body, busyLabel) {
  status.replaceChildren();
  const restore = busy(button, busyLabel);
  let rollout = null;
  let error = null;
  try {
    rollout = await page.api.post(`${apiPath(page.rollout.id)}/${action}`, body);
  } catch (err) {
    error = err;
  }
  restore();
  if (page.ctx.signal.aborted) return;
  if (rollout) page.apply(rollout);
  if (error) {
    status.replaceChildren(alertBox(errorText(error)));
    // Most likely the rollout ended meanwhile (409): show how.
    await page.refresh();
  }
  keepFocus(button);
}

async function abort(page, status) {
  status.replaceChildren();
  const opener = document.activeElement;
  const rollout = await confirmDialog({
    title: 'Abort this rollout?',
    body: 'Nothing new starts and nothing is rolled back: batches that passed keep the release, and a batch '
      + 'in flight may or may not run it. This cannot be undone.',
    confirmLabel: 'Abort',
    busyLabel: 'Aborting…',
    danger: true,
    onConfirm: () => page.api.post(`${apiPath(page.rollout.id)}/abort`),
  });
  if (!rollout || page.ctx.signal.aborted) return;
  page.apply(rollout);
  keepFocus(opener);
}

/** A control that the new status hid loses focus: hand it to the next control shown. */
function keepFocus(button) {
  if (!button || !button.hidden) return;
  const next = button.closest('.button-row')?.querySelector('button:not([hidden])');
  if (next && !next.closest('[hidden]')) next.focus();
}

// ---------------------------------------------------------------- rings

function ringsPart(page) {
  const el = h('div', { class: 'stack-lg' });
  let shown = '';
  const update = (r) => {
    const rings = ringsOf(r);
    const key = JSON.stringify(rings);
    if (key === shown) return;
    shown = key;
    el.replaceChildren(...rings.map(ringCard));
  };
  update(page.rollout);
  return { el, update };
}

function ringCard(ring) {
  return cardWithAside(ring.name, badge(ring.state), batchTable(ring));
}

function batchTable(ring) {
  const batches = (ring.batches || []).map((batch, i) => ({ ...batch, number: i + 1 }));
  if (!batches.length) return h('p', { class: 'muted' }, 'No cells in this ring.');
  return table([
    { label: 'Batch', cell: (b) => `#${b.number}` },
    { label: 'Cells', cell: (b) => cellList(b.cells || []) },
    { label: 'State', cell: (b) => badge(b.state) },
    { label: 'Gates', cell: (b) => gateList(b.gate_results) },
  ], batches, `Batches of ${ring.name}`);
}

function cellList(cells) {
  return h('span', { class: 'cells' }, cells.map((cell, i) => [i ? ', ' : null, h('code', {}, cell)]));
}

function gateList(results) {
  if (!results || !results.length) return h('span', { class: 'muted' }, '—');
  return h('ul', { class: 'gates' }, results.map((g) =>
    h('li', { class: `gate ${g.passed ? 'pass' : 'fail'}` },
      `${g.passed ? '✓' : '✗'} ${g.gate} — observed ${g.observed} (threshold ${g.threshold})`,
      g.cell ? ` [${g.cell}]` : null)));
}

// ================================================================ migrations

const MIGRATION_ENDED = new Set(['completed', 'aborted', 'failed']);
const ABORTABLE = new Set(['started', 'replicating', 'ready_for_cutover']);

function lagText(m) {
  const p = m.progress || {};
  if (p.lag_seconds == null) return '—';
  return `${Number(p.lag_seconds).toFixed(2)} s${p.lag_bytes != null ? ` / ${p.lag_bytes} B` : ''}`;
}

/** What the cutover may have lost: none once the source's final sync confirmed the copy. */
function rpoText(m) {
  const rpo = (m.progress || {}).rpo_seconds;
  if (rpo == null) return '—';
  return rpo === 0 ? 'none' : `at most ${Number(rpo).toFixed(1)} s of writes`;
}

/** Live migrations of namespaces between cells: start one, follow each, cut over or abort. */
export function migrations(ctx) {
  const api = adminApi(ctx);
  const listSlot = h('div', { class: 'list-slot', tabindex: '-1' }, loading());
  const refresh = () => loadMigrations(ctx, api, listSlot);
  followMigrations(ctx, refresh);
  return {
    title: 'Migrations',
    node: h('div', { class: 'stack-lg' },
      pageHeader('Migrations'),
      h('p', { class: 'muted' },
        'A namespace moves to another cell with its clients connected: its store streams to the target, then the cutover holds new connections for about a second. Its address never changes.'),
      startMigrationCard(api, refresh),
      drainCard(api, refresh),
      listSlot),
  };
}

async function followMigrations(ctx, refresh) {
  while (!ctx.signal.aborted) {
    await refresh();
    await delay(DETAIL_REFRESH_MS, ctx.signal);
  }
}

function startMigrationCard(api, refresh) {
  const form = h('form', { class: 'stack' },
    h('div', { class: 'field-row' },
      field('Namespace', h('input', { name: 'namespace', id: 'migration-namespace', autocomplete: 'off' }), '<name>.<account>, e.g. “orders.acme”.'),
      field('Target cell', h('input', { name: 'target_cell', id: 'migration-target', autocomplete: 'off' }), 'A healthy cell, e.g. “local-east-2”.'),
      field('Cutover', h('select', { name: 'cutover', id: 'migration-cutover' },
        h('option', { value: 'auto' }, 'As soon as the copy is current'),
        h('option', { value: 'manual' }, 'When I cut over')))),
    submitRow('Start migration'));
  onSubmit(form, async () => {
    await api.post('/migrations', {
      namespace: formValue(form, 'namespace').trim(),
      target_cell: formValue(form, 'target_cell').trim(),
      cutover: formValue(form, 'cutover'),
    });
    form.reset();
    await refresh();
  }, { busyLabel: 'Starting…' });
  return card('Move a namespace', form);
}

/** Moves every namespace off a cell (to other cells of its region), e.g. before it goes. */
function drainCard(api, refresh) {
  const form = h('form', { class: 'stack' },
    h('div', { class: 'field-row' },
      field('Cell', h('input', { name: 'cell', id: 'drain-cell', autocomplete: 'off' }), 'Its namespaces move, live, to other cells of its region; no new one is placed on it.'),
      field('At most at once', h('input', { name: 'max_parallel', id: 'drain-parallel', type: 'number', min: '1', max: '16', value: '2' }))),
    submitRow('Drain cell'));
  onSubmit(form, async () => {
    const cell = formValue(form, 'cell').trim();
    const answer = await api.post(`/cells/${seg(cell)}/drain`, {
      max_parallel: Number(formValue(form, 'max_parallel')),
    });
    notify(`Draining ${cell}: operation ${answer.operation.id}.`);
    form.reset();
    await refresh();
  }, { busyLabel: 'Draining…', aliases: { cell_id: 'cell' } });
  return card('Drain a cell', form);
}

async function loadMigrations(ctx, api, slot) {
  try {
    const items = await api.get('/migrations');
    if (ctx.signal.aborted) return;
    slot.replaceChildren(migrationTable(api, items, () => loadMigrations(ctx, api, slot)));
  } catch (err) {
    if (!ctx.signal.aborted) slot.replaceChildren(alertBox(errorText(err)));
  }
}

function migrationTable(api, items, refresh) {
  if (!items.length) {
    return h('div', { class: 'card empty-card' }, emptyState('No migrations yet.'));
  }
  const action = (m, what, label) => h('button', {
    type: 'button',
    class: 'button button-secondary button-small',
    'aria-label': `${label} migration of ${m.namespace}`,
    onclick: async (e) => {
      const restore = busy(e.currentTarget, `${label}…`);
      try {
        await api.post(`/migrations/${seg(m.id)}/${what}`, {});
      } catch (err) {
        notify(errorText(err), 'error');
      }
      restore();
      await refresh();
    },
  }, label);
  return table([
    { label: 'Namespace', cell: (m) => h('span', { class: 'strong' }, m.namespace) },
    { label: 'From', cell: (m) => m.source_cell },
    { label: 'To', cell: (m) => m.target_cell },
    { label: 'State', cell: (m) => badge(m.state) },
    { label: 'Lag', cell: lagText },
    { label: 'Stall', cell: (m) => ((m.progress || {}).stall_ms != null ? `${m.progress.stall_ms} ms` : '—') },
    { label: 'Data loss', cell: rpoText },
    { label: 'Started', cell: (m) => dateTime(m.created_at) },
    {
      label: 'Actions',
      cell: (m) => (MIGRATION_ENDED.has(m.state) ? (m.error || '—') : h('div', { class: 'actions' },
        m.state === 'ready_for_cutover' && m.cutover === 'manual' ? action(m, 'cutover', 'Cut over') : null,
        ABORTABLE.has(m.state) ? action(m, 'abort', 'Abort') : null)),
    },
  ], items, 'Migrations');
}
