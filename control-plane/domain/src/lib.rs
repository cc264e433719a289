//! Domain rules of the control plane, free of I/O so they are tested synchronously.

pub mod backoff;
pub mod credentials;
pub mod placement;
pub mod rbac;
pub mod validate;

pub use backoff::Backoff;
pub use credentials::{ApiKeyToken, JoinToken, SecretToken};
pub use rbac::{Action, Denied, NamespaceAction, NamespaceDenied, authorize, authorize_namespace};
pub use validate::ValidationError;
