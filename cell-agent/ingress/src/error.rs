//! The crate's one error type.

use std::net::SocketAddr;

/// Why the ingress could not start or refused a route table. Refused connections are not
/// errors: they are counted in `tessera_ingress_handshake_failures_total`.
#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("route {host:?}: {reason}")]
    Route { host: String, reason: String },
    #[error("server certificate #{index}: {reason}")]
    ServerCert { index: usize, reason: String },
    #[error("benchmark: {0}")]
    Bench(String),
}

impl IngressError {
    pub(crate) fn route(host: &str, reason: impl std::fmt::Display) -> Self {
        Self::Route {
            host: host.to_string(),
            reason: reason.to_string(),
        }
    }
}
