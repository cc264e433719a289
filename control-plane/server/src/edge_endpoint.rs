//! The edges' side of the agent endpoint: join, long-poll the routes, report.
//!
//! An edge's identity is a certificate from the platform root naming `spiffe://tessera/edge/<id>`,
//! accepted while it is the one the edge's row records (a removed edge is refused at once).

use std::time::Duration;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use tessera_api::agent::{JoinRequest, LONG_POLL_SECONDS};
use tessera_api::edge::{EDGE_SCHEMA_VERSION, EdgeJoinResponse, EdgeObserved, EdgeRoutes};
use tessera_store::StoreError;
use tessera_store::entity::edge;

use crate::agent_endpoint::{PeerCert, UNANNOUNCED_CHANGES, join_token_of, spent_token};
use crate::error::{ApiError, ApiResult};
use crate::json::Json;
use crate::state::SharedState;

/// Bounds on an edge's report.
const MAX_REPORTED_ITEMS: usize = 4096;
const MAX_REPORTED_TEXT: usize = 4096;

pub(crate) async fn join(
    State(st): State<SharedState>,
    Json(req): Json<JoinRequest>,
) -> ApiResult<Json<EdgeJoinResponse>> {
    let token = join_token_of(&req)?;
    let e = st
        .store
        .consume_edge_token(&token.digest(), Utc::now())
        .await
        .map_err(spent_token)?;
    let resp = issue_identity(&st, e, &req.csr_pem).await?;
    tracing::info!(edge = %resp.edge_id, version = %req.agent_version, "edge joined");
    Ok(Json(resp))
}

/// Signs the edge's CSR and makes that certificate the edge's only identity.
async fn issue_identity(
    st: &SharedState,
    e: edge::Model,
    csr_pem: &str,
) -> ApiResult<EdgeJoinResponse> {
    let issued = st
        .pki
        .sign_edge(&e.id, csr_pem)
        .await
        .map_err(|e| ApiError::invalid("csr_pem", e.to_string()))?;
    let leaf = tessera_pki::certs_from_pem(&issued.cert_pem).map_err(ApiError::internal)?;
    st.store
        .set_edge_identity(
            &e.id,
            &tessera_pki::fingerprint_sha256(&leaf[0]),
            issued.not_after,
        )
        .await?;
    Ok(EdgeJoinResponse {
        edge_id: e.id,
        region: e.region_id,
        certificate_chain_pem: issued.chain_pem,
        root_ca_pem: st.pki.root_pem().await.map_err(ApiError::internal)?,
    })
}

/// A new identity certificate for an edge whose current one is still valid (it renews once
/// two thirds of its lifetime have passed); the old one is refused from now on.
pub(crate) async fn renew(
    State(st): State<SharedState>,
    Extension(peer): Extension<PeerCert>,
    Json(req): Json<tessera_api::agent::RenewRequest>,
) -> ApiResult<Json<EdgeJoinResponse>> {
    let e = authenticated_edge(&st, &peer).await?;
    let resp = issue_identity(&st, e, &req.csr_pem).await?;
    tracing::info!(edge = %resp.edge_id, "edge identity renewed");
    Ok(Json(resp))
}

/// The edge a request's client certificate proves it is.
async fn authenticated_edge(st: &SharedState, peer: &PeerCert) -> ApiResult<edge::Model> {
    let der = peer
        .0
        .as_ref()
        .ok_or_else(|| ApiError::unauthenticated("an edge identity certificate is required"))?;
    let id = tessera_pki::edge_id_of(der)
        .ok_or_else(|| ApiError::unauthenticated("the certificate names no edge"))?;
    let e = st.store.edge(&id).await.map_err(|e| match e {
        StoreError::NotFound(_) => ApiError::unauthenticated("unknown edge"),
        e => e.into(),
    })?;
    if e.identity_fingerprint.as_deref() != Some(tessera_pki::fingerprint_sha256(der).as_str()) {
        return Err(ApiError::unauthenticated(
            "this certificate is no longer the edge's identity",
        ));
    }
    Ok(e)
}

#[derive(Debug, Deserialize)]
pub(crate) struct RoutesQuery {
    #[serde(default)]
    after_generation: u64,
}

/// Long poll: the routes as soon as their generation is newer than `after_generation`, else
/// 204 after [`LONG_POLL_SECONDS`]. Routes that cannot be worked out (a cell's document does not
/// decode) answer 503, and the edge keeps serving the routes it has.
pub(crate) async fn routes(
    State(st): State<SharedState>,
    Extension(peer): Extension<PeerCert>,
    Query(q): Query<RoutesQuery>,
) -> ApiResult<Response> {
    // Subscribed before the first read, so a change in between is not missed.
    let mut changes = st.store.any_cell_changes();
    authenticated_edge(&st, &peer).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(LONG_POLL_SECONDS);
    loop {
        let feed = st.store.edge_feed().await?;
        if feed.generation > q.after_generation {
            let doc = EdgeRoutes {
                schema_version: EDGE_SCHEMA_VERSION,
                generation: feed.generation,
                routes: feed.routes,
            };
            return Ok(axum::Json(doc).into_response());
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        let until = match st.store.announces_all_changes() {
            true => deadline,
            false => deadline.min(tokio::time::Instant::now() + UNANNOUNCED_CHANGES),
        };
        let _ = tokio::time::timeout_at(until, changes.changed()).await;
        // A removed edge's poll ends at the next change.
        authenticated_edge(&st, &peer).await?;
    }
}

pub(crate) async fn observed(
    State(st): State<SharedState>,
    Extension(peer): Extension<PeerCert>,
    Json(obs): Json<EdgeObserved>,
) -> ApiResult<StatusCode> {
    let e = authenticated_edge(&st, &peer).await?;
    if obs.edge_id != e.id {
        return Err(ApiError::invalid(
            "edge_id",
            "does not match the certificate",
        ));
    }
    if obs.rejected.len() > MAX_REPORTED_ITEMS {
        return Err(ApiError::invalid("rejected", "too many entries"));
    }
    let texts = obs.rejected.iter().flat_map(|(h, r)| [h, r]).chain([
        &obs.address,
        &obs.metrics_address,
        &obs.version,
    ]);
    if texts.into_iter().any(|t| t.len() > MAX_REPORTED_TEXT) {
        return Err(ApiError::invalid("observed", "a text is too long"));
    }
    st.store
        .record_edge_observed(
            &e.id,
            serde_json::to_value(&obs).map_err(ApiError::internal)?,
            Utc::now(),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
