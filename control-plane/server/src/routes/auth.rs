//! Sign-up, login, logout and accepting invitations.

use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::json;
use tessera_api::{
    AcceptInviteRequest, ErrorBody, IssuedKey, LoginRequest, LoginResponse, SESSION_COOKIE,
    Session, SignupRequest, SignupResponse,
};
use tessera_domain::credentials::csrf_token;
use tessera_domain::{ApiKeyToken, SecretToken, validate};
use tessera_store::NewOperation;
use tessera_workflows::{EngineError, SignupInput};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::auth::{Member, Principal, RequestCtx};
use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::json::Json;
use crate::passwords;
use crate::state::SharedState;

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(signup))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(session))
        .routes(routes!(accept_invite))
}

/// How long the API waits for the sign-up workflow before answering 202 with the operation.
const SIGNUP_WAIT: Duration = Duration::from_secs(30);
/// Lifetime of the first API key.
const FIRST_KEY_DAYS: i64 = 90;

/// Create an account with its owner and first API key (runs as a workflow).
#[utoipa::path(post, path = "/signup", tag = "auth", request_body = SignupRequest,
    responses(
        (status = 201, body = SignupResponse, description = "account created; the token is shown once"),
        (status = 202, description = "still running: `{operation, api_key}`; the key works once the operation is fulfilled"),
        (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn signup(
    State(st): State<SharedState>,
    Extension(ctx): Extension<RequestCtx>,
    Json(req): Json<SignupRequest>,
) -> ApiResult<Response> {
    validate::account_name(&req.account_name)?;
    let email = validate::email(&req.email)?;
    validate::password(&req.password, &email)?;
    if st.store.account_by_name(&req.account_name).await?.is_some() {
        return Err(ApiError::already_exists(format!(
            "account {:?} already exists",
            req.account_name
        ))
        .with_details(json!({ "field": "account_name" })));
    }
    if st.store.user_by_email(&email).await?.is_some() {
        return Err(
            ApiError::already_exists("a user with this email already exists")
                .with_details(json!({ "field": "email" })),
        );
    }
    let engine = st.engine()?;
    let password_hash = passwords::hash(req.password).await?;

    let now = Utc::now();
    let operation_id = Uuid::now_v7();
    let account_id = Uuid::now_v7();
    let token = ApiKeyToken::generate(Uuid::now_v7());
    let input = SignupInput {
        operation_id,
        account_id,
        account_name: req.account_name,
        user_id: Uuid::now_v7(),
        email,
        password_hash,
        api_key_id: token.key_id,
        api_key_digest: token.secret_digest(),
        api_key_expires_at: now + chrono::Duration::days(FIRST_KEY_DAYS),
        source_ip: ctx.source_ip.clone(),
        requested_at: now,
    };
    st.store
        .create_operation(NewOperation {
            id: operation_id,
            account_id: Some(account_id),
            kind: "signup".into(),
            resource_kind: "account".into(),
            resource_id: account_id.to_string(),
            workflow_id: tessera_workflows::signup::workflow_id(operation_id),
            created_at: now,
        })
        .await?;
    engine
        .start_signup(input.clone())
        .await
        .map_err(engine_error)?;

    let issued = IssuedKey {
        id: token.key_id,
        token: token.expose(),
    };
    match engine.signup_result(operation_id, SIGNUP_WAIT).await {
        Ok(Some(_)) => {
            st.metrics.signups.inc();
            let account = st.store.account(account_id).await?;
            let usage = st.store.account_usage(account_id).await?;
            let user = st.store.user(account_id, input.user_id).await?;
            let op = st.store.operation(operation_id).await?;
            let body = SignupResponse {
                account: convert::account(account, usage),
                user: convert::user(user)?,
                api_key: issued,
                operation: convert::operation(op),
            };
            Ok((StatusCode::CREATED, Json(body)).into_response())
        }
        Ok(None) => {
            let op = st.store.operation(operation_id).await?;
            let body = json!({ "operation": convert::operation(op), "api_key": issued });
            Ok((StatusCode::ACCEPTED, Json(body)).into_response())
        }
        Err(EngineError::WorkflowFailed(_)) => {
            let op = st.store.operation(operation_id).await?;
            Err(match op.error_code.as_deref() {
                Some("already_exists") => {
                    ApiError::already_exists(op.error_message.unwrap_or_default())
                }
                _ => {
                    ApiError::internal(op.error_message.unwrap_or_else(|| "sign-up failed".into()))
                }
            })
        }
        Err(e) => Err(engine_error(e)),
    }
}

fn engine_error(e: EngineError) -> ApiError {
    if e.is_retryable() {
        tracing::warn!(error = %e, "workflow engine unavailable");
        ApiError::unavailable("the workflow engine is unavailable; retry shortly")
    } else {
        ApiError::internal(e)
    }
}

/// The console's session cookie; `Secure` (sent over https only) when users reach the
/// control plane over https (`TESSERA_PUBLIC_URL`).
fn session_cookie(st: &SharedState, value: &str, max_age_secs: i64) -> HeaderValue {
    let secure = if st.config.serves_https() {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}"
    ))
    .expect("cookie is ASCII")
}

