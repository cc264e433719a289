//! Authentication (API keys, session cookies, the platform-admin token) and per-caller rate limits.
//!
//! The `authenticate` middleware resolves the caller once per request and stores a
//! [`RequestCtx`]; handlers take [`Caller`] (anyone authenticated) or [`Member`] (a user or
//! service account of an account) as extractors and decide with `tessera_domain::authorize`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::{HeaderMap, header, request::Parts};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use subtle_eq::ct_eq;
use tessera_api::{ActorKind, CSRF_HEADER, NamespaceRole, Role, SESSION_COOKIE};
use tessera_domain::credentials::{csrf_token, digest, verify_digest};
use tessera_domain::{Action, ApiKeyToken, NamespaceAction, authorize, authorize_namespace};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::state::SharedState;

/// Who is calling.
#[derive(Debug, Clone, PartialEq)]
pub enum Principal {
    /// A user, through an API key or a console session.
    User {
        account_id: Uuid,
        user_id: Uuid,
        email: String,
        role: Role,
        api_key_id: Option<Uuid>,
        session_digest: Option<String>,
    },
    ServiceAccount {
        account_id: Uuid,
        id: Uuid,
        name: String,
        role: Role,
        /// Access granted to single namespaces, on top of `role`.
        namespace_access: BTreeMap<String, NamespaceRole>,
        api_key_id: Uuid,
    },
    /// The holder of `<data-dir>/admin-token`.
    PlatformAdmin,
}

impl Principal {
    /// The account it acts in; `None` for the platform admin.
    pub fn account_id(&self) -> Option<Uuid> {
        match self {
            Principal::User { account_id, .. } | Principal::ServiceAccount { account_id, .. } => {
                Some(*account_id)
            }
            Principal::PlatformAdmin => None,
        }
    }

    /// Key for rate limiting and idempotency scoping: the credential, not the person.
    pub fn scope(&self) -> String {
        match self {
            Principal::User {
                api_key_id: Some(k),
                ..
            }
            | Principal::ServiceAccount { api_key_id: k, .. } => {
                format!("key:{k}")
            }
            Principal::User { user_id, .. } => format!("user:{user_id}"),
            Principal::PlatformAdmin => "platform-admin".into(),
        }
    }

    pub fn actor(&self) -> (ActorKind, Option<Uuid>, Option<String>, Option<Uuid>) {
        match self {
            Principal::User {
                user_id,
                email,
                api_key_id,
                ..
            } => (
                ActorKind::User,
                Some(*user_id),
                Some(email.clone()),
                *api_key_id,
            ),
            Principal::ServiceAccount {
                id,
                name,
                api_key_id,
                ..
            } => (
                ActorKind::ServiceAccount,
                Some(*id),
                Some(name.clone()),
                Some(*api_key_id),
            ),
            Principal::PlatformAdmin => (ActorKind::PlatformAdmin, None, None, None),
        }
    }
}

/// What the middleware learned about the request.
#[derive(Debug, Clone)]
pub struct RequestCtx {
    pub principal: Option<Principal>,
    pub source_ip: Option<String>,
}

/// Resolves the caller, applies its rate limit and records a [`RequestCtx`].
pub async fn authenticate(State(st): State<SharedState>, mut req: Request, next: Next) -> Response {
    let source_ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    // An address that keeps presenting credentials that are not accepted is refused before
    // any look-up: a flood of random keys costs no database read past its burst.
    let failures_key = failures_key(source_ip.as_deref());
    let presents_credentials = req.headers().contains_key(header::AUTHORIZATION)
        || session_cookie(req.headers()).is_some();
    if presents_credentials && let Err(e) = check_failures(&st, &failures_key) {
        return e.into_response();
    }
    let principal = match resolve(&st, req.headers()).await {
        Ok(Resolved::Accepted(p)) => Some(p),
        Ok(Resolved::Anonymous) => None,
        Ok(Resolved::StaleSession) => {
            auth_failed(&st, &failures_key);
            None
        }
        Err(e) => {
            if e.code == tessera_api::ErrorCode::Unauthenticated {
                auth_failed(&st, &failures_key);
            }
            return e.into_response();
        }
    };
    if !req.method().is_safe()
        && let Err(e) = check_browser_write(req.headers(), principal.as_ref())
    {
        st.metrics.csrf_refused.inc();
        return e.into_response();
    }
    let rate_key = match &principal {
        Some(p) => p.scope(),
        None => format!("ip:{}", source_ip.as_deref().unwrap_or("unknown")),
    };
    if let Err(wait) = st.limiter.check(&rate_key, Instant::now()) {
        return too_many(&st, wait).into_response();
    }
    req.extensions_mut().insert(RequestCtx {
        principal,
        source_ip,
    });
    next.run(req).await
}

