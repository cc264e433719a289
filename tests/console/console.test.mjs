// The web console, driven like a person drives it: Playwright (playwright-core) in Debian's
// headless Chromium. Run by tests/tests/console.rs, which starts the control plane and a cell
// and passes:
//   CONSOLE_URL     the control plane, e.g. http://127.0.0.1:8080
//   SCREENSHOT_DIR  where each main page's screenshot goes
//   DOWNLOAD_DIR    where downloaded files go (and the first API key, for the Rust side)
//   TENANT_WORKER   tests/python/tenant_worker.py, to check the downloaded certificate works
//   EXTRA_CA_FILE   a second CA certificate (PEM), subject CN=acme-web rotation CA, to add and remove
//   ADMIN_TOKEN     the platform-admin token, for the admin pages (a release "r1" is published)
// Elements are found by their accessible names (labels, roles), as a screen reader finds them.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

const BASE = need('CONSOLE_URL');
const SHOTS = need('SCREENSHOT_DIR');
const DOWNLOADS = need('DOWNLOAD_DIR');
const WORKER = need('TENANT_WORKER');
const EXTRA_CA = await readFile(need('EXTRA_CA_FILE'), 'utf8');
const ADMIN_TOKEN = need('ADMIN_TOKEN');
const ACCOUNT = 'acme-web';
const EMAIL = 'owner@acme-web.test';
const PASSWORD = 'correct horse battery';

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  // This machine has no network beyond loopback: keep Chromium from calling home.
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
const context = await browser.newContext({
  baseURL: BASE,
  acceptDownloads: true,
  viewport: { width: 1280, height: 800 },
});
context.setDefaultTimeout(20_000);
const page = await context.newPage();
const consoleErrors = [];
page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
page.on('pageerror', (e) => consoleErrors.push(String(e)));

