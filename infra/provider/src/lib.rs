//! Cell providers: where a cell's infrastructure comes from.
//!
//! One trait, [`CellProvider`] (provision, describe, destroy), implemented for local processes
//! here and for clouds in their own crates, so cloud SDKs stay out of everything else. A cell
//! workflow calls it from activities: every method is idempotent (provisioning a cell that
//! exists converges it; destroying one that is gone succeeds). [`Unreliable`] wraps any provider
//! and injects failures, to test that workflows retry.

mod local;
pub mod process;
mod unreliable;

use std::collections::BTreeMap;

pub use local::LocalProvider;
pub use unreliable::Unreliable;

/// What a provider needs to bring a cell up: who it is, and how its agent joins.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct CellSpec {
    pub cell_id: String,
    pub region: String,
    pub ring: u32,
    /// `https://host:port` of the agent endpoint.
    pub control_plane: String,
    /// One-time join token for the agent; `None` when the cell has joined already.
    pub join_token: Option<String>,
    /// Provider-specific settings from `POST /admin/cells`.
    pub config: serde_json::Value,
}

impl std::fmt::Debug for CellSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CellSpec")
            .field("cell_id", &self.cell_id)
            .field("region", &self.region)
            .field("ring", &self.ring)
            .field("control_plane", &self.control_plane)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InfraState {
    /// Being created, or its agent is (re)starting.
    Starting,
    Running,
    /// Nothing is left of it.
    Absent,
}

/// What a provider knows of a cell's infrastructure (not of its health: the agent reports that).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CellDescription {
    pub cell_id: String,
    pub state: InfraState,
    /// Provider-specific facts (directory, pid, ingress address…), for operators.
    pub details: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The request cannot work as given (retrying will not help).
    #[error("invalid provider config: {0}")]
    InvalidConfig(String),
    /// The provider or its infrastructure is not answering now.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl ProviderError {
    pub fn is_retryable(&self) -> bool {
        !matches!(self, ProviderError::InvalidConfig(_))
    }
}

#[async_trait::async_trait]
pub trait CellProvider: Send + Sync + 'static {
    /// `local`, `aws`, `gcp`…
    fn name(&self) -> &'static str;
    /// Creates the cell's infrastructure and starts its agent, or converges an existing one.
    async fn provision(&self, spec: &CellSpec) -> Result<CellDescription, ProviderError>;
    async fn describe(&self, cell_id: &str) -> Result<CellDescription, ProviderError>;
    /// Removes everything the cell had: processes, directories, cloud resources.
    async fn destroy(&self, cell_id: &str) -> Result<(), ProviderError>;
}
