// Boot, session, routing and the top bar.

import { get, post, setCsrfToken, onUnauthorized } from './api.js';
import { h, busy, errorText, notify } from './dom.js';
import * as auth from './views/auth.js';
import * as namespaces from './views/namespaces.js';
import * as account from './views/account.js';
import * as admin from './views/admin.js';
import * as selfhosted from './views/selfhosted.js';

const ROOT = '/console';
const HOME = `${ROOT}/namespaces`;
const LOGIN = `${ROOT}/login`;
// The platform-admin area: reached with the admin token, with or without a tenant session.
const ADMIN_ROOT = `${ROOT}/admin`;
const ADMIN_HOME = admin.ADMIN_HOME;

const routes = [
  { pattern: /^\/console\/login$/, view: auth.login, public: true, guestOnly: true },
  { pattern: /^\/console\/signup$/, view: auth.signup, public: true, guestOnly: true },
  { pattern: /^\/console\/accept-invite$/, view: auth.acceptInvite, public: true },
  { pattern: /^\/console\/namespaces$/, view: namespaces.list },
  { pattern: /^\/console\/namespaces\/new$/, view: namespaces.create },
  { pattern: /^\/console\/namespaces\/([^/]+)$/, view: namespaces.detail },
  { pattern: /^\/console\/api-keys$/, view: account.apiKeys },
  { pattern: /^\/console\/users$/, view: account.users },
  { pattern: /^\/console\/audit-log$/, view: account.auditLog },
  { pattern: /^\/console\/self-hosted$/, view: selfhosted.regions },
  { pattern: /^\/console\/admin\/rollouts$/, view: admin.rollouts, public: true, admin: true },
  { pattern: /^\/console\/admin\/rollouts\/([^/]+)$/, view: admin.rolloutDetail, public: true, admin: true },
  { pattern: /^\/console\/admin\/migrations$/, view: admin.migrations, public: true, admin: true },
];

const NAV = [
  [HOME, 'Namespaces'],
  [`${ROOT}/api-keys`, 'API keys'],
  [`${ROOT}/users`, 'Users'],
  [`${ROOT}/audit-log`, 'Audit log'],
  [`${ROOT}/self-hosted`, 'Self-hosted'],
];

const ADMIN_NAV = [
  [ADMIN_HOME, 'Rollouts'],
  [`${ADMIN_ROOT}/migrations`, 'Migrations'],
];

const ROLE_RANK = { owner: 0, admin: 1, developer: 2, read_only: 3 };

const main = document.getElementById('main');
const topbar = document.getElementById('topbar');

/** `{user, account, csrf_token}` while logged in, else null. */
let session = null;
/** Where a logged-out visitor was going; reached after logging in. */
let pendingPath = null;
/** Aborted when the user leaves the page, to stop that page's polling. */
let pageController = null;
let currentLocation = null;

// ---------------------------------------------------------------- session

async function loadSession() {
  const data = await get('/session');
  session = data;
  setCsrfToken(data.csrf_token);
  renderTopbar();
  return data;
}

function dropSession() {
  session = null;
  setCsrfToken(null);
  renderTopbar();
}

onUnauthorized(() => {
  // Only an expired session matters here; a wrong password on the login form is a form error.
  if (!session) return;
  dropSession();
  pendingPath = location.pathname + location.search;
  navigate(LOGIN, { replace: true });
});

async function logOut(event) {
  const restore = busy(event.currentTarget, 'Logging out…');
  try {
    await post('/logout');
  } catch (err) {
    if (err.status !== 401) {
      restore();
      notify(errorText(err), 'error');
      return;
    }
  }
  dropSession();
  pendingPath = null;
  navigate(LOGIN);
}

function roleAtLeast(min) {
  return Boolean(session) && ROLE_RANK[session.user.role] <= ROLE_RANK[min];
}

function forgetAdminToken() {
  admin.forgetToken();
  notify('Admin token forgotten');
  render();
}

// ---------------------------------------------------------------- top bar

const inAdminArea = (path) => path === ADMIN_ROOT || path.startsWith(`${ADMIN_ROOT}/`);

/** The top bar of the area the page is in: the tenant console, or the platform-admin pages. */
function renderTopbar() {
  const adminArea = inAdminArea(location.pathname);
  const home = adminArea ? ADMIN_HOME : session ? HOME : LOGIN;
  const brand = h('a', { class: 'brand', href: home },
    h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, h('span'), h('span'), h('span'), h('span')),
    'Tessera');
  const rest = adminArea ? adminTopbar() : tenantTopbar();
  topbar.replaceChildren(h('div', { class: 'topbar-inner' }, brand, rest));
  markCurrentNav(location.pathname);
}

function navList(label, links) {
  return h('nav', { 'aria-label': label, class: 'main-nav' },
    h('ul', {}, links.map(([href, text]) => h('li', {}, h('a', { href }, text)))));
}

