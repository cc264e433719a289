//! The tenant web console: a small single-page app in plain ES modules, embedded in the binary.
//!
//! The console is one more client of the public REST API (same origin, session cookie, CSRF
//! token), so it needs no build step and no server-side rendering: every page path under
//! `/console/` answers the same `index.html`, and the app routes in the browser. Assets are
//! compiled in, so a deployed control plane can never serve a console of another version.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::error::ApiError;

/// The app's files, by their path under `/console/assets/`.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../console/style.css"),
    ),
    ("js/app.js", JS, include_str!("../../console/js/app.js")),
    ("js/api.js", JS, include_str!("../../console/js/api.js")),
    ("js/dom.js", JS, include_str!("../../console/js/dom.js")),
    (
        "js/views/auth.js",
        JS,
        include_str!("../../console/js/views/auth.js"),
    ),
    (
        "js/views/namespaces.js",
        JS,
        include_str!("../../console/js/views/namespaces.js"),
    ),
    (
        "js/views/account.js",
        JS,
        include_str!("../../console/js/views/account.js"),
    ),
    (
        "js/views/admin.js",
        JS,
        include_str!("../../console/js/views/admin.js"),
    ),
    (
        "js/views/selfhosted.js",
        JS,
        include_str!("../../console/js/views/selfhosted.js"),
    ),
];
const JS: &str = "text/javascript; charset=utf-8";
const INDEX: &str = include_str!("../../console/index.html");

/// Scripts, styles and API calls come from this origin only; nothing may frame the console.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// `/` and `/console/...`. Mounted outside the API's authentication and rate limits: the
/// files are public and the same for everyone; the API calls the app makes are not.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/console", get(index))
        .route("/console/", get(index))
        .route("/console/assets/{*path}", get(asset))
        .route("/console/{*page}", get(index))
}

async fn index() -> Response {
    with_headers(StatusCode::OK, "text/html; charset=utf-8", INDEX)
}

async fn asset(Path(path): Path<String>) -> Response {
    match ASSETS.iter().find(|(p, _, _)| *p == path) {
        Some((_, content_type, body)) => with_headers(StatusCode::OK, content_type, body),
        None => ApiError::not_found("console asset").into_response(),
    }
}

fn with_headers(status: StatusCode, content_type: &'static str, body: &'static str) -> Response {
    let mut res = (status, body).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    // Not content-hashed, so a browser revalidates instead of keeping an old app.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}
