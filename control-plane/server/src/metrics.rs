//! Prometheus metrics of the control plane, served on `/metrics`.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

use crate::auth::PlatformAdmin;
use crate::state::SharedState;

#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub rate_limited: IntCounter,
    pub csrf_refused: IntCounter,
    /// Requests whose credentials (API key, session cookie) were not accepted.
    pub auth_failures: IntCounter,
    /// Credential look-ups in the store (API keys, sessions): past the failure limit of an
    /// address, its requests cost none.
    pub auth_lookups: IntCounter,
    pub signups: IntCounter,
    pub temporal_up: IntGauge,
    pub temporal_restarts: IntCounter,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("tessera".into()), None).expect("valid prefix");
        let http_requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by route and status"),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let http_duration = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency"),
            &["method", "route"],
        )
        .expect("valid metric");
        let rate_limited = IntCounter::new("rate_limited_total", "Requests refused with 429")
            .expect("valid metric");
        let csrf_refused = IntCounter::new(
            "csrf_refused_total",
            "State-changing requests refused for a foreign Origin or a missing CSRF token",
        )
        .expect("valid metric");
        let auth_failures = IntCounter::new(
            "auth_failures_total",
            "Requests whose API key or session was not accepted",
        )
        .expect("valid metric");
        let auth_lookups = IntCounter::new(
            "auth_lookups_total",
            "Credential look-ups in the store (API keys and sessions)",
        )
        .expect("valid metric");
        let signups = IntCounter::new("signups_total", "Completed sign-ups").expect("valid metric");
        let temporal_up = IntGauge::new(
            "temporal_server_up",
            "1 while the supervised Temporal server runs",
        )
        .expect("valid metric");
        let temporal_restarts = IntCounter::new(
            "temporal_server_restarts_total",
            "Restarts of the supervised Temporal server",
        )
        .expect("valid metric");
        for c in [
            Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(http_duration.clone()),
            Box::new(rate_limited.clone()),
            Box::new(csrf_refused.clone()),
            Box::new(auth_failures.clone()),
            Box::new(auth_lookups.clone()),
            Box::new(signups.clone()),
            Box::new(temporal_up.clone()),
            Box::new(temporal_restarts.clone()),
        ] {
            registry.register(c).expect("metric registered once");
        }
        Self {
            registry,
            http_requests,
            http_duration,
            rate_limited,
            csrf_refused,
            auth_failures,
            auth_lookups,
            signups,
            temporal_up,
            temporal_restarts,
        }
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding of gathered metrics");
        String::from_utf8(buf).expect("prometheus text is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Counts and times every request by its route template (never the raw path: bounded labels).
pub async fn track(State(st): State<SharedState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let start = Instant::now();
    let resp = next.run(req).await;
    st.metrics
        .http_duration
        .with_label_values(&[method.as_str(), route.as_str()])
        .observe(start.elapsed().as_secs_f64());
    st.metrics
        .http_requests
        .with_label_values(&[method.as_str(), route.as_str(), resp.status().as_str()])
        .inc();
    resp
}

/// `/metrics` on the API's listener: for platform admins only (the counters describe every
/// tenant's traffic). Scrapers use the metrics listener instead.
pub async fn serve(State(st): State<SharedState>, _admin: PlatformAdmin) -> impl IntoResponse {
    render(&st)
}

fn render(st: &SharedState) -> impl IntoResponse + use<> {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.metrics.render(),
    )
}

/// Serves `/metrics` without authentication on its own listener (`TESSERA_METRICS_ADDR`, an
/// address only the monitoring network reaches), until `cancel`.
pub async fn listen(
    st: SharedState,
    listener: tokio::net::TcpListener,
    cancel: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(|State(st): State<SharedState>| async move { render(&st) }),
        )
        .with_state(st);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await
}
