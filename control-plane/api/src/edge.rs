//! The edge: SNI routers in front of every cell, serving the one address namespaces advertise.
//!
//! An edge terminates nothing. It reads the ClientHello's SNI and passes the TLS connection
//! through to the ingress of the cell that is active for that host, or holds it while a cutover
//! is under way. Its routes come from the control plane like a cell's desired state: one
//! document for every edge, with a generation that only grows, long-polled over the edge's own
//! mTLS identity.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `GET /agent/v1/edge/routes`: where every namespace host goes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EdgeRoutes {
    pub schema_version: u32,
    pub generation: u64,
    /// Keyed by SNI host, lowercase.
    pub routes: BTreeMap<String, EdgeRoute>,
}

/// The schema of [`EdgeRoutes`] this build writes and understands.
pub const EDGE_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EdgeRoute {
    /// Pass the connection through to this cell's ingress (`host:port`).
    Forward { cell: String, address: String },
    /// A cutover is under way: new connections wait up to `max_wait_ms` for the route to change.
    Hold { max_wait_ms: u64 },
}

/// `POST /agent/v1/edge/join`: the edge's identity, traded for a one-time token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeJoinResponse {
    pub edge_id: String,
    pub region: String,
    pub certificate_chain_pem: String,
    pub root_ca_pem: String,
}

/// `POST /agent/v1/edge/observed`: what an edge serves.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EdgeObserved {
    pub edge_id: String,
    /// The generation of the routes in force.
    pub generation: u64,
    /// `host:port` the edge listens on.
    pub address: String,
    /// `host:port` of its Prometheus endpoint.
    #[serde(default)]
    pub metrics_address: String,
    pub version: String,
    pub pid: u32,
    pub started_at: Option<DateTime<Utc>>,
    /// Routes left out because they do not load, with why.
    #[serde(default)]
    pub rejected: BTreeMap<String, String>,
    /// Connections open now.
    #[serde(default)]
    pub active_connections: i64,
}

/// An edge as platform admins see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Edge {
    /// e.g. `local-east-edge-1`.
    pub id: String,
    pub region: String,
    /// `pending` until it joins, then `joined`.
    pub status: String,
    /// The generation of the routes every edge should serve.
    pub routes_generation: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_report_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<EdgeObserved>,
    pub created_at: DateTime<Utc>,
}

/// `POST /api/v1/admin/edges`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreateEdge {
    pub region: String,
}

/// The answer to `POST /api/v1/admin/edges`: the edge and its one-time join token (shown once).
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreatedEdge {
    pub edge: Edge,
    pub join_token: String,
    pub expires_at: DateTime<Utc>,
}

crate::debug_without_secrets!(CreatedEdge { edge, expires_at });
