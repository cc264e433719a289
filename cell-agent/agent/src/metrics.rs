//! The agent's Prometheus endpoint (agent and ingress metrics in one registry).

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use std::collections::BTreeMap;

use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use tessera_api::agent::ReplicationObserved;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub struct AgentMetrics {
    pub registry: Registry,
    pub desired_generation: IntGauge,
    pub applied_generation: IntGauge,
    pub runtimes_serving: IntGauge,
    pub reports_failed: IntCounter,
    pub control_plane_reachable: IntGauge,
    /// Canary runs by `result` (`success`, `failure`).
    pub canary_runs: IntCounterVec,
    /// Start-to-result latency of successful canary runs.
    pub canary_latency: Histogram,
    /// Share of successful runs among the recent window.
    pub canary_success_ratio: Gauge,
    /// Store shipping, by `runtime` and `role` (`source`, `follower`).
    replication_lag_seconds: GaugeVec,
    replication_lag_bytes: IntGaugeVec,
    replication_stream: IntGaugeVec,
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
        let canary_runs = IntCounterVec::new(
            Opts::new(
                "tessera_agent_canary_runs_total",
                "Synthetic canary workflow runs, by result",
            ),
            &["result"],
        )?;
        registry.register(Box::new(canary_runs.clone()))?;
        let canary_latency = Histogram::with_opts(
            HistogramOpts::new(
                "tessera_agent_canary_latency_seconds",
                "Start-to-result latency of successful canary workflow runs",
            )
            .buckets(vec![
                0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0,
            ]),
        )?;
        registry.register(Box::new(canary_latency.clone()))?;
        let canary_success_ratio = Gauge::new(
            "tessera_agent_canary_success_ratio",
            "Share of successful canary runs among the last 100",
        )?;
        registry.register(Box::new(canary_success_ratio.clone()))?;
        let labels = ["runtime", "role"];
        let replication_lag_seconds = GaugeVec::new(
            Opts::new(
                "tessera_agent_replication_lag_seconds",
                "A follower: age of the oldest replica transaction it has not applied (0: none)",
            ),
            &labels,
        )?;
        registry.register(Box::new(replication_lag_seconds.clone()))?;
        let replication_lag_bytes = IntGaugeVec::new(
            Opts::new(
                "tessera_agent_replication_lag_bytes",
                "A follower: bytes of the replica's transactions it has not applied",
            ),
            &labels,
        )?;
        registry.register(Box::new(replication_lag_bytes.clone()))?;
        let replication_stream = IntGaugeVec::new(
            Opts::new(
                "tessera_agent_replication_stream",
                "The replica stream a source writes or a follower follows",
            ),
            &labels,
        )?;
        registry.register(Box::new(replication_stream.clone()))?;
        Ok(Self {
            replication_lag_seconds,
            replication_lag_bytes,
            replication_stream,
            canary_runs,
            canary_latency,
            canary_success_ratio,
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

impl AgentMetrics {
    /// Sets the store-shipping gauges to what the cell ships now (a stopped one disappears).
    pub fn replication(&self, shipping: &BTreeMap<String, ReplicationObserved>) {
        self.replication_lag_seconds.reset();
        self.replication_lag_bytes.reset();
        self.replication_stream.reset();
        for (runtime, r) in shipping {
            let labels = [runtime.as_str(), r.role.as_str()];
            if let Some(lag) = r.lag_seconds {
                self.replication_lag_seconds
                    .with_label_values(&labels)
                    .set(lag);
            }
            if let Some(bytes) = r.lag_bytes {
                self.replication_lag_bytes
                    .with_label_values(&labels)
                    .set(bytes.min(i64::MAX as u64) as i64);
            }
            if let Some(n) = r.stream {
                self.replication_stream
                    .with_label_values(&labels)
                    .set(n.min(i64::MAX as u64) as i64);
            }
        }
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
