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
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct JoinRequest {
    pub token: String,
    pub csr_pem: String,
    pub agent_version: String,
}

crate::debug_without_secrets!(JoinRequest { agent_version });

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
/// An agent applies only documents it understands whole: a newer `schema_version` or a field it
/// does not know makes it keep the document it has (and report why).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DesiredState {
    #[serde(default = "schema_v1")]
    pub schema_version: u32,
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
    /// The synthetic canary the agent drives (ring-0 cells). Its runtime and route are
    /// ordinary entries of `runtimes` and `routes`, its server certificate one of
    /// `server_certs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanarySpec>,
    /// The release every runtime of the cell runs. When it changes, the agent restarts the
    /// runtimes one at a time (each route holds new connections while its runtime restarts)
    /// and moves on only when the restarted one serves again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<crate::ReleaseSpec>,
    /// The cell is being decommissioned: besides the runtimes (none are desired any more), stop
    /// the warm runtimes, delete the spare stores and keep none ready; report `drained` once
    /// nothing is left. An agent whose identity is then refused stops and forgets it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub decommission: bool,
    /// Runtimes removed on purpose, by id: the agent stops each and moves its folder to the
    /// cell's trash. A runtime is never removed, nor a folder touched, only because a document
    /// does not list it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub removed: BTreeMap<String, RemovedRuntime>,
    /// Runtimes (of `runtimes`) to bring back from the trash: when one has no folder, the agent
    /// moves its newest trashed folder back before starting it (a restored namespace).
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub restore: std::collections::BTreeSet<String>,
    /// Store shipping (Litestream), by runtime id: a runtime of `runtimes` streams its store
    /// into a replica, or a runtime not (yet) in `runtimes` keeps its store a copy of one.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub replication: BTreeMap<String, ReplicationSpec>,
}

/// What a cell does with one runtime's store (see `../shared/DESIGN.md`, store shipping).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum ReplicationSpec {
    /// `litestream replicate` the runtime's store into `replica`, in streams: each Litestream
    /// the agent starts afresh (a new task, one that exited, one an earlier agent left) writes
    /// a new snapshot into a path of its own, `<replica>/s<n>` (see [`ReplicaSpec::stream`]),
    /// and the agent reports `n`. A Litestream stopped from outside while the server wrote
    /// never writes into a stream again. With `fence`, the runtime is killed for good
    /// (SIGKILL: every acknowledged commit is in its WAL), never started again by this cell,
    /// and the replica synced one last time; the agent reports the last transaction it holds.
    Source {
        replica: ReplicaSpec,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        fence: bool,
    },
    /// Keep the runtime's store (`ns/<id>/store.db`) a copy of `replica` with `litestream
    /// restore -f`; no server runs on it. With `until_txid`, stop following once that
    /// transaction is applied, and report it caught up: the store is ready for a server.
    /// `stream`: the source's stream to follow (`None`: the replica's own path, as agents
    /// before streams wrote it).
    Follower {
        replica: ReplicaSpec,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stream: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until_txid: Option<u64>,
    },
}

impl ReplicationSpec {
    pub fn replica(&self) -> &ReplicaSpec {
        match self {
            ReplicationSpec::Source { replica, .. } | ReplicationSpec::Follower { replica, .. } => {
                replica
            }
        }
    }
}

/// Where a replica lives: a Litestream replica URL (`file:///…` for a local region's object
/// store, `s3://bucket/path?endpoint=…` otherwise) and the environment Litestream needs for
/// it (credentials).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReplicaSpec {
    pub url: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

crate::debug_without_secrets!(ReplicaSpec { url });

impl ReplicaSpec {
    /// Stream `n` of the replica: the path `s<n>` under the replica's (before any query).
    pub fn stream(&self, n: u64) -> ReplicaSpec {
        let (path, query) = match self.url.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (self.url.as_str(), None),
        };
        let mut url = format!("{}/s{n}", path.trim_end_matches('/'));
        if let Some(q) = query {
            url.push('?');
            url.push_str(q);
        }
        ReplicaSpec {
            url,
            env: self.env.clone(),
        }
    }
}

/// An agent asks for credentials to a replica its desired state names for `runtime`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReplicaCredentialsRequest {
    pub runtime: String,
}

