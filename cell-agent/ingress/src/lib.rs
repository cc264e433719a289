//! The cell ingress: rustls mTLS, SNI routing to local runtimes, other cells or external clusters,
//! holds during cutovers.
//!
//! Every SDK worker connection arrives on one port. The ingress reads the TLS ClientHello, picks
//! the route by SNI host and then either terminates mTLS (checking the client certificate against
//! that namespace's accepted CA bundle) and relays plain bytes to a local runtime or an external
//! cluster, or passes the untouched TLS stream on to another cell's ingress. Routes are swapped
//! atomically by [`Ingress::update`] without touching established connections.

#[cfg(feature = "bench")]
pub mod bench;
mod conn;
mod error;
mod hello;
mod ingress;
mod metrics;
mod relay;
mod routes;
mod tls;

pub use error::IngressError;
pub use ingress::Ingress;
pub use metrics::{FailureReason, IngressMetrics};
pub use routes::{Rejected, Route, RouteTable, ServerCert, Target, UpstreamTls};
