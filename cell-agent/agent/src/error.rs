//! The agent library's one error type. Callers decide on its variants (an identity the control
//! plane refuses ends the agent's polling; anything else is retried or reported), never by
//! inspecting a message.

use std::fmt::Display;

/// Anything boxed as a source.
type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The control plane refuses the cell's identity: revoked when the cell was decommissioned
    /// (`decommissioned`, once the decommission has finished), or replaced by a new join.
    #[error("the control plane refuses this cell's identity: {message}")]
    IdentityRefused {
        message: String,
        decommissioned: bool,
    },
    /// The control plane answered, but not what was asked for.
    #[error("{what}: {status}: {body}")]
    ControlPlane {
        what: &'static str,
        status: u16,
        body: String,
    },
    /// The control plane sent a desired state this agent does not understand whole (a newer
    /// schema, or fields it does not know): it keeps the one it has.
    #[error("the desired state cannot be applied by this agent: {0}")]
    Unsupported(String),
    /// A step failed; `context` says which.
    #[error("{context}: {source}")]
    Failed {
        context: String,
        #[source]
        source: Source,
    },
    /// Something that must hold does not (no underlying error).
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = AgentError> = std::result::Result<T, E>;

impl AgentError {
    pub(crate) fn invalid(message: impl Display) -> Self {
        AgentError::Invalid(message.to_string())
    }
}

/// Names the step that failed, as `anyhow::Context` does, into an [`AgentError`].
pub(crate) trait Context<T> {
    fn context(self, context: impl Display) -> Result<T>;
    fn with_context<C: Display>(self, context: impl FnOnce() -> C) -> Result<T>;
}

impl<T, E: Into<Source>> Context<T> for std::result::Result<T, E> {
    fn context(self, context: impl Display) -> Result<T> {
        self.map_err(|e| AgentError::Failed {
            context: context.to_string(),
            source: e.into(),
        })
    }

    fn with_context<C: Display>(self, context: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| AgentError::Failed {
            context: context().to_string(),
            source: e.into(),
        })
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, context: impl Display) -> Result<T> {
        self.ok_or_else(|| AgentError::invalid(context))
    }

    fn with_context<C: Display>(self, context: impl FnOnce() -> C) -> Result<T> {
        self.ok_or_else(|| AgentError::invalid(context()))
    }
}

/// Errors that `?` turns into [`AgentError::Failed`] with the error's own kind as context.
macro_rules! failed_from {
    ($($ty:ty => $what:literal),* $(,)?) => {$(
        impl From<$ty> for AgentError {
            fn from(e: $ty) -> Self {
                AgentError::Failed { context: $what.into(), source: Box::new(e) }
            }
        }
    )*};
}

failed_from! {
    std::io::Error => "i/o",
    serde_json::Error => "json",
    reqwest::Error => "http",
    rustls::Error => "tls",
    tessera_pki::PkiError => "pki",
    tessera_ingress::IngressError => "ingress",
    prometheus::Error => "metrics",
    sqlx::Error => "store",
}

/// `return Err(AgentError::Invalid(format!(…)))`.
macro_rules! bail {
    ($($arg:tt)*) => { return Err($crate::error::AgentError::Invalid(format!($($arg)*))) };
}

/// `if !cond { bail!(…) }`.
macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => { if !$cond { $crate::error::bail!($($arg)*); } };
}

pub(crate) use {bail, ensure};
