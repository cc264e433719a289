//! API keys: create (token shown once), list, revoke (effective at once).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{Duration, Utc};
use serde_json::json;
use tessera_api::{ApiKey, CreateApiKeyRequest, CreateApiKeyResponse, ErrorBody, Page, PageQuery};
use tessera_domain::{Action, ApiKeyToken, validate};
use tessera_store::NewApiKey;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::auth::Member;
use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::json::{Json, Query, path_id};
use crate::routes::{page, page_params};
use crate::state::SharedState;

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(list_api_keys, create_api_key))
        .routes(routes!(revoke_api_key))
}

const DEFAULT_TTL_DAYS: i64 = 90;
const MAX_TTL_DAYS: i64 = 730;

/// API keys of the account (admins and owners) or the caller's own keys (everyone else).
#[utoipa::path(get, path = "/api-keys", tag = "api-keys", params(PageQuery), security(("api_key" = [])),
    responses((status = 200, body = Page<ApiKey>), (status = 401, body = ErrorBody)))]
async fn list_api_keys(
    State(st): State<SharedState>,
    m: Member,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<ApiKey>>> {
    m.authorize(Action::Read)?;
    let (after, size) = page_params(&q)?;
    let owner = match m.authorize(Action::ReadAllApiKeys) {
        Ok(()) => None,
        Err(_) => Some(m.principal_id()),
    };
    let keys = st
        .store
        .list_api_keys(m.account_id, owner, after, size)
        .await?;
    Ok(Json(page(keys, |k| Ok(convert::api_key(k)))?))
}

/// Create an API key for yourself or (admins) for a service account.
#[utoipa::path(post, path = "/api-keys", tag = "api-keys", request_body = CreateApiKeyRequest, security(("api_key" = [])),
    responses((status = 201, body = CreateApiKeyResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_api_key(
    State(st): State<SharedState>,
    m: Member,
    Json(req): Json<CreateApiKeyRequest>,
) -> ApiResult<(StatusCode, Json<CreateApiKeyResponse>)> {
    let now = Utc::now();
    let (user_id, service_account_id) = match &req.owner {
        Some(o) => {
            m.authorize(Action::CreateServiceAccountApiKey)?;
            let sa = st
                .store
                .service_account(m.account_id, o.service_account_id)
                .await?;
            (None, Some(sa.id))
        }
        None => {
            m.authorize(Action::CreateOwnApiKey)?;
            match m.user_id() {
                Some(u) => (Some(u), None),
                None => (None, Some(m.principal_id())),
            }
        }
    };
    let name = validate::display_name("name", &req.name)?;
    let expires_at = req
        .expires_at
        .unwrap_or(now + Duration::days(DEFAULT_TTL_DAYS));
    if expires_at <= now + Duration::minutes(1) {
        return Err(ApiError::invalid("expires_at", "must be in the future"));
    }
    if expires_at > now + Duration::days(MAX_TTL_DAYS) {
        return Err(ApiError::invalid(
            "expires_at",
            format!("must be at most {MAX_TTL_DAYS} days ahead"),
        ));
    }
    if st
        .store
        .active_api_key_named(m.account_id, &name, now)
        .await?
    {
        return Err(ApiError::already_exists(format!(
            "an active API key named {name:?} already exists"
        ))
        .with_details(json!({ "field": "name" })));
    }
    let account = st.store.account(m.account_id).await?;
    if st.store.account_usage(m.account_id).await?.active_api_keys >= account.max_api_keys as u64 {
        return Err(ApiError::precondition(format!(
            "the account has reached its quota of {} API keys",
            account.max_api_keys
        )));
    }
    let token = ApiKeyToken::generate(Uuid::now_v7());
    let key = st
        .store
        .create_api_key(NewApiKey {
            id: token.key_id,
            account_id: m.account_id,
            name,
            user_id,
            service_account_id,
            secret_digest: token.secret_digest(),
            expires_at,
            created_at: now,
        })
        .await?;
    st.audit(&m.caller, Some(m.account_id), "api_key.create", format!("api_key/{}", key.id),
        json!({ "name": key.name, "expires_at": key.expires_at, "service_account_id": key.service_account_id }))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreateApiKeyResponse {
            api_key: convert::api_key(key),
            token: token.expose(),
        }),
    ))
}

/// Revoke a key; the next request made with it is refused.
#[utoipa::path(delete, path = "/api-keys/{id}", tag = "api-keys", security(("api_key" = [])), params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn revoke_api_key(
    State(st): State<SharedState>,
    m: Member,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = path_id(&id, "api key")?;
    let key = st.store.api_key(m.account_id, id).await?;
    let own = match m.user_id() {
        Some(u) => key.user_id == Some(u),
        None => key.service_account_id == Some(m.principal_id()),
    };
    if own {
        m.authorize(Action::RevokeOwnApiKey)?;
    } else {
        m.authorize(Action::RevokeAnyApiKey).map_err(|e| {
            // Keys of others are invisible to those who may not manage them.
            if m.authorize(Action::ReadAllApiKeys).is_err() {
                ApiError::not_found("api key")
            } else {
                e
            }
        })?;
    }
    st.store
        .revoke_api_key(m.account_id, id, Utc::now())
        .await?;
    st.audit(
        &m.caller,
        Some(m.account_id),
        "api_key.revoke",
        format!("api_key/{id}"),
        json!({ "name": key.name }),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
