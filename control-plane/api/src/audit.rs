//! Audit log entries: who did what, when, from where.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub actor: Actor,
    /// Dotted verb, e.g. `api_key.revoke`.
    pub action: String,
    /// `kind/id` of the resource acted on.
    pub resource: String,
    /// Address the request came from.
    pub source_ip: Option<String>,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Actor {
    pub kind: ActorKind,
    /// User, service account or API key id; `null` for the platform admin and the system.
    pub id: Option<Uuid>,
    /// Email of a user, name of a service account.
    pub name: Option<String>,
    /// The API key used, if the call was made with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_id: Option<Uuid>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    User,
    ServiceAccount,
    PlatformAdmin,
    System,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::ServiceAccount => "service_account",
            ActorKind::PlatformAdmin => "platform_admin",
            ActorKind::System => "system",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "user" => ActorKind::User,
            "service_account" => ActorKind::ServiceAccount,
            "platform_admin" => ActorKind::PlatformAdmin,
            "system" => ActorKind::System,
            _ => return None,
        })
    }
}
