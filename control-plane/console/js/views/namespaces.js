// Namespaces: list, create, detail.

import { get, post, patch, del, getAll, pollOperation, delay, seg } from '../api.js';
import {
  h, pageHeader, card, badge, table, emptyState, loading, alertBox, dateTime, relativeTime, days,
  field, inputField, onSubmit, formAlert, formValue, numberValue, errorText, busy,
  progressPanel, confirmDialog, download, copyButton,
} from '../dom.js';

const TRANSITIONAL = new Set(['provisioning', 'updating', 'migrating', 'failing_over', 'deleting']);
const LIST_REFRESH_MS = 3000;
const DETAIL_REFRESH_MS = 2000;

const REPLICA_TRANSITIONAL = new Set(['adding', 'removing']);

const isTransitional = (ns) => TRANSITIONAL.has(ns.state)
  || (ns.replicas || []).some((r) => REPLICA_TRANSITIONAL.has(r.state));
const apiPath = (name) => `/namespaces/${seg(name)}`;
const pagePath = (name) => `/console/namespaces/${seg(name)}`;

// ================================================================ list

export function list(ctx) {
  const body = h('div', {}, loading());
  const create = ctx.canWrite ? h('a', { class: 'button', href: '/console/namespaces/new' }, 'Create namespace') : null;
  followList(ctx, body);
  return { title: 'Namespaces', node: h('div', {}, pageHeader('Namespaces', create), body) };
}

async function followList(ctx, body) {
  let shown = null;
  while (!ctx.signal.aborted) {
    try {
      const items = await getAll('/namespaces');
      const key = JSON.stringify(items);
      if (key !== shown && !ctx.signal.aborted) {
        body.replaceChildren(namespaceTable(items, ctx.canWrite));
        shown = key;
      }
      if (!items.some(isTransitional)) return;
    } catch (err) {
      // Once a list is on screen, a failed background refresh just waits for the next one.
      if (shown === null) {
        body.replaceChildren(alertBox(errorText(err)));
        return;
      }
    }
    await delay(LIST_REFRESH_MS, ctx.signal);
  }
}

function namespaceTable(items, canWrite) {
  if (!items.length) {
    return h('div', { class: 'card empty-card' },
      emptyState('No namespaces yet.'),
      canWrite ? h('p', { class: 'muted' }, 'Create one to get a Temporal endpoint for your workers.') : null);
  }
  return table([
    { label: 'Name', cell: (ns) => h('a', { href: pagePath(ns.name), class: 'strong' }, ns.name) },
    { label: 'Region', cell: (ns) => ns.region },
    { label: 'State', cell: (ns) => badge(ns.state) },
    { label: 'Retention', cell: (ns) => days(ns.retention_days) },
    { label: 'Created', cell: (ns) => dateTime(ns.created_at) },
  ], items, 'Namespaces');
}

// ================================================================ create

export function create(ctx) {
  if (!ctx.canWrite) {
    return {
      title: 'Create namespace',
      node: h('div', {}, pageHeader('Create namespace'),
        alertBox('Your role can view namespaces but not create them.', 'info')),
    };
  }
  const region = h('select', { name: 'region', id: 'namespace-region' }, h('option', { value: '' }, 'Loading regions…'));
  const ca = caChoice();
  const submit = h('button', { type: 'submit', class: 'button' }, 'Create namespace');
  const actions = h('div', { class: 'form-actions' },
    submit, h('a', { href: '/console/namespaces', class: 'button button-secondary' }, 'Cancel'));
  const fields = h('fieldset', { class: 'bare' },
    inputField('Name', { name: 'name', id: 'namespace-name', autocomplete: 'off', spellcheck: 'false', autocapitalize: 'none' },
      '2–39 lowercase letters, digits and hyphens. It cannot be changed later.'),
    field('Region', region),
    inputField('Retention (days)', {
      name: 'retention_days', id: 'namespace-retention', type: 'number', min: 1, max: 90, value: '7', inputmode: 'numeric',
    }, 'How long closed workflow histories are kept: 1–90 days.'),
    ca.el);
  const form = h('form', { class: 'card stack form-card' }, fields, actions);

  onSubmit(form, async () => {
    const name = formValue(form, 'name').trim();
    const body = { name, region: formValue(form, 'region'), retention_days: numberValue(form, 'retention_days') };
    if (ca.uploading()) body.accepted_client_ca = formValue(form, 'accepted_client_ca');
    else body.generate_ca = true;
    const { operation } = await post('/namespaces', body);
    await followCreation(ctx, { form, fields, actions, name, operation });
  }, {
    busyLabel: 'Creating…',
    onError(err) {
      // A duplicate name may come without details.field; it still belongs next to Name.
      const name = formValue(form, 'name').trim();
      if (err.code === 'already_exists' && !err.field && name && String(err.message).includes(name)) {
        err.details.field = 'name';
      }
      return false;
    },
  });
  loadRegions(region, form);

  return { title: 'Create namespace', node: h('div', { class: 'narrow-wide' }, pageHeader('Create namespace'), form) };
}

