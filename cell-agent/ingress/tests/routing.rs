//! Connections reach the right upstream: local runtimes, other cells' ingresses, external clusters.

mod common;

use std::sync::Arc;

use common::*;
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use tessera_ingress::{FailureReason, Target, UpstreamTls};
use tessera_pki::{Usage, certs_from_pem, key_from_pem, roots_from_pem};

const HOST: &str = "ns1.acct.tessera.localhost";

#[tokio::test]
async fn the_tenants_certificate_reaches_the_local_runtime() {
    let pki = Pki::new();
    let tenant = tenant_ca("tenant");
    let upstream = Echo::start().await;
    let (ingress, metrics, cancel) = start_ingress(table(
        &pki,
        [(
            HOST,
            route(
                &tenant,
                Target::Local {
                    addr: upstream.addr,
                },
            ),
        )],
    ))
    .await;

    let config = client_config(&pki.trust_pem(), Some(&client_cert(&tenant)));
    let mut tls = connect(ingress.local_addr(), HOST, config).await.unwrap();
    assert_eq!(
        tls.get_ref().1.alpn_protocol(),
        None,
        "the client offered no ALPN"
    );
    round_trip(&mut tls, b"a first message").await.unwrap();
    round_trip(&mut tls, &[7u8; 100_000]).await.unwrap();

    assert_eq!(metrics.connections("local"), 1);
    assert_eq!(upstream.accepted(), 1);
    assert_eq!(ingress.active_connections(), 1);
    assert_eq!(metrics.total_failures(), 0);
    assert!(metrics.bytes_client_to_upstream() >= 100_015);
    drop(tls);
    eventually("the connection to close", || {
        ingress.active_connections() == 0
    })
    .await;
    assert_eq!(metrics.active(), 0);
    assert_eq!(
        metrics.bytes_upstream_to_client(),
        metrics.bytes_client_to_upstream()
    );

    cancel.cancel();
    ingress.stopped().await;
    upstream.stop().await;
}

#[tokio::test]
async fn h2_is_negotiated_with_clients_that_ask_for_it() {
    let pki = Pki::new();
    let tenant = tenant_ca("tenant");
    let upstream = Echo::start().await;
    let (ingress, _metrics, cancel) = start_ingress(table(
        &pki,
        [(
            HOST,
            route(
                &tenant,
                Target::Local {
                    addr: upstream.addr,
                },
            ),
        )],
    ))
    .await;
    let mut config = (*client_config(&pki.trust_pem(), Some(&client_cert(&tenant)))).clone();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tls = connect(ingress.local_addr(), HOST, Arc::new(config))
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    cancel.cancel();
}

#[tokio::test]
async fn forward_passes_tls_through_to_the_cell_that_checks_the_certificate() {
    let pki = Pki::new();
    let tenant = tenant_ca("tenant");
    let upstream = Echo::start().await;
    let (cell_b, metrics_b, cancel_b) = start_ingress(table(
        &pki,
        [(
            HOST,
            route(
                &tenant,
                Target::Local {
                    addr: upstream.addr,
                },
            ),
        )],
    ))
    .await;
    // Cell A holds no server certificate at all: it never terminates this host's TLS.
    let mut routes_a = table(
        &pki,
        [(
            HOST,
            route(
                &tenant,
                Target::Forward {
                    addr: cell_b.local_addr(),
                },
            ),
        )],
    );
    routes_a.server_certs.clear();
    let (cell_a, metrics_a, cancel_a) = start_ingress(routes_a).await;

    let good = client_config(&pki.trust_pem(), Some(&client_cert(&tenant)));
    echo_once(cell_a.local_addr(), HOST, good).await.unwrap();
    assert_eq!(metrics_a.connections("forward"), 1);
    assert_eq!(metrics_b.connections("local"), 1);
    assert_eq!(upstream.accepted(), 1);

    let stranger = tenant_ca("stranger");
    let bad = client_config(&pki.trust_pem(), Some(&client_cert(&stranger)));
    expect_refused(cell_a.local_addr(), HOST, bad).await;
    eventually("cell B to refuse the certificate", || {
        metrics_b.failures(FailureReason::UnknownCa) == 1
    })
    .await;
    assert_eq!(
        metrics_a.total_failures(),
        0,
        "cell A does not look at certificates"
    );
    assert_eq!(metrics_a.connections("forward"), 2);
    assert_eq!(upstream.accepted(), 1);

    cancel_a.cancel();
    cancel_b.cancel();
}

