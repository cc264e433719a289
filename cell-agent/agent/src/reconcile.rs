//! Intent vs observed, decided without I/O: which ingress routes the cell should serve now.
//!
//! A route to a local runtime that is not serving (starting, restarting) becomes a bounded hold,
//! so a client that connects in that window waits for the runtime instead of failing.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use tessera_api::agent::{DesiredState, RouteTargetSpec};
use tessera_ingress::{Route, RouteTable, ServerCert, Target, UpstreamTls};

/// How long a connection waits for a local runtime that is not serving yet.
pub const LOCAL_HOLD: Duration = Duration::from_secs(20);

/// The ingress table for `desired`, given which runtimes serve where right now.
/// Routes whose target cannot be expressed (an unparsable forward address) are left out.
pub fn route_table(
    desired: &DesiredState,
    serving: impl Fn(&str) -> Option<SocketAddr>,
) -> RouteTable {
    let mut routes = BTreeMap::new();
    for (host, spec) in &desired.routes {
        let target = match &spec.target {
            RouteTargetSpec::Local { runtime } => match serving(runtime) {
                Some(addr) => Target::Local { addr },
                None => Target::Hold {
                    max_wait: LOCAL_HOLD,
                },
            },
            RouteTargetSpec::Forward { address } => match address.parse() {
                Ok(addr) => Target::Forward { addr },
                Err(_) => {
                    tracing::warn!(%host, %address, "forward address is not host:port; route skipped");
                    continue;
                }
            },
            RouteTargetSpec::External { address, tls } => Target::External {
                addr: address.clone(),
                tls: tls.as_ref().map(|t| UpstreamTls {
                    server_name: t.server_name.clone(),
                    root_ca_pem: t.root_ca_pem.clone(),
                    client_cert_pem: t.client_cert_pem.clone(),
                    client_key_pem: t.client_key_pem.clone(),
                }),
            },
            RouteTargetSpec::Hold { max_wait_ms } => Target::Hold {
                max_wait: Duration::from_millis(*max_wait_ms),
            },
        };
        routes.insert(
            host.to_ascii_lowercase(),
            Route {
                accepted_ca_pem: spec.accepted_ca_pem.clone(),
                target,
            },
        );
    }
    RouteTable {
        routes,
        server_certs: desired
            .server_certs
            .iter()
            .map(|c| ServerCert {
                chain_pem: c.chain_pem.clone(),
                key_pem: c.key_pem.clone(),
            })
            .collect(),
    }
}

/// A comparable summary of a table, to update the ingress only when something changed.
pub fn table_key(t: &RouteTable) -> String {
    let routes: Vec<String> = t
        .routes
        .iter()
        .map(|(h, r)| {
            format!(
                "{h}|{:?}|{}",
                target_key(&r.target),
                r.accepted_ca_pem.len()
            )
        })
        .collect();
    let certs: Vec<&str> = t
        .server_certs
        .iter()
        .map(|c| c.chain_pem.as_str())
        .collect();
    let cas: Vec<&str> = t
        .routes
        .values()
        .map(|r| r.accepted_ca_pem.as_str())
        .collect();
    format!("{routes:?}{certs:?}{cas:?}")
}

fn target_key(t: &Target) -> String {
    match t {
        Target::Local { addr } => format!("local:{addr}"),
        Target::Forward { addr } => format!("forward:{addr}"),
        Target::External { addr, tls } => format!("external:{addr}:{}", tls.is_some()),
        Target::Hold { max_wait } => format!("hold:{max_wait:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_api::agent::{RouteSpec, ServerCertSpec};

    fn desired() -> DesiredState {
        let mut d = DesiredState {
            cell_id: "c".into(),
            generation: 3,
            ..Default::default()
        };
        for (host, target) in [
            (
                "a.acme.t",
                RouteTargetSpec::Local {
                    runtime: "ns-a".into(),
                },
            ),
            (
                "b.acme.t",
                RouteTargetSpec::Local {
                    runtime: "ns-b".into(),
                },
            ),
            (
                "c.acme.t",
                RouteTargetSpec::Forward {
                    address: "127.0.0.1:9".into(),
                },
            ),
            (
                "d.acme.t",
                RouteTargetSpec::Forward {
                    address: "nonsense".into(),
                },
            ),
            ("E.acme.t", RouteTargetSpec::Hold { max_wait_ms: 1500 }),
        ] {
            d.routes.insert(
                host.into(),
                RouteSpec {
                    accepted_ca_pem: "CA".into(),
                    target,
                },
            );
        }
        d.server_certs.push(ServerCertSpec {
            chain_pem: "chain".into(),
            key_pem: "key".into(),
        });
        d
    }

    #[test]
    fn serving_runtimes_are_routed_others_held() {
        let addr: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        let t = route_table(&desired(), |id| (id == "ns-a").then_some(addr));
        assert!(matches!(t.routes["a.acme.t"].target, Target::Local { addr: a } if a == addr));
        assert!(
            matches!(t.routes["b.acme.t"].target, Target::Hold { max_wait } if max_wait == LOCAL_HOLD)
        );
        assert!(matches!(
            t.routes["c.acme.t"].target,
            Target::Forward { .. }
        ));
        assert!(
            !t.routes.contains_key("d.acme.t"),
            "unparsable forward is skipped"
        );
        assert!(
            matches!(t.routes["e.acme.t"].target, Target::Hold { max_wait } if max_wait == Duration::from_millis(1500))
        );
        assert_eq!(t.server_certs.len(), 1);
    }

    #[test]
    fn table_key_changes_when_a_runtime_starts_serving() {
        let addr: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        let before = table_key(&route_table(&desired(), |_| None));
        let same = table_key(&route_table(&desired(), |_| None));
        let after = table_key(&route_table(&desired(), |_| Some(addr)));
        assert_eq!(before, same);
        assert_ne!(before, after);
    }
}