function caChoice() {
  const pem = h('textarea', {
    name: 'accepted_client_ca', id: 'namespace-ca', rows: 8, class: 'mono', spellcheck: 'false',
    placeholder: '-----BEGIN CERTIFICATE-----',
  });
  const file = h('input', { type: 'file', id: 'namespace-ca-file', accept: '.pem,.crt,.cer,application/x-pem-file' });
  const upload = h('div', { class: 'upload', hidden: true },
    field('CA bundle (PEM)', pem, 'One or more PEM certificates. Workers must present certificates signed by one of them.'),
    field('Or choose a PEM file', file));
  const el = h('fieldset', { name: 'generate_ca', id: 'namespace-ca-mode', class: 'choice-group' },
    h('legend', {}, 'Client CA'),
    radio('ca_mode', 'generate', 'Generate a CA for me', true,
      'Tessera creates a CA for this namespace; issue worker certificates from the console.'),
    radio('ca_mode', 'upload', 'Upload my CA bundle', false,
      'Workers present certificates signed by your own CA.'),
    upload);

  const uploading = () => el.querySelector('input[value="upload"]').checked;
  el.addEventListener('change', () => { upload.hidden = !uploading(); });
  file.addEventListener('change', async () => {
    const chosen = file.files && file.files[0];
    if (chosen) pem.value = await chosen.text();
  });
  return { el, uploading };
}

function radio(name, value, label, checked, hint) {
  const id = `${name}-${value}`;
  return h('div', { class: 'choice' },
    h('input', { type: 'radio', name, value, id, checked, 'aria-describedby': `${id}-hint` }),
    h('label', { for: id }, label),
    h('p', { class: 'hint', id: `${id}-hint` }, hint));
}

async function loadRegions(select, form) {
  try {
    const regions = await get('/regions');
    if (!regions.length) {
      select.replaceChildren(h('option', { value: '' }, 'No regions available'));
      return;
    }
    select.replaceChildren(...regions.map((r) => {
      const available = r.status === 'available';
      return h('option', { value: r.id, disabled: !available },
        `${r.id} · ${r.location}${available ? '' : ' (unavailable)'}`);
    }));
    const first = regions.find((r) => r.status === 'available');
    select.value = first ? first.id : '';
  } catch (err) {
    select.replaceChildren(h('option', { value: '' }, 'Regions could not be loaded'));
    formAlert(form, `Could not load regions: ${errorText(err)}`);
  }
}

async function followCreation(ctx, { form, fields, actions, name, operation }) {
  form.querySelector('.progress-panel')?.remove();
  const panel = progressPanel(`Creating ${name}…`);
  fields.disabled = true;
  actions.replaceWith(panel.el);
  try {
    await pollOperation(operation, panel.update, { signal: ctx.signal });
    ctx.navigate(pagePath(name));
  } catch (err) {
    panel.fail(errorText(err));
    panel.el.append(h('p', {}, h('a', { href: pagePath(name) }, `View ${name}`)));
    fields.disabled = false;
    panel.el.after(actions);
    form.querySelector('[name="name"]').focus();
  }
}

