//! Wire types of the Tessera REST API (see `shared/API.md`).
//!
//! One crate shared by the server, the typed client, the CLI, the cell agent and the Terraform
//! provider, so that every side of the wire agrees on field names by construction.

/// `Debug` for a type that holds a secret: only the named fields are shown and the rest is
/// elided (`..`), so that logging a value never logs a key, a password or a token.
#[macro_export]
macro_rules! debug_without_secrets {
    ($ty:ident { $($field:ident),* $(,)? }) => {
        impl ::std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    $(.field(stringify!($field), &self.$field))*
                    .finish_non_exhaustive()
            }
        }
    };
}

pub mod agent;
pub mod audit;
pub mod cells;
pub mod edge;
pub mod error;
pub mod migrations;
pub mod namespaces;
pub mod operations;
pub mod page;
pub mod releases;
pub mod rollouts;
pub mod tenants;

pub use audit::{Actor, ActorKind, AuditEntry};
pub use cells::*;
pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use migrations::*;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_secret() {
        let secret = "s3cret-value-0123456789";
        let shown = [
            format!(
                "{:?}",
                SignupRequest {
                    account_name: "acme".into(),
                    email: "o@acme.io".into(),
                    password: secret.into(),
                }
            ),
            format!(
                "{:?}",
                agent::ServerCertSpec {
                    chain_pem: "chain".into(),
                    key_pem: secret.into(),
                }
            ),
            format!(
                "{:?}",
                JoinToken {
                    token: secret.into(),
                    cell_id: "c".into(),
                    expires_at: chrono::Utc::now(),
                    control_plane: "https://cp".into(),
                }
            ),
            format!(
                "{:?}",
                AcceptInviteRequest {
                    token: secret.into(),
                    password: secret.into(),
                }
            ),
        ];
        for s in shown {
            assert!(!s.contains(secret) && s.contains(".."), "{s}");
        }
    }
}
