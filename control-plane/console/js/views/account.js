// Account pages: API keys, users, audit log.

import { post, patch, del, getAll, getPage, seg } from '../api.js';
import {
  h, pageHeader, card, badge, table, emptyState, loading, alertBox, dateTime, relativeTime,
  field, inputField, copyField, onSubmit, formValue, numberValue, errorText, busy, confirmDialog, notify,
} from '../dom.js';

const DAY_MS = 24 * 3600 * 1000;

/**
 * A list that (re)loads into `slot`: `load()` fetches, `render(data)` builds the content.
 * Returns the reload function; it keeps the old content on screen while loading.
 */
function reloadable(ctx, slot, load, render) {
  return async () => {
    try {
      const data = await load();
      if (!ctx.signal.aborted) slot.replaceChildren(render(data));
    } catch (err) {
      if (!ctx.signal.aborted) slot.replaceChildren(alertBox(errorText(err)));
    }
  };
}

/** A one-time secret reveal: a highlighted card with a message and a copyable read-only field. */
function reveal(slot, message, label, value) {
  const shown = h('div', { class: 'card card-highlight' },
    h('p', { class: 'strong' }, message),
    copyField(label, value),
    h('div', { class: 'form-actions' },
      h('button', { type: 'button', class: 'button button-secondary button-small', onclick: () => slot.replaceChildren() }, 'Done')));
  slot.replaceChildren(shown);
  shown.querySelector('input').focus();
}

// ================================================================ API keys

export function apiKeys(ctx) {
  const listSlot = h('div', { tabindex: '-1', class: 'list-slot' }, loading());
  const revealSlot = h('div', {});
  const refresh = reloadable(ctx, listSlot,
    () => Promise.all([getAll('/api-keys'), getAll('/users').catch(() => [])]),
    ([keys, users]) => keyTable(ctx, keys, users, refresh, listSlot));
  refresh();
  return {
    title: 'API keys',
    node: h('div', { class: 'stack-lg' },
      pageHeader('API keys'),
      ctx.canWrite ? createKeyCard(revealSlot, refresh) : null,
      revealSlot,
      listSlot),
  };
}

function createKeyCard(revealSlot, refresh) {
  const form = h('form', { class: 'stack' },
    h('div', { class: 'field-row' },
      inputField('Name', { name: 'name', id: 'key-name', autocomplete: 'off' }, 'What or who uses it, e.g. “ci-deploy”.'),
      inputField('Expires in (days)', {
        name: 'expires_in_days', id: 'key-expires', type: 'number', min: 1, max: 730, value: '90', inputmode: 'numeric',
      })),
    h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'button' }, 'Create API key')));
  onSubmit(form, async () => {
    const res = await post('/api-keys', {
      name: formValue(form, 'name').trim(),
      expires_at: expiryFromDays(numberValue(form, 'expires_in_days')),
    });
    form.reset();
    reveal(revealSlot, 'Copy your new API key now — it is shown only once.', 'New API key token', res.token);
    refresh();
  }, { busyLabel: 'Creating…', aliases: { expires_at: 'expires_in_days' } });
  return card('Create an API key', form);
}

function expiryFromDays(n) {
  const at = typeof n === 'number' ? new Date(Date.now() + n * DAY_MS) : null;
  if (!at || Number.isNaN(at.getTime())) throw { field: 'expires_in_days', message: 'Enter a number of days.' };
  return at.toISOString();
}

function keyStatus(key) {
  if (key.revoked_at) return ['revoked', 'Revoked'];
  if (new Date(key.expires_at).getTime() <= Date.now()) return ['expired', 'Expired'];
  return ['active', 'Active'];
}

