//! Releases: what a cell's namespace runtimes run and how its agent behaves. Rollouts move a
//! release through the deployment rings; a cell's entity workflow applies it to one cell.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `GET /api/v1/admin/releases/{version}`. Releases are immutable: a change is a new version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Release {
    /// e.g. `2026.11.1` or `1.32.0-tessera.2`.
    pub version: String,
    pub runtime: RuntimeRelease,
    #[serde(default)]
    pub agent: AgentRelease,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// `POST /api/v1/admin/releases`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRelease {
    pub version: String,
    pub runtime: RuntimeRelease,
    #[serde(default)]
    pub agent: AgentRelease,
    #[serde(default)]
    pub notes: Option<String>,
}

/// How every namespace runtime of a cell runs under this release.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuntimeRelease {
    /// Absolute path of the runtime binary on the cell's hosts; absent: the agent's own
    /// configured `temporal` binary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary: Option<String>,
    /// The version the binary must report (`temporal --version`, e.g. `1.9.1`); the agent
    /// refuses to run a binary that reports another.
    pub version: String,
    /// Extra flags appended to `temporal server start-dev` (never the ones the agent sets).
    #[serde(default)]
    pub flags: Vec<String>,
    /// `--dynamic-config-value KEY=JSON` for every runtime of the cell.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub dynamic_config: BTreeMap<String, serde_json::Value>,
}

/// How the cell agent behaves under this release.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentRelease {
    /// How often the agent reports its observed state (default 3000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_interval_ms: Option<u64>,
    /// How often a ring-0 cell's canary runs (default 5000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_interval_ms: Option<u64>,
}

/// The release a cell should run, as its desired state carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReleaseSpec {
    pub version: String,
    pub runtime: RuntimeRelease,
    #[serde(default)]
    pub agent: AgentRelease,
}
