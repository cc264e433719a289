//! The agent protocol: what a cell agent pulls (desired state) and pushes (observed state).
//!
//! Desired state is one document per cell with a generation that only grows; the agent applies
//! it idempotently and reports the generation it has applied. Private keys travel only over the
//! agent's mTLS connection; at rest the control plane keeps them sealed.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /agent/v1/join`: a one-time token and a CSR for the key the agent keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JoinRequest {
    pub token: String,
    pub csr_pem: String,
    pub agent_version: String,
}

/// The agent's identity: its certificate chain (leaf first) and the platform root to trust.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JoinResponse {
    pub cell_id: String,
    pub region: String,
    pub ring: u32,
    pub certificate_chain_pem: String,
    pub root_ca_pem: String,
}

/// `POST /agent/v1/renew`: a new CSR from an agent whose identity is due for renewal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenewRequest {
    pub csr_pem: String,
}

/// Everything a cell should run. `generation` orders documents: an older one always loses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DesiredState {
    pub cell_id: String,
    pub generation: u64,
    /// Namespace runtimes by id.
    pub runtimes: BTreeMap<String, RuntimeSpec>,
    /// Ingress routes by SNI host.
    pub routes: BTreeMap<String, RouteSpec>,
    /// Server certificates of the ingress (chosen by SNI).
    pub server_certs: Vec<ServerCertSpec>,
    /// Set by the renewal workflow when the agent's identity certificate should be renewed.
    #[serde(default)]
    pub renew_identity: bool,
}

/// One namespace runtime: a Temporal server with its own store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RuntimeSpec {
    /// The Temporal namespace it serves (`<name>.<account-slug>`).
    pub temporal_namespace: String,
    /// Put the store in global-namespace mode (needed to import histories).
    #[serde(default = "yes")]
    pub global_namespace: bool,
    /// Extra `--dynamic-config-value KEY=JSON` pairs.
    #[serde(default)]
    pub dynamic_config: BTreeMap<String, serde_json::Value>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RouteSpec {
    /// PEM bundle of the CAs whose client certificates this host accepts.
    pub accepted_ca_pem: String,
    pub target: RouteTargetSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RouteTargetSpec {
    /// A runtime of this cell (by runtime id). Held while that runtime is not serving.
    Local { runtime: String },
    /// Another cell's ingress (`host:port`), TLS passed through untouched.
    Forward { address: String },
    /// An existing Temporal cluster (`host:port`), e.g. during an import.
    External {
        address: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tls: Option<ExternalTlsSpec>,
    },
    /// New connections wait up to `max_wait_ms` for the route to change.
    Hold { max_wait_ms: u64 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExternalTlsSpec {
    pub server_name: String,
    pub root_ca_pem: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_pem: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key_pem: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServerCertSpec {
    /// Leaf first, then the cell intermediate.
    pub chain_pem: String,
    pub key_pem: String,
}

/// What the agent reports, every few seconds and on every change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ObservedState {
    pub cell_id: String,
    /// The desired generation the agent has applied.
    pub generation: u64,
    pub agent_version: String,
    pub agent_pid: u32,
    pub agent_started_at: Option<DateTime<Utc>>,
    /// `host:port` tenants connect to.
    pub ingress_address: String,
    /// `host:port` of the agent's Prometheus endpoint.
    pub metrics_address: String,
    pub runtimes: BTreeMap<String, RuntimeObserved>,
    pub routes: usize,
    pub active_connections: i64,
    /// When the agent's identity certificate expires.
    pub identity_not_after: Option<DateTime<Utc>>,
    pub reported_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeHealth {
    Starting,
    Serving,
    Unhealthy,
    Stopped,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RuntimeObserved {
    pub health: RuntimeHealth,
    pub temporal_namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// `host:port` of its gRPC frontend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc_address: Option<String>,
    /// `host:port` of its Prometheus endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_address: Option<String>,
    pub rss_bytes: u64,
    pub uptime_seconds: u64,
    pub restarts: u32,
    pub global_namespace: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// The stored form of a cell's desired state: [`DesiredState`] without secrets. Server
/// certificates are referenced by the id of the PKI object holding them (key sealed), and are
/// resolved when the agent fetches the document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DesiredDoc {
    #[serde(default)]
    pub runtimes: BTreeMap<String, RuntimeSpec>,
    #[serde(default)]
    pub routes: BTreeMap<String, RouteSpec>,
    #[serde(default)]
    pub server_cert_ids: Vec<String>,
    #[serde(default)]
    pub renew_identity: bool,
    /// Bumped when a referenced certificate is reissued, so the document (and its generation)
    /// changes and agents fetch the new certificate.
    #[serde(default)]
    pub cert_serial: u64,
}

/// Path of the agent endpoint's routes.
pub const AGENT_PREFIX: &str = "/agent/v1";
/// How long `GET /agent/v1/desired` waits for a newer generation before answering 204.
pub const LONG_POLL_SECONDS: u64 = 25;
