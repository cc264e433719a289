// The account's own self-hosted regions: create one, join a host with a one-time token, and
// follow its cells. Only this account sees them and places namespaces there.

import { get, post, seg, delay } from '../api.js';
import {
  h, pageHeader, card, badge, table, emptyState, loading, alertBox, dateTime,
  inputField, copyField, onSubmit, formValue, errorText,
} from '../dom.js';

const REFRESH_MS = 3000;

export function regions(ctx) {
  const listSlot = h('div', { class: 'list-slot' }, loading());
  const revealSlot = h('div', {});
  const refresh = () => loadRegions(ctx, listSlot, revealSlot);
  follow(ctx, refresh);
  return {
    title: 'Self-hosted regions',
    node: h('div', { class: 'stack-lg' },
      pageHeader('Self-hosted regions'),
      h('p', { class: 'muted' },
        'Regions of your own hosts. Each host joins as a cell with a one-time token; only your account sees these regions and places namespaces there.'),
      ctx.isAdmin ? createRegionCard(refresh) : null,
      revealSlot,
      listSlot),
  };
}

/** Keeps the list current while the page is open (cells join and change state on their own). */
async function follow(ctx, refresh) {
  while (!ctx.signal.aborted) {
    await refresh();
    await delay(REFRESH_MS, ctx.signal);
  }
}

async function loadRegions(ctx, slot, revealSlot) {
  try {
    const regions = await get('/self-hosted/regions');
    if (ctx.signal.aborted) return;
    slot.replaceChildren(regions.length
      ? h('div', { class: 'stack-lg' }, ...regions.map((r) => regionCard(ctx, r, revealSlot)))
      : h('div', { class: 'card empty-card' }, emptyState('No self-hosted regions yet.')));
  } catch (err) {
    if (!ctx.signal.aborted) slot.replaceChildren(alertBox(errorText(err)));
  }
}

function createRegionCard(refresh) {
  const form = h('form', { class: 'stack' },
    h('div', { class: 'field-row' },
      inputField('Region id', { name: 'id', id: 'region-id', autocomplete: 'off' }, 'Lowercase letters, digits and dashes, e.g. “acme-dc-1”.'),
      inputField('Location', { name: 'location', id: 'region-location', autocomplete: 'off' }, 'Where the hosts are, e.g. “Frankfurt rack 4”.')),
    h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'button' }, 'Create region')));
  onSubmit(form, async () => {
    await post('/self-hosted/regions', {
      id: formValue(form, 'id').trim(),
      location: formValue(form, 'location'),
    });
    form.reset();
    await refresh();
  }, { busyLabel: 'Creating…' });
  return card('Create a region', form);
}

function regionCard(ctx, region, revealSlot) {
  const join = ctx.isAdmin ? h('button', {
    type: 'button',
    class: 'button button-secondary button-small',
    'aria-label': `Join a host to ${region.id}`,
    onclick: (e) => joinToken(region, e.currentTarget, revealSlot),
  }, 'Join a host') : null;
  const cells = region.cells.length
    ? table([
      { label: 'Cell', cell: (c) => h('span', { class: 'strong' }, c.id) },
      { label: 'State', cell: (c) => badge(c.status) },
      { label: 'Ring', cell: (c) => String(c.ring) },
      { label: 'Ingress', cell: (c) => c.ingress_address || '—' },
      { label: 'Last report', cell: (c) => (c.last_report_at ? dateTime(c.last_report_at) : '—') },
    ], region.cells, `Cells of ${region.id}`)
    : emptyState('No host has joined yet.');
  return h('section', { class: 'card', 'aria-label': `Region ${region.id}` },
    h('div', { class: 'card-head' },
      h('h2', {}, region.id, ' ', badge(region.status)),
      join),
    h('p', { class: 'muted' }, region.location),
    cells);
}

async function joinToken(region, button, revealSlot) {
  button.disabled = true;
  try {
    const t = await post(`/self-hosted/regions/${seg(region.id)}/join-tokens`, {});
    const command = `cell-agent --dir /var/lib/tessera-cell join --token ${t.token}`;
    const shown = h('div', { class: 'card card-highlight' },
      h('p', { class: 'strong' }, `Run this on the host within the hour to join ${region.id} as cell ${t.cell_id} (shown once):`),
      copyField('Join command', command),
      h('p', { class: 'muted' }, 'Then start the agent: cell-agent --dir /var/lib/tessera-cell run'),
      h('div', { class: 'form-actions' },
        h('button', { type: 'button', class: 'button button-secondary button-small', onclick: () => revealSlot.replaceChildren() }, 'Done')));
    revealSlot.replaceChildren(shown);
    shown.querySelector('input').focus();
  } catch (err) {
    revealSlot.replaceChildren(alertBox(errorText(err)));
  } finally {
    button.disabled = false;
  }
}
