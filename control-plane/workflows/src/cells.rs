//! The cell entity workflow: one long-lived workflow per cell serialises everything done to it.
//!
//! `provision → join → healthy`, then a health watch (a timer loop that continues as new to
//! bound its history) until a `decommission` signal: drain (empty desired state), destroy the
//! infrastructure, revoke the identity. The operation of each phase follows its steps. An
//! `apply_release` signal (from a rollout) writes the release into the cell's desired state;
//! the agent then moves the cell's runtimes to it one at a time.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ContinueAsNewOptions, SyncWorkflowContext, WorkflowContext, WorkflowResult};
use tessera_api::{CellStatus, ReleaseSpec};
use uuid::Uuid;

use crate::cell_activities::{AwaitCell, CellActivities, CellCondition};
use crate::steps::{finish, options, report, short, waiting};

/// How often the watch checks the agent's reports.
const HEALTH_INTERVAL: Duration = Duration::from_secs(10);
/// Health checks per run before continuing as new.
const CHECKS_PER_RUN: u32 = 200;
/// How long to wait for an agent to join and to report healthy.
const JOIN_TIMEOUT_SECS: u64 = 120;
/// How long decommissioning waits for the agent to stop its runtimes before destroying anyway.
const DRAIN_TIMEOUT_SECS: u64 = 60;
/// Marks histories that set up the ring-0 canary (older runs replay without it).
const CANARY_PATCH: &str = "ring0-canary";

pub fn workflow_id(cell_id: &str) -> String {
    format!("cell-{cell_id}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CellPhase {
    Provision,
    Watch,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellInput {
    pub cell_id: String,
    pub phase: CellPhase,
    /// The operation of the provisioning phase.
    pub operation_id: Option<Uuid>,
    /// How long to wait for the agent to join (default 120 s; a self-hosted cell waits for
    /// as long as its join token is valid).
    #[serde(default)]
    pub join_timeout_secs: Option<u64>,
    /// A release signalled to the previous run and not yet written.
    #[serde(default)]
    pub pending_release: Option<ApplyRelease>,
}

/// `apply_release`: run `release` on the cell (`None`: the agent's defaults, no release).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplyRelease {
    pub release: Option<ReleaseSpec>,
    /// The rollout asking, for the logs.
    pub rollout: String,
}

#[workflow]
#[derive(Default)]
pub struct CellWorkflow {
    /// Set by the `decommission` signal: the operation that tracks it.
    decommission: Option<Uuid>,
    /// The newest `apply_release` not yet written to the desired state.
    release: Option<ApplyRelease>,
}

#[workflow_methods]
impl CellWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: CellInput) -> WorkflowResult<()> {
        let cell = input.cell_id.clone();
        if let Some(carried) = input.pending_release.clone() {
            ctx.state_mut(|s| {
                s.release.get_or_insert(carried);
            });
        }
        if input.phase == CellPhase::Provision {
            let op = input.operation_id;
            let join_timeout = input.join_timeout_secs.unwrap_or(JOIN_TIMEOUT_SECS);
            if let Err(message) = Self::provision(ctx, &cell, op, join_timeout).await? {
                ctx.execute_activity(
                    CellActivities::set_cell_status,
                    (cell.clone(), CellStatus::Failed),
                    short(),
                )
                .await?;
                finish(ctx, op, Some(message)).await?;
                // A failed cell can still be decommissioned: keep watching for the signal.
            } else {
                finish(ctx, op, None).await?;
            }
        }
        if input.phase == CellPhase::Watch
            && !ctx.state(|s| s.decommission.is_some())
            && ctx.patched(CANARY_PATCH)
        {
            // Cells that existed before canaries (or whose ring changed) get it here.
            Self::ensure_canary(ctx, &cell).await;
        }
        for _ in 0..CHECKS_PER_RUN {
            if ctx.state(|s| s.decommission.is_some()) {
                break;
            }
            temporalio_workflow::select! {
                _ = ctx.timer(HEALTH_INTERVAL) => {}
                _ = ctx.wait_condition(|s: &Self| s.decommission.is_some() || s.release.is_some()) => {}
            };
            if ctx.state(|s| s.decommission.is_some()) {
                break;
            }
            if let Some(apply) = ctx.state_mut(|s| s.release.take()) {
                ctx.execute_activity(
                    CellActivities::set_cell_release,
                    (cell.clone(), apply),
                    short(),
                )
                .await?;
                continue;
            }
            ctx.execute_activity(CellActivities::check_cell_health, cell.clone(), short())
                .await?;
        }
        match ctx.state(|s| s.decommission) {
            Some(op) => Self::decommission_cell(ctx, &cell, op).await,
            None => {
                ctx.continue_as_new(
                    CellInput {
                        pending_release: ctx.state(|s| s.release.clone()),
                        cell_id: cell,
                        phase: CellPhase::Watch,
                        operation_id: None,
                        join_timeout_secs: None,
                    },
                    ContinueAsNewOptions::default(),
                )?;
                Ok(())
            }
        }
    }

    /// Runs a release on the cell (the newest signal wins).
    #[signal]
    pub fn apply_release(&mut self, _ctx: &mut SyncWorkflowContext<Self>, apply: ApplyRelease) {
        self.release = Some(apply);
    }

    /// Asks the cell to go away; the workflow drains and destroys it.
    #[signal]
    pub fn decommission(&mut self, _ctx: &mut SyncWorkflowContext<Self>, operation_id: Uuid) {
        self.decommission.get_or_insert(operation_id);
    }
}

