//! The cell agent: one per cell.
//!
//! It joins the control plane once with a one-time token (its key never leaves the cell), then
//! dials out over mTLS, long-polls its desired state, reconciles the namespace runtimes and the
//! ingress routes against it, and reports observed state every few seconds and on every change.
//! The last desired state is cached on disk, so a restarted agent keeps serving while the
//! control plane is away; runtimes outlive the agent and are re-adopted, not restarted.

pub mod canary;
pub mod config;
pub mod control_plane;
pub mod edge;
pub mod error;
pub mod identity;
pub mod join;
pub mod metrics;
pub mod reconcile;
pub mod replication;
pub mod run;
pub mod runtime;
pub mod runtime_metrics;

pub use error::{AgentError, Result};

/// Version reported to the control plane.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Installs the process-wide rustls crypto provider (ring), once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
