//! Route changes: live traffic survives them, and held connections wait for them.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::*;
use tessera_ingress::{FailureReason, Target};
use tessera_pki::certs_from_pem;
use tokio::io::AsyncReadExt;

const HOST: &str = "ns1.acct.tessera.localhost";
const OTHER: &str = "ns.other.tessera.localhost";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_changes_under_live_traffic_drop_no_established_connection() {
    let pki = Pki::new();
    let tenant = tenant_ca("tenant");
    let (first, second) = (Echo::start().await, Echo::start().await);
    let (ingress, metrics, cancel) = start_ingress(table(
        &pki,
        [(HOST, route(&tenant, Target::Local { addr: first.addr }))],
    ))
    .await;
    let config = client_config(&pki.trust_pem(), Some(&client_cert(&tenant)));

    // Streams that send and check echo traffic without pause until told to stop.
    const STREAMS: usize = 4;
    let stop = Arc::new(AtomicBool::new(false));
    let rounds: Arc<Vec<AtomicU64>> = Arc::new((0..STREAMS).map(|_| AtomicU64::new(0)).collect());
    let mut streams = tokio::task::JoinSet::new();
    for i in 0..STREAMS {
        let mut tls = connect(ingress.local_addr(), HOST, config.clone())
            .await
            .unwrap();
        let (stop, rounds) = (stop.clone(), rounds.clone());
        streams.spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let msg: Vec<u8> = (0..16 * 1024).map(|j| (i as u64 + n + j) as u8).collect();
                round_trip(&mut tls, &msg).await?;
                n += 1;
                rounds[i].store(n, Ordering::SeqCst);
            }
            Ok::<_, std::io::Error>(n)
        });
    }
    let progress = || {
        rounds
            .iter()
            .map(|r| r.load(Ordering::SeqCst))
            .collect::<Vec<_>>()
    };
    eventually("every stream to be flowing", || {
        progress().iter().all(|n| *n > 0)
    })
    .await;

    let mut last_cert = String::new();
    for update in 0..20 {
        let before = progress();
        let mut next = table(&pki, []);
        // Alternate the host's upstream, add and drop a neighbour, rotate the server certificate.
        let upstream = if update % 2 == 0 {
            second.addr
        } else {
            first.addr
        };
        next.routes.insert(
            HOST.into(),
            route(&tenant, Target::Local { addr: upstream }),
        );
        if update % 3 != 0 {
            let neighbour = tenant_ca("neighbour");
            next.routes.insert(
                OTHER.into(),
                route(&neighbour, Target::Local { addr: first.addr }),
            );
        }
        next.server_certs = vec![Pki::issue_server_cert(&pki.cell_ca)];
        last_cert = next.server_certs[0].chain_pem.clone();
        assert!(ingress.update(next).is_empty());
        eventually("traffic to flow after the update", || {
            progress().iter().zip(&before).all(|(now, then)| now > then)
        })
        .await;
    }
    // The last update pointed the host at `first`; point it at `second` once more for good.
    let mut last = (*ingress.routes()).clone();
    last.routes.get_mut(HOST).unwrap().target = Target::Local { addr: second.addr };
    assert!(ingress.update(last).is_empty());

    stop.store(true, Ordering::SeqCst);
    while let Some(stream) = streams.join_next().await {
        let rounds = stream
            .unwrap()
            .expect("an established connection broke during updates");
        assert!(rounds > 20);
    }
    assert_eq!(
        first.accepted(),
        STREAMS,
        "established connections stayed on their upstream"
    );
    assert_eq!(second.accepted(), 0);

    // A new connection goes to the new upstream, with the newest server certificate.
    let mut tls = connect(ingress.local_addr(), HOST, config).await.unwrap();
    round_trip(&mut tls, b"after the updates").await.unwrap();
    assert_eq!(second.accepted(), 1);
    assert_eq!(first.accepted(), STREAMS);
    let presented = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    assert_eq!(presented, certs_from_pem(&last_cert).unwrap()[0]);
    assert_eq!(metrics.route_updates(), 21);
    assert_eq!(metrics.total_failures(), 0);
    cancel.cancel();
}

#[tokio::test]
async fn a_held_connection_is_served_once_the_route_flips() {
    let pki = Pki::new();
    let tenant = tenant_ca("tenant");
    let upstream = Echo::start().await;
    let hold = Target::Hold {
        max_wait: Duration::from_secs(5),
    };
    let (ingress, metrics, cancel) =
        start_ingress(table(&pki, [(HOST, route(&tenant, hold))])).await;
    let config = client_config(&pki.trust_pem(), Some(&client_cert(&tenant)));

    let client = tokio::spawn(echo_once(ingress.local_addr(), HOST, config));
    eventually("the connection to be held", || metrics.held() == 1).await;
    assert!(!client.is_finished());
    let released = ingress.update(table(
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
    ));
    assert!(released.is_empty());
    client
        .await
        .unwrap()
        .expect("the held connection is served by the new target");
    assert_eq!(metrics.held(), 0);
    assert_eq!(metrics.connections("local"), 1);
    assert_eq!(metrics.total_failures(), 0);
    cancel.cancel();
}

#[tokio::test]
async fn a_hold_that_outlasts_max_wait_ends_in_a_clean_close() {
    let pki = Pki::new();
    let tenant = tenant_ca("tenant");
    let hold = Target::Hold {
        max_wait: Duration::from_millis(300),
    };
    let (ingress, metrics, cancel) =
        start_ingress(table(&pki, [(HOST, route(&tenant, hold))])).await;
    let config = client_config(&pki.trust_pem(), Some(&client_cert(&tenant)));

    let outcome = tokio::time::timeout(Duration::from_secs(10), async {
        let mut tls = connect(ingress.local_addr(), HOST, config).await?;
        let mut buf = [0u8; 16];
        tls.read(&mut buf).await
    })
    .await
    .expect("the client is released, not left hanging");
    assert_eq!(outcome.unwrap(), 0, "a TLS close_notify, then EOF");
    assert_eq!(metrics.failures(FailureReason::HoldTimeout), 1);
    assert_eq!(metrics.total_failures(), 1);
    assert_eq!(metrics.held(), 0);
    cancel.cancel();
}

#[tokio::test]
async fn a_held_connection_whose_route_disappears_is_refused() {
    let pki = Pki::new();
    let tenant = tenant_ca("tenant");
    let hold = Target::Hold {
        max_wait: Duration::from_secs(5),
    };
    let (ingress, metrics, cancel) =
        start_ingress(table(&pki, [(HOST, route(&tenant, hold))])).await;
    let config = client_config(&pki.trust_pem(), Some(&client_cert(&tenant)));

    let client = tokio::spawn(echo_once(ingress.local_addr(), HOST, config));
    eventually("the connection to be held", || metrics.held() == 1).await;
    assert!(ingress.update(table(&pki, [])).is_empty());
    let outcome = tokio::time::timeout(Duration::from_secs(10), client).await;
    assert!(outcome.expect("released at once").unwrap().is_err());
    assert_eq!(metrics.failures(FailureReason::UnknownSni), 1);
    assert_eq!(metrics.total_failures(), 1);
    cancel.cancel();
}
