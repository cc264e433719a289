//! Tenant namespaces: where SDK workers connect, and how they authenticate.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::operations::Operation;

/// Life cycle of a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NamespaceState {
    Provisioning,
    Active,
    Updating,
    Migrating,
    FailingOver,
    Deleting,
    Failed,
    /// Kept for the audit trail; not listed and not readable through the API.
    Deleted,
}

impl NamespaceState {
    pub const ALL: [NamespaceState; 8] = [
        NamespaceState::Provisioning,
        NamespaceState::Active,
        NamespaceState::Updating,
        NamespaceState::Migrating,
        NamespaceState::FailingOver,
        NamespaceState::Deleting,
        NamespaceState::Failed,
        NamespaceState::Deleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NamespaceState::Provisioning => "provisioning",
            NamespaceState::Active => "active",
            NamespaceState::Updating => "updating",
            NamespaceState::Migrating => "migrating",
            NamespaceState::FailingOver => "failing_over",
            NamespaceState::Deleting => "deleting",
            NamespaceState::Failed => "failed",
            NamespaceState::Deleted => "deleted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        NamespaceState::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl std::fmt::Display for NamespaceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How SDK clients reach a namespace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Endpoint {
    /// `host:port` to dial: the edge, the same for the namespace's whole life (migrations and
    /// failovers never change it).
    pub address: String,
    /// The TLS server name (SNI) to send: `<name>.<account-slug>.<base-domain>`.
    pub tls_server_name: String,
    /// The Temporal namespace to use in SDK calls: `<name>.<account-slug>`.
    pub temporal_namespace: String,
    /// The CA that signs the endpoint's server certificate.
    pub server_root_ca_pem: String,
    /// `host:port` of the ingress of the cell that serves the namespace now (pinned: it changes
    /// when the namespace moves); empty until it is placed.
    #[serde(default)]
    pub cell_address: String,
}

/// One CA certificate of a namespace's accepted client CA bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AcceptedCa {
    pub fingerprint_sha256: String,
    pub subject: String,
    pub not_after: DateTime<Utc>,
    /// The certificate itself: an update's bundle is these PEMs, minus or plus one.
    #[serde(default)]
    pub pem: String,
}

/// A standby copy of a namespace: a cell of `region` (another region, or the active region's
/// other cell) keeps the namespace's store a warm follower of the active one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Replica {
    pub region: String,
    pub cell: String,
    /// `adding | in_sync | lagging | failed | removing`: in sync when it has applied every
    /// transaction but those of the last second.
    pub state: String,
    /// How old the oldest transaction it has not applied is (0 when it has all).
    pub lag_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_at: Option<DateTime<Utc>>,
    /// Why it is `failed` or `lagging`, when its cell says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `POST /api/v1/namespaces/{name}/replicas`: a standby in a cell of `region` (placement picks
/// the cell; never the active one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AddReplica {
    pub region: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Namespace {
    pub name: String,
    pub account_id: uuid::Uuid,
    pub region: String,
    pub state: NamespaceState,
    pub endpoint: Endpoint,
    pub retention_days: u32,
    pub accepted_client_ca: Vec<AcceptedCa>,
    /// Whether the control plane generated the namespace's CA (and can issue client
    /// certificates with `POST /namespaces/{name}/client-certs`).
    pub generated_ca: bool,
    pub active_region: String,
    pub replicas: Vec<Replica>,
    /// The move under way, if any (`POST /namespaces/{name}/move`, or an operator's migration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<NamespaceMigration>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A namespace's move to another cell, as its tenant sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NamespaceMigration {
    pub id: uuid::Uuid,
    pub state: crate::MigrationState,
    /// The region it moves to.
    pub target_region: String,
    /// How far the copy in the target region is behind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_seconds: Option<f64>,
}

/// `POST /api/v1/namespaces/{name}/move`: move the namespace, live, to a cell of `region`
/// (one of the platform's, or one of the account's own).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MoveNamespace {
    pub region: String,
}

/// `POST /api/v1/namespaces`. Give either `accepted_client_ca` or `generate_ca: true`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreateNamespace {
    pub name: String,
    pub region: String,
    pub retention_days: u32,
    /// PEM bundle of CA certificates (X.509 v3, at most 16 and 32 KB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_client_ca: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate_ca: Option<bool>,
}

/// `PATCH /api/v1/namespaces/{name}`. A new bundle replaces the old one: rotate by adding the
/// new CA next to the old one, move clients over, then remove the old one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UpdateNamespace {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_client_ca: Option<String>,
}

/// Answer of create, update and delete: the operation and the namespace as it is now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NamespaceOperation {
    pub operation: Operation,
    pub namespace: Namespace,
}

/// `POST /api/v1/namespaces/{name}/client-certs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreateClientCert {
    pub common_name: String,
    pub valid_days: u32,
}

/// A client certificate from the namespace's generated CA; the key is shown only once.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ClientCert {
    /// The certificate followed by the CA that issued it.
    pub certificate_pem: String,
    pub private_key_pem: String,
    pub fingerprint_sha256: String,
    pub not_after: DateTime<Utc>,
}

crate::debug_without_secrets!(ClientCert {
    fingerprint_sha256,
    not_after
});
