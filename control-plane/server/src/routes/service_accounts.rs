//! Service accounts: principals for automation.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use serde_json::json;
use tessera_api::{CreateServiceAccountRequest, ErrorBody, Page, PageQuery, ServiceAccount};
use tessera_domain::{Action, validate};
use tessera_store::StoreError;
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
        .routes(routes!(list_service_accounts, create_service_account))
        .routes(routes!(delete_service_account))
}

#[utoipa::path(get, path = "/service-accounts", tag = "service-accounts", params(PageQuery), security(("api_key" = [])),
    responses((status = 200, body = Page<ServiceAccount>), (status = 401, body = ErrorBody)))]
async fn list_service_accounts(
    State(st): State<SharedState>,
    m: Member,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<ServiceAccount>>> {
    m.authorize(Action::Read)?;
    let (after, size) = page_params(&q)?;
    Ok(Json(page(
        st.store
            .list_service_accounts(m.account_id, after, size)
            .await?,
        convert::service_account,
    )?))
}

#[utoipa::path(post, path = "/service-accounts", tag = "service-accounts", request_body = CreateServiceAccountRequest,
    security(("api_key" = [])),
    responses((status = 201, body = ServiceAccount), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn create_service_account(
    State(st): State<SharedState>,
    m: Member,
    Json(req): Json<CreateServiceAccountRequest>,
) -> ApiResult<(StatusCode, Json<ServiceAccount>)> {
    m.authorize(Action::CreateServiceAccount { role: req.role })?;
    let name = validate::display_name("name", &req.name)?;
    let access = req.namespace_access.unwrap_or_default();
    if access.len() > 100 {
        return Err(ApiError::invalid(
            "namespace_access",
            "at most 100 namespaces",
        ));
    }
    for ns in access.keys() {
        validate::dns_label("namespace_access", ns, 2)?;
    }
    let account = st.store.account(m.account_id).await?;
    let usage = st.store.account_usage(m.account_id).await?;
    if usage.service_accounts >= account.max_service_accounts as u64 {
        return Err(ApiError::precondition(format!(
            "the account has reached its quota of {} service accounts",
            account.max_service_accounts
        )));
    }
    let access_json =
        serde_json::to_value(BTreeMap::from_iter(access)).map_err(ApiError::internal)?;
    let sa = st
        .store
        .create_service_account(
            Uuid::now_v7(),
            m.account_id,
            name,
            req.role.as_str().into(),
            access_json,
        )
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => {
                ApiError::already_exists("a service account with this name already exists")
                    .with_details(json!({ "field": "name" }))
            }
            e => e.into(),
        })?;
    st.audit(
        &m.caller,
        Some(m.account_id),
        "service_account.create",
        format!("service_account/{}", sa.id),
        json!({ "name": sa.name, "role": sa.role }),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(convert::service_account(sa)?)))
}

/// Delete a service account; its API keys are revoked.
#[utoipa::path(delete, path = "/service-accounts/{id}", tag = "service-accounts", security(("api_key" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_service_account(
    State(st): State<SharedState>,
    m: Member,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = path_id(&id, "service account")?;
    let sa = st.store.service_account(m.account_id, id).await?;
    m.authorize(Action::DeleteServiceAccount {
        role: parse_role(&sa.role)?,
    })?;
    st.store
        .delete_service_account(m.account_id, id, Utc::now())
        .await?;
    st.audit(
        &m.caller,
        Some(m.account_id),
        "service_account.delete",
        format!("service_account/{id}"),
        json!({ "name": sa.name }),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
