//! Draining a cell: every namespace on it moves to another cell of its region by live
//! migration, a few at a time; then, when asked, the cell is decommissioned.
//!
//! The cell is `draining` (or `decommissioning`) from the start, so placement puts nothing new
//! on it. Each migration is an ordinary one: a record, an operation, and a request to the
//! namespace's own workflow, which runs it; this workflow waits for each to end.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{SignalWorkflowOptions, WorkflowContext, WorkflowResult};
use uuid::Uuid;

use crate::cells::CellWorkflow;
use crate::migration_activities::MigrationActivities;
use crate::namespaces::{NamespaceRequest, NamespaceWorkflow};
use crate::steps::{finish, report, short, waiting};

pub fn workflow_id(operation_id: Uuid) -> String {
    format!("drain-{operation_id}")
}

/// How long one namespace's migration may take before the drain reports it failed.
const MIGRATION_TIMEOUT_SECS: u64 = 900;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainInput {
    pub cell_id: String,
    pub operation_id: Uuid,
    pub max_parallel: u32,
    /// Decommission the cell once it is empty, reporting on this operation.
    pub then_decommission: bool,
}

#[workflow]
#[derive(Default)]
pub struct DrainWorkflow;

#[workflow_methods]
impl DrainWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: DrainInput) -> WorkflowResult<()> {
        let op = Some(input.operation_id);
        report(ctx, op, 0.02, "listing the cell's namespaces").await?;
        let namespaces = ctx
            .execute_activity(
                MigrationActivities::drain_namespaces,
                input.cell_id.clone(),
                short(),
            )
            .await?;
        let total = namespaces.len().max(1) as f64;
        let mut failures = Vec::new();
        let mut done = 0usize;
        for batch in namespaces.chunks(input.max_parallel.max(1) as usize) {
            let mut started = Vec::new();
            for ns in batch {
                let planned = ctx
                    .execute_activity(
                        MigrationActivities::drain_migration,
                        (*ns, input.cell_id.clone()),
                        waiting(Duration::from_secs(120)),
                    )
                    .await?;
                match planned {
                    Ok(Some(m)) => {
                        ctx.external_workflow(crate::namespaces::workflow_id(*ns), None)
                            .signal(
                                NamespaceWorkflow::request,
                                NamespaceRequest::Migrate {
                                    operation_id: m.operation_id,
                                    migration_id: m.migration_id,
                                },
                                SignalWorkflowOptions::default(),
                            )
                            .await?;
                        started.push(m);
                    }
                    Ok(None) => {}
                    Err(reason) => failures.push(reason),
                }
            }
            for m in started {
                let end = ctx
                    .execute_activity(
                        MigrationActivities::await_migration,
                        (m.migration_id, MIGRATION_TIMEOUT_SECS),
                        waiting(Duration::from_secs(MIGRATION_TIMEOUT_SECS + 30)),
                    )
                    .await?;
                if end != "completed" {
                    failures.push(format!(
                        "namespace {} migration {}: {end}",
                        m.namespace, m.migration_id
                    ));
                }
            }
            done += batch.len();
            let progress = 0.05 + 0.85 * done as f64 / total;
            report(
                ctx,
                op,
                progress,
                &format!("moved {done} of {} namespaces", namespaces.len()),
            )
            .await?;
        }
        if !failures.is_empty() {
            return finish(ctx, op, Some(failures.join("; "))).await;
        }
        if input.then_decommission {
            report(ctx, op, 0.92, "the cell is empty; decommissioning it").await?;
            ctx.external_workflow(crate::cells::workflow_id(&input.cell_id), None)
                .signal(
                    CellWorkflow::decommission,
                    input.operation_id,
                    SignalWorkflowOptions::default(),
                )
                .await?;
            // The cell's workflow finishes the operation.
            return Ok(());
        }
        finish(ctx, op, None).await
    }
}
