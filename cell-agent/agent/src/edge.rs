//! `tessera-edge run`: an SNI router in front of every cell.
//!
//! It long-polls the routes from the control plane (over its own mTLS identity), caches them in
//! `routes.json`, and serves them on a port it shares with the region's other edges
//! (`SO_REUSEPORT`). A connection is passed through untouched to the ingress of the cell that
//! serves its SNI host, or held while a cutover is under way; tenants' mTLS ends at that
//! ingress, never here. Losing the control plane changes nothing: the edge keeps its routes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::Utc;
use prometheus::IntGauge;
use tessera_api::edge::{EdgeObserved, EdgeRoute, EdgeRoutes};
use tessera_domain::Backoff;
use tessera_ingress::{Ingress, IngressMetrics, Route, RouteTable, Target};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::control_plane::ControlPlane;
use crate::error::AgentError;
use crate::identity::{Identity, write_atomic};

#[derive(Debug, Clone, clap::Args)]
pub struct EdgeArgs {
    /// The address every namespace endpoint advertises; the region's edges all listen on it.
    #[arg(long, env = "TESSERA_EDGE_ADDR", default_value = "127.0.0.1:7233")]
    pub listen: SocketAddr,
    /// Prometheus metrics of the edge.
    #[arg(long, env = "TESSERA_EDGE_METRICS_ADDR", default_value = "127.0.0.1:0")]
    pub metrics_addr: SocketAddr,
    /// Seconds between reports when nothing changes.
    #[arg(long, env = "TESSERA_EDGE_REPORT_SECONDS", default_value_t = 5)]
    pub report_seconds: u64,
}

fn routes_cache(dir: &Path) -> PathBuf {
    dir.join("routes.json")
}

fn load_cached(dir: &Path) -> Option<EdgeRoutes> {
    serde_json::from_slice(&std::fs::read(routes_cache(dir)).ok()?).ok()
}

/// The ingress's table for the edge's routes: pass-through only, no certificates. A route
/// whose address is no `ip:port` is left out and named.
pub fn route_table(routes: &EdgeRoutes) -> (RouteTable, Vec<(String, String)>) {
    let mut table = RouteTable::default();
    let mut bad = Vec::new();
    for (host, route) in &routes.routes {
        let target = match route {
            EdgeRoute::Forward { address, .. } => match address.parse() {
                Ok(addr) => Target::Forward { addr },
                Err(_) => {
                    bad.push((host.clone(), format!("{address} is not an ip:port")));
                    continue;
                }
            },
            EdgeRoute::Hold { max_wait_ms } => Target::Hold {
                max_wait: Duration::from_millis(*max_wait_ms),
            },
        };
        table.routes.insert(
            host.clone(),
            Route {
                accepted_ca_pem: String::new(),
                target,
            },
        );
    }
    (table, bad)
}

struct Edge {
    id: String,
    ingress: Ingress,
    generation: AtomicU64,
    generation_gauge: IntGauge,
    unparsed: std::sync::Mutex<Vec<(String, String)>>,
    report_now: Notify,
}

impl Edge {
    fn apply(&self, routes: &EdgeRoutes) {
        let (table, bad) = route_table(routes);
        self.ingress.update(table);
        *self.unparsed.lock().expect("edge lock") = bad;
        self.generation.store(routes.generation, Ordering::SeqCst);
        self.generation_gauge.set(routes.generation as i64);
        self.report_now.notify_one();
    }
}

