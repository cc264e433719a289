// Logged-out pages: log in, sign up, accept an invitation.

import { post, pollOperation, delay } from '../api.js';
import { h, fill, inputField, copyField, onSubmit, formAlert, formValue, alertBox } from '../dom.js';

const PASSWORD_HINT = 'At least 10 characters.';
// The sign-up workflow may still run when the API answers 202; give it a couple of minutes.
const SIGNUP_LOGIN_ATTEMPTS = 120;

/** A narrow centred card, for pages shown before anyone is signed in. */
export function authPage(...children) {
  return h('div', { class: 'auth-page' }, h('div', { class: 'card auth-card' }, children));
}

export function submitRow(label) {
  return h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'button button-block' }, label));
}

function credentials(form) {
  return { email: formValue(form, 'email').trim(), password: formValue(form, 'password') };
}

export function login(ctx) {
  const form = h('form', { class: 'stack' },
    inputField('Email', { name: 'email', type: 'email', id: 'login-email', autocomplete: 'username' }),
    inputField('Password', { name: 'password', type: 'password', id: 'login-password', autocomplete: 'current-password' }),
    submitRow('Log in'));
  onSubmit(form, async () => {
    await post('/login', credentials(form));
    await ctx.startSession();
  }, { busyLabel: 'Logging in…' });

  return {
    title: 'Log in',
    node: authPage(
      h('h1', {}, 'Log in'),
      form,
      h('p', { class: 'auth-switch' }, 'New to Tessera? ', h('a', { href: '/console/signup' }, 'Create an account'))),
  };
}

export function signup(ctx) {
  const form = h('form', { class: 'stack' },
    inputField('Account name', {
      name: 'account_name', id: 'signup-account', autocomplete: 'organization', spellcheck: 'false', autocapitalize: 'none',
    }, '3–63 lowercase letters, digits and hyphens, starting with a letter.'),
    inputField('Email', { name: 'email', type: 'email', id: 'signup-email', autocomplete: 'username' }),
    inputField('Password', { name: 'password', type: 'password', id: 'signup-password', autocomplete: 'new-password' }, PASSWORD_HINT),
    submitRow('Sign up'));
  const page = authPage(
    h('h1', {}, 'Create your account'),
    h('p', { class: 'lead' }, 'Managed Temporal namespaces, ready in minutes.'),
    form,
    h('p', { class: 'auth-switch' }, 'Already have an account? ', h('a', { href: '/console/login' }, 'Log in instead')));

  onSubmit(form, async () => {
    const creds = credentials(form);
    const created = await post('/signup', { account_name: formValue(form, 'account_name').trim(), ...creds });
    // The key exists now and is never shown again, so failing to log in must not hide it.
    let loggedIn = true;
    try {
      await waitForAccount(ctx, created.operation);
      await logInWhenReady(ctx, creds);
      await ctx.startSession({ go: false });
    } catch (err) {
      if (err.code !== 'network' && err.status !== 401 && err.code !== 'rate_limited') throw err;
      loggedIn = false;
    }
    if (!ctx.signal.aborted) showWelcome(ctx, page, created.api_key.token, loggedIn);
  }, { busyLabel: 'Creating your account…' });

  return { title: 'Create your account', node: page };
}

/** Follow a 202's sign-up operation; a failed sign-up throws its error. */
async function waitForAccount(ctx, operation) {
  if (!operation) return;
  try {
    await pollOperation(operation, undefined, { signal: ctx.signal });
  } catch (err) {
    // Operations may only be readable with a session, which we get once the account exists:
    // then logInWhenReady does the waiting.
    if (err.status !== 401) throw err;
  }
}

/** POST /login, retrying while the account is still being created (401) or we are throttled. */
async function logInWhenReady(ctx, creds) {
  for (let attempt = 1; ; attempt += 1) {
    try {
      await post('/login', creds);
      return;
    } catch (err) {
      const notYet = err.status === 401 || err.code === 'rate_limited';
      if (!notYet || attempt >= SIGNUP_LOGIN_ATTEMPTS) throw err;
    }
    await delay(1000, ctx.signal);
    if (ctx.signal.aborted) return;
  }
}

function showWelcome(ctx, page, token, loggedIn) {
  const heading = h('h1', { tabindex: '-1' }, 'Welcome to Tessera');
  const next = loggedIn ? '/console/namespaces' : '/console/login';
  fill(page.firstChild,
    heading,
    h('p', {}, 'Your first API key — copy it now, it is shown only once.'),
    copyField('API key token', token),
    h('p', { class: 'hint' }, 'Use it with the CLI, Terraform or the REST API as a bearer token.'),
    loggedIn ? null : alertBox('We could not log you in yet: your account may still be being set up. Keep this key, then log in.', 'info'),
    h('div', { class: 'form-actions' },
      h('button', { type: 'button', class: 'button button-block', onclick: () => ctx.navigate(next) }, 'Continue')));
  ctx.setTitle('Welcome to Tessera');
  heading.focus();
}

export function acceptInvite(ctx) {
  const token = ctx.query.get('token') || '';
  const form = h('form', { class: 'stack' },
    inputField('Password', { name: 'password', type: 'password', id: 'invite-password', autocomplete: 'new-password' }, PASSWORD_HINT),
    submitRow('Accept invitation'));
  onSubmit(form, async () => {
    const password = formValue(form, 'password');
    const { user } = await post('/invitations/accept', { token, password });
    await post('/login', { email: user.email, password });
    await ctx.startSession({ to: '/console/namespaces' });
  }, {
    busyLabel: 'Joining…',
    onError(err) {
      if (err.code !== 'not_found') return false;
      formAlert(form, 'This invitation is not valid any more: it was already used or withdrawn. Ask for a new one.');
      return true;
    },
  });

  return {
    title: 'Join your team',
    node: authPage(
      h('h1', {}, 'Join your team'),
      h('p', { class: 'lead' }, 'Choose a password to activate your Tessera account.'),
      token ? null : alertBox('This invitation link has no token. Open the full link you were sent.'),
      form),
  };
}
