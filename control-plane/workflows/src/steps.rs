//! What every entity workflow shares: activity options and reporting an operation's steps.

use std::time::Duration;

use temporalio_sdk::{ActivityExecutionError, ActivityOptions, WorkflowContext, WorkflowResult};
use uuid::Uuid;

use crate::activities::{ControlActivities, OperationStep, retry_policy};

pub fn options(start_to_close: Duration) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(start_to_close)
        .retry_policy(retry_policy())
        .build()
}

/// For activities that poll for a long time: a worker that dies is noticed by its missing
/// heartbeats, and the activity is retried elsewhere without waiting out its whole timeout.
pub fn waiting(start_to_close: Duration) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(start_to_close)
        .heartbeat_timeout(Duration::from_secs(10))
        .retry_policy(retry_policy())
        .build()
}

/// A quick store write: a lost attempt (a worker that died) is retried after 15 s at most.
pub fn short() -> ActivityOptions {
    options(Duration::from_secs(15))
}

fn step(op: Uuid, state: &str, progress: f64, step: Option<&str>) -> OperationStep {
    OperationStep {
        operation_id: op,
        state: state.into(),
        progress,
        step: step.map(str::to_string),
        error_code: None,
        error_message: None,
    }
}

/// Moves the operation (if any) to `what`, at `progress`.
pub async fn report<W>(
    ctx: &WorkflowContext<W>,
    op: Option<Uuid>,
    progress: f64,
    what: &str,
) -> WorkflowResult<()> {
    if let Some(op) = op {
        ctx.execute_activity(
            ControlActivities::update_operation,
            step(op, "in_progress", progress, Some(what)),
            short(),
        )
        .await?;
    }
    Ok(())
}

/// Ends the operation (if any): fulfilled, or failed with `failed_precondition` and `error`.
pub async fn finish<W>(
    ctx: &WorkflowContext<W>,
    op: Option<Uuid>,
    error: Option<String>,
) -> WorkflowResult<()> {
    if let Some(op) = op {
        let mut s = step(
            op,
            if error.is_some() {
                "failed"
            } else {
                "fulfilled"
            },
            1.0,
            None,
        );
        if let Some(message) = error {
            s.progress = 0.0;
            s.error_code = Some("failed_precondition".into());
            s.error_message = Some(message);
        }
        ctx.execute_activity(ControlActivities::update_operation, s, short())
            .await?;
    }
    Ok(())
}

/// An activity's outcome for a workflow that reports failures on its operation: a failure no
/// retry mends (an unreadable cell document, a vanished record) becomes `Ok(Err(reason))`,
/// with the innermost failure's message; anything else stops the workflow as before.
pub fn settled<T>(r: Result<T, ActivityExecutionError>) -> WorkflowResult<Result<T, String>> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(e @ ActivityExecutionError::Failed(_)) => {
            let mut reason = e.to_string();
            let mut failure = e.failure();
            while let Some(f) = failure {
                if !f.message.is_empty() {
                    reason = f.message.clone();
                }
                failure = f.cause.as_deref();
            }
            Ok(Err(reason))
        }
        Err(e) => Err(e.into()),
    }
}
