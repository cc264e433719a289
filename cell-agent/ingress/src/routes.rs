//! The route table the agent hands to the ingress, and its compiled form: parsed certificates and
//! one cached rustls configuration per route, rebuilt on every update and never per connection.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls::ServerConfig;
use rustls_pki_types::ServerName;

use crate::tls::{self, SniCerts};

/// Everything the ingress serves. Replaced whole by `Ingress::update`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteTable {
    /// Keyed by SNI host, lowercase (`<namespace>.<account>.<base-domain>`).
    pub routes: BTreeMap<String, Route>,
    /// Server certificates. A connection gets the one whose DNS SANs match its SNI host, exactly
    /// or through a one-label wildcard (`*.acct.tessera.localhost`); if several match, the last
    /// listed wins, so a rotation appends the new certificate and later drops the old one.
    pub server_certs: Vec<ServerCert>,
}

/// A server certificate chain (leaf first) and its private key, PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerCert {
    pub chain_pem: String,
    pub key_pem: String,
}

/// Where one namespace's connections go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// PEM bundle of the CAs whose client certificates the namespace accepts. A cell ingress
    /// gives every route one, whatever its target: a held connection is refused with a full
    /// handshake, and the bundles of all routes tell a neighbour tenant's certificate from an
    /// unknown one. Empty on the edge, which never terminates TLS: such a route may only
    /// forward or hold, and a connection still held at `max_wait` gets an alert.
    pub accepted_ca_pem: String,
    pub target: Target,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Terminate mTLS, then plain TCP to the namespace runtime in this cell (Temporal gRPC, h2c).
    Local { addr: SocketAddr },
    /// Pass the TLS stream through untouched to the ingress of the cell that is active for the
    /// namespace; that ingress checks the client certificate.
    Forward { addr: SocketAddr },
    /// Terminate mTLS, then connect to an external Temporal cluster (`host:port`), over TLS when
    /// `tls` is set.
    External {
        addr: String,
        tls: Option<UpstreamTls>,
    },
    /// A cutover is under way: new connections wait, up to `max_wait`, for the route to change,
    /// and are then served by the new target; past `max_wait` they are refused cleanly.
    Hold { max_wait: Duration },
}

impl Target {
    /// The `target` label of `tessera_ingress_connections_total`.
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Local { .. } => "local",
            Target::Forward { .. } => "forward",
            Target::External { .. } => "external",
            Target::Hold { .. } => "hold",
        }
    }
}

/// How the ingress authenticates itself to an external cluster.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamTls {
    /// The name the upstream's certificate must carry.
    pub server_name: String,
    pub root_ca_pem: String,
    /// A client certificate chain and key for upstreams that require mTLS; both or neither.
    pub client_cert_pem: Option<String>,
    pub client_key_pem: Option<String>,
}

// Private keys stay out of logs.
impl std::fmt::Debug for ServerCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCert").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for UpstreamTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamTls")
            .field("server_name", &self.server_name)
            .field("client_cert", &self.client_cert_pem.is_some())
            .finish_non_exhaustive()
    }
}

/// A route ready to serve: its target and the TLS configurations it needs.
#[derive(Debug)]
pub(crate) struct CompiledRoute {
    pub target: Target,
    /// Terminates client mTLS for this host (also used to refuse held connections cleanly);
    /// `None` for a pass-through route of the edge.
    pub server_tls: Option<Arc<ServerConfig>>,
    /// For `External` targets with TLS.
    pub upstream_tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
}

/// The routes and server certificates of a table that could not be loaded. They are left out
/// (a connection to such a host is refused as unknown); everything else in the table serves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rejected {
    /// By SNI host: why the route is left out.
    pub routes: BTreeMap<String, String>,
    /// By position in [`RouteTable::server_certs`]: why the certificate is left out.
    pub server_certs: BTreeMap<usize, String>,
}

impl Rejected {
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty() && self.server_certs.is_empty()
    }
}

/// The route table as the connection tasks use it.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub spec: Arc<RouteTable>,
    pub routes: HashMap<String, Arc<CompiledRoute>>,
    pub rejected: Rejected,
}