/// Short-lived credentials for one replica path, in the shape of the AWS SDKs'
/// `credential_process` output (Litestream asks for them again before `expiration`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct ReplicaCredentials {
    /// Always 1.
    pub version: u8,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    /// RFC 3339.
    pub expiration: String,
}

crate::debug_without_secrets!(ReplicaCredentials {
    access_key_id,
    expiration
});

/// How a runtime's store shipping goes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReplicationObserved {
    /// `source` or `follower`.
    pub role: String,
    pub state: ReplicationState,
    /// The stream a source writes or a follower follows (see [`ReplicationSpec::Source`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<u64>,
    /// A follower: the last transaction applied to its store. A fenced source: the last
    /// transaction in the replica after the final sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txid: Option<u64>,
    /// The newest transaction in the replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_txid: Option<u64>,
    /// A follower: how old the oldest transaction of the replica it has not applied is (0 when
    /// it has applied all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_seconds: Option<f64>,
    /// Bytes of the replica's transactions not applied yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReplicationState {
    #[default]
    Starting,
    /// A source streams its store.
    Streaming,
    /// A follower applies the replica's transactions as they come.
    Following,
    /// A source's runtime is killed for good and its replica synced (`txid` is final).
    Fenced,
    /// A follower applied `until_txid` and stopped: its store is ready for a server.
    CaughtUp,
    /// Litestream failed (`error`); the agent keeps trying.
    Failed,
}

/// Why and when a runtime left the cell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RemovedRuntime {
    /// The Temporal namespace it served.
    pub temporal_namespace: String,
    pub removed_at: DateTime<Utc>,
}

/// The synthetic canary: a small workflow started every `interval_ms` through the cell's own
/// ingress (SNI `host`), run by a worker inside the agent, on `temporal_namespace` of the local
/// runtime `runtime`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CanarySpec {
    /// Id of the runtime in `runtimes` the canary exercises.
    pub runtime: String,
    /// SNI host of the canary's route.
    pub host: String,
    pub temporal_namespace: String,
    /// Client certificate chain (leaf first) the canary presents to the ingress.
    pub client_chain_pem: String,
    pub client_key_pem: String,
    #[serde(default = "default_canary_interval_ms")]
    pub interval_ms: u64,
}

impl std::fmt::Debug for CanarySpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CanarySpec")
            .field("runtime", &self.runtime)
            .field("host", &self.host)
            .field("temporal_namespace", &self.temporal_namespace)
            .field("interval_ms", &self.interval_ms)
            .finish_non_exhaustive()
    }
}

/// How often the canary runs unless the document says otherwise.
pub const DEFAULT_CANARY_INTERVAL_MS: u64 = 5000;

fn default_canary_interval_ms() -> u64 {
    DEFAULT_CANARY_INTERVAL_MS
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

#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExternalTlsSpec {
    pub server_name: String,
    pub root_ca_pem: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_pem: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key_pem: Option<String>,
}

crate::debug_without_secrets!(ExternalTlsSpec { server_name });

#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServerCertSpec {
    /// Leaf first, then the cell intermediate.
    pub chain_pem: String,
    pub key_pem: String,
}

crate::debug_without_secrets!(ServerCertSpec {});

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
    /// Results of the synthetic canary, when the cell runs one.
    #[serde(default)]
    pub canary: Option<CanaryObserved>,
    /// The release the agent is applying (the desired one it has seen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_target: Option<String>,
    /// The release the whole cell runs: every runtime started on it and serving.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// When `release` was first reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_applied_at: Option<DateTime<Utc>>,
    /// Warm runtimes (servers already running, with no namespace yet) ready for new
    /// namespaces.
    #[serde(default)]
    pub warm_runtimes: u32,
    /// Spare stores (new stores in global-namespace mode, no server) ready for new runtimes.
    #[serde(default)]
    pub spare_stores: u32,
    /// The agent applied a decommission ([`DesiredState::decommission`]): no runtime, warm
    /// runtime or spare store is left, running or on disk.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drained: bool,
    /// Runtime folders in the cell's trash, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trash: Vec<TrashedObserved>,
    /// Runtime folders under `ns/` that the desired state neither runs nor names as removed
    /// (left alone: an agent never deletes what it does not know).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unlisted_runtimes: Vec<String>,
    /// Routes of the desired state that the ingress left out because they do not load (a CA
    /// bundle or certificate it cannot use), by SNI host, with why. Every other route serves.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub route_errors: BTreeMap<String, String>,
    /// Why the agent does not apply the newest desired state (e.g. it cannot persist it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Store shipping, by runtime id (see [`DesiredState::replication`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub replication: BTreeMap<String, ReplicationObserved>,
}

