//! Every way a connection is refused, each counted once under its own reason, and none of them
//! reaching the upstream.

mod common;

use std::sync::Arc;

use chrono::Utc;
use common::*;
use rustls::ClientConfig;
use tessera_ingress::{FailureReason, IngressMetrics, Target};
use tessera_pki::CertificateAuthority;

const HOST_A: &str = "ns-a.acct.tessera.localhost";
const HOST_B: &str = "ns-b.acct.tessera.localhost";

/// Two namespaces of two tenants on one ingress, both served by one echo upstream.
struct Setup {
    pki: Pki,
    tenant_a: CertificateAuthority,
    tenant_b: CertificateAuthority,
    upstream: Echo,
    ingress: tessera_ingress::Ingress,
    metrics: IngressMetrics,
    _cancel: tokio_util::sync::DropGuard,
}

impl Setup {
    async fn new() -> Self {
        let pki = Pki::new();
        let tenant_a = tenant_ca("tenant a");
        let tenant_b = tenant_ca("tenant b");
        let upstream = Echo::start().await;
        let local = Target::Local {
            addr: upstream.addr,
        };
        let routes = table(
            &pki,
            [
                (HOST_A, route(&tenant_a, local.clone())),
                (HOST_B, route(&tenant_b, local)),
            ],
        );
        let (ingress, metrics, cancel) = start_ingress(routes).await;
        Self {
            pki,
            tenant_a,
            tenant_b,
            upstream,
            ingress,
            metrics,
            _cancel: cancel.drop_guard(),
        }
    }

    fn client(&self, cert: Option<&tessera_pki::IssuedCert>) -> Arc<ClientConfig> {
        client_config(&self.pki.trust_pem(), cert)
    }

    /// The attempt fails, is counted under `reason` and nothing else, and never reaches the
    /// upstream.
    async fn refused(&self, host: &str, config: Arc<ClientConfig>, reason: FailureReason) {
        expect_refused(self.ingress.local_addr(), host, config).await;
        eventually(&format!("a {reason} refusal to be counted"), || {
            self.metrics.failures(reason) == 1
        })
        .await;
        assert_eq!(
            self.metrics.total_failures(),
            1,
            "counted once, under {reason} only"
        );
        assert_eq!(self.upstream.accepted(), 0);
        for target in ["local", "forward", "external"] {
            assert_eq!(self.metrics.connections(target), 0);
        }
    }
}

#[tokio::test]
async fn the_right_certificate_is_accepted_on_both_hosts() {
    // The control case for everything below: the setup itself lets good clients through.
    let s = Setup::new().await;
    let a = s.client(Some(&client_cert(&s.tenant_a)));
    let b = s.client(Some(&client_cert(&s.tenant_b)));
    echo_once(s.ingress.local_addr(), HOST_A, a).await.unwrap();
    echo_once(s.ingress.local_addr(), HOST_B, b).await.unwrap();
    assert_eq!(s.metrics.connections("local"), 2);
    assert_eq!(s.metrics.total_failures(), 0);
}

#[tokio::test]
async fn a_certificate_from_an_unknown_ca_is_refused() {
    let s = Setup::new().await;
    let stranger = tenant_ca("stranger");
    let config = s.client(Some(&client_cert(&stranger)));
    s.refused(HOST_A, config, FailureReason::UnknownCa).await;
}

#[tokio::test]
async fn a_client_without_certificate_is_refused() {
    let s = Setup::new().await;
    s.refused(HOST_A, s.client(None), FailureReason::NoClientCert)
        .await;
}

#[tokio::test]
async fn an_expired_certificate_is_refused() {
    let s = Setup::new().await;
    let now = Utc::now();
    let expired = s
        .tenant_a
        .issue_between(
            "worker",
            &[],
            tessera_pki::Usage::Client,
            now - DAY * 2,
            now - DAY,
        )
        .unwrap();
    s.refused(HOST_A, s.client(Some(&expired)), FailureReason::Expired)
        .await;
}

#[tokio::test]
async fn an_x509_v1_certificate_is_refused() {
    let s = Setup::new().await;
    let now = Utc::now();
    let v1 =
        tessera_pki::testing::v1_certificate(&s.tenant_a, "worker", now - DAY, now + DAY).unwrap();
    s.refused(HOST_A, s.client(Some(&v1)), FailureReason::NotV3)
        .await;
}

#[tokio::test]
async fn an_unknown_host_is_refused() {
    let s = Setup::new().await;
    let config = s.client(Some(&client_cert(&s.tenant_a)));
    s.refused(
        "nobody.acct.tessera.localhost",
        config,
        FailureReason::UnknownSni,
    )
    .await;
}

#[tokio::test]
async fn a_client_hello_without_sni_is_refused() {
    let s = Setup::new().await;
    let config = s.client(Some(&client_cert(&s.tenant_a)));
    // An IP address as server name: rustls then sends no SNI.
    s.refused("127.0.0.1", config, FailureReason::NoSni).await;
}

#[tokio::test]
async fn tenant_a_certificate_for_tenant_b_host_is_cross_tenant() {
    let s = Setup::new().await;
    let config = s.client(Some(&client_cert(&s.tenant_a)));
    s.refused(HOST_B, config, FailureReason::CrossTenant).await;
}

#[tokio::test]
async fn an_unreachable_runtime_is_counted_and_the_client_released() {
    let pki = Pki::new();
    let tenant = tenant_ca("tenant");
    let addr = closed_port().await;
    let (ingress, metrics, cancel) = start_ingress(table(
        &pki,
        [(HOST_A, route(&tenant, Target::Local { addr }))],
    ))
    .await;
    let config = client_config(&pki.trust_pem(), Some(&client_cert(&tenant)));
    expect_refused(ingress.local_addr(), HOST_A, config).await;
    eventually("upstream_unavailable to be counted", || {
        metrics.failures(FailureReason::UpstreamUnavailable) == 1
    })
    .await;
    assert_eq!(metrics.total_failures(), 1);
    assert_eq!(metrics.connections("local"), 0);
    cancel.cancel();
}
