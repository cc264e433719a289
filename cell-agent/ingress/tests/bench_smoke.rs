//! The benchmark's code paths work end to end (a few requests, a few MiB), so that a broken
//! benchmark is noticed before anyone needs its numbers.

use tessera_ingress::bench::{self, BenchConfig, Machine};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_benchmark_runs_every_path() {
    let report = bench::run(&BenchConfig::smoke()).await.unwrap();
    assert!(report.h2_direct.requests_per_sec > 0.0);
    assert!(report.h2_direct_tls.requests_per_sec > 0.0);
    assert!(report.h2_direct_tls.p50 > std::time::Duration::ZERO);
    assert!(report.tcp_direct_tls_mb_s > 0.0);
    assert!(report.h2_ingress.requests_per_sec > 0.0);
    assert!(report.h2_ingress.p50 > std::time::Duration::ZERO);
    assert!(report.tcp_direct_mb_s > 0.0 && report.tcp_ingress_mb_s > 0.0);
    assert!(report.h2_forward_rps > 0.0 && report.tcp_forward_mb_s > 0.0);
    let md = report.markdown(&Machine::detect());
    assert!(md.starts_with("## Ingress\n"));
    assert!(md.contains("added median latency"));
    assert!(md.contains("| ingress vs direct TLS |"));
    assert!(md.contains("secondary view"));
    assert!(md.contains("| forward vs direct TLS |"));
}
