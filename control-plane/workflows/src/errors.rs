//! How activities report failures to Temporal: retry what is transient, end what is final.

use temporalio_sdk::ApplicationFailure;
use temporalio_sdk::activities::ActivityError;
use tessera_store::StoreError;

use crate::certs::CertError;

/// A failure worth retrying (the activity's retry policy decides when).
pub fn retryable(e: impl Into<anyhow::Error>) -> ActivityError {
    ActivityError::from(e.into())
}

/// A failure no retry can mend; the workflow sees it at once.
pub fn final_error(message: String) -> ActivityError {
    ActivityError::application(ApplicationFailure::non_retryable(message))
}

/// A missing row and a document that cannot be read are final (a retry reads the same bytes);
/// anything else from the store is retried.
pub fn store_err(e: StoreError) -> ActivityError {
    match e {
        StoreError::NotFound(what) => final_error(format!("{what} not found")),
        e @ (StoreError::Unreadable { .. } | StoreError::NewerSchema { .. }) => {
            tracing::error!(error = %e, "a cell document cannot be used");
            final_error(e.to_string())
        }
        e => retryable(e),
    }
}

pub fn cert_err(e: CertError) -> ActivityError {
    if e.is_retryable() {
        retryable(e)
    } else {
        final_error(e.to_string())
    }
}