/// 429, to retry after `wait` (counted).
fn too_many(st: &SharedState, wait: std::time::Duration) -> ApiError {
    st.metrics.rate_limited.inc();
    ApiError::rate_limited(wait.as_secs_f64().ceil().max(1.0) as u64)
}

/// The key of an address's failed-authentication budget.
pub fn failures_key(source_ip: Option<&str>) -> String {
    format!("ip:{}", source_ip.unwrap_or("unknown"))
}

/// 429 while the address has spent its failed-authentication budget.
pub fn check_failures(st: &SharedState, failures_key: &str) -> ApiResult<()> {
    match st.auth_failures.exhausted(failures_key, Instant::now()) {
        Some(wait) => Err(too_many(st, wait)),
        None => Ok(()),
    }
}

/// Counts a failed authentication against the address.
pub fn auth_failed(st: &SharedState, failures_key: &str) {
    st.metrics.auth_failures.inc();
    let _ = st.auth_failures.check(failures_key, Instant::now());
}

/// Who a request's credentials name.
enum Resolved {
    Accepted(Principal),
    /// No credentials at all.
    Anonymous,
    /// A session cookie that names no live session: anonymous, and a failed authentication.
    StaleSession,
}

/// Cross-site request forgery defence for state-changing requests. A browser names the page's
/// origin in `Origin`: it must be this server's. A request that rides on the console's session
/// cookie must also carry the session's CSRF token, which only a page of this origin can have
/// read (from `GET /session`). API-key callers send neither cookie nor token and are unaffected.
fn check_browser_write(headers: &HeaderMap, principal: Option<&Principal>) -> ApiResult<()> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .map(|(_, h)| h.trim_end_matches('/'));
        if host.is_none() || origin_host != host {
            return Err(ApiError::forbidden(
                "cross-origin request refused: the Origin header is not this server",
            ));
        }
    }
    let from_session = matches!(
        principal,
        Some(Principal::User {
            session_digest: Some(_),
            ..
        })
    );
    if from_session {
        let expected = session_cookie(headers).map(csrf_token).unwrap_or_default();
        let sent = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if sent.is_empty() || !ct_eq(sent, &expected) {
            return Err(ApiError::forbidden(
                "missing or wrong X-CSRF-Token: a console session must send the csrf_token of GET /api/v1/session",
            )
            .with_details(serde_json::json!({ "reason": "csrf" })));
        }
    }
    Ok(())
}

async fn resolve(st: &SharedState, headers: &HeaderMap) -> ApiResult<Resolved> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::unauthenticated("Authorization must be 'Bearer <api-key>'"))?;
        return resolve_bearer(st, token).await.map(Resolved::Accepted);
    }
    let Some(session) = session_cookie(headers) else {
        return Ok(Resolved::Anonymous);
    };
    let session_digest = digest(session);
    st.metrics.auth_lookups.inc();
    let Some(s) = st.store.session(&session_digest, Utc::now()).await? else {
        // A stale cookie makes the caller anonymous; protected routes then answer 401.
        return Ok(Resolved::StaleSession);
    };
    let Some(user) = st.store.user_by_id(s.user_id).await? else {
        return Ok(Resolved::StaleSession);
    };
    Ok(Resolved::Accepted(Principal::User {
        account_id: user.account_id,
        user_id: user.id,
        role: parse_role(&user.role)?,
        email: user.email,
        api_key_id: None,
        session_digest: Some(session_digest),
    }))
}