/// Runs until SIGINT/SIGTERM, or until the control plane refuses the edge's identity (the edge
/// was removed): then it stops serving and exits with the error.
pub async fn run(dir: &Path, args: EdgeArgs) -> crate::Result<()> {
    let identity = Identity::load(dir)?;
    let id = identity.membership.cell_id.clone();
    write_atomic(
        &dir.join("edge.pid"),
        std::process::id().to_string().as_bytes(),
        0o644,
    )?;
    let cancel = CancellationToken::new();
    let registry = prometheus::Registry::new();
    let ingress_metrics = IngressMetrics::new(&registry)?;
    let generation_gauge = IntGauge::new(
        "tessera_edge_routes_generation",
        "Generation of the routes the edge serves",
    )?;
    registry.register(Box::new(generation_gauge.clone()))?;

    let cached = load_cached(dir);
    let (initial, _) = cached
        .as_ref()
        .map(route_table)
        .unwrap_or_else(|| (RouteTable::default(), Vec::new()));
    let ingress =
        Ingress::bind_shared(args.listen, initial, ingress_metrics, cancel.child_token()).await?;
    let metrics_addr =
        crate::metrics::serve(args.metrics_addr, registry, cancel.child_token()).await?;
    println!(
        "tessera-edge {id}: serving {} (metrics on http://{metrics_addr}/metrics)",
        ingress.local_addr()
    );
    let edge = Arc::new(Edge {
        id,
        ingress,
        generation: AtomicU64::new(0),
        generation_gauge,
        unparsed: Default::default(),
        report_now: Notify::new(),
    });
    if let Some(routes) = &cached {
        tracing::info!(
            generation = routes.generation,
            "serving the cached routes until the control plane answers"
        );
        edge.apply(routes);
    }
    let cp = Arc::new(Client {
        current: RwLock::new(ControlPlane::new(&identity)?),
        renewals: AtomicU64::new(0),
    });
    let started_at = Utc::now();
    let reporter = tokio::spawn(report(
        edge.clone(),
        cp.clone(),
        metrics_addr,
        started_at,
        Duration::from_secs(args.report_seconds.max(1)),
        cancel.clone(),
    ));
    let renewer = tokio::spawn(renew(
        cp.clone(),
        identity,
        dir.to_path_buf(),
        cancel.clone(),
    ));
    let outcome = tokio::select! {
        r = poll(edge.clone(), cp, dir.to_path_buf()) => r,
        _ = shutdown_signal() => Ok(()),
    };
    renewer.abort();
    cancel.cancel();
    let _ = reporter.await;
    edge.ingress.stopped().await;
    outcome
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// The control-plane client on the edge's current identity.
struct Client {
    current: RwLock<ControlPlane>,
    /// Bumped when a renewal starts and when it ends (odd: one is under way): a request made
    /// on an identity being replaced may be refused.
    renewals: AtomicU64,
}

impl Client {
    fn get(&self) -> (ControlPlane, u64) {
        let cp = self.current.read().expect("cp lock").clone();
        (cp, self.renewals.load(Ordering::SeqCst))
    }
}

/// Renews the edge's identity once two thirds of its lifetime have passed, like an agent's.
async fn renew(cp: Arc<Client>, mut identity: Identity, dir: PathBuf, cancel: CancellationToken) {
    loop {
        let due = identity
            .not_before_after()
            .is_some_and(|(nb, na)| tessera_pki::renewal_due(nb, na, Utc::now()));
        if due {
            let (client, _) = cp.get();
            cp.renewals.fetch_add(1, Ordering::SeqCst);
            match client.renew_edge().await {
                Ok((chain_pem, key_pem)) => {
                    let renewed = Identity {
                        chain_pem,
                        key_pem,
                        ..identity.clone()
                    };
                    match renewed.save(&dir).and_then(|_| ControlPlane::new(&renewed)) {
                        Ok(client) => {
                            *cp.current.write().expect("cp lock") = client;
                            identity = renewed;
                            tracing::info!("identity certificate renewed");
                        }
                        Err(e) => {
                            tracing::error!(error = %format!("{e:#}"), "keeping the renewed identity failed")
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "renewing the identity failed; retrying")
                }
            }
            cp.renewals.fetch_add(1, Ordering::SeqCst);
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(RENEWAL_CHECK) => {}
        }
    }
}

/// How often the edge looks at its identity's age.
const RENEWAL_CHECK: Duration = Duration::from_secs(2);

/// Long-polls the routes for good; returns only when the identity is refused.
async fn poll(edge: Arc<Edge>, cp: Arc<Client>, dir: PathBuf) -> crate::Result<()> {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    loop {
        let after = edge.generation.load(Ordering::SeqCst);
        let (client, renewals) = cp.get();
        match client.edge_routes(after).await {
            Ok(Some(routes)) => {
                backoff.reset();
                match serde_json::to_vec(&routes) {
                    Ok(bytes) => {
                        if let Err(e) = write_atomic(&routes_cache(&dir), &bytes, 0o644) {
                            tracing::warn!(error = %e, "caching the routes failed");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "caching the routes failed"),
                }
                tracing::info!(
                    generation = routes.generation,
                    routes = routes.routes.len(),
                    "routes applied"
                );
                edge.apply(&routes);
            }
            Ok(None) => backoff.reset(),
            // Asked on the identity the edge is replacing: ask again on the new one.
            Err(AgentError::IdentityRefused { .. })
                if renewals % 2 == 1 || cp.renewals.load(Ordering::SeqCst) != renewals =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e @ AgentError::IdentityRefused { .. }) => {
                tracing::error!(error = %e, "the control plane refuses this edge; stopping");
                return Err(e);
            }
            Err(e) => {
                tracing::warn!(error = %e, "fetching the routes failed; keeping the ones in force");
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
}

async fn report(
    edge: Arc<Edge>,
    cp: Arc<Client>,
    metrics_addr: SocketAddr,
    started_at: chrono::DateTime<Utc>,
    every: Duration,
    cancel: CancellationToken,
) {
    loop {
        let mut rejected: std::collections::BTreeMap<String, String> =
            edge.ingress.rejected().routes;
        rejected.extend(edge.unparsed.lock().expect("edge lock").iter().cloned());
        let obs = EdgeObserved {
            edge_id: edge.id.clone(),
            generation: edge.generation.load(Ordering::SeqCst),
            address: edge.ingress.local_addr().to_string(),
            metrics_address: metrics_addr.to_string(),
            version: crate::AGENT_VERSION.into(),
            pid: std::process::id(),
            started_at: Some(started_at),
            rejected,
            active_connections: edge.ingress.active_connections(),
        };
        let (client, _) = cp.get();
        if let Err(e) = client.report_edge(&obs).await {
            tracing::debug!(error = %e, "report failed");
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = edge.report_now.notified() => {}
            _ = tokio::time::sleep(every) => {}
        }
    }
}
