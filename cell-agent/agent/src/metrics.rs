//! The agent's Prometheus endpoint (agent and ingress metrics in one registry).

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use prometheus::{Encoder, IntCounter, IntGauge, Registry, TextEncoder};
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub struct AgentMetrics {
    pub registry: Registry,
    pub desired_generation: IntGauge,
    pub applied_generation: IntGauge,
    pub runtimes_serving: IntGauge,
    pub reports_failed: IntCounter,
    pub control_plane_reachable: IntGauge,
}

impl AgentMetrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let gauge = |n: &str, h: &str| -> Result<IntGauge, prometheus::Error> {
            let g = IntGauge::new(n, h)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let reports_failed = IntCounter::new(
            "tessera_agent_reports_failed_total",
            "Observed-state reports the control plane did not take",
        )?;
        registry.register(Box::new(reports_failed.clone()))?;
        Ok(Self {
            desired_generation: gauge(
                "tessera_agent_desired_generation",
                "Newest desired-state generation received",
            )?,
            applied_generation: gauge(
                "tessera_agent_applied_generation",
                "Desired-state generation applied",
            )?,
            runtimes_serving: gauge(
                "tessera_agent_runtimes_serving",
                "Namespace runtimes answering SERVING",
            )?,
            control_plane_reachable: gauge(
                "tessera_agent_control_plane_reachable",
                "1 when the last call to the control plane succeeded",
            )?,
            reports_failed,
            registry,
        })
    }
}

/// Serves `/metrics` until `cancel`; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    registry: Registry,
    cancel: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let registry = registry.clone();
            async move {
                let mut buf = Vec::new();
                let _ = TextEncoder::new().encode(&registry.gather(), &mut buf);
                String::from_utf8(buf).unwrap_or_default()
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { cancel.cancelled().await })
            .await;
    });
    Ok(local)
}