#[tokio::test]
async fn external_upstreams_are_reached_over_their_own_mtls() {
    let pki = Pki::new();
    let tenant = tenant_ca("tenant");
    // The customer's cluster: its own CA, its own server certificate, and it wants a client
    // certificate from the ingress too.
    let theirs = tenant_ca("customer cluster");
    let their_server = theirs
        .issue(
            "frontend",
            &["temporal.customer.test".into()],
            Usage::Server,
            DAY,
        )
        .unwrap();
    let our_identity = theirs
        .issue("tessera ingress", &[], Usage::Client, DAY)
        .unwrap();
    let provider = provider();
    let verifier = WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots_from_pem(&theirs.cert_pem).unwrap()),
        provider.clone(),
    )
    .build()
    .unwrap();
    let server_config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            certs_from_pem(&their_server.chain_pem).unwrap(),
            key_from_pem(&their_server.key_pem).unwrap(),
        )
        .unwrap();
    let upstream = Echo::start_with(Some(Arc::new(server_config))).await;

    let target = Target::External {
        addr: upstream.addr.to_string(),
        tls: Some(UpstreamTls {
            server_name: "temporal.customer.test".into(),
            root_ca_pem: theirs.cert_pem.clone(),
            client_cert_pem: Some(our_identity.chain_pem.clone()),
            client_key_pem: Some(our_identity.key_pem.clone()),
        }),
    };
    let (ingress, metrics, cancel) =
        start_ingress(table(&pki, [(HOST, route(&tenant, target))])).await;
    let config = client_config(&pki.trust_pem(), Some(&client_cert(&tenant)));
    echo_once(ingress.local_addr(), HOST, config).await.unwrap();
    assert_eq!(metrics.connections("external"), 1);
    assert_eq!(upstream.accepted(), 1);
    assert_eq!(metrics.total_failures(), 0);
    cancel.cancel();
}

#[tokio::test]
async fn a_route_that_does_not_load_is_left_out_and_the_others_serve() {
    const OTHER: &str = "ns2.acct.tessera.localhost";
    let pki = Pki::new();
    let tenant = tenant_ca("tenant");
    let neighbour = tenant_ca("neighbour");
    let upstream = Echo::start().await;
    let local = Target::Local {
        addr: upstream.addr,
    };
    let good = table(&pki, [(HOST, route(&tenant, local.clone()))]);
    let (ingress, metrics, cancel) = start_ingress(good.clone()).await;
    let config = client_config(&pki.trust_pem(), Some(&client_cert(&tenant)));
    let neighbour_config = client_config(&pki.trust_pem(), Some(&client_cert(&neighbour)));

    // A neighbour's bundle the ingress cannot load: only its route is left out, and a route
    // added in the same update serves.
    let mut bad_ca = table(
        &pki,
        [
            (HOST, route(&tenant, local.clone())),
            (OTHER, route(&neighbour, local.clone())),
        ],
    );
    bad_ca.routes.get_mut(OTHER).unwrap().accepted_ca_pem = "not a certificate".into();
    let rejected = ingress.update(bad_ca.clone());
    assert_eq!(rejected.routes.keys().collect::<Vec<_>>(), [OTHER]);
    assert!(
        rejected.routes[OTHER].contains("accepted CA bundle"),
        "{rejected:?}"
    );
    assert_eq!(ingress.rejected(), rejected);
    assert_eq!(*ingress.routes(), bad_ca);
    echo_once(ingress.local_addr(), HOST, config.clone())
        .await
        .unwrap();
    expect_refused(ingress.local_addr(), OTHER, neighbour_config.clone()).await;

    // Fixed in the next update: it serves.
    let fixed = table(
        &pki,
        [
            (HOST, route(&tenant, local.clone())),
            (OTHER, route(&neighbour, local.clone())),
        ],
    );
    assert!(ingress.update(fixed).is_empty());
    echo_once(ingress.local_addr(), OTHER, neighbour_config)
        .await
        .unwrap();

    // A server certificate whose key is not its own: it is left out, and so is every route
    // it alone would have served.
    let mut bad_key = good.clone();
    bad_key.server_certs[0].key_pem = Pki::issue_server_cert(&pki.cell_ca).key_pem;
    let rejected = ingress.update(bad_key);
    assert_eq!(rejected.server_certs.keys().collect::<Vec<_>>(), [&0]);
    assert!(
        rejected.routes[HOST].contains("no server certificate"),
        "{rejected:?}"
    );

    let mut upper = good.clone();
    let r = upper.routes.remove(HOST).unwrap();
    upper.routes.insert(HOST.to_uppercase(), r);
    assert!(
        ingress
            .update(upper)
            .routes
            .contains_key(&HOST.to_uppercase())
    );

    let mut to_itself = good.clone();
    to_itself.routes.get_mut(HOST).unwrap().target = Target::Forward {
        addr: ingress.local_addr(),
    };
    assert!(ingress.update(to_itself).routes[HOST].contains("itself"));

    assert!(ingress.update(good.clone()).is_empty());
    assert_eq!(*ingress.routes(), good);
    echo_once(ingress.local_addr(), HOST, config).await.unwrap();
    assert_eq!(metrics.failures(FailureReason::UnknownSni), 1);
    cancel.cancel();
}
