//! Releases: platform operators publish what the runtimes and agents of a cell run. A release
//! is validated once, here, and never changes afterwards; rollouts move it through the rings.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use serde_json::json;
use tessera_api::{CreateRelease, ErrorBody, Page, PageQuery, Release};
use tessera_domain::validate;
use tessera_store::{NewRelease, StoreError};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::auth::PlatformAdmin;
use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::json::{Json, Query};
use crate::routes::{page, page_params};
use crate::state::SharedState;

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(list_releases, create_release))
        .routes(routes!(get_release))
}

/// Publish a release. Releases are immutable: a change is a new version.
#[utoipa::path(post, path = "/admin/releases", tag = "admin", request_body = CreateRelease, security(("api_key" = [])),
    responses((status = 201, body = Release), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn create_release(
    State(st): State<SharedState>,
    PlatformAdmin(caller): PlatformAdmin,
    Json(req): Json<CreateRelease>,
) -> ApiResult<(StatusCode, Json<Release>)> {
    validate::release(&req)?;
    let r = st
        .store
        .create_release(NewRelease {
            id: Uuid::now_v7(),
            version: req.version.clone(),
            // Strings, lists and string-keyed maps: serializing cannot fail.
            runtime: serde_json::to_value(&req.runtime).expect("runtime release"),
            agent: serde_json::to_value(&req.agent).expect("agent release"),
            notes: req.notes,
            created_at: Utc::now(),
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::already_exists(format!(
                "release {} already exists; releases are immutable, publish a new version",
                req.version
            ))
            .with_details(json!({ "field": "version" })),
            e => e.into(),
        })?;
    st.audit(
        &caller,
        None,
        "release.create",
        format!("release/{}", r.version),
        json!({ "runtime_version": req.runtime.version }),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(convert::release(r)?)))
}

/// Every release, newest first.
#[utoipa::path(get, path = "/admin/releases", tag = "admin", params(PageQuery), security(("api_key" = [])),
    responses((status = 200, body = Page<Release>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_releases(
    State(st): State<SharedState>,
    _admin: PlatformAdmin,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<Release>>> {
    let (before, size) = page_params(&q)?;
    let p = st.store.list_releases(before, size).await?;
    Ok(Json(page(p, convert::release)?))
}

/// One release.
#[utoipa::path(get, path = "/admin/releases/{version}", tag = "admin", params(("version" = String, Path)),
    security(("api_key" = [])),
    responses((status = 200, body = Release), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_release(
    State(st): State<SharedState>,
    _admin: PlatformAdmin,
    Path(version): Path<String>,
) -> ApiResult<Json<Release>> {
    match st.store.release(&version).await? {
        Some(r) => Ok(Json(convert::release(r)?)),
        None => Err(ApiError::not_found("release")),
    }
}