// ================================================================ detail

export function detail(ctx) {
  const name = ctx.params[0];
  const node = h('div', { class: 'detail' }, loading());
  loadDetail(ctx, name, node);
  return { title: name, node };
}

async function loadDetail(ctx, name, node) {
  let ns;
  try {
    ns = await get(apiPath(name));
  } catch (err) {
    if (err.status === 404) {
      ctx.setTitle('Namespace not found');
      node.replaceChildren(h('h1', {}, 'Namespace not found'),
        h('p', {}, `There is no namespace named “${name}” in this account.`),
        h('p', {}, h('a', { href: '/console/namespaces' }, 'Back to namespaces')));
    } else {
      node.replaceChildren(pageHeader(name), alertBox(errorText(err)));
    }
    return;
  }
  if (!ctx.signal.aborted) node.replaceChildren(detailPage(ctx, ns));
}

/**
 * The detail page is a list of parts `{el, update(ns)}`; `page.apply(ns)` pushes a fresh
 * namespace into all of them, so forms being typed into survive the 2 s refreshes.
 */
function detailPage(ctx, initial) {
  let following = false;
  const page = {
    ctx,
    ns: initial,
    apply(ns) {
      page.ns = ns;
      parts.forEach((p) => p.update && p.update(ns));
      follow();
    },
    async refresh() {
      try {
        page.apply(await get(apiPath(page.ns.name)));
      } catch {
        // The next refresh or the user's next action will show what is wrong.
      }
    },
  };
  const parts = [
    headerPart(page),
    connectionPart(page),
    ctx.canWrite ? retentionPart(page) : null,
    caPart(page),
    replicasPart(page),
    ctx.canWrite ? clientCertPart(page) : null,
    ctx.canWrite ? dangerPart(page) : null,
  ].filter(Boolean);

  async function follow() {
    if (following) return;
    following = true;
    try {
      while (isTransitional(page.ns) && !ctx.signal.aborted) {
        await delay(DETAIL_REFRESH_MS, ctx.signal);
        if (!ctx.signal.aborted) await page.refresh();
      }
    } finally {
      following = false;
    }
  }
  follow();
  return h('div', { class: 'stack-lg' }, parts.map((p) => p.el));
}

function headerPart(page) {
  const state = h('span', { class: 'state-slot', role: 'status' }, badge(page.ns.state));
  const el = h('div', { class: 'page-header detail-header' },
    h('div', {},
      h('p', { class: 'crumb' }, h('a', { href: '/console/namespaces' }, h('span', { 'aria-hidden': 'true' }, '← '), 'All namespaces')),
      h('div', { class: 'title-row' }, h('h1', {}, page.ns.name), state)));
  return {
    el,
    update(ns) {
      if (state.textContent !== ns.state) state.replaceChildren(badge(ns.state));
    },
  };
}

// ---------------------------------------------------------------- connection

function connectionPart(page) {
  const body = h('div', {});
  let shown = '';
  const render = (ns) => {
    const key = JSON.stringify([ns.endpoint, ns.region, ns.active_region, ns.retention_days]);
    if (key === shown) return;
    shown = key;
    body.replaceChildren(...connectionBody(ns));
  };
  render(page.ns);
  return { el: card('Connection', body), update: render };
}