function keyTable(ctx, keys, users, refresh, listSlot) {
  if (!keys.length) return h('div', { class: 'card empty-card' }, emptyState('No API keys yet.'));
  const me = ctx.session.user;
  const emails = new Map(users.map((u) => [u.id, u.email]));
  const owner = ({ owner: o = {} }) => {
    if (o.user_id) return o.user_id === me.id ? me.email : emails.get(o.user_id) || 'another user';
    return 'service account';
  };
  const columns = [
    { label: 'Name', cell: (k) => h('span', { class: 'strong' }, k.name) },
    { label: 'Owner', cell: owner },
    { label: 'Created', cell: (k) => dateTime(k.created_at) },
    { label: 'Expires', cell: (k) => [dateTime(k.expires_at), ' ', h('span', { class: 'muted' }, `(${relativeTime(k.expires_at)})`)] },
    { label: 'Status', cell: (k) => badge(...keyStatus(k)) },
  ];
  if (ctx.canWrite) {
    columns.push({
      label: 'Actions',
      hideLabel: true,
      class: 'actions',
      cell: (k) => (keyStatus(k)[0] !== 'active' ? null : h('button', {
        type: 'button',
        class: 'button button-secondary button-small',
        'aria-label': `Revoke ${k.name}`,
        onclick: () => revokeKey(k, refresh, listSlot),
      }, 'Revoke')),
    });
  }
  return table(columns, keys, 'API keys');
}

async function revokeKey(key, refresh, listSlot) {
  const done = await confirmDialog({
    title: `Revoke ${key.name}?`,
    body: 'Requests made with this key are refused from now on. This cannot be undone.',
    confirmLabel: 'Revoke',
    busyLabel: 'Revoking…',
    danger: true,
    onConfirm: () => del(`/api-keys/${seg(key.id)}`),
  });
  if (!done) return;
  await refresh();
  listSlot.focus();
  notify(`Revoked ${key.name}`);
}

// ================================================================ users

const ROLES = [
  ['owner', 'Owner'],
  ['admin', 'Admin'],
  ['developer', 'Developer'],
  ['read_only', 'Read only'],
];
const roleLabel = (role) => (ROLES.find(([value]) => value === role) || [role, role])[1];

/** Roles the current user may hand out: only owners make owners. */
function assignableRoles(ctx) {
  return ctx.isOwner ? ROLES : ROLES.filter(([value]) => value !== 'owner');
}

function roleSelect(ctx, attrs, selected) {
  return h('select', attrs, assignableRoles(ctx).map(([value, label]) =>
    h('option', { value, selected: value === selected }, label)));
}

export function users(ctx) {
  const listSlot = h('div', { tabindex: '-1', class: 'list-slot' }, loading());
  const revealSlot = h('div', {});
  const refresh = reloadable(ctx, listSlot, () => getAll('/users'), (list) => userTable(ctx, list, refresh, listSlot));
  refresh();
  return {
    title: 'Users',
    node: h('div', { class: 'stack-lg' },
      pageHeader('Users'),
      ctx.isAdmin
        ? inviteCard(ctx, revealSlot, refresh)
        : h('p', { class: 'muted' }, 'Only owners and admins can invite users or change roles.'),
      revealSlot,
      listSlot),
  };
}

function inviteCard(ctx, revealSlot, refresh) {
  const form = h('form', { class: 'stack' },
    h('div', { class: 'field-row' },
      inputField('Email', { name: 'email', id: 'invite-email', type: 'email', autocomplete: 'off' }),
      field('Role', roleSelect(ctx, { name: 'role', id: 'invite-role' }, 'developer'))),
    h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'button' }, 'Invite')));
  onSubmit(form, async () => {
    const res = await post('/users', { email: formValue(form, 'email').trim(), role: formValue(form, 'role') });
    const link = `${location.origin}/console/accept-invite?token=${encodeURIComponent(res.invite_token)}`;
    form.reset();
    reveal(revealSlot, `Send this invitation link to ${res.user.email} (shown once):`, 'Invitation link', link);
    refresh();
  }, { busyLabel: 'Inviting…' });
  return card('Invite a user', form);
}

