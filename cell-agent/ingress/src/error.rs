//! The crate's one error type.

use std::net::SocketAddr;

/// Why the ingress could not start (a route that does not load is left out, see
/// [`crate::Rejected`]). Refused connections are not errors: they are counted in `tessera_ingress_handshake_failures_total`.
#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server certificate #{index}: {reason}")]
    ServerCert { index: usize, reason: String },
    #[error("benchmark: {0}")]
    Bench(String),
}