function connectionBody(ns) {
  const ep = ns.endpoint || {};
  const region = ns.active_region && ns.active_region !== ns.region
    ? `${ns.region} (active in ${ns.active_region})`
    : ns.region;
  const props = h('dl', { class: 'props' },
    prop('Endpoint', code(ep.address)),
    prop('Cell endpoint', ep.cell_address ? code(ep.cell_address) : '—'),
    prop('TLS server name', code(ep.tls_server_name)),
    prop('Temporal namespace', code(ep.temporal_namespace)),
    prop('Region', region),
    ns.migration ? prop('Moving', `to ${ns.migration.target_region}: ${ns.migration.state.replaceAll('_', ' ')}${
      ns.migration.lag_seconds != null ? ` (copy ${Number(ns.migration.lag_seconds).toFixed(1)} s behind)` : ''}`) : null,
    prop('Retention', days(ns.retention_days)));
  const downloadCa = h('button', {
    type: 'button',
    class: 'button button-secondary',
    disabled: !ep.server_root_ca_pem,
    onclick: () => download(`${ns.name}-server-ca.pem`, ep.server_root_ca_pem),
  }, 'Download server CA');
  return [
    props,
    h('div', { class: 'button-row' }, downloadCa,
      h('span', { class: 'hint' }, `Saves ${ns.name}-server-ca.pem, which the examples below read.`)),
    snippet('Python', pythonSnippet(ns)),
    snippet('Go', goSnippet(ns)),
  ];
}

function prop(term, value) {
  return [h('dt', {}, term), h('dd', {}, value)];
}

function code(text) {
  return text ? h('code', {}, text) : h('span', { class: 'muted' }, 'Not ready yet');
}

function snippet(language, text) {
  return h('div', { class: 'snippet' },
    h('div', { class: 'snippet-head' }, h('h3', {}, language), copyButton(() => text)),
    h('pre', { tabindex: '0' }, h('code', {}, text)));
}

// Strings go through JSON.stringify: its escapes are valid in Python and Go string literals.
const quote = (s) => JSON.stringify(s || '');

function pythonSnippet(ns) {
  const ep = ns.endpoint || {};
  return [
    'import asyncio',
    '',
    'from temporalio.client import Client, TLSConfig',
    '',
    '',
    'async def main():',
    '    client = await Client.connect(',
    `        ${quote(ep.address)},`,
    `        namespace=${quote(ep.temporal_namespace)},`,
    '        tls=TLSConfig(',
    `            server_root_ca_cert=open(${quote(`${ns.name}-server-ca.pem`)},"rb").read(),`,
    `            domain=${quote(ep.tls_server_name)},`,
    `            client_cert=open(${quote(`${ns.name}.pem`)},"rb").read(),`,
    `            client_private_key=open(${quote(`${ns.name}.key`)},"rb").read(),`,
    '        ),',
    '    )',
    '    print("Connected to", client.namespace)',
    '',
    '',
    'asyncio.run(main())',
  ].join('\n');
}

function goSnippet(ns) {
  const ep = ns.endpoint || {};
  return [
    'package main',
    '',
    'import (',
    '\t"crypto/tls"',
    '\t"crypto/x509"',
    '\t"log"',
    '\t"os"',
    '',
    '\t"go.temporal.io/sdk/client"',
    ')',
    '',
    'func main() {',
    `\tcert, err := tls.LoadX509KeyPair(${quote(`${ns.name}.pem`)}, ${quote(`${ns.name}.key`)})`,
    '\tif err != nil {',
    '\t\tlog.Fatalln("load client certificate:", err)',
    '\t}',
    `\tserverCA, err := os.ReadFile(${quote(`${ns.name}-server-ca.pem`)})`,
    '\tif err != nil {',
    '\t\tlog.Fatalln("read server CA:", err)',
    '\t}',
    '\tpool := x509.NewCertPool()',
    '\tif !pool.AppendCertsFromPEM(serverCA) {',
    '\t\tlog.Fatalln("no certificate found in the server CA file")',
    '\t}',
    '',
    '\tc, err := client.Dial(client.Options{',
    `\t\tHostPort:  ${quote(ep.address)},`,
    `\t\tNamespace: ${quote(ep.temporal_namespace)},`,
    '\t\tConnectionOptions: client.ConnectionOptions{',
    '\t\t\tTLS: &tls.Config{',
    '\t\t\t\tCertificates: []tls.Certificate{cert},',
    '\t\t\t\tRootCAs:      pool,',
    `\t\t\t\tServerName:   ${quote(ep.tls_server_name)},`,
    '\t\t\t},',
    '\t\t},',
    '\t})',
    '\tif err != nil {',
    '\t\tlog.Fatalln("connect:", err)',
    '\t}',
    '\tdefer c.Close()',
    '\tlog.Println("connected")',
    '}',
  ].join('\n');
}

