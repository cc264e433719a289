//! The ingress benchmark, as a library so that a test can run a tiny version of it.
//!
//! One run measures the same upstreams three ways: directly in cleartext (the goal's baseline),
//! directly over the same mTLS the ingress speaks ("direct TLS", which isolates the cost of
//! the extra hop), and through the ingress. Small HTTP/2 request/response gives throughput and
//! latency; one bulk TCP stream gives MB/s. For reference, the same TLS also goes through the
//! ingress's forward route to the direct-TLS upstreams: a hop that only copies bytes, which
//! shows what any extra hop costs on the machine.

mod load;
mod report;

use std::time::Duration;

pub use report::{BenchReport, H2Numbers, Machine, replace_section};

use crate::IngressError;

/// How much to measure.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// How long each throughput measurement runs.
    pub duration: Duration,
    /// HTTP/2 connections for the throughput measurement.
    pub connections: usize,
    /// Concurrent HTTP/2 streams, spread over `connections`.
    pub streams: usize,
    /// Sequential requests timed one by one for the latency percentiles.
    pub latency_requests: usize,
    /// Requests sent (and not timed) before each measurement.
    pub warmup_requests: usize,
    /// Bytes written by the TCP streaming measurement.
    pub stream_bytes: u64,
    /// Size of each write of the streaming measurement.
    pub chunk_bytes: usize,
    /// Worker threads of the ingress's own runtime.
    pub ingress_threads: usize,
}

impl BenchConfig {
    /// The full run: a few seconds per throughput measurement, 2 GiB streamed.
    pub fn full(duration: Duration) -> Self {
        Self {
            duration,
            connections: 4,
            streams: 64,
            latency_requests: 5000,
            warmup_requests: 500,
            stream_bytes: 2 << 30,
            chunk_bytes: 64 << 10,
            ingress_threads: 1,
        }
    }

    /// A short run for CI smoke checks.
    pub fn quick() -> Self {
        Self {
            duration: Duration::from_secs(1),
            latency_requests: 1000,
            warmup_requests: 100,
            stream_bytes: 256 << 20,
            ..Self::full(Duration::from_secs(1))
        }
    }

    /// Just enough traffic to prove every path works.
    pub fn smoke() -> Self {
        Self {
            duration: Duration::from_millis(200),
            connections: 2,
            streams: 4,
            latency_requests: 20,
            warmup_requests: 5,
            stream_bytes: 4 << 20,
            chunk_bytes: 64 << 10,
            ingress_threads: 1,
        }
    }
}

/// Runs every measurement: direct, direct TLS, then through the ingress.
pub async fn run(config: &BenchConfig) -> Result<BenchReport, IngressError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let fixture = load::Fixture::start(config.ingress_threads).await?;
    let result = measure(config, &fixture).await;
    fixture.stop().await;
    result
}

async fn measure(
    config: &BenchConfig,
    fixture: &load::Fixture,
) -> Result<BenchReport, IngressError> {
    let (direct_rps, _, _) = load::h2_throughput(config, || fixture.h2_direct()).await?;
    let (direct_tls_rps, _, _) = load::h2_throughput(config, || fixture.h2_direct_tls()).await?;
    let (ingress_rps, requests, h2_cpu) =
        load::h2_throughput(config, || fixture.h2_via_ingress()).await?;
    let (forward_rps, _, _) = load::h2_throughput(config, || fixture.h2_via_forward()).await?;
    let [direct, direct_tls, ingress, edge] = load::h2_latency(
        config,
        [
            fixture.h2_direct().await?,
            fixture.h2_direct_tls().await?,
            fixture.h2_via_ingress().await?,
            fixture.h2_via_edge().await?,
        ],
    )
    .await?;
    let (tcp_direct, _) = load::stream(config, fixture.sink_direct().await?).await?;
    let (tcp_direct_tls, _) = load::stream(config, fixture.sink_direct_tls().await?).await?;
    let (tcp_ingress, tcp_cpu) = load::stream(config, fixture.sink_via_ingress().await?).await?;
    let (tcp_forward, _) = load::stream(config, fixture.sink_via_forward().await?).await?;
    let numbers = |requests_per_sec, (p50, p99)| H2Numbers {
        requests_per_sec,
        p50,
        p99,
    };
    Ok(BenchReport {
        config: config.clone(),
        h2_direct: numbers(direct_rps, direct),
        h2_direct_tls: numbers(direct_tls_rps, direct_tls),
        h2_ingress: numbers(ingress_rps, ingress),
        tcp_direct_mb_s: tcp_direct,
        tcp_direct_tls_mb_s: tcp_direct_tls,
        tcp_ingress_mb_s: tcp_ingress,
        h2_forward_rps: forward_rps,
        h2_edge_latency: edge,
        tcp_forward_mb_s: tcp_forward,
        ingress_cpu_per_request: h2_cpu.div_f64(requests.max(1) as f64),
        ingress_cpu_per_gb: tcp_cpu.div_f64(config.stream_bytes as f64 / 1e9),
    })
}

fn bench_err(context: &str, e: impl std::fmt::Display) -> IngressError {
    IngressError::Bench(format!("{context}: {e}"))
}