function tenantTopbar() {
  if (!session) return [];
  const who = h('div', { class: 'who' },
    h('span', { class: 'who-account', title: 'Account' }, session.account.name),
    h('span', { class: 'who-email', title: 'Signed in as' }, session.user.email),
    h('button', { type: 'button', class: 'button button-ghost button-small', onclick: logOut }, 'Log out'));
  return [navList('Main', NAV), who];
}

function adminTopbar() {
  const tag = h('span', { class: 'area-tag' }, 'Platform admin');
  if (!admin.hasToken()) return [tag];
  const forget = h('button', { type: 'button', class: 'button button-ghost button-small', onclick: forgetAdminToken }, 'Forget token');
  return [tag, navList('Platform admin', ADMIN_NAV), h('div', { class: 'who' }, forget)];
}

function markCurrentNav(path) {
  for (const link of topbar.querySelectorAll('nav a')) {
    const href = link.getAttribute('href');
    if (path === href) link.setAttribute('aria-current', 'page');
    else if (path.startsWith(`${href}/`)) link.setAttribute('aria-current', 'true');
    else link.removeAttribute('aria-current');
  }
}

// ---------------------------------------------------------------- routing

function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  render();
}

function setTitle(title) {
  document.title = title ? `${title} · Tessera` : 'Tessera';
}

function match(path) {
  for (const route of routes) {
    const m = route.pattern.exec(path);
    if (!m) continue;
    try {
      return { route, params: m.slice(1).map(decodeURIComponent) };
    } catch {
      return null; // malformed %-escape: treat as an unknown page
    }
  }
  return null;
}

function notFound() {
  const [href, text] = inAdminArea(location.pathname) ? [ADMIN_HOME, 'Go to rollouts']
    : session ? [HOME, 'Go to namespaces'] : [LOGIN, 'Go to the login page'];
  return {
    title: 'Page not found',
    node: h('div', { class: 'narrow' },
      h('h1', {}, 'Page not found'),
      h('p', {}, 'There is nothing at this address.'),
      h('p', {}, h('a', { href }, text))),
  };
}

function render({ focus = true } = {}) {
  const path = location.pathname.replace(/\/+$/, '') || '/';
  if (path === ROOT) {
    navigate(session ? HOME : LOGIN, { replace: true });
    return;
  }
  if (path === ADMIN_ROOT) {
    navigate(ADMIN_HOME, { replace: true });
    return;
  }
  const found = match(path);
  // Unknown admin addresses get the admin area's "not found", not the tenant login.
  const open = found ? found.route.public : inAdminArea(path);
  if (!session && !open) {
    pendingPath = found ? location.pathname + location.search : null;
    navigate(LOGIN, { replace: true });
    return;
  }
  if (session && found && found.route.guestOnly) {
    navigate(HOME, { replace: true });
    return;
  }

  pageController?.abort();
  pageController = new AbortController();
  currentLocation = location.pathname + location.search;
  const ctx = {
    params: found ? found.params : [],
    query: new URLSearchParams(location.search),
    signal: pageController.signal,
    session,
    canWrite: roleAtLeast('developer'),
    isAdmin: roleAtLeast('admin'),
    isOwner: roleAtLeast('owner'),
    navigate,
    setTitle,
    startSession,
    /** Render the current address again (after the admin token was given or refused). */
    rerender: () => render(),
  };
  // Admin pages ask for the admin token first, at their own address.
  const view = found && found.route.admin && !admin.hasToken() ? admin.tokenPage : found?.route.view;
  const { title, node } = view ? view(ctx) : notFound();
  main.replaceChildren(node);
  setTitle(title);
  renderTopbar();
  if (focus) main.focus();
}

/**
 * After a successful POST /login: load the session, then go to `to`, else where the visitor was
 * heading, else home. `go: false` only loads the session.
 */
async function startSession({ go = true, to } = {}) {
  await loadSession();
  if (!go) return;
  const target = to || pendingPath || HOME;
  pendingPath = null;
  navigate(target);
}

function interceptLinks(event) {
  if (event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const link = event.target.closest('a[href]');
  if (!link || link.hasAttribute('download') || (link.target && link.target !== '_self')) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin) return;
  if (url.hash && url.pathname === location.pathname && url.search === location.search) {
    // In-page anchors (the skip link): move focus, keep the route.
    const target = document.getElementById(url.hash.slice(1));
    if (target) {
      event.preventDefault();
      target.focus();
    }
    return;
  }
  if (url.pathname !== ROOT && !url.pathname.startsWith(`${ROOT}/`)) return;
  if (url.pathname.startsWith(`${ROOT}/assets/`)) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
}

function onPopState() {
  if (location.pathname + location.search === currentLocation) return;
  render();
}

async function boot() {
  document.addEventListener('click', interceptLinks);
  window.addEventListener('popstate', onPopState);
  try {
    await loadSession();
  } catch (err) {
    if (err.status !== 401) notify(errorText(err), 'error');
    dropSession();
  }
  render({ focus: false });
}

boot();