// ---------------------------------------------------------------- updates (retention, CAs)

/**
 * PATCH the namespace and follow the returned operation in `status`. Request errors are thrown
 * (for the caller's form); a failed operation is shown in the progress panel.
 */
function applyUpdate(page, status, body) {
  return followChange(page, status, 'Applying the change…', () => patch(apiPath(page.ns.name), body));
}

/** Sends a change (`request`) and follows its operation in `status`; request errors are thrown. */
async function followChange(page, status, label, request) {
  const { operation, namespace } = await request();
  if (namespace) page.apply(namespace);
  const panel = progressPanel(label);
  status.replaceChildren(panel.el);
  try {
    await pollOperation(operation, panel.update, { signal: page.ctx.signal });
  } catch (err) {
    panel.fail(errorText(err));
  }
  await page.refresh();
}

function retentionPart(page) {
  const input = h('input', {
    type: 'number', name: 'retention_days', id: 'retention-days', min: 1, max: 90, inputmode: 'numeric',
    value: String(page.ns.retention_days),
  });
  const status = h('div', { class: 'inline-status' });
  const form = h('form', { class: 'stack' },
    field('Retention (days)', input, 'Closed workflow histories are kept this long: 1–90 days.'),
    h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'button' }, 'Save retention')),
    status);
  onSubmit(form, () => applyUpdate(page, status, { retention_days: numberValue(form, 'retention_days') }),
    { busyLabel: 'Saving…' });

  let serverValue = page.ns.retention_days;
  return {
    el: card('Retention', form),
    update(ns) {
      // Follow the server's value unless the user is editing the field.
      if (document.activeElement !== input && Number(input.value) === serverValue) input.value = String(ns.retention_days);
      serverValue = ns.retention_days;
    },
  };
}

const pemsOf = (cas) => cas.map((ca) => (ca.pem || '').trim());
const bundle = (pems) => pems.join('\n');

function caPart(page) {
  const tableSlot = h('div', {});
  const status = h('div', { class: 'inline-status' });
  const render = (ns) => tableSlot.replaceChildren(caTable(page, ns, status));
  render(page.ns);

  let addForm = null;
  if (page.ctx.canWrite) {
    const pem = h('textarea', {
      name: 'accepted_client_ca', id: 'add-ca-pem', rows: 6, class: 'mono', spellcheck: 'false',
      placeholder: '-----BEGIN CERTIFICATE-----',
    });
    addForm = h('form', { class: 'stack add-ca' },
      field('Add CA certificate (PEM)', pem, 'Workers with certificates signed by this CA will be accepted too.'),
      h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'button' }, 'Add CA')));
    onSubmit(addForm, async () => {
      if (!pem.value.trim()) throw { field: 'accepted_client_ca', message: 'Paste a PEM certificate first.' };
      await applyUpdate(page, status, { accepted_client_ca: bundle([...pemsOf(page.ns.accepted_client_ca), pem.value.trim()]) });
      pem.value = '';
    }, { busyLabel: 'Adding…' });
  }
  return {
    el: card('Accepted client CAs',
      h('p', { class: 'muted' }, 'Workers must present a client certificate signed by one of these CAs.'),
      tableSlot, status, addForm),
    update: render,
  };
}

