//! Regions and cells, as platform operators see them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::agent::ObservedState;
use crate::operations::Operation;

/// Where a region's cells run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Cloud {
    Local,
    Aws,
    Gcp,
    SelfHosted,
}

impl Cloud {
    pub const ALL: [Cloud; 4] = [Cloud::Local, Cloud::Aws, Cloud::Gcp, Cloud::SelfHosted];

    pub fn as_str(self) -> &'static str {
        match self {
            Cloud::Local => "local",
            Cloud::Aws => "aws",
            Cloud::Gcp => "gcp",
            Cloud::SelfHosted => "self_hosted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Cloud::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// `GET /api/v1/regions` and `/api/v1/admin/regions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Region {
    /// e.g. `local-east`, `aws-us-east-1`.
    pub id: String,
    pub cloud: Cloud,
    pub location: String,
    /// `available` when at least one healthy cell can take namespaces, else `unavailable`.
    pub status: String,
    /// A region of the caller's own hosts (see `/api/v1/self-hosted/regions`): only its
    /// account sees it and places namespaces there.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub self_hosted: bool,
    /// The account a self-hosted region belongs to (platform admins' view).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_account_id: Option<uuid::Uuid>,
    pub created_at: DateTime<Utc>,
}

/// `POST /api/v1/self-hosted/regions`: a region of the account's own hosts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreateSelfHostedRegion {
    pub id: String,
    pub location: String,
}

/// One of the account's own regions, with its cells.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SelfHostedRegion {
    #[serde(flatten)]
    pub region: Region,
    pub cells: Vec<Cell>,
}

/// `POST /api/v1/self-hosted/regions/{id}/join-tokens`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreateSelfHostedJoinToken {
    /// The ring its releases arrive in (default 2: after the platform's own canary and early
    /// rings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreateRegion {
    pub id: String,
    pub cloud: Cloud,
    pub location: String,
}

/// Life cycle of a cell: `provisioning → joining → healthy ⇄ unhealthy → decommissioning →
/// decommissioned` (or `failed` when provisioning gives up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CellStatus {
    Provisioning,
    Joining,
    Healthy,
    Unhealthy,
    /// Its namespaces are moving to other cells; no new one is placed on it.
    Draining,
    Decommissioning,
    Decommissioned,
    Failed,
}

impl CellStatus {
    pub const ALL: [CellStatus; 8] = [
        CellStatus::Provisioning,
        CellStatus::Joining,
        CellStatus::Healthy,
        CellStatus::Unhealthy,
        CellStatus::Draining,
        CellStatus::Decommissioning,
        CellStatus::Decommissioned,
        CellStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CellStatus::Provisioning => "provisioning",
            CellStatus::Joining => "joining",
            CellStatus::Healthy => "healthy",
            CellStatus::Unhealthy => "unhealthy",
            CellStatus::Draining => "draining",
            CellStatus::Decommissioning => "decommissioning",
            CellStatus::Decommissioned => "decommissioned",
            CellStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        CellStatus::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl std::fmt::Display for CellStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Cell {
    /// e.g. `local-east-1`.
    pub id: String,
    pub region: String,
    pub ring: u32,
    /// `local`, `self_hosted`, `aws`, `gcp`.
    pub provider: String,
    pub status: CellStatus,
    /// Where tenants' SDKs connect (`host:port` of the cell ingress), once the agent reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_address: Option<String>,
    /// Generation of the desired state the control plane wants the agent to run.
    pub desired_generation: u64,
    /// Generation the agent last reported as applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_report_at: Option<DateTime<Utc>>,
    pub labels: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The agent's last report, with every runtime's health (detail view only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<ObservedState>,
}

/// `POST /api/v1/admin/cells/{id}/drain`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DrainCell {
    /// Migrations at a time (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel: Option<u32>,
}

/// `POST /api/v1/admin/cells`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProvisionCell {
    pub region: String,
    pub ring: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Provider-specific settings (e.g. `{"ingress_port": 7443}` for local cells).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_config: Option<serde_json::Value>,
}

/// Answer to `POST /api/v1/admin/cells` and `DELETE /api/v1/admin/cells/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CellOperation {
    pub operation: Operation,
    pub cell: Cell,
}

/// `POST /api/v1/admin/cells/join-tokens`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreateJoinToken {
    pub region: String,
    pub ring: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// A one-time join token for a self-hosted cell (shown once). The token embeds the SHA-256 of
/// the platform root, which the agent pins when it first dials the agent endpoint.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JoinToken {
    pub token: String,
    pub cell_id: String,
    pub expires_at: DateTime<Utc>,
    /// `https://host:port` of the agent endpoint, for `cell-agent join --control-plane`.
    pub control_plane: String,
}

crate::debug_without_secrets!(JoinToken {
    cell_id,
    expires_at,
    control_plane
});
