//! The agent endpoint: where cell agents dial in (mTLS, its own port).
//!
//! `POST /agent/v1/join` is the only route open without a client certificate: it trades a
//! one-time join token and a CSR for the cell's identity. Every other route requires that
//! identity: a certificate chaining to the platform root, naming a cell whose current identity
//! fingerprint it matches (so a decommissioned or re-joined cell's old certificate is refused).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use chrono::Utc;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::CertificateDer;
use rustls::server::WebPkiClientVerifier;
use serde::Deserialize;
use tessera_api::CellStatus;
use tessera_api::agent::{
    CanarySpec, DesiredState, JoinRequest, JoinResponse, LONG_POLL_SECONDS, ObservedState,
    RenewRequest, ReplicaCredentials, ReplicaCredentialsRequest, ReplicationSpec, ServerCertSpec,
};
use tessera_domain::JoinToken;
use tessera_object_store::Access;
use tessera_store::StoreError;
use tessera_store::entity::cell;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::error::{ApiError, ApiResult};
use crate::json::Json;
use crate::state::SharedState;

/// The client certificate of the connection, if the agent sent one.
#[derive(Clone)]
pub(crate) struct PeerCert(pub(crate) Option<CertificateDer<'static>>);

/// The largest request an agent may send (an observed report of a full cell is a few hundred
/// kilobytes at most).
const MAX_AGENT_BODY_BYTES: usize = 1 << 20;
/// Bounds on the shape of an observed report: a self-hosted agent's report is its owner's word.
const MAX_REPORTED_ITEMS: usize = 4096;
const MAX_REPORTED_TEXT: usize = 4096;

fn router(state: SharedState) -> Router {
    Router::new()
        .route("/agent/v1/join", post(join))
        .route("/agent/v1/desired", get(desired))
        .route("/agent/v1/observed", post(observed))
        .route("/agent/v1/renew", post(renew))
        .route("/agent/v1/replica-credentials", post(replica_credentials))
        .route("/agent/v1/edge/join", post(crate::edge_endpoint::join))
        .route("/agent/v1/edge/routes", get(crate::edge_endpoint::routes))
        .route("/agent/v1/edge/renew", post(crate::edge_endpoint::renew))
        .route(
            "/agent/v1/edge/observed",
            post(crate::edge_endpoint::observed),
        )
        .fallback(|| async { ApiError::not_found("route") })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_AGENT_BODY_BYTES))
        .with_state(state)
}

/// Refuses a report whose shape no agent of ours sends: too many entries, or texts too long.
fn check_observed(obs: &ObservedState) -> ApiResult<()> {
    let counts = [
        ("runtimes", obs.runtimes.len()),
        ("trash", obs.trash.len()),
        ("route_errors", obs.route_errors.len()),
        ("unlisted_runtimes", obs.unlisted_runtimes.len()),
    ];
    if let Some((field, n)) = counts.iter().find(|(_, n)| *n > MAX_REPORTED_ITEMS) {
        return Err(ApiError::invalid(
            field,
            format!("{n} entries; at most {MAX_REPORTED_ITEMS}"),
        ));
    }
    let texts = obs
        .runtimes
        .iter()
        .flat_map(|(id, r)| [Some(id), r.last_error.as_ref(), Some(&r.temporal_namespace)])
        .chain(
            obs.route_errors
                .iter()
                .flat_map(|(h, e)| [Some(h), Some(e)]),
        )
        .chain([obs.error.as_ref(), Some(&obs.agent_version)])
        .flatten();
    for t in texts {
        if t.len() > MAX_REPORTED_TEXT {
            return Err(ApiError::invalid(
                "observed",
                format!("a text of {} bytes; at most {MAX_REPORTED_TEXT}", t.len()),
            ));
        }
    }
    Ok(())
}

