//! Live migrations of namespaces between cells (`/api/v1/admin/migrations`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::Operation;

/// `POST /api/v1/admin/migrations`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StartMigration {
    /// The namespace, as `<name>.<account-slug>` (its Temporal namespace).
    pub namespace: String,
    pub target_cell: String,
    #[serde(default)]
    pub cutover: CutoverMode,
}

/// When the cutover happens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CutoverMode {
    /// As soon as the target's copy is less than a second behind.
    #[default]
    Auto,
    /// On `POST /api/v1/admin/migrations/{id}/cutover`.
    Manual,
}

impl CutoverMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CutoverMode::Auto => "auto",
            CutoverMode::Manual => "manual",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MigrationState {
    Started,
    Replicating,
    ReadyForCutover,
    CuttingOver,
    Completed,
    Aborting,
    Aborted,
    Failed,
}

impl MigrationState {
    pub const ALL: [MigrationState; 8] = [
        MigrationState::Started,
        MigrationState::Replicating,
        MigrationState::ReadyForCutover,
        MigrationState::CuttingOver,
        MigrationState::Completed,
        MigrationState::Aborting,
        MigrationState::Aborted,
        MigrationState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MigrationState::Started => "started",
            MigrationState::Replicating => "replicating",
            MigrationState::ReadyForCutover => "ready_for_cutover",
            MigrationState::CuttingOver => "cutting_over",
            MigrationState::Completed => "completed",
            MigrationState::Aborting => "aborting",
            MigrationState::Aborted => "aborted",
            MigrationState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// Whether it may still be aborted (nothing has changed for clients yet).
    pub fn abortable(self) -> bool {
        matches!(
            self,
            MigrationState::Started | MigrationState::Replicating | MigrationState::ReadyForCutover
        )
    }
}

/// A step the migration reached, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MigrationStep {
    pub state: MigrationState,
    pub at: DateTime<Utc>,
}

/// How far a migration got (stored with it, updated as it goes).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MigrationProgress {
    /// How far the target's copy is behind the source: the age of the oldest transaction it
    /// has not applied, and their bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_bytes: Option<u64>,
    #[serde(default)]
    pub steps: Vec<MigrationStep>,
    /// The last transaction of the source's store, from the final sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_txid: Option<u64>,
    /// The source's stream (its replica path, `s<n>`) that holds `final_txid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_stream: Option<u64>,
    /// From the start of the cutover to its end (the namespace verified on the target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cutover_ms: Option<u64>,
    /// The server-side stall: from holding new connections to routing them to the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stall_ms: Option<u64>,
    /// Data the cutover may have lost, in seconds of the source's writes: 0 when the source's
    /// final sync confirmed that the replica held every transaction; otherwise at most the
    /// time since the target's copy last applied a transaction when it was promoted without
    /// the source (the source was lost during the cutover).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpo_seconds: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Migration {
    pub id: Uuid,
    /// `<name>.<account-slug>`.
    pub namespace: String,
    pub account_id: Uuid,
    pub source_cell: String,
    pub target_cell: String,
    pub state: MigrationState,
    pub cutover: CutoverMode,
    pub progress: MigrationProgress,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub operation_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Answer of start, cutover and abort.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MigrationOperation {
    pub operation: Operation,
    pub migration: Migration,
}