/// Log in with email and password: sets the session cookie.
#[utoipa::path(post, path = "/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn login(
    State(st): State<SharedState>,
    Extension(ctx): Extension<RequestCtx>,
    Json(req): Json<LoginRequest>,
) -> ApiResult<Response> {
    let email = validate::email(&req.email)?;
    if req.password.is_empty() {
        return Err(ApiError::invalid("password", "is required"));
    }
    // Wrong passwords count against the address like unknown API keys do.
    let failures_key = crate::auth::failures_key(ctx.source_ip.as_deref());
    crate::auth::check_failures(&st, &failures_key)?;
    let bad = || {
        crate::auth::auth_failed(&st, &failures_key);
        ApiError::unauthenticated("invalid email or password")
    };
    let user = st.store.user_by_email(&email).await?;
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let (Some(user), Some(hash)) = (user, hash) else {
        // As slow as a wrong password: the timing tells nothing of which emails exist.
        passwords::verify_nothing(req.password).await?;
        return Err(bad());
    };
    if !passwords::verify(req.password, hash).await? {
        return Err(bad());
    }
    let token = SecretToken::generate("tss_");
    let ttl = chrono::Duration::hours(st.config.session_ttl_hours);
    st.store
        .create_session(token.digest(), user.id, user.account_id, Utc::now() + ttl)
        .await?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::SET_COOKIE,
        session_cookie(&st, &token.0, ttl.num_seconds()),
    );
    Ok((
        headers,
        Json(LoginResponse {
            user: convert::user(user)?,
            csrf_token: Some(csrf_token(&token.0)),
        }),
    )
        .into_response())
}

/// End the console session and clear its cookie.
#[utoipa::path(post, path = "/logout", tag = "auth", responses((status = 204)))]
async fn logout(
    State(st): State<SharedState>,
    Extension(ctx): Extension<RequestCtx>,
) -> ApiResult<Response> {
    if let Some(Principal::User {
        session_digest: Some(d),
        ..
    }) = &ctx.principal
    {
        st.store.delete_session(d).await?;
    }
    let mut headers = HeaderMap::new();
    headers.insert(header::SET_COOKIE, session_cookie(&st, "", 0));
    Ok((StatusCode::NO_CONTENT, headers).into_response())
}

/// Who is calling, with the CSRF token a console session sends on state-changing requests.
#[utoipa::path(get, path = "/session", tag = "auth", security(("api_key" = [])),
    responses((status = 200, body = Session), (status = 401, body = ErrorBody)))]
async fn session(
    State(st): State<SharedState>,
    m: Member,
    headers: HeaderMap,
) -> ApiResult<Json<Session>> {
    let Some(user_id) = m.user_id() else {
        return Err(ApiError::forbidden(
            "a service account has no console session",
        ));
    };
    let user = st.store.user(m.account_id, user_id).await?;
    let account = st.store.account(m.account_id).await?;
    let usage = st.store.account_usage(m.account_id).await?;
    let from_session = matches!(
        m.caller.principal,
        Principal::User {
            session_digest: Some(_),
            ..
        }
    );
    Ok(Json(Session {
        user: convert::user(user)?,
        account: convert::account(account, usage),
        csrf_token: from_session
            .then(|| crate::auth::session_cookie(&headers).map(csrf_token))
            .flatten(),
    }))
}

/// Accept an invitation: set a password and activate the invited user.
#[utoipa::path(post, path = "/invitations/accept", tag = "auth", request_body = AcceptInviteRequest,
    responses((status = 200, body = LoginResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn accept_invite(
    State(st): State<SharedState>,
    Extension(ctx): Extension<RequestCtx>,
    Json(req): Json<AcceptInviteRequest>,
) -> ApiResult<Json<LoginResponse>> {
    let user = st
        .store
        .user_by_invite(&SecretToken(req.token).digest(), Utc::now())
        .await?
        .ok_or_else(|| {
            ApiError::not_found("invitation").with_details(json!({
                "reason": "unknown, used, or older than 7 days: ask for a new invitation"
            }))
        })?;
    validate::password(&req.password, &user.email)?;
    let hash = passwords::hash(req.password).await?;
    let user = st.store.activate_user(user.id, hash).await?;
    let caller = crate::auth::Caller {
        principal: Principal::User {
            account_id: user.account_id,
            user_id: user.id,
            email: user.email.clone(),
            role: crate::auth::parse_role(&user.role)?,
            api_key_id: None,
            session_digest: None,
        },
        source_ip: ctx.source_ip,
    };
    st.audit(
        &caller,
        Some(user.account_id),
        "user.accept_invite",
        format!("user/{}", user.id),
        json!({}),
    )
    .await?;
    Ok(Json(LoginResponse {
        user: convert::user(user)?,
        csrf_token: None,
    }))
}