/// A runtime folder in the cell's trash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TrashedObserved {
    pub runtime: String,
    pub trashed_at: DateTime<Utc>,
}

/// What the canary measured since the agent started it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CanaryObserved {
    /// Runs since the canary started (every run ends as a success or a failure).
    pub runs: u64,
    pub successes: u64,
    pub failures: u64,
    /// Share of successful runs among the last [`CANARY_WINDOW`] (0 before the first run).
    pub success_rate: f64,
    /// Median start-to-result latency of the successful runs in the window.
    pub latency_p50_ms: f64,
    pub latency_p95_ms: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default)]
    pub last_run_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_success_at: Option<DateTime<Utc>>,
}

/// How many recent canary runs `success_rate` and the latencies cover.
pub const CANARY_WINDOW: usize = 100;

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
    /// Times it was restarted after exiting or staying unhealthy, since it was started on its
    /// current release (a rollout judges a release by it).
    pub restarts: u32,
    pub global_namespace: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The release its process was started on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// Frontend requests since the process started (from its metrics).
    #[serde(default)]
    pub requests_total: u64,
    /// Frontend requests that failed on the server's side (internal, unavailable, …).
    #[serde(default)]
    pub errors_total: u64,
}

/// The version of the desired-state documents this build writes. Documents without one are
/// version 1. A binary that meets a newer version (or a field it does not know) refuses to
/// rewrite the document, so an older control plane cannot drop what a newer one wrote.
pub const DESIRED_SCHEMA_VERSION: u32 = 1;

fn schema_v1() -> u32 {
    1
}

/// The stored form of a cell's desired state: [`DesiredState`] without secrets. Server
/// certificates are referenced by the id of the PKI object holding them (key sealed), and are
/// resolved when the agent fetches the document. Unknown fields make it fail to decode (see
/// [`DESIRED_SCHEMA_VERSION`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DesiredDoc {
    #[serde(default = "schema_v1")]
    pub schema_version: u32,
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
    /// SHA-256 of each referenced certificate as last written here, for the same reason.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cert_fingerprints: BTreeMap<String, String>,
    /// The synthetic canary of a ring-0 cell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryDoc>,
    /// The release the cell should run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<crate::ReleaseSpec>,
    /// See [`DesiredState::decommission`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub decommission: bool,
    /// See [`DesiredState::removed`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub removed: BTreeMap<String, RemovedRuntime>,
    /// See [`DesiredState::restore`].
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub restore: std::collections::BTreeSet<String>,
    /// See [`DesiredState::replication`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub replication: BTreeMap<String, ReplicationSpec>,
}

/// The stored form of [`CanarySpec`]: certificates by the id of their PKI objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanaryDoc {
    pub runtime: String,
    pub host: String,
    pub temporal_namespace: String,
    /// Server certificate of `host`, added to the ingress's certificates.
    pub server_cert_id: String,
    /// Client certificate the canary presents.
    pub client_cert_id: String,
    #[serde(default = "default_canary_interval_ms")]
    pub interval_ms: u64,
}

/// Path of the agent endpoint's routes.
pub const AGENT_PREFIX: &str = "/agent/v1";
/// How long `GET /agent/v1/desired` waits for a newer generation before answering 204.
pub const LONG_POLL_SECONDS: u64 = 25;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_is_a_path_under_the_replica_before_its_query() {
        let replica = |url: &str| ReplicaSpec {
            url: url.into(),
            env: Default::default(),
        };
        assert_eq!(
            replica("file:///data/replicas/local/m1").stream(3).url,
            "file:///data/replicas/local/m1/s3"
        );
        assert_eq!(
            replica("s3://b/p/migrations/m1?region=us-east-1&endpoint=http://127.0.0.1:9")
                .stream(12)
                .url,
            "s3://b/p/migrations/m1/s12?region=us-east-1&endpoint=http://127.0.0.1:9"
        );
    }
}
