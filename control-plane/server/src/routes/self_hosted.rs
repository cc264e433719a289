//! A tenant's own self-hosted regions: the account's owners and admins create them and join
//! their hosts to them as cells. Only the account sees them and places namespaces there; to
//! every other account they do not exist (404, or "unknown region" where a region is named).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use serde_json::json;
use tessera_api::{
    CreateSelfHostedJoinToken, CreateSelfHostedRegion, ErrorBody, JoinToken, Region,
    SelfHostedRegion,
};
use tessera_domain::Action;
use tessera_store::StoreError;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::Member;
use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::json::Json;
use crate::routes::cells::{check_region, check_ring_and_labels, issue_join_token, regions};
use crate::state::SharedState;

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(list_own_regions, create_own_region))
        .routes(routes!(create_own_join_token))
}

/// The ring a tenant's cell joins when the request names none: after the platform's canary
/// (ring 0) and early rings.
const DEFAULT_RING: u32 = 2;

/// The account's own regions, each with its cells.
#[utoipa::path(get, path = "/self-hosted/regions", tag = "self-hosted", security(("api_key" = [])),
    responses((status = 200, body = Vec<SelfHostedRegion>), (status = 401, body = ErrorBody)))]
async fn list_own_regions(
    State(st): State<SharedState>,
    m: Member,
) -> ApiResult<Json<Vec<SelfHostedRegion>>> {
    m.authorize(Action::Read)?;
    let mut out = Vec::new();
    for region in regions(&st, Some(m.account_id)).await? {
        if !region.self_hosted {
            continue;
        }
        let cells = st
            .store
            .cells_in_region(&region.id)
            .await?
            .into_iter()
            .map(|c| convert::cell(c, false))
            .collect();
        out.push(SelfHostedRegion { region, cells });
    }
    Ok(Json(out))
}

/// Create a region of the account's own hosts.
#[utoipa::path(post, path = "/self-hosted/regions", tag = "self-hosted", request_body = CreateSelfHostedRegion,
    security(("api_key" = [])),
    responses((status = 201, body = Region), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn create_own_region(
    State(st): State<SharedState>,
    m: Member,
    Json(req): Json<CreateSelfHostedRegion>,
) -> ApiResult<(StatusCode, Json<Region>)> {
    m.authorize(Action::ManageSelfHostedRegions)?;
    let location = check_region(&req.id, &req.location)?;
    let r = st
        .store
        .create_account_region(m.account_id, &req.id, location, Utc::now())
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => {
                ApiError::already_exists(format!("region id {} is taken", req.id))
            }
            e => e.into(),
        })?;
    st.audit(
        &m.caller,
        Some(m.account_id),
        "self_hosted_region.create",
        format!("region/{}", r.id),
        json!({"location": r.location}),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(convert::region(r, false))))
}

/// A one-time token with which one of the account's hosts joins the region as a cell: run
/// `cell-agent join --token …` there (shown once; the token names the endpoint to dial).
#[utoipa::path(post, path = "/self-hosted/regions/{id}/join-tokens", tag = "self-hosted",
    params(("id" = String, Path)), request_body = CreateSelfHostedJoinToken, security(("api_key" = [])),
    responses((status = 201, body = JoinToken), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn create_own_join_token(
    State(st): State<SharedState>,
    m: Member,
    Path(id): Path<String>,
    Json(req): Json<CreateSelfHostedJoinToken>,
) -> ApiResult<(StatusCode, Json<JoinToken>)> {
    m.authorize(Action::ManageSelfHostedRegions)?;
    let ring = req.ring.unwrap_or(DEFAULT_RING);
    check_ring_and_labels(ring, &None)?;
    // A platform region is not the account's to join hosts to: the same 404 as another
    // account's region.
    let region = st.store.region_for(m.account_id, &id).await?;
    if region.owner_account_id != Some(m.account_id) {
        return Err(ApiError::not_found("region"));
    }
    let token = issue_join_token(&st, &m.caller, &region.id, ring, &None).await?;
    Ok((StatusCode::CREATED, Json(token)))
}
