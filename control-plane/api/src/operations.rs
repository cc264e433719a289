//! Asynchronous operations: every call that starts work answers with one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ErrorDetail;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Operation {
    pub id: Uuid,
    /// What the operation does, e.g. `signup`.
    pub kind: String,
    pub state: OperationState,
    /// 0.0 ..= 1.0.
    pub progress: f64,
    /// The step running now, for humans (e.g. `creating owner user`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    pub resource: ResourceRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OperationState {
    Pending,
    InProgress,
    Fulfilled,
    Failed,
    Cancelled,
}

impl OperationState {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            OperationState::Fulfilled | OperationState::Failed | OperationState::Cancelled
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OperationState::Pending => "pending",
            OperationState::InProgress => "in_progress",
            OperationState::Fulfilled => "fulfilled",
            OperationState::Failed => "failed",
            OperationState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => OperationState::Pending,
            "in_progress" => OperationState::InProgress,
            "fulfilled" => OperationState::Fulfilled,
            "failed" => OperationState::Failed,
            "cancelled" => OperationState::Cancelled,
            _ => return None,
        })
    }
}

impl std::fmt::Display for OperationState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The resource an operation acts on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ResourceRef {
    /// e.g. `account`, `namespace`.
    pub kind: String,
    pub id: String,
}
