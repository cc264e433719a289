//! Certificate renewal: a singleton workflow that renews, on a timer, whatever is two thirds
//! through its lifetime (cell intermediates, ingress certificates, agent identities).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use temporalio_common::RetryPolicy;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ActivityOptions, ContinueAsNewOptions, WorkflowContext, WorkflowResult};

use crate::cell_activities::CellActivities;

pub const WORKFLOW_ID: &str = "pki-renewal";
/// Passes per run before continuing as new (bounds the history).
const PASSES_PER_RUN: u32 = 100;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenewalInput {
    pub interval_secs: u64,
}

#[workflow]
#[derive(Default)]
pub struct CertRenewalWorkflow;

#[workflow_methods]
impl CertRenewalWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: RenewalInput) -> WorkflowResult<()> {
        let options = ActivityOptions::with_start_to_close_timeout(Duration::from_secs(120))
            .retry_policy(
                RetryPolicy::builder()
                    .initial_interval(Duration::from_secs(1))
                    .backoff_coefficient(2.0)
                    .maximum_interval(Duration::from_secs(60))
                    .build(),
            )
            .build();
        for _ in 0..PASSES_PER_RUN {
            ctx.execute_activity(CellActivities::renew_certificates, (), options.clone())
                .await?;
            ctx.timer(Duration::from_secs(input.interval_secs.max(1)))
                .await;
        }
        ctx.continue_as_new(input, ContinueAsNewOptions::default())?;
        Ok(())
    }
}