/// Binds the TLS listener and serves until `cancel`.
pub async fn serve(
    state: SharedState,
    listener: TcpListener,
    cancel: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let addr = listener.local_addr()?;
    let mut sans = vec!["127.0.0.1".to_string(), "localhost".to_string()];
    if !addr.ip().is_unspecified() {
        sans.push(addr.ip().to_string());
    }
    // What agents are told to dial (a public name, or a NAT's address).
    sans.extend(state.config.agent_public_host());
    sans.dedup();
    let cert = state.pki.agent_endpoint_cert(&sans).await?;
    let root = state.pki.root_pem().await?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(
        Arc::new(tessera_pki::roots_from_pem(&root)?),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            tessera_pki::certs_from_pem(&cert.chain_pem)?,
            tessera_pki::key_from_pem(&cert.key_pem)?,
        )?;
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let app = router(state);
    Ok(tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                _ = cancel.cancelled() => return,
                r = listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "agent endpoint accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let acceptor = acceptor.clone();
            let app = app.clone();
            let cancel = cancel.clone();
            tokio::spawn(async move {
                let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp))
                    .await
                {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "agent TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
                let cert = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .map(|c| c.clone().into_owned());
                let svc = TowerToHyperService::new(app.layer(Extension(PeerCert(cert))));
                let conn = auto::Builder::new(TokioExecutor::new());
                let serve = conn.serve_connection_with_upgrades(TokioIo::new(tls), svc);
                tokio::select! {
                    _ = serve => {}
                    _ = cancel.cancelled() => {}
                }
            });
        }
    }))
}

/// The cell a request's client certificate proves it is.
async fn authenticated_cell(st: &SharedState, peer: &PeerCert) -> ApiResult<cell::Model> {
    let (cell_id, fingerprint) = identity_of(peer)?;
    current_identity(st, &cell_id, &fingerprint).await
}

/// The cell a client certificate names, and the certificate's fingerprint.
fn identity_of(peer: &PeerCert) -> ApiResult<(String, String)> {
    let der = peer
        .0
        .as_ref()
        .ok_or_else(|| ApiError::unauthenticated("a cell identity certificate is required"))?;
    let cell_id = tessera_pki::cell_id_of(der)
        .ok_or_else(|| ApiError::unauthenticated("the certificate names no cell"))?;
    Ok((cell_id, tessera_pki::fingerprint_sha256(der)))
}

/// The cell, as long as the certificate with `fingerprint` is still its identity.
async fn current_identity(
    st: &SharedState,
    cell_id: &str,
    fingerprint: &str,
) -> ApiResult<cell::Model> {
    let c = st.store.cell(cell_id).await.map_err(|e| match e {
        StoreError::NotFound(_) => ApiError::unauthenticated("unknown cell"),
        e => e.into(),
    })?;
    // Said in the details, so that an agent that was away during the decommission cleans up.
    if c.status == CellStatus::Decommissioned.as_str() {
        return Err(ApiError::unauthenticated("the cell is decommissioned")
            .with_details(serde_json::json!({ "cell_status": c.status })));
    }
    if c.identity_fingerprint.as_deref() != Some(fingerprint) {
        return Err(ApiError::unauthenticated(
            "this certificate is no longer the cell's identity",
        ));
    }
    Ok(c)
}

async fn identity_response(
    st: &SharedState,
    c: &cell::Model,
    csr_pem: &str,
) -> ApiResult<JoinResponse> {
    let issued = st
        .pki
        .sign_agent(&c.id, csr_pem)
        .await
        .map_err(|e| ApiError::invalid("csr_pem", e.to_string()))?;
    let leaf = tessera_pki::certs_from_pem(&issued.cert_pem).map_err(ApiError::internal)?;
    st.store
        .set_cell_identity(
            &c.id,
            &tessera_pki::fingerprint_sha256(&leaf[0]),
            issued.not_after,
        )
        .await?;
    Ok(JoinResponse {
        cell_id: c.id.clone(),
        region: c.region_id.clone(),
        ring: c.ring.max(0) as u32,
        certificate_chain_pem: issued.chain_pem,
        root_ca_pem: st.pki.root_pem().await.map_err(ApiError::internal)?,
    })
}

async fn join(
    State(st): State<SharedState>,
    Json(req): Json<JoinRequest>,
) -> ApiResult<Json<JoinResponse>> {
    let token = join_token_of(&req)?;
    let cell_id = st
        .store
        .consume_join_token(&token.digest(), Utc::now())
        .await
        .map_err(spent_token)?;
    let c = st.store.cell(&cell_id).await?;
    if matches!(
        CellStatus::parse(&c.status),
        Some(CellStatus::Decommissioning | CellStatus::Decommissioned)
    ) {
        return Err(ApiError::precondition(format!(
            "cell {cell_id} is being decommissioned"
        )));
    }
    let resp = identity_response(&st, &c, &req.csr_pem).await?;
    tracing::info!(cell = %cell_id, agent_version = %req.agent_version, "cell agent joined");
    Ok(Json(resp))
}