impl Compiled {
    /// Parses and checks every certificate and address, building nothing lazily, one route at a
    /// time: a route that does not load (its CA bundle, its upstream, no server certificate for
    /// its host) is left out and named in `rejected`, and never holds back the others. A route
    /// in the table serves every connection to its host. `own_addr` catches a route forwarding
    /// to itself.
    pub fn new(table: RouteTable, own_addr: SocketAddr) -> Self {
        let provider = tls::provider();
        let (certs, rejected_certs) = SniCerts::load(&table.server_certs, &provider);
        let certs = Arc::new(certs);
        let mut rejected = Rejected {
            server_certs: rejected_certs,
            ..Rejected::default()
        };

        // One verifier per distinct CA bundle; each route also knows the others, to tell a
        // neighbour tenant's certificate ("cross_tenant") from an unknown one.
        let mut verifiers = Vec::new();
        let mut bundle_index: HashMap<&str, Result<usize, String>> = HashMap::new();
        let mut bundle_of = HashMap::with_capacity(table.routes.len());
        let mut routes = HashMap::with_capacity(table.routes.len());
        for (host, route) in &table.routes {
            if let Err(e) = validate_host(host) {
                rejected.routes.insert(host.clone(), e);
                continue;
            }
            if route.accepted_ca_pem.is_empty() {
                match pass_through(&route.target, own_addr) {
                    Ok(compiled) => {
                        routes.insert(host.clone(), Arc::new(compiled));
                    }
                    Err(e) => {
                        rejected.routes.insert(host.clone(), e);
                    }
                }
                continue;
            }
            let pem = route.accepted_ca_pem.as_str();
            let index = bundle_index
                .entry(pem)
                .or_insert_with(|| {
                    let verifier = tls::client_verifier(pem, &provider)?;
                    verifiers.push(verifier);
                    Ok(verifiers.len() - 1)
                })
                .clone();
            match index {
                Ok(index) => {
                    bundle_of.insert(host.as_str(), index);
                }
                Err(e) => {
                    rejected.routes.insert(host.clone(), e);
                }
            }
        }
        let verifiers = Arc::new(verifiers);

        for (host, route) in &table.routes {
            let Some(&bundle) = bundle_of.get(host.as_str()) else {
                continue;
            };
            match compile_route(host, route, bundle, &verifiers, &certs, &provider, own_addr) {
                Ok(compiled) => {
                    routes.insert(host.clone(), Arc::new(compiled));
                }
                Err(e) => {
                    rejected.routes.insert(host.clone(), e);
                }
            }
        }
        Self {
            spec: Arc::new(table),
            routes,
            rejected,
        }
    }
}

/// A route of the edge: no CA bundle, no TLS of its own, the connection passed through as it is.
fn pass_through(target: &Target, own_addr: SocketAddr) -> Result<CompiledRoute, String> {
    match target {
        Target::Forward { addr } if *addr == own_addr => Err("forwards to itself".into()),
        Target::Forward { .. } | Target::Hold { .. } => Ok(CompiledRoute {
            target: target.clone(),
            server_tls: None,
            upstream_tls: None,
        }),
        Target::Local { .. } | Target::External { .. } => {
            Err("a route that terminates TLS needs a CA bundle".into())
        }
    }
}

fn compile_route(
    host: &str,
    route: &Route,
    bundle: usize,
    verifiers: &Arc<Vec<Arc<dyn rustls::server::danger::ClientCertVerifier>>>,
    certs: &Arc<SniCerts>,
    provider: &Arc<rustls::crypto::CryptoProvider>,
    own_addr: SocketAddr,
) -> Result<CompiledRoute, String> {
    match &route.target {
        Target::Forward { addr } if *addr == own_addr => {
            return Err("forwards to this ingress itself".into());
        }
        // A passed-through connection is answered by the other ingress's certificate.
        Target::Forward { .. } => {}
        _ if !certs.covers(host) => {
            return Err("no server certificate of the ingress covers this host".into());
        }
        _ => {}
    }
    let verifier = tls::TenantVerifier::new(verifiers.clone(), bundle);
    let server_tls = tls::server_config(Arc::new(verifier), certs.clone(), provider)?;
    let upstream_tls = match &route.target {
        Target::External { addr, .. } if addr.is_empty() => {
            return Err("empty upstream address".into());
        }
        Target::External { tls: Some(up), .. } => Some(tls::upstream_config(up, provider)?),
        _ => None,
    };
    Ok(CompiledRoute {
        target: route.target.clone(),
        server_tls: Some(server_tls),
        upstream_tls,
    })
}

fn validate_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("empty host".into());
    }
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("hosts are matched lowercase".into());
    }
    if ServerName::try_from(host).is_err() {
        return Err("not a DNS name".into());
    }
    Ok(())
}