impl CellWorkflow {
    /// `Ok(Err(reason))` when the cell did not come up; the workflow records it as failed.
    async fn provision(
        ctx: &mut WorkflowContext<Self>,
        cell: &str,
        op: Option<Uuid>,
        join_timeout: u64,
    ) -> WorkflowResult<Result<(), String>> {
        report(ctx, op, 0.1, "provisioning infrastructure").await?;
        ctx.execute_activity(
            CellActivities::provision_cell,
            cell.to_string(),
            options(Duration::from_secs(60)),
        )
        .await?;
        report(ctx, op, 0.4, "waiting for the agent to join").await?;
        let wait = |until, timeout_secs| AwaitCell {
            cell_id: cell.to_string(),
            until,
            timeout_secs,
        };
        if !ctx
            .execute_activity(
                CellActivities::await_cell,
                wait(CellCondition::Joined, join_timeout),
                waiting(Duration::from_secs(join_timeout + 30)),
            )
            .await?
        {
            return Ok(Err(format!(
                "the agent of cell {cell} did not join within {join_timeout} s"
            )));
        }
        let long = waiting(Duration::from_secs(JOIN_TIMEOUT_SECS + 30));
        report(ctx, op, 0.7, "waiting for the agent's first healthy report").await?;
        if !ctx
            .execute_activity(
                CellActivities::await_cell,
                wait(CellCondition::Healthy, JOIN_TIMEOUT_SECS),
                long,
            )
            .await?
        {
            return Ok(Err(format!(
                "cell {cell} did not report healthy within {JOIN_TIMEOUT_SECS} s"
            )));
        }
        ctx.execute_activity(
            CellActivities::set_cell_status,
            (cell.to_string(), CellStatus::Healthy),
            short(),
        )
        .await?;
        if ctx.patched(CANARY_PATCH) {
            Self::ensure_canary(ctx, cell).await;
        }
        Ok(Ok(()))
    }

    /// Ring-0 cells run a synthetic canary (the activity checks the ring). Best effort: a
    /// canary that cannot be set up does not fail the cell; the next watch run tries again.
    async fn ensure_canary(ctx: &mut WorkflowContext<Self>, cell: &str) {
        let _ = ctx
            .execute_activity(CellActivities::ensure_canary, cell.to_string(), short())
            .await;
    }

    async fn decommission_cell(
        ctx: &mut WorkflowContext<Self>,
        cell: &str,
        op: Uuid,
    ) -> WorkflowResult<()> {
        let op = Some(op);
        ctx.execute_activity(
            CellActivities::set_cell_status,
            (cell.to_string(), CellStatus::Decommissioning),
            short(),
        )
        .await?;
        report(ctx, op, 0.1, "stopping the cell's runtimes").await?;
        ctx.execute_activity(
            CellActivities::clear_cell_desired,
            cell.to_string(),
            short(),
        )
        .await?;
        // Best effort: an unreachable agent does not block decommissioning.
        ctx.execute_activity(
            CellActivities::await_cell,
            AwaitCell {
                cell_id: cell.to_string(),
                until: CellCondition::Drained,
                timeout_secs: DRAIN_TIMEOUT_SECS,
            },
            waiting(Duration::from_secs(DRAIN_TIMEOUT_SECS + 30)),
        )
        .await?;
        report(ctx, op, 0.5, "destroying the cell's infrastructure").await?;
        ctx.execute_activity(
            CellActivities::destroy_cell,
            cell.to_string(),
            options(Duration::from_secs(120)),
        )
        .await?;
        report(ctx, op, 0.85, "revoking the cell's identity").await?;
        ctx.execute_activity(CellActivities::forget_cell, cell.to_string(), short())
            .await?;
        finish(ctx, op, None).await
    }
}
