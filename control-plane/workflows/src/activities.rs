//! Activities of the control workflows: thin, idempotent writes to the store.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use temporalio_macros::activities;
use temporalio_sdk::ApplicationFailure;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tessera_api::ActorKind;
use tessera_store::{
    NewAccount, NewApiKey, NewAuditEntry, NewOperation, NewUser, OperationUpdate, Store, StoreError,
};
use uuid::Uuid;

use crate::signup::{SignupInput, workflow_id};

/// How control workflows retry activities: store and provider errors are transient, so retry
/// without limit, quickly at first. Non-retryable failures (conflicts, bad config) end it.
pub fn retry_policy() -> temporalio_common::RetryPolicy {
    temporalio_common::RetryPolicy::builder()
        .initial_interval(Duration::from_millis(200))
        .backoff_coefficient(2.0)
        .maximum_interval(Duration::from_secs(10))
        .build()
}

/// A step of an operation, as the workflow reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperationStep {
    pub operation_id: Uuid,
    pub state: String,
    pub progress: f64,
    pub step: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

/// The activities' shared dependencies.
pub struct ControlActivities {
    pub store: Store,
    /// Test hook: wait this long before each sign-up step (to crash the process mid-workflow).
    pub step_delay: Option<Duration>,
}

impl ControlActivities {
    async fn hook(&self) {
        if let Some(d) = self.step_delay {
            tokio::time::sleep(d).await;
        }
    }

    /// A conflict is final: mark the operation failed with `already_exists` and do not retry.
    /// Anything else is retried by Temporal.
    async fn fail_on_conflict(
        &self,
        operation_id: Uuid,
        e: StoreError,
        what: &str,
    ) -> ActivityError {
        match e {
            StoreError::Conflict(_) => {
                let message = format!("{what} already exists");
                let update = OperationUpdate {
                    state: "failed".into(),
                    progress: 0.0,
                    step: None,
                    error_code: Some("already_exists".into()),
                    error_message: Some(message.clone()),
                };
                if let Err(e) = self.store.update_operation(operation_id, update).await {
                    return ActivityError::from(anyhow::Error::new(e));
                }
                ActivityError::application(ApplicationFailure::non_retryable(message))
            }
            other => ActivityError::from(anyhow::Error::new(other)),
        }
    }
}

fn retryable(e: StoreError) -> ActivityError {
    ActivityError::from(anyhow::Error::new(e))
}

#[activities]
impl ControlActivities {
    /// Moves an operation to a new step; terminal states stick.
    #[activity]
    pub async fn update_operation(
        self: Arc<Self>,
        _ctx: ActivityContext,
        step: OperationStep,
    ) -> Result<(), ActivityError> {
        self.store
            .update_operation(
                step.operation_id,
                OperationUpdate {
                    state: step.state,
                    progress: step.progress,
                    step: step.step,
                    error_code: step.error_code,
                    error_message: step.error_message,
                },
            )
            .await
            .map_err(retryable)?;
        Ok(())
    }

    #[activity]
    pub async fn create_account(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: SignupInput,
    ) -> Result<(), ActivityError> {
        self.hook().await;
        // The operation row normally exists already; make sure, in case the API died in between.
        self.store
            .create_operation(NewOperation {
                id: input.operation_id,
                account_id: Some(input.account_id),
                kind: "signup".into(),
                resource_kind: "account".into(),
                resource_id: input.account_id.to_string(),
                workflow_id: workflow_id(input.operation_id),
                created_at: input.requested_at,
            })
            .await
            .map_err(retryable)?;
        let res = self
            .store
            .create_account(NewAccount {
                id: input.account_id,
                name: input.account_name.clone(),
                created_at: input.requested_at,
            })
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) => Err(self
                .fail_on_conflict(
                    input.operation_id,
                    e,
                    &format!("account {:?}", input.account_name),
                )
                .await),
        }
    }

    #[activity]
    pub async fn create_owner(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: SignupInput,
    ) -> Result<(), ActivityError> {
        self.hook().await;
        let res = self
            .store
            .create_user(NewUser {
                id: input.user_id,
                account_id: input.account_id,
                email: input.email.clone(),
                password_hash: Some(input.password_hash.clone()),
                role: "owner".into(),
                state: "active".into(),
                invite_token_digest: None,
                created_at: input.requested_at,
            })
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) => Err(self
                .fail_on_conflict(
                    input.operation_id,
                    e,
                    &format!("a user with email {}", input.email),
                )
                .await),
        }
    }

    #[activity]
    pub async fn create_first_api_key(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: SignupInput,
    ) -> Result<(), ActivityError> {
        self.hook().await;
        self.store
            .create_api_key(NewApiKey {
                id: input.api_key_id,
                account_id: input.account_id,
                name: "default".into(),
                user_id: Some(input.user_id),
                service_account_id: None,
                secret_digest: input.api_key_digest.clone(),
                expires_at: input.api_key_expires_at,
                created_at: input.requested_at,
            })
            .await
            .map_err(retryable)?;
        Ok(())
    }

    #[activity]
    pub async fn record_signup_audit(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: SignupInput,
    ) -> Result<(), ActivityError> {
        self.hook().await;
        self.store
            .append_audit(NewAuditEntry {
                // Derived from the operation so a retried activity writes the same row.
                id: input.operation_id,
                account_id: Some(input.account_id),
                at: input.requested_at,
                actor_kind: ActorKind::User.as_str().into(),
                actor_id: Some(input.user_id),
                actor_name: Some(input.email.clone()),
                api_key_id: None,
                action: "account.signup".into(),
                resource: format!("account/{}", input.account_id),
                source_ip: input.source_ip.clone(),
                details: serde_json::json!({
                    "account_name": input.account_name,
                    "api_key_id": input.api_key_id,
                    "operation_id": input.operation_id,
                }),
            })
            .await
            .map_err(retryable)?;
        Ok(())
    }
}
