//! Edges: platform operators register them (one or more per region) and see what each serves.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{Duration, Utc};
use serde_json::json;
use tessera_api::ErrorBody;
use tessera_api::edge::{CreateEdge, CreatedEdge, Edge, EdgeObserved};
use tessera_store::StoreError;
use tessera_store::entity::edge;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::PlatformAdmin;
use crate::error::{ApiError, ApiResult};
use crate::json::Json;
use crate::state::SharedState;

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(list_edges, create_edge))
        .routes(routes!(get_edge, delete_edge))
}

/// How long an edge's join token is valid.
const EDGE_TOKEN_TTL_MINUTES: i64 = 60;

fn view(e: edge::Model, routes_generation: u64) -> Edge {
    Edge {
        status: match e.identity_fingerprint {
            Some(_) => "joined",
            None => "pending",
        }
        .into(),
        routes_generation,
        last_report_at: e.observed_at,
        // A report this build cannot read is shown as none, never as an error of the list.
        observed: e
            .observed
            .and_then(|o| serde_json::from_value::<EdgeObserved>(o).ok()),
        created_at: e.created_at,
        region: e.region_id,
        id: e.id,
    }
}

/// The generation every edge should serve, or 0 when the routes cannot be worked out now.
async fn routes_generation(st: &SharedState) -> u64 {
    match st.store.edge_feed().await {
        Ok(feed) => feed.generation,
        Err(e) => {
            tracing::warn!(error = %e, "the edge routes cannot be worked out");
            0
        }
    }
}

/// Every edge with its last report.
#[utoipa::path(get, path = "/admin/edges", tag = "admin", security(("api_key" = [])),
    responses((status = 200, body = Vec<Edge>), (status = 403, body = ErrorBody)))]
async fn list_edges(
    State(st): State<SharedState>,
    _admin: PlatformAdmin,
) -> ApiResult<Json<Vec<Edge>>> {
    let generation = routes_generation(&st).await;
    let edges = st.store.list_edges().await?;
    Ok(Json(
        edges.into_iter().map(|e| view(e, generation)).collect(),
    ))
}

/// Register an edge in a region; its one-time join token is shown once.
#[utoipa::path(post, path = "/admin/edges", tag = "admin", request_body = CreateEdge, security(("api_key" = [])),
    responses((status = 201, body = CreatedEdge), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn create_edge(
    State(st): State<SharedState>,
    PlatformAdmin(caller): PlatformAdmin,
    Json(req): Json<CreateEdge>,
) -> ApiResult<(StatusCode, Json<CreatedEdge>)> {
    let region = st.store.region(&req.region).await.map_err(|e| match e {
        StoreError::NotFound(_) => ApiError::not_found("region"),
        e => e.into(),
    })?;
    if region.owner_account_id.is_some() {
        return Err(ApiError::invalid(
            "region",
            "edges serve the platform's regions; a tenant's own region has none",
        ));
    }
    let root = st.pki.root().await.map_err(ApiError::internal)?;
    let der = tessera_pki::certs_from_pem(&root.cert_pem).map_err(ApiError::internal)?;
    let token = tessera_domain::JoinToken::generate(
        &tessera_pki::fingerprint_sha256(&der[0]),
        Some(&st.agent_url()),
    );
    let expires_at = Utc::now() + Duration::minutes(EDGE_TOKEN_TTL_MINUTES);
    let e = st
        .store
        .create_edge(&region.id, &token.digest(), expires_at)
        .await?;
    st.audit(
        &caller,
        None,
        "edge.create",
        format!("edge/{}", e.id),
        json!({"region": e.region_id}),
    )
    .await?;
    let generation = routes_generation(&st).await;
    Ok((
        StatusCode::CREATED,
        Json(CreatedEdge {
            edge: view(e, generation),
            join_token: token.expose(),
            expires_at,
        }),
    ))
}

#[utoipa::path(get, path = "/admin/edges/{id}", tag = "admin", security(("api_key" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Edge), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_edge(
    State(st): State<SharedState>,
    _admin: PlatformAdmin,
    Path(id): Path<String>,
) -> ApiResult<Json<Edge>> {
    let e = st.store.edge(&id).await.map_err(not_found)?;
    Ok(Json(view(e, routes_generation(&st).await)))
}

/// Remove an edge: its identity is refused at once, and it stops serving.
#[utoipa::path(delete, path = "/admin/edges/{id}", tag = "admin", security(("api_key" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_edge(
    State(st): State<SharedState>,
    PlatformAdmin(caller): PlatformAdmin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    st.store.delete_edge(&id).await.map_err(not_found)?;
    st.audit(
        &caller,
        None,
        "edge.delete",
        format!("edge/{id}"),
        json!({}),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn not_found(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound(_) => ApiError::not_found("edge"),
        e => e.into(),
    }
}
