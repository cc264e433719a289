//! `Idempotency-Key`: the same key with the same request within 24 hours gets the first answer.
//!
//! Keys are scoped to the credential that sent them. Only successful answers are remembered (a
//! client fixes a rejected request and retries with the same key). Bodies are sealed with the
//! master key because some first answers carry a token that is shown once.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use sha2::{Digest, Sha256};
use tessera_api::IDEMPOTENCY_KEY_HEADER;
use tessera_store::StoredResponse;

use crate::auth::RequestCtx;
use crate::error::ApiError;
use crate::state::SharedState;

pub const REPLAYED_HEADER: &str = "idempotent-replayed";

pub async fn idempotency(State(st): State<SharedState>, req: Request, next: Next) -> Response {
    if !matches!(
        *req.method(),
        Method::POST | Method::PATCH | Method::PUT | Method::DELETE
    ) {
        return next.run(req).await;
    }
    let Some(raw_key) = req.headers().get(IDEMPOTENCY_KEY_HEADER) else {
        return next.run(req).await;
    };
    let key = match raw_key.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= 255 && k.chars().all(|c| c.is_ascii_graphic()) => {
            k.to_string()
        }
        _ => {
            return ApiError::invalid(
                "Idempotency-Key",
                "must be 1 to 255 visible ASCII characters",
            )
            .into_response();
        }
    };
    let scope = req
        .extensions()
        .get::<RequestCtx>()
        .and_then(|c| c.principal.as_ref().map(|p| p.scope()))
        .unwrap_or_else(|| "anonymous".into());

    let (parts, body) = req.into_parts();
    let limit = st.config.max_body_bytes;
    let Ok(bytes) = to_bytes(body, limit).await else {
        return ApiError::too_large(limit).into_response();
    };
    let mut h = Sha256::new();
    h.update(parts.method.as_str());
    h.update([0]);
    h.update(parts.uri.path());
    h.update([0]);
    h.update(&bytes);
    let request_digest = hex::encode(h.finalize());

    let now = Utc::now();
    match st.store.idempotent_response(&scope, &key, now).await {
        Ok(Some(stored)) => return replay(&st, &bound_to(&scope, &key), stored, &request_digest),
        Ok(None) => {}
        Err(e) => return ApiError::from(e).into_response(),
    }

    let slot = (scope.clone(), key.clone());
    if !st
        .idempotency_inflight
        .lock()
        .expect("lock")
        .insert(slot.clone())
    {
        return ApiError::precondition("a request with this Idempotency-Key is still in progress")
            .into_response();
    }
    let resp = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let out = remember(&st, &scope, &key, request_digest, resp).await;
    st.idempotency_inflight.lock().expect("lock").remove(&slot);
    out
}

/// What a stored answer is sealed for: the caller's scope and its key, so an answer copied to
/// another caller's row does not open.
fn bound_to(scope: &str, key: &str) -> String {
    format!("idempotency/{scope}/{key}")
}

fn replay(
    st: &SharedState,
    bound_to: &str,
    stored: StoredResponse,
    request_digest: &str,
) -> Response {
    if stored.request_digest != request_digest {
        return ApiError::precondition("this Idempotency-Key was used with a different request")
            .into_response();
    }
    let Some(body) = st.master_key.open(bound_to, &stored.sealed_body) else {
        return ApiError::internal("stored idempotent answer cannot be opened with the master key")
            .into_response();
    };
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut()
        .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    resp
}

async fn remember(
    st: &SharedState,
    scope: &str,
    key: &str,
    request_digest: String,
    resp: Response,
) -> Response {
    if !resp.status().is_success() {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let Ok(bytes) = to_bytes(body, 16 * 1024 * 1024).await else {
        return ApiError::internal("response body could not be buffered").into_response();
    };
    let stored = StoredResponse {
        request_digest,
        status: parts.status.as_u16(),
        sealed_body: st.master_key.seal(&bound_to(scope, key), &bytes),
    };
    if let Err(e) = st
        .store
        .remember_response(scope, key, stored, Utc::now())
        .await
    {
        tracing::warn!(error = %e, "could not remember idempotent answer");
    }
    Response::from_parts(parts, Body::from(bytes))
}