/// The token of a join request (cell or edge), after a cheap check of its CSR, so that no
/// token is spent on a request that cannot succeed.
pub(crate) fn join_token_of(req: &JoinRequest) -> ApiResult<JoinToken> {
    let token = JoinToken::parse(&req.token)
        .ok_or_else(|| ApiError::unauthenticated("the join token is malformed"))?;
    if !req.csr_pem.contains("CERTIFICATE REQUEST") {
        return Err(ApiError::invalid(
            "csr_pem",
            "is not a PEM certificate request",
        ));
    }
    Ok(token)
}

/// A token the store does not take: unknown, used or expired (the caller cannot tell which).
pub(crate) fn spent_token(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound(_) => {
            ApiError::unauthenticated("the join token is unknown, used or expired")
        }
        e => e.into(),
    }
}

async fn renew(
    State(st): State<SharedState>,
    Extension(peer): Extension<PeerCert>,
    Json(req): Json<RenewRequest>,
) -> ApiResult<Json<JoinResponse>> {
    let c = authenticated_cell(&st, &peer).await?;
    let resp = identity_response(&st, &c, &req.csr_pem).await?;
    st.store
        .update_desired(&c.id, None, |d| {
            d.renew_identity = false;
        })
        .await?;
    tracing::info!(cell = %c.id, "cell identity renewed");
    Ok(Json(resp))
}

/// Short-lived credentials for the replica the cell's desired state names for a runtime,
/// narrowed to that replica's path: a source may write it, a follower only read it. Nothing
/// else is issued (403), and a replica outside every configured bucket gets none (409).
async fn replica_credentials(
    State(st): State<SharedState>,
    Extension(peer): Extension<PeerCert>,
    Json(req): Json<ReplicaCredentialsRequest>,
) -> ApiResult<Json<ReplicaCredentials>> {
    let c = authenticated_cell(&st, &peer).await?;
    let doc = tessera_store::decode_desired(&c.id, &c.desired)?;
    let spec = doc.replication.get(&req.runtime).ok_or_else(|| {
        ApiError::forbidden(format!(
            "cell {} ships no store of runtime {}",
            c.id, req.runtime
        ))
    })?;
    let access = match spec {
        ReplicationSpec::Source { .. } => Access::ReadWrite,
        ReplicationSpec::Follower { .. } => Access::Read,
    };
    let (store, key) = st
        .object_stores
        .locate(&spec.replica().url)
        .ok_or_else(|| {
            ApiError::precondition(format!(
                "the replica of runtime {} is in no bucket of the control plane's",
                req.runtime
            ))
        })?;
    let issued = st
        .replica_issuer
        .issue(store, &key, access, &c.id)
        .await
        .map_err(ApiError::unavailable)?;
    tracing::info!(cell = %c.id, runtime = %req.runtime, ?access, expires = %issued.expiration, "replica credentials issued");
    Ok(Json(issued))
}

/// How often a long poll reads the cell again with no announced change.
pub(crate) const UNANNOUNCED_CHANGES: Duration = Duration::from_secs(2);

#[derive(Debug, Deserialize)]
struct DesiredQuery {
    #[serde(default)]
    after_generation: u64,
}

/// The cell's desired state with secrets resolved. A document that does not decode is refused
/// (503): the agent keeps serving its cached one.
async fn render(st: &SharedState, c: &cell::Model) -> ApiResult<DesiredState> {
    let doc = tessera_store::decode_desired(&c.id, &c.desired)?;
    let mut server_certs = Vec::new();
    for id in &doc.server_cert_ids {
        if let Some((chain_pem, key_pem)) =
            st.pki.chain_and_key(id).await.map_err(ApiError::internal)?
        {
            server_certs.push(ServerCertSpec { chain_pem, key_pem });
        }
    }
    // The canary: its server certificate joins the ingress's, its client certificate travels
    // in the spec. Without its client certificate there is no canary to run.
    let mut canary = None;
    if let Some(cd) = &doc.canary {
        if let Some((chain_pem, key_pem)) = st
            .pki
            .chain_and_key(&cd.server_cert_id)
            .await
            .map_err(ApiError::internal)?
        {
            server_certs.push(ServerCertSpec { chain_pem, key_pem });
        }
        canary = st
            .pki
            .chain_and_key(&cd.client_cert_id)
            .await
            .map_err(ApiError::internal)?
            .map(|(client_chain_pem, client_key_pem)| CanarySpec {
                runtime: cd.runtime.clone(),
                host: cd.host.clone(),
                temporal_namespace: cd.temporal_namespace.clone(),
                client_chain_pem,
                client_key_pem,
                interval_ms: cd.interval_ms,
            });
    }
    Ok(DesiredState {
        schema_version: tessera_api::agent::DESIRED_SCHEMA_VERSION,
        cell_id: c.id.clone(),
        generation: c.generation.max(0) as u64,
        runtimes: doc.runtimes,
        routes: doc.routes,
        server_certs,
        renew_identity: doc.renew_identity,
        canary,
        release: doc.release,
        decommission: doc.decommission,
        removed: doc.removed,
        restore: doc.restore,
        replication: doc.replication,
    })
}

