//! Users of an account: list, invite, change role, remove.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use serde_json::json;
use tessera_api::{
    ErrorBody, InviteUserRequest, InviteUserResponse, Page, PageQuery, UpdateUserRequest, User,
};
use tessera_domain::{Action, SecretToken, validate};
use tessera_store::{NewUser, StoreError};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::auth::{Member, parse_role};
use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::json::{Json, Query, path_id};
use crate::routes::{page, page_params};
use crate::state::SharedState;

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, invite_user))
        .routes(routes!(update_user, remove_user))
}

/// Users of the account.
#[utoipa::path(get, path = "/users", tag = "users", params(PageQuery), security(("api_key" = [])),
    responses((status = 200, body = Page<User>), (status = 401, body = ErrorBody)))]
async fn list_users(
    State(st): State<SharedState>,
    m: Member,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<User>>> {
    m.authorize(Action::Read)?;
    let (after, size) = page_params(&q)?;
    Ok(Json(page(
        st.store.list_users(m.account_id, after, size).await?,
        convert::user,
    )?))
}

/// Invite a user; the answer carries a one-time invitation token.
#[utoipa::path(post, path = "/users", tag = "users", request_body = InviteUserRequest, security(("api_key" = [])),
    responses((status = 201, body = InviteUserResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn invite_user(
    State(st): State<SharedState>,
    m: Member,
    Json(req): Json<InviteUserRequest>,
) -> ApiResult<(StatusCode, Json<InviteUserResponse>)> {
    m.authorize(Action::InviteUser { role: req.role })?;
    let email = validate::email(&req.email)?;
    let account = st.store.account(m.account_id).await?;
    let usage = st.store.account_usage(m.account_id).await?;
    if usage.users >= account.max_users as u64 {
        return Err(ApiError::precondition(format!(
            "the account has reached its quota of {} users",
            account.max_users
        ))
        .with_details(json!({ "quota": "max_users", "limit": account.max_users })));
    }
    let token = SecretToken::generate("tin_");
    let user = st
        .store
        .create_user(NewUser {
            id: Uuid::now_v7(),
            account_id: m.account_id,
            email,
            password_hash: None,
            role: req.role.as_str().into(),
            state: "invited".into(),
            invite_token_digest: Some(token.digest()),
            created_at: Utc::now(),
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => {
                ApiError::already_exists("a user with this email already exists")
                    .with_details(json!({ "field": "email" }))
            }
            e => e.into(),
        })?;
    st.audit(
        &m.caller,
        Some(m.account_id),
        "user.invite",
        format!("user/{}", user.id),
        json!({ "email": user.email, "role": user.role }),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(InviteUserResponse {
            user: convert::user(user)?,
            invite_token: token.0,
        }),
    ))
}

/// Change a user's role.
#[utoipa::path(patch, path = "/users/{id}", tag = "users", request_body = UpdateUserRequest, security(("api_key" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = User), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "would leave the account without an owner")))]
async fn update_user(
    State(st): State<SharedState>,
    m: Member,
    Path(id): Path<String>,
    Json(req): Json<UpdateUserRequest>,
) -> ApiResult<Json<User>> {
    let id = path_id(&id, "user")?;
    let user = st.store.user(m.account_id, id).await?;
    let from = parse_role(&user.role)?;
    m.authorize(Action::ChangeUserRole { from, to: req.role })?;
    let updated = st
        .store
        .set_user_role(m.account_id, id, req.role.as_str())
        .await
        .map_err(last_owner)?;
    st.audit(
        &m.caller,
        Some(m.account_id),
        "user.change_role",
        format!("user/{id}"),
        json!({ "from": from.as_str(), "to": req.role.as_str() }),
    )
    .await?;
    Ok(Json(convert::user(updated)?))
}

/// Remove a user: their sessions end and their API keys are revoked.
#[utoipa::path(delete, path = "/users/{id}", tag = "users", security(("api_key" = [])), params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn remove_user(
    State(st): State<SharedState>,
    m: Member,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = path_id(&id, "user")?;
    let user = st.store.user(m.account_id, id).await?;
    m.authorize(Action::RemoveUser {
        role: parse_role(&user.role)?,
    })?;
    st.store
        .remove_user(m.account_id, id, Utc::now())
        .await
        .map_err(last_owner)?;
    st.audit(
        &m.caller,
        Some(m.account_id),
        "user.remove",
        format!("user/{id}"),
        json!({ "email": user.email }),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn last_owner(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(_) => {
            ApiError::precondition("an account must keep at least one owner")
        }
        e => e.into(),
    }
}
