//! Rollouts: a release moving through the deployment rings.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// `POST /api/v1/admin/rollouts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRollout {
    /// Version of a release of `GET /api/v1/admin/releases`.
    pub release: String,
    /// Ring definitions (the TOML of `deploy-rings/README.md`); absent: the control plane's
    /// (`TESSERA_RINGS_FILE`, else the built-in `deploy-rings/rings.toml`).
    #[serde(default)]
    pub rings: Option<String>,
    /// How long a batch may take to run the release before it counts as failed (default 300).
    #[serde(default)]
    pub apply_timeout_secs: Option<u64>,
}

/// `GET /api/v1/admin/rollouts/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Rollout {
    pub id: Uuid,
    pub release: String,
    /// `running | paused | awaiting_approval | rolling_back | done | halted | aborted`.
    pub status: String,
    /// `{status, reason, bake_until, fraction, rings: [{name, state, batches: [{cells, state,
    /// gate_results: [{gate, passed, observed, threshold, cell}]}]}], events: [{at, what:
    /// {kind, ring?, batch?, …}}]}`: live from the workflow while it runs, else as last saved.
    #[schema(value_type = Object)]
    pub progress: serde_json::Value,
    /// The operation that follows the rollout (same id).
    pub operation_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `POST /api/v1/admin/rollouts/{id}/approve`: the ring to approve (default: the one waiting).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveRollout {
    #[serde(default)]
    pub ring: Option<String>,
}

/// A rollout and the operation following it (the answer of a start).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RolloutOperation {
    pub operation: crate::Operation,
    pub rollout: Rollout,
}
