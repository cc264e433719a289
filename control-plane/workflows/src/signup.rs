//! Sign-up: account, owner user, first API key, audit entry; the operation follows each step.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ActivityOptions, WorkflowContext, WorkflowResult};
use uuid::Uuid;

use crate::activities::{ControlActivities, OperationStep};

/// Everything the workflow needs, decided by the API before it starts. Holds no clear secret:
/// the password arrives hashed and the API key as the digest of its secret.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct SignupInput {
    pub operation_id: Uuid,
    pub account_id: Uuid,
    pub account_name: String,
    pub user_id: Uuid,
    pub email: String,
    pub password_hash: String,
    pub api_key_id: Uuid,
    pub api_key_digest: String,
    pub api_key_expires_at: DateTime<Utc>,
    pub source_ip: Option<String>,
    pub requested_at: DateTime<Utc>,
}

tessera_api::debug_without_secrets!(SignupInput {
    operation_id,
    account_id,
    account_name,
    user_id,
    email,
    api_key_id,
    api_key_expires_at
});

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignupOutput {
    pub account_id: Uuid,
    pub user_id: Uuid,
    pub api_key_id: Uuid,
}

/// Workflow id of the sign-up driving `operation_id`.
pub fn workflow_id(operation_id: Uuid) -> String {
    format!("signup-{operation_id}")
}

#[workflow]
#[derive(Default)]
pub struct SignupWorkflow;

fn activity_options() -> ActivityOptions {
    // Transient store errors are retried without limit; a conflict is non-retryable. Each
    // activity is one or two small writes: a short timeout bounds how long a task held by a
    // worker that died waits before it is retried elsewhere.
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(10))
        .retry_policy(crate::activities::retry_policy())
        .build()
}

fn step(input: &SignupInput, progress: f64, step: &str) -> OperationStep {
    OperationStep {
        operation_id: input.operation_id,
        state: "in_progress".into(),
        progress,
        step: Some(step.into()),
        error_code: None,
        error_message: None,
    }
}

#[workflow_methods]
impl SignupWorkflow {
    #[run]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: SignupInput,
    ) -> WorkflowResult<SignupOutput> {
        let result = Self::steps(ctx, &input).await;
        if let Err(e) = &result {
            // Conflicts already marked the operation with their own code; this covers the rest.
            let failed = OperationStep {
                operation_id: input.operation_id,
                state: "failed".into(),
                progress: 0.0,
                step: None,
                error_code: Some("internal".into()),
                error_message: Some(format!("sign-up failed: {e}")),
            };
            ctx.execute_activity(
                ControlActivities::update_operation,
                failed,
                activity_options(),
            )
            .await?;
        }
        result
    }
}

impl SignupWorkflow {
    async fn steps(
        ctx: &mut WorkflowContext<Self>,
        input: &SignupInput,
    ) -> WorkflowResult<SignupOutput> {
        let o = activity_options;
        ctx.execute_activity(
            ControlActivities::update_operation,
            step(input, 0.1, "creating account"),
            o(),
        )
        .await?;
        ctx.execute_activity(ControlActivities::create_account, input.clone(), o())
            .await?;
        ctx.execute_activity(
            ControlActivities::update_operation,
            step(input, 0.35, "creating owner user"),
            o(),
        )
        .await?;
        ctx.execute_activity(ControlActivities::create_owner, input.clone(), o())
            .await?;
        ctx.execute_activity(
            ControlActivities::update_operation,
            step(input, 0.6, "issuing first API key"),
            o(),
        )
        .await?;
        ctx.execute_activity(ControlActivities::create_first_api_key, input.clone(), o())
            .await?;
        ctx.execute_activity(
            ControlActivities::update_operation,
            step(input, 0.85, "recording audit entry"),
            o(),
        )
        .await?;
        ctx.execute_activity(ControlActivities::record_signup_audit, input.clone(), o())
            .await?;
        let done = OperationStep {
            state: "fulfilled".into(),
            progress: 1.0,
            step: None,
            ..step(input, 1.0, "")
        };
        ctx.execute_activity(ControlActivities::update_operation, done, o())
            .await?;
        Ok(SignupOutput {
            account_id: input.account_id,
            user_id: input.user_id,
            api_key_id: input.api_key_id,
        })
    }
}
