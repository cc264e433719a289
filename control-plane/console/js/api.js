// Talking to /api/v1: JSON in and out, the CSRF header on mutating calls, errors as ApiError,
// and following asynchronous operations.

const BASE = '/api/v1';
const MUTATING = new Set(['POST', 'PATCH', 'PUT', 'DELETE']);

// Kept in memory only: the session cookie is HttpOnly, and this token proves the page's origin.
let csrfToken = null;
let unauthorized = () => {};

/** An error answered by the API (`{error: {code, message, details}}`) or a network failure. */
export class ApiError extends Error {
  constructor(status, { code = 'unknown', message, details } = {}) {
    super(message || defaultMessage(status));
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details && typeof details === 'object' ? details : {};
  }

  /** The request field the error is about, if any. */
  get field() { return this.details.field; }

  /** The short reason for a field error ("must be at least 10 characters"). */
  get reason() { return this.details.reason; }
}

function defaultMessage(status) {
  if (status >= 500) return `The server had a problem (HTTP ${status}). Try again shortly.`;
  return `The request failed (HTTP ${status}).`;
}

const networkError = () => new ApiError(0, { code: 'network', message: 'Could not reach the server' });

export function setCsrfToken(token) {
  csrfToken = token || null;
}

/** Called with the ApiError of every 401 answer (the app decides whether that ends the session). */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

/**
 * One API call. Resolves with the parsed body (null for 204); rejects with ApiError.
 * With `token`, the call authenticates as that bearer token instead of the session: no cookie,
 * no CSRF header, and a 401 is the caller's to handle (it does not end the session).
 */
export async function request(method, path, body, { token } = {}) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: token ? 'omit' : 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (token) headers.Authorization = `Bearer ${token}`;
  else if (MUTATING.has(method) && csrfToken) headers['X-CSRF-Token'] = csrfToken;

  let response;
  let data;
  try {
    response = await fetch(BASE + path, init);
    data = await readBody(response);
  } catch {
    throw networkError();
  }
  if (response.ok) return data;
  const error = new ApiError(response.status, (data && data.error) || {});
  if (response.status === 401 && !token) unauthorized(error);
  throw error;
}

async function readBody(response) {
  if (response.status === 204) return null;
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

export const get = (path, options) => request('GET', path, undefined, options);
export const post = (path, body, options) => request('POST', path, body, options);
export const patch = (path, body) => request('PATCH', path, body);
export const del = (path) => request('DELETE', path);

/** `path` with a query string built from the non-empty `params`. */
export function withQuery(path, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') query.set(key, String(value));
  }
  const qs = query.toString();
  return qs ? `${path}?${qs}` : path;
}

/** One page of a paged list: `{items, next_page_token}`. `token` as for `request`. */
export function getPage(path, { pageSize = 50, pageToken, token } = {}) {
  return get(withQuery(path, { page_size: pageSize, page_token: pageToken }), { token });
}

/** Every item of a paged list (bounded, for the small per-account lists). */
export async function getAll(path, { pageSize = 100, maxPages = 20, token } = {}) {
  const items = [];
  let pageToken;
  for (let i = 0; i < maxPages; i += 1) {
    const page = await getPage(path, { pageSize, pageToken, token });
    items.push(...(page.items || []));
    pageToken = page.next_page_token;
    if (!pageToken) break;
  }
  return items;
}

/** Encode one path segment (namespace names and ids come from users and URLs). */
export const seg = (value) => encodeURIComponent(value);

// ---------------------------------------------------------------- waiting

/** Resolves after `ms`, or at once when `signal` aborts. */
export function delay(ms, signal) {
  return new Promise((resolve) => {
    if (signal && signal.aborted) { resolve(); return; }
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done);
  });
}

// Once the user has left the page that started a poll, nothing should happen any more (no
// navigation, no alert): the poll's promise then simply never settles.
const NEVER = new Promise(() => {});

const TERMINAL = new Set(['fulfilled', 'failed', 'cancelled']);
const MAX_TRANSIENT_FAILURES = 10;

/**
 * Follow an operation until it ends. `operation` is an Operation (as answered by a 202) or its
 * id. `onUpdate(op)` is called with every state seen. Resolves with the fulfilled Operation;
 * rejects with an ApiError carrying the operation's error when it fails or is cancelled.
 */
export async function pollOperation(operation, onUpdate = () => {}, { signal, interval = 1000 } = {}) {
  let op = typeof operation === 'object' ? operation : null;
  const id = op ? op.id : operation;
  let failures = 0;
  for (;;) {
    if (op) {
      onUpdate(op);
      if (TERMINAL.has(op.state)) return finish(op);
      await delay(interval, signal);
    }
    if (signal && signal.aborted) return NEVER;
    try {
      op = await get(`/operations/${seg(id)}`);
      failures = 0;
    } catch (err) {
      // A network blip or a restarting server should not fail a long provisioning run.
      const transient = err.code === 'network' || err.status >= 500;
      failures += 1;
      if (!transient || failures > MAX_TRANSIENT_FAILURES) throw err;
      if (!op) await delay(interval, signal);
    }
    if (signal && signal.aborted) return NEVER;
  }
}

function finish(op) {
  if (op.state === 'fulfilled') return op;
  const fallback = op.state === 'cancelled' ? 'The operation was cancelled.' : 'The operation failed.';
  const error = new ApiError(0, {
    code: (op.error && op.error.code) || op.state,
    message: (op.error && op.error.message) || fallback,
    details: op.error && op.error.details,
  });
  error.operation = op;
  throw error;
}