function caTable(page, ns, status) {
  const cas = ns.accepted_client_ca || [];
  if (!cas.length) return emptyState('No client CAs yet.');
  // Editing sends the whole bundle, which needs every certificate's PEM.
  const editable = page.ctx.canWrite && cas.every((ca) => ca.pem);
  const columns = [
    { label: 'Subject', cell: (ca) => ca.subject },
    { label: 'SHA-256 fingerprint', cell: (ca) => h('code', { title: ca.fingerprint_sha256 }, shortFingerprint(ca.fingerprint_sha256)) },
    { label: 'Expires', cell: (ca) => [dateTime(ca.not_after), ' ', h('span', { class: 'muted' }, `(${relativeTime(ca.not_after)})`)] },
  ];
  if (page.ctx.canWrite) {
    columns.push({
      label: 'Actions',
      hideLabel: true,
      class: 'actions',
      cell: (ca) => h('button', {
        type: 'button',
        class: 'button button-secondary button-small',
        'aria-label': `Remove ${ca.subject}`,
        disabled: !editable || cas.length < 2,
        title: cas.length < 2 ? 'A namespace needs at least one accepted CA' : null,
        onclick: (event) => removeCa(page, ca, event.currentTarget, status),
      }, 'Remove'),
    });
  }
  return table(columns, cas, 'Accepted client CAs');
}

function shortFingerprint(fp = '') {
  const short = fp.includes(':') ? fp.slice(0, 23) : fp.slice(0, 16);
  return short.length < fp.length ? `${short}…` : fp;
}

async function removeCa(page, ca, button, status) {
  const restore = busy(button, 'Removing…');
  const rest = page.ns.accepted_client_ca.filter((c) => c.fingerprint_sha256 !== ca.fingerprint_sha256);
  try {
    await applyUpdate(page, status, { accepted_client_ca: bundle(pemsOf(rest)) });
  } catch (err) {
    status.replaceChildren(alertBox(errorText(err)));
  } finally {
    if (button.isConnected) restore();
  }
}

// ---------------------------------------------------------------- client certificates

function clientCertPart(page) {
  const { name } = page.ns;
  if (!page.ns.generated_ca) {
    return {
      el: card('Client certificates', h('p', { class: 'muted' },
        'This namespace trusts your own CA: workers connect with certificates you issue from it.')),
    };
  }
  const result = h('div', {});
  const form = h('form', { class: 'stack' },
    h('div', { class: 'field-row' },
      inputField('Common name', { name: 'common_name', id: 'cert-common-name', value: `${name}-worker`, spellcheck: 'false' }),
      inputField('Valid for (days)', { name: 'valid_days', id: 'cert-valid-days', type: 'number', min: 1, value: '30', inputmode: 'numeric' })),
    h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'button' }, 'Create client certificate')));
  onSubmit(form, async () => {
    const cert = await post(`${apiPath(name)}/client-certs`, {
      common_name: formValue(form, 'common_name').trim(),
      valid_days: numberValue(form, 'valid_days'),
    });
    result.replaceChildren(certResult(name, cert));
    result.querySelector('button').focus();
  }, { busyLabel: 'Creating…' });
  return {
    el: card('Client certificates',
      h('p', { class: 'muted' }, 'Issue certificates for your workers from this namespace’s generated CA.'),
      form, result),
  };
}

function certResult(name, cert) {
  const area = (value) => h('textarea', { readonly: true, rows: 8, class: 'mono', spellcheck: 'false', value });
  const downloadButton = (label, file, text) =>
    h('button', { type: 'button', class: 'button button-secondary', onclick: () => download(file, text) }, label);
  return h('div', { class: 'cert-result stack' },
    h('div', { class: 'alert alert-warning', role: 'alert' }, 'The private key is shown only once. Download it now.'),
    h('div', { class: 'button-row' },
      downloadButton('Download certificate', `${name}.pem`, cert.certificate_pem),
      downloadButton('Download private key', `${name}.key`, cert.private_key_pem)),
    field('Certificate', area(cert.certificate_pem)),
    field('Private key', area(cert.private_key_pem)));
}

// ---------------------------------------------------------------- replicas

