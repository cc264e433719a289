//! Wire types of the Tessera REST API (see `shared/API.md`).
//!
//! One crate shared by the server, the typed client, the CLI, the cell agent and the Terraform
//! provider, so that every side of the wire agrees on field names by construction.

pub mod agent;
pub mod audit;
pub mod cells;
pub mod error;
pub mod namespaces;
pub mod operations;
pub mod page;
pub mod releases;
pub mod rollouts;
pub mod tenants;

pub use audit::{Actor, ActorKind, AuditEntry};
pub use cells::*;
pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use namespaces::*;
pub use operations::{Operation, OperationState, ResourceRef};
pub use page::{Page, PageQuery};
pub use releases::{AgentRelease, CreateRelease, Release, ReleaseSpec, RuntimeRelease};
pub use rollouts::{ApproveRollout, Rollout, RolloutOperation, StartRollout};
pub use tenants::*;

/// Path prefix of every REST route.
pub const API_PREFIX: &str = "/api/v1";
/// Header carrying a client-chosen idempotency key on mutating calls.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
/// Name of the console's session cookie.
pub const SESSION_COOKIE: &str = "tessera_session";
/// Header a console session sends with every state-changing request: the `csrf_token` of
/// `GET /api/v1/session` (or of the login answer).
pub const CSRF_HEADER: &str = "x-csrf-token";
