//! Tessera's control plane: REST API, workflow worker, local Temporal supervision.

pub mod agent_endpoint;
pub mod app;
pub mod auth;
pub mod config;
pub mod console;
pub mod convert;
pub mod edge_endpoint;
pub mod error;
pub mod idempotency;
pub mod json;
pub mod metrics;
pub mod passwords;
pub mod ratelimit;
pub mod routes;
pub mod secrets;
pub mod state;
pub mod telemetry;
pub mod temporal;

/// The workflow engine as the API sees it.
pub mod workflows {
    pub use tessera_workflows::{Engine, EngineError};
}

pub use app::{build_state, run};
pub use config::Config;