/// Long poll: answers as soon as the generation is newer than `after_generation`, else 204
/// after [`LONG_POLL_SECONDS`], or 401 as soon as the identity is revoked.
async fn desired(
    State(st): State<SharedState>,
    Extension(peer): Extension<PeerCert>,
    Query(q): Query<DesiredQuery>,
) -> ApiResult<Response> {
    let (cell_id, fingerprint) = identity_of(&peer)?;
    // Subscribed before the first read, so a change in between is not missed.
    let mut changes = st.store.cell_changes(&cell_id);
    let mut c = current_identity(&st, &cell_id, &fingerprint).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(LONG_POLL_SECONDS);
    loop {
        if c.generation.max(0) as u64 > q.after_generation {
            return Ok(axum::Json(render(&st, &c).await?).into_response());
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        // Woken by a change made through this process, or announced by another control plane
        // on PostgreSQL; on SQLite a periodic read covers writers in other processes.
        let until = match st.store.announces_all_changes() {
            true => deadline,
            false => deadline.min(tokio::time::Instant::now() + UNANNOUNCED_CHANGES),
        };
        let _ = tokio::time::timeout_at(until, changes.changed()).await;
        // Checked again on each change: an identity revoked meanwhile ends the poll at once.
        c = current_identity(&st, &cell_id, &fingerprint).await?;
    }
}

async fn observed(
    State(st): State<SharedState>,
    Extension(peer): Extension<PeerCert>,
    Json(obs): Json<ObservedState>,
) -> ApiResult<StatusCode> {
    let c = authenticated_cell(&st, &peer).await?;
    if obs.cell_id != c.id {
        return Err(ApiError::invalid(
            "cell_id",
            "does not match the certificate",
        ));
    }
    check_observed(&obs)?;
    let ingress = (!obs.ingress_address.is_empty()).then(|| obs.ingress_address.clone());
    st.store
        .record_observed(
            &c.id,
            serde_json::to_value(&obs).map_err(ApiError::internal)?,
            obs.generation as i64,
            ingress,
            Utc::now(),
        )
        .await?;
    // Standbys' state and lag, and the stream they follow: a report is not refused for them.
    if !obs.replication.is_empty()
        && let Err(e) = tessera_workflows::replicas::on_report(&st.store, &c.id, &obs).await
    {
        tracing::warn!(cell = %c.id, error = %e, "updating replicas from a report failed");
    }
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_api::agent::{RuntimeHealth, RuntimeObserved};

    fn runtime(last_error: Option<String>) -> RuntimeObserved {
        RuntimeObserved {
            health: RuntimeHealth::Serving,
            temporal_namespace: "orders.acme".into(),
            pid: None,
            grpc_address: None,
            metrics_address: None,
            rss_bytes: 0,
            uptime_seconds: 0,
            restarts: 0,
            global_namespace: true,
            last_error,
            release: None,
            requests_total: 0,
            errors_total: 0,
        }
    }

    #[test]
    fn a_report_of_a_shape_no_agent_sends_is_refused() {
        let ok = ObservedState {
            cell_id: "c".into(),
            runtimes: [("ns-1".to_string(), runtime(None))].into(),
            ..Default::default()
        };
        assert!(check_observed(&ok).is_ok());

        let mut many = ok.clone();
        many.route_errors = (0..=MAX_REPORTED_ITEMS)
            .map(|i| (format!("h{i}"), "bad".to_string()))
            .collect();
        let e = check_observed(&many).unwrap_err();
        assert_eq!(e.details["field"], "route_errors", "{e:?}");

        let mut long = ok.clone();
        long.runtimes.insert(
            "ns-2".into(),
            runtime(Some("x".repeat(MAX_REPORTED_TEXT + 1))),
        );
        assert!(check_observed(&long).is_err());
    }
}