function replicasPart(page) {
  const tableSlot = h('div', {});
  const status = h('div', { class: 'inline-status' });
  const render = (ns) => tableSlot.replaceChildren(replicaTable(page, ns, status));
  render(page.ns);
  const body = [
    h('p', { class: 'hint' }, 'Standbys are warm copies of the namespace in a cell of another region, or of ',
      'its own region’s other cell, kept less than a second behind. At most two, one per region.'),
    tableSlot,
  ];
  if (page.ctx.canWrite) {
    const select = h('select', { name: 'region', id: 'replica-region' }, h('option', { value: '' }, 'Loading regions…'));
    const form = h('form', { class: 'stack' },
      field('Region', select, 'Placement picks a cell there, never the one the namespace runs on.'),
      h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'button' }, 'Add replica')));
    loadRegions(select, form);
    onSubmit(form, () => followChange(page, status, 'Adding the replica…',
      () => post(`${apiPath(page.ns.name)}/replicas`, { region: select.value })), { busyLabel: 'Adding…' });
    body.push(form);
  }
  body.push(status);
  return { el: card('Replicas', h('div', { class: 'stack' }, body)), update: render };
}

function replicaTable(page, ns, status) {
  const replicas = ns.replicas || [];
  if (!replicas.length) return h('p', { class: 'muted' }, 'No replicas.');
  const columns = [
    { label: 'Region', cell: (r) => r.region },
    { label: 'Cell', cell: (r) => h('code', {}, r.cell) },
    { label: 'State', cell: (r) => badge(r.state, r.state.replaceAll('_', ' ')) },
    { label: 'Lag', cell: (r) => (r.lag_seconds != null ? `${Number(r.lag_seconds).toFixed(1)} s` : '—') },
    { label: 'Last applied', cell: (r) => (r.last_applied_at ? relativeTime(r.last_applied_at) : '—') },
  ];
  if (page.ctx.canWrite) {
    columns.push({
      label: 'Actions',
      hideLabel: true,
      cell: (r) => h('button', {
        type: 'button',
        class: 'button button-secondary',
        disabled: r.state === 'removing',
        onclick: () => followChange(page, status, `Removing the replica in ${r.region}…`,
          () => del(`${apiPath(ns.name)}/replicas/${seg(r.region)}`)).catch((err) => {
          status.replaceChildren(alertBox(errorText(err)));
        }),
      }, `Remove ${r.region}`),
    });
  }
  return table(columns, replicas, 'Replicas');
}

// ---------------------------------------------------------------- danger zone

function dangerPart(page) {
  const status = h('div', { class: 'inline-status' });
  const button = h('button', {
    type: 'button', class: 'button button-danger', onclick: () => deleteNamespace(page, button, status),
  }, 'Delete namespace');
  const el = card('Danger zone',
    h('p', {}, 'Deleting a namespace stops its Temporal runtime and deletes all of its workflow data.'),
    h('div', { class: 'button-row' }, button),
    status);
  el.classList.add('card-danger');
  const update = (ns) => { button.disabled = ns.state === 'deleting' || ns.state === 'deleted'; };
  update(page.ns);
  return { el, update };
}

async function deleteNamespace(page, button, status) {
  const { name } = page.ns;
  const answer = await confirmDialog({
    title: `Delete ${name}?`,
    body: h('p', {}, 'This stops the namespace’s Temporal runtime and permanently deletes all of its workflow data, ',
      'including running workflows and their histories. It cannot be undone.'),
    confirmLabel: 'Delete',
    busyLabel: 'Deleting…',
    danger: true,
    requireText: name,
    requireLabel: 'Type the namespace name to confirm',
    onConfirm: () => del(apiPath(name)),
  });
  if (!answer) return;
  button.disabled = true;
  const panel = progressPanel(`Deleting ${name}…`);
  status.replaceChildren(panel.el);
  if (answer.namespace) page.apply(answer.namespace);
  try {
    await pollOperation(answer.operation, panel.update, { signal: page.ctx.signal });
    page.ctx.navigate('/console/namespaces');
  } catch (err) {
    panel.fail(errorText(err));
    page.refresh();
  }
}