function userTable(ctx, list, refresh, listSlot) {
  if (!list.length) return h('div', { class: 'card empty-card' }, emptyState('No users yet.'));
  const me = ctx.session.user;
  // Admins manage everyone but owners; owners manage everyone; nobody edits themselves here.
  const manageable = (u) => ctx.isAdmin && u.id !== me.id && (u.role !== 'owner' || ctx.isOwner);
  return table([
    {
      label: 'Email',
      cell: (u) => [u.email, u.id === me.id ? h('span', { class: 'muted' }, ' (you)') : null],
    },
    { label: 'Role', cell: (u) => (manageable(u) ? roleEditor(ctx, u) : roleLabel(u.role)) },
    { label: 'State', cell: (u) => badge(u.state) },
    {
      label: 'Actions',
      hideLabel: true,
      class: 'actions',
      cell: (u) => (!manageable(u) ? null : h('button', {
        type: 'button',
        class: 'button button-secondary button-small',
        'aria-label': `Remove ${u.email}`,
        onclick: () => removeUser(u, refresh, listSlot),
      }, 'Remove')),
    },
  ], list, 'Users');
}

function roleEditor(ctx, user) {
  const select = roleSelect(ctx, { id: `role-${user.id}` }, user.role);
  const status = h('span', { class: 'role-status', role: 'status' });
  let current = user.role;
  select.addEventListener('change', async () => {
    status.classList.remove('is-error');
    status.textContent = 'Saving…';
    select.disabled = true;
    try {
      const updated = await patch(`/users/${seg(user.id)}`, { role: select.value });
      current = updated.role;
      status.textContent = 'Saved';
    } catch (err) {
      select.value = current;
      status.classList.add('is-error');
      status.textContent = errorText(err);
    } finally {
      select.disabled = false;
      if (document.activeElement === document.body) select.focus();
    }
  });
  return h('div', { class: 'role-cell' },
    h('label', { for: select.id, class: 'visually-hidden' }, `Role for ${user.email}`),
    select, status);
}

async function removeUser(user, refresh, listSlot) {
  const done = await confirmDialog({
    title: `Remove ${user.email}?`,
    body: 'They lose access to this account at once: their sessions end and their API keys are revoked.',
    confirmLabel: 'Remove',
    busyLabel: 'Removing…',
    danger: true,
    onConfirm: () => del(`/users/${seg(user.id)}`),
  });
  if (!done) return;
  await refresh();
  listSlot.focus();
  notify(`Removed ${user.email}`);
}

// ================================================================ audit log

const AUDIT_PAGE_SIZE = 50;

export function auditLog(ctx) {
  const entries = [];
  let nextToken = null;
  const tableSlot = h('div', { tabindex: '-1', class: 'list-slot' }, loading());
  const errorSlot = h('div', {});
  const more = h('button', { type: 'button', class: 'button button-secondary', hidden: true }, 'Load more');

  async function load() {
    const restore = entries.length ? busy(more, 'Loading…') : () => {};
    errorSlot.replaceChildren();
    try {
      const page = await getPage('/audit-log', { pageSize: AUDIT_PAGE_SIZE, pageToken: nextToken });
      if (ctx.signal.aborted) return;
      entries.push(...(page.items || []));
      nextToken = page.next_page_token || null;
      tableSlot.replaceChildren(auditTable(entries));
    } catch (err) {
      const message = err.status === 403 ? 'Only owners and admins can read the audit log.' : errorText(err);
      if (entries.length) errorSlot.replaceChildren(alertBox(message));
      else tableSlot.replaceChildren(alertBox(message));
    } finally {
      restore();
      more.hidden = !nextToken;
      if (more.hidden && document.activeElement === document.body) tableSlot.focus();
    }
  }
  more.addEventListener('click', load);
  load();

  return {
    title: 'Audit log',
    node: h('div', { class: 'stack-lg' },
      pageHeader('Audit log'),
      tableSlot,
      errorSlot,
      h('div', { class: 'load-more' }, more)),
  };
}

function auditTable(entries) {
  if (!entries.length) return h('div', { class: 'card empty-card' }, emptyState('No audit entries yet.'));
  return table([
    { label: 'Time', cell: (e) => dateTime(e.at) },
    {
      label: 'Actor',
      cell: (e) => [e.actor.name || e.actor.kind, e.actor.api_key_id ? h('span', { class: 'muted' }, ' via API key') : null],
    },
    { label: 'Action', cell: (e) => h('code', {}, e.action) },
    { label: 'Resource', cell: (e) => h('span', { class: 'mono' }, e.resource) },
    { label: 'Source IP', cell: (e) => e.source_ip || '—' },
  ], entries, 'Audit log');
}