async fn resolve_bearer(st: &SharedState, token: &str) -> ApiResult<Principal> {
    if ct_eq(&digest(token), &st.admin_token_digest) {
        return Ok(Principal::PlatformAdmin);
    }
    let parsed =
        ApiKeyToken::parse(token).ok_or_else(|| ApiError::unauthenticated("malformed API key"))?;
    let unknown = || ApiError::unauthenticated("unknown API key");
    st.metrics.auth_lookups.inc();
    let key = st
        .store
        .api_key_by_id(parsed.key_id)
        .await?
        .ok_or_else(unknown)?;
    if !verify_digest(&parsed.secret, &key.secret_digest) {
        return Err(unknown());
    }
    if key.revoked_at.is_some() {
        return Err(ApiError::unauthenticated("API key has been revoked"));
    }
    if key.expires_at <= Utc::now() {
        return Err(ApiError::unauthenticated("API key has expired"));
    }
    if let Some(user_id) = key.user_id {
        let user = st
            .store
            .user_by_id(user_id)
            .await?
            .ok_or_else(|| ApiError::unauthenticated("the API key's user no longer exists"))?;
        return Ok(Principal::User {
            account_id: user.account_id,
            user_id,
            role: parse_role(&user.role)?,
            email: user.email,
            api_key_id: Some(key.id),
            session_digest: None,
        });
    }
    let sa_id = key.service_account_id.ok_or_else(unknown)?;
    let sa = st
        .store
        .service_account_by_id(sa_id)
        .await?
        .ok_or_else(|| {
            ApiError::unauthenticated("the API key's service account no longer exists")
        })?;
    let namespace_access = serde_json::from_value(sa.namespace_access).map_err(|e| {
        ApiError::internal(format!(
            "stored namespace_access of service account {sa_id}: {e}"
        ))
    })?;
    Ok(Principal::ServiceAccount {
        account_id: sa.account_id,
        id: sa.id,
        role: parse_role(&sa.role)?,
        namespace_access,
        name: sa.name,
        api_key_id: key.id,
    })
}

pub fn parse_role(s: &str) -> ApiResult<Role> {
    Role::parse(s).ok_or_else(|| ApiError::internal(format!("stored role {s:?} is unknown")))
}

pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v)
}

mod subtle_eq {
    use subtle::ConstantTimeEq;

    pub fn ct_eq(a: &str, b: &str) -> bool {
        a.as_bytes().ct_eq(b.as_bytes()).into()
    }
}

/// Any authenticated caller, with the request's source address.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub source_ip: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ctx = parts
            .extensions
            .get::<RequestCtx>()
            .ok_or_else(|| ApiError::internal("authenticate middleware missing"))?;
        let principal = ctx.principal.clone().ok_or_else(|| {
            ApiError::unauthenticated(
                "missing credentials: send 'Authorization: Bearer <api-key>' or log in",
            )
        })?;
        Ok(Caller {
            principal,
            source_ip: ctx.source_ip.clone(),
        })
    }
}

/// A user or service account acting inside its own account.
#[derive(Debug, Clone)]
pub struct Member {
    pub account_id: Uuid,
    pub role: Role,
    pub caller: Caller,
}

impl Member {
    pub fn authorize(&self, action: Action) -> ApiResult<()> {
        authorize(self.role, action).map_err(ApiError::from)
    }

    /// Authorises an action on one namespace: the role, plus what a service account was
    /// granted on that namespace.
    pub fn authorize_namespace(&self, namespace: &str, action: NamespaceAction) -> ApiResult<()> {
        let granted = match &self.caller.principal {
            Principal::ServiceAccount {
                namespace_access, ..
            } => namespace_access.get(namespace).copied(),
            _ => None,
        };
        authorize_namespace(self.role, granted, namespace, action).map_err(ApiError::from)
    }

    /// The user id when the caller is a user.
    pub fn user_id(&self) -> Option<Uuid> {
        match &self.caller.principal {
            Principal::User { user_id, .. } => Some(*user_id),
            _ => None,
        }
    }

    /// The id of the user or service account acting.
    pub fn principal_id(&self) -> Uuid {
        match &self.caller.principal {
            Principal::User { user_id, .. } => *user_id,
            Principal::ServiceAccount { id, .. } => *id,
            Principal::PlatformAdmin => Uuid::nil(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Member {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &S) -> Result<Self, Self::Rejection> {
        Member::try_from(Caller::from_request_parts(parts, s).await?)
    }
}

impl TryFrom<Caller> for Member {
    type Error = ApiError;

    fn try_from(caller: Caller) -> Result<Self, Self::Error> {
        match &caller.principal {
            Principal::User {
                account_id, role, ..
            }
            | Principal::ServiceAccount {
                account_id, role, ..
            } => Ok(Member {
                account_id: *account_id,
                role: *role,
                caller,
            }),
            Principal::PlatformAdmin => Err(ApiError::forbidden(
                "the platform-admin token acts through /api/v1/admin routes, not as an account member",
            )),
        }
    }
}

/// The platform operator.
#[derive(Debug, Clone)]
pub struct PlatformAdmin(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for PlatformAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &S) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, s).await?;
        if caller.principal == Principal::PlatformAdmin {
            Ok(PlatformAdmin(caller))
        } else {
            Err(ApiError::forbidden(
                "this route needs the platform-admin token",
            ))
        }
    }
}