let step = '';
async function run(name, fn) {
  step = name;
  const t0 = Date.now();
  await fn();
  console.log(`ok  ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
}

async function shot(name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/// The API as the tests' own client (API key), to check what the browser did.
async function api(path, token, init = {}) {
  const res = await fetch(`${BASE}/api/v1${path}`, {
    ...init,
    headers: { authorization: `Bearer ${token}`, ...(init.headers || {}) },
  });
  return { status: res.status, body: res.status === 204 ? null : await res.json() };
}

async function save(download, name) {
  const path = join(DOWNLOADS, name);
  await download.saveAs(path);
  return path;
}

/// Clicks a button that downloads a file; returns the saved file's text.
async function downloadVia(buttonName, saveAs) {
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: buttonName }).click(),
  ]);
  assert.equal(download.suggestedFilename(), saveAs);
  return readFile(await save(download, saveAs), 'utf8');
}

const heading = (name) => page.getByRole('heading', { level: 1, name });
const nav = (name) => page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name });

let apiKey = '';

try {
  await run('an anonymous visitor is sent to the login page', async () => {
    await page.goto('/');
    await heading('Log in').waitFor();
    assert.match(page.url(), /\/console\/login$/);
    await shot('login');
  });

  await run('sign up: the first API key is shown once', async () => {
    await page.getByRole('link', { name: 'Create an account' }).click();
    await heading('Create your account').waitFor();
    await page.getByLabel('Account name').fill(ACCOUNT);
    await page.getByLabel('Email', { exact: true }).fill(EMAIL);
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await shot('signup');
    await page.getByRole('button', { name: 'Sign up' }).click();
    await heading('Welcome to Tessera').waitFor({ timeout: 60_000 });
    apiKey = await page.getByLabel('API key token').inputValue();
    assert.match(apiKey, /^tsk_/);
    await writeFile(join(DOWNLOADS, 'api-key'), apiKey);
    const account = await api('/account', apiKey);
    assert.equal(account.status, 200);
    assert.equal(account.body.name, ACCOUNT);
    await shot('welcome');
    // From here on every step must happen without a page load: this marker would be lost.
    await page.evaluate(() => {
      window.__sameDocument = true;
    });
    await page.getByRole('button', { name: 'Continue' }).click();
    await heading('Namespaces').waitFor();
    await page.getByText('No namespaces yet.').waitFor();
  });

  await run('an invalid namespace name gets its error next to the field', async () => {
    await page.getByRole('link', { name: 'Create namespace' }).click();
    await heading('Create namespace').waitFor();
    const name = page.getByLabel('Name', { exact: true });
    await name.fill('Bad_Name!');
    await page.getByLabel('Region').selectOption('local-east');
    await page.getByRole('button', { name: 'Create namespace' }).click();
    await page.locator('input[aria-invalid="true"]').waitFor();
    assert.equal(await name.getAttribute('aria-invalid'), 'true');
    const errorId = await name.getAttribute('aria-describedby');
    assert.ok(errorId, 'the field names its error');
    const error = page.locator(`[id="${errorId.split(' ').find((id) => id.endsWith('-error'))}"]`);
    assert.match(await error.innerText(), /lowercase|letters|name/i);
    assert.ok(await error.isVisible());
    await shot('namespace-create-error');
    const list = await api('/namespaces', apiKey);
    assert.deepEqual(list.body.items, [], 'a refused create creates nothing');
  });

  await run('create a namespace and watch it become active', async () => {
    const name = page.getByLabel('Name', { exact: true });
    await name.fill('orders');
    await page.getByLabel('Retention (days)').fill('7');
    await page.getByLabel('Generate a CA for me').check();
    await page.getByRole('button', { name: 'Create namespace' }).click();
    const bar = page.getByRole('progressbar', { name: 'Operation progress' });
    await bar.waitFor();
    await shot('namespace-create-progress');
    await page.waitForURL(/\/console\/namespaces\/orders$/, { timeout: 180_000 });
    await heading('orders').waitFor();
    await page.locator('.badge', { hasText: 'active' }).first().waitFor({ timeout: 60_000 });
    const ns = await api('/namespaces/orders', apiKey);
    assert.equal(ns.body.state, 'active');
    await page.getByText(ns.body.endpoint.tls_server_name).first().waitFor();
    await page.getByText(ns.body.endpoint.address).first().waitFor();
    const python = await page.locator('pre').filter({ hasText: 'TLSConfig' }).innerText();
    assert.ok(python.includes(ns.body.endpoint.tls_server_name), python);
    assert.ok(python.includes(ns.body.endpoint.temporal_namespace), python);
    await shot('namespace-detail');

    await nav('Namespaces').click();
    await heading('Namespaces').waitFor();
    const row = page.getByRole('row').filter({ hasText: 'orders' });
    await row.locator('.badge', { hasText: 'active' }).waitFor();
    await shot('namespaces');
    await row.getByRole('link', { name: 'orders' }).click();
    await heading('orders').waitFor();
  });

  await run('a replica needs a second cell: the Replicas card says why and nothing changes', async () => {
    const replicas = page.locator('section.card').filter({ has: page.getByRole('heading', { name: 'Replicas' }) });
    await replicas.getByText('No replicas.').waitFor();
    await replicas.getByLabel('Region').selectOption('local-east');
    await replicas.getByRole('button', { name: 'Add replica' }).click();
    await replicas.locator('.form-alert').filter({ hasText: /other than the namespace's own/ }).waitFor();
    const ns = await api('/namespaces/orders', apiKey);
    assert.deepEqual(ns.body.replicas, []);
    await replicas.scrollIntoViewIfNeeded();
    await shot('namespace-replicas');
  });

  await run('download a client certificate; it opens the namespace', async () => {
    const serverCa = await downloadVia('Download server CA', 'orders-server-ca.pem');
    assert.match(serverCa, /BEGIN CERTIFICATE/);
    await page.getByLabel('Common name').fill('orders-worker');
    await page.getByLabel('Valid for (days)').fill('7');
    await page.getByRole('button', { name: 'Create client certificate' }).click();
    await page.getByText('The private key is shown only once').waitFor();
    const certPem = await downloadVia('Download certificate', 'orders.pem');
    const keyPem = await downloadVia('Download private key', 'orders.key');
    const cert = new X509Certificate(certPem);
    assert.match(cert.subject, /CN=orders-worker/);
    assert.ok(cert.checkPrivateKey(createPrivateKey(keyPem)), 'the key belongs to the certificate');
    assert.ok(new Date(cert.validTo) > new Date(), 'not expired');
    await shot('client-certificate');

    const ns = (await api('/namespaces/orders', apiKey)).body;
    const { stdout } = await promisify(execFile)('python3', [
      WORKER,
      '--check',
      '--address', ns.endpoint.address,
      '--server-name', ns.endpoint.tls_server_name,
      '--namespace', ns.endpoint.temporal_namespace,
      '--cert', join(DOWNLOADS, 'orders.pem'),
      '--key', join(DOWNLOADS, 'orders.key'),
      '--server-ca', join(DOWNLOADS, 'orders-server-ca.pem'),
    ]);
    console.log(`    python worker: ${stdout.trim().split('\n').pop()}`);
  });

  await run('rotate the accepted CAs: add one, then remove it', async () => {
    const cas = page.getByRole('button', { name: /^Remove / });
    assert.equal(await cas.count(), 1);
    await page.getByLabel('Add CA certificate (PEM)').fill(EXTRA_CA);
    await page.getByRole('button', { name: 'Add CA' }).click();
    const added = page.getByRole('button', { name: /^Remove .*acme-web rotation CA/ });
    await added.waitFor({ timeout: 60_000 });
    let ns = (await api('/namespaces/orders', apiKey)).body;
    assert.equal(ns.accepted_client_ca.length, 2, 'both CAs are accepted during a rotation');
    await added.click();
    await added.waitFor({ state: 'detached', timeout: 60_000 });
    await page.locator('.badge', { hasText: 'active' }).first().waitFor({ timeout: 60_000 });
    ns = (await api('/namespaces/orders', apiKey)).body;
    assert.equal(ns.accepted_client_ca.length, 1);
    assert.doesNotMatch(ns.accepted_client_ca[0].subject, /rotation CA/);
  });

  await run('create an API key, use it, revoke it', async () => {
    await nav('API keys').click();
    await heading('API keys').waitFor();
    await page.getByLabel('Name', { exact: true }).fill('ci-key');
    await page.getByRole('button', { name: 'Create API key' }).click();
    const token = await page.getByLabel('New API key token').inputValue();
    assert.match(token, /^tsk_/);
    assert.equal((await api('/account', token)).status, 200, 'the new key works');
    await shot('api-keys');
    await page.getByRole('button', { name: 'Revoke ci-key' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('heading', { name: /Revoke ci-key/ }).waitFor();
    await dialog.getByRole('button', { name: 'Revoke' }).click();
    await page
      .getByRole('row')
      .filter({ hasText: 'ci-key' })
      .getByText('Revoked')
      .waitFor();
    const after = await api('/account', token);
    assert.equal(after.status, 401, 'a revoked key stops working at once');
  });

  await run('invite a user', async () => {
    await nav('Users').click();
    await heading('Users').waitFor();
    await page.getByLabel('Email', { exact: true }).fill('dev@acme-web.test');
    await page.getByLabel('Role', { exact: true }).selectOption('developer');
    await page.getByRole('button', { name: 'Invite' }).click();
    const link = await page.getByLabel('Invitation link').inputValue();
    assert.match(link, /\/console\/accept-invite\?token=tin_/);
    const row = page.getByRole('row').filter({ hasText: 'dev@acme-web.test' });
    await row.waitFor();
    await page.getByLabel('Role for dev@acme-web.test').selectOption('read_only');
    await row.getByText('Saved').waitFor();
    const users = (await api('/users', apiKey)).body.items;
    assert.equal(users.find((u) => u.email === 'dev@acme-web.test').role, 'read_only');
    await shot('users');
  });

  await run('the audit log shows what happened', async () => {
    await nav('Audit log').click();
    await heading('Audit log').waitFor();
    const table = page.getByRole('table', { name: 'Audit log' });
    for (const action of ['namespace.create', 'api_key.revoke', 'user.invite']) {
      await table.getByText(action, { exact: true }).first().waitFor();
    }
    await shot('audit-log');
  });

  await run('delete the namespace behind a confirmation', async () => {
    await nav('Namespaces').click();
    await page.getByRole('link', { name: 'orders' }).click();
    await heading('orders').waitFor();
    await page.getByRole('button', { name: 'Delete namespace' }).click();
    const dialog = page.getByRole('dialog');
    const confirm = dialog.getByRole('button', { name: 'Delete', exact: true });
    assert.ok(await confirm.isDisabled(), 'disabled until the name is typed');
    await dialog.getByLabel('Type the namespace name to confirm').fill('orders');
    await confirm.click();
    await page.waitForURL(/\/console\/namespaces$/, { timeout: 180_000 });
    await page.getByText('No namespaces yet.').waitFor({ timeout: 60_000 });
  });

  await run('no step reloaded the page; log out and back in', async () => {
    assert.equal(await page.evaluate(() => window.__sameDocument), true);
    await page.getByRole('button', { name: 'Log out' }).click();
    await heading('Log in').waitFor();
    await page.goto('/console/namespaces');
    await heading('Log in').waitFor();
    await page.getByLabel('Email', { exact: true }).fill(EMAIL);
    await page.getByLabel('Password', { exact: true }).fill('wrong password!');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('alert').filter({ hasText: /invalid email or password/i }).waitFor();
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await heading('Namespaces').waitFor();
  });

  await run('a self-hosted region of our own, which another account never sees', async () => {
    await page.getByRole('link', { name: 'Self-hosted' }).click();
    await heading('Self-hosted regions').waitFor();
    await page.getByLabel('Region id').fill('Acme Web DC');
    await page.getByLabel('Location').fill('rack 4');
    await page.getByRole('button', { name: 'Create region' }).click();
    await page.locator('#region-id[aria-invalid="true"]').waitFor();
    await page.getByLabel('Region id').fill('acme-web-dc');
    await page.getByRole('button', { name: 'Create region' }).click();
    const region = page.getByRole('region', { name: 'Region acme-web-dc' });
    await region.getByText('No host has joined yet.').waitFor();
    await page.getByRole('button', { name: 'Join a host to acme-web-dc' }).click();
    const command = await page.getByLabel('Join command').inputValue();
    assert.match(command, /^cell-agent --dir \S+ join --token tjt_[0-9a-f_]+$/);
    await shot('self-hosted');

    // Another account, in a browser of its own: not in its regions, not in its region picker.
    const other = { account_name: 'globex-web', email: 'owner@globex-web.test', password: PASSWORD };
    const signup = await fetch(`${BASE}/api/v1/signup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(other),
    });
    assert.equal(signup.status, 201);
    const globex = await browser.newContext({ baseURL: BASE, viewport: { width: 1280, height: 800 } });
    const theirs = await globex.newPage();
    await theirs.goto('/console/login');
    await theirs.getByLabel('Email', { exact: true }).fill(other.email);
    await theirs.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await theirs.getByRole('button', { name: 'Log in' }).click();
    await theirs.getByRole('heading', { name: 'Namespaces', level: 1 }).waitFor();
    await theirs.goto('/console/self-hosted');
    await theirs.getByText('No self-hosted regions yet.').waitFor();
    await theirs.goto('/console/namespaces/new');
    const picker = theirs.getByLabel('Region');
    await picker.locator('option:not([value=""])').first().waitFor({ state: 'attached' });
    const options = await picker.locator('option').allTextContents();
    assert.ok(options.length > 0 && !options.some((o) => o.includes('acme-web-dc')), String(options));
    await globex.close();
  });

  await run('a platform admin rolls a release out, pausing and resuming it', async () => {
    await page.goto('/console/admin/rollouts');
    await heading('Platform admin').waitFor();
    await page.getByLabel('Admin token').fill('tsk_not_the_admin_token');
    await page.getByRole('button', { name: 'Use token' }).click();
    await page.getByText('This is not a platform-admin token').waitFor();
    await page.getByLabel('Admin token').fill(ADMIN_TOKEN);
    await page.getByRole('button', { name: 'Use token' }).click();
    await heading('Rollouts').waitFor();
    await page.getByLabel('Release').selectOption('r1');
    await page.getByRole('button', { name: 'Start rollout' }).click();
    await heading('Rollout of r1').waitFor();
    await page.getByRole('button', { name: 'Pause' }).click();
    await page.getByRole('button', { name: 'Resume' }).waitFor();
    const status = page.locator('.title-row .badge');
    await status.filter({ hasText: 'paused' }).waitFor();
    await shot('rollout');
    await page.getByRole('button', { name: 'Resume' }).click();
    await status.filter({ hasText: 'done' }).waitFor({ timeout: 120_000 });
    const batches = page.getByRole('table', { name: 'Batches of early' });
    await batches.getByText('passed').first().waitFor();
    await batches.locator('.gate.pass').filter({ hasText: 'runtime_healthy' }).first().waitFor();
    const list = await fetch(`${BASE}/api/v1/admin/rollouts`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    }).then((r) => r.json());
    assert.equal(list.items[0].status, 'done');
    await page.getByRole('link', { name: 'All rollouts' }).click();
    await page.getByRole('table', { name: 'Rollouts' }).getByRole('link', { name: 'r1' }).waitFor();
    await shot('rollouts');
  });

  await run('a platform admin drains a cell from the Migrations page', async () => {
    await page.getByRole('link', { name: 'Migrations' }).click();
    await heading('Migrations').waitFor();
    await page.getByRole('textbox', { name: 'Cell', exact: true }).fill('no-such-cell');
    await page.getByRole('button', { name: 'Drain cell' }).click();
    await page.locator('.form-alert').filter({ hasText: /not found/i }).waitFor();
    await page.getByRole('textbox', { name: 'Cell', exact: true }).fill('local-east-1');
    await page.getByRole('button', { name: 'Drain cell' }).click();
    await page.getByText(/Draining local-east-1: operation/).waitFor();
    const cell = await fetch(`${BASE}/api/v1/admin/cells/local-east-1`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    }).then((r) => r.json());
    assert.equal(cell.status, 'draining');
    await shot('migrations');
  });

  assert.deepEqual(consoleErrors.filter((e) => !/status of 4\d\d/.test(e)), [], 'no script errors');
} catch (e) {
  console.error(`FAILED at: ${step}`);
  await shot('failure').catch(() => {});
  console.error(e);
  process.exitCode = 1;
} finally {
  await browser.close();
}
