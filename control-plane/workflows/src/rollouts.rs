//! The rollout workflow: a release moves through the deployment rings.
//!
//! The plan (rings, batches, gates) is made when the rollout is created and travels with the
//! workflow; every decision comes from `tessera_rings::next`, a pure state machine, so this
//! workflow only carries out steps: ask the cells' entity workflows to run the release, wait
//! for their agents to report it, bake (a durable timer), judge the gates from what the agents
//! report, and on a failed gate put the batch back on the release it ran before. Pause,
//! resume, abort and approve are signals; `progress` is a query. A control-plane crash at any
//! point resumes where it stood: the state is in the workflow's history, not in memory.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ContinueAsNewOptions, SignalWorkflowOptions, SyncWorkflowContext, WorkflowContext,
    WorkflowContextView, WorkflowResult,
};
use tessera_api::ReleaseSpec;
use tessera_rings::{Plan, Progress, RolloutState, Step};
use uuid::Uuid;

use crate::cells::{ApplyRelease, CellWorkflow};
use crate::rollout_activities::{AwaitRelease, CellSnapshot, RolloutActivities};
use crate::steps::{short, waiting};

pub fn workflow_id(rollout_id: Uuid) -> String {
    format!("rollout-{rollout_id}")
}

/// Steps per run before continuing as new (bounds the history of a rollout that runs weeks).
const STEPS_PER_RUN: u32 = 100;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutInput {
    pub rollout_id: Uuid,
    pub release: ReleaseSpec,
    pub plan: Plan,
    /// How long a batch may take to run the release (or a rollback the previous one).
    pub apply_timeout_secs: u64,
    /// Carried across continue-as-new.
    #[serde(default)]
    pub state: Option<RolloutState>,
    /// What each touched cell ran before, for a rollback.
    #[serde(default)]
    pub previous: BTreeMap<String, Option<ReleaseSpec>>,
    /// Counters of the batch in flight when it was applied.
    #[serde(default)]
    pub baseline: Vec<CellSnapshot>,
    #[serde(default)]
    pub pending: Vec<RolloutControl>,
}

/// What an SRE asks of a running rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum RolloutControl {
    Pause,
    Resume,
    Abort,
    /// Approve the ring waiting for approval (or `ring`, by name).
    Approve {
        #[serde(default)]
        ring: Option<String>,
    },
}

#[workflow]
#[derive(Default)]
pub struct RolloutWorkflow {
    plan: Option<Plan>,
    state: RolloutState,
    controls: VecDeque<RolloutControl>,
}

#[workflow_methods]
impl RolloutWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: RolloutInput) -> WorkflowResult<()> {
        let id = input.rollout_id;
        let plan = input.plan.clone();
        let mut previous = input.previous.clone();
        let mut baseline = input.baseline.clone();
        ctx.state_mut(|s| {
            s.plan = Some(plan.clone());
            if let Some(st) = input.state.clone() {
                s.state = st;
            }
            s.controls.extend(input.pending.iter().cloned());
        });
        let version = input.release.version.clone();
        let mut saved: Option<String> = None;
        for _ in 0..STEPS_PER_RUN {
            let now = now(ctx);
            Self::apply_controls(ctx, &plan, now);
            let view = ctx.state(|s| view(&plan, &s.state, now));
            let key = view.to_string();
            if saved.as_deref() != Some(key.as_str()) {
                save(ctx, id, view).await?;
                saved = Some(key);
            }
            let step = ctx.state(|s| tessera_rings::next(&plan, &s.state, now));
            match step {
                Step::Done | Step::Halted { .. } | Step::Aborted => return Ok(()),
                Step::AwaitApproval { .. } | Step::Paused => {
                    ctx.wait_condition(|s: &Self| !s.controls.is_empty())
                        .await?;
                }
                Step::Bake { until } => {
                    let wait = (until - now).to_std().unwrap_or(Duration::ZERO);
                    temporalio_workflow::select! {
                        _ = ctx.timer(wait) => {}
                        _ = ctx.wait_condition(|s: &Self| !s.controls.is_empty()) => {}
                    };
                }
                Step::ApplyBatch { cells, .. } => {
                    for cell in &cells {
                        if !previous.contains_key(cell) {
                            let before = ctx
                                .execute_activity(
                                    RolloutActivities::current_release,
                                    cell.clone(),
                                    short(),
                                )
                                .await?;
                            previous.insert(cell.clone(), before);
                        }
                    }
                    let want = cells
                        .iter()
                        .map(|c| (c.clone(), Some(input.release.clone())))
                        .collect();
                    let outcome =
                        Self::run_release(ctx, id, want, input.apply_timeout_secs).await?;
                    let now = self::now(ctx);
                    ctx.state_mut(|s| {
                        let r = if outcome.applied {
                            s.state.batch_applied(&plan, now)
                        } else {
                            // The release never ran on the whole batch: the batch fails at
                            // once, with the health gate's verdict when it has one.
                            let observations: Vec<_> =
                                outcome.cells.iter().map(|c| c.since(None)).collect();
                            let gates = current_gates(&plan, &s.state);
                            let report = tessera_rings::evaluate(&gates, &observations);
                            let mut reason = outcome.reason.clone().unwrap_or_default();
                            if !report.passed() {
                                reason = format!("{reason} ({})", report.summary());
                            }
                            s.state.batch_failed(&plan, reason, now)
                        };
                        if let Err(e) = r {
                            tracing::warn!(error = %e, "rollout state refused a step");
                        }
                    });
                    if !outcome.applied {
                        tracing::warn!(rollout = %id, release = %version, reason = ?outcome.reason, "batch failed to run the release");
                    }
                    baseline = outcome.cells;
                }
                Step::EvaluateGates { cells, .. } => {
                    let snaps = ctx
                        .execute_activity(RolloutActivities::observe_cells, cells, short())
                        .await?;
                    let observations: Vec<_> = snaps
                        .iter()
                        .map(|s| s.since(baseline.iter().find(|b| b.cell == s.cell)))
                        .collect();
                    let now = self::now(ctx);
                    ctx.state_mut(|s| {
                        let gates = current_gates(&plan, &s.state);
                        let report = tessera_rings::evaluate(&gates, &observations);
                        if let Err(e) = s.state.gates_evaluated(&plan, report, now) {
                            tracing::warn!(error = %e, "rollout state refused the gate report");
                        }
                    });
                }
                Step::RollBack { cells, reason, .. } => {
                    tracing::warn!(rollout = %id, %reason, "rolling the batch back");
                    let want = cells
                        .iter()
                        .map(|c| (c.clone(), previous.get(c).cloned().flatten()))
                        .collect();
                    let outcome =
                        Self::run_release(ctx, id, want, input.apply_timeout_secs).await?;
                    if !outcome.applied {
                        // Keep trying: a batch must not stay on a release that failed.
                        continue;
                    }
                    let now = self::now(ctx);
                    ctx.state_mut(|s| {
                        if let Err(e) = s.state.rolled_back(now) {
                            tracing::warn!(error = %e, "rollout state refused the rollback");
                        }
                    });
                }
            }
        }
        let (state, pending) =
            ctx.state(|s| (s.state.clone(), s.controls.iter().cloned().collect()));
        ctx.continue_as_new(
            RolloutInput {
                state: Some(state),
                previous,
                baseline,
                pending,
                ..input
            },
            ContinueAsNewOptions::default(),
        )?;
        Ok(())
    }

    #[signal]
    pub fn control(&mut self, _ctx: &mut SyncWorkflowContext<Self>, control: RolloutControl) {
        self.controls.push_back(control);
    }

    /// The rollout as people see it: status, rings, batches, gate results, and its events.
    #[query]
    pub fn progress(&self, _ctx: &WorkflowContextView, _input: ()) -> Option<serde_json::Value> {
        // A query adds nothing to the history, so reading the clock here is safe.
        self.plan.as_ref().map(|p| view(p, &self.state, Utc::now()))
    }
}

impl RolloutWorkflow {
    fn apply_controls(ctx: &mut WorkflowContext<Self>, plan: &Plan, now: DateTime<Utc>) {
        ctx.state_mut(|s| {
            while let Some(c) = s.controls.pop_front() {
                let r = match &c {
                    RolloutControl::Pause => s.state.pause(now),
                    RolloutControl::Resume => s.state.resume(now),
                    RolloutControl::Abort => s.state.abort(now),
                    RolloutControl::Approve { ring } => {
                        let name = ring.clone().or_else(|| {
                            match tessera_rings::next(plan, &s.state, now) {
                                Step::AwaitApproval { ring } => {
                                    plan.rings.get(ring).map(|r| r.name.clone())
                                }
                                _ => None,
                            }
                        });
                        match name {
                            Some(n) => s.state.approved(plan, &n, now),
                            None => Ok(()),
                        }
                    }
                };
                if let Err(e) = r {
                    tracing::info!(control = ?c, error = %e, "rollout control ignored");
                }
            }
        });
    }

    /// Asks each cell's entity workflow to run its release, then waits for the agents.
    async fn run_release(
        ctx: &mut WorkflowContext<Self>,
        id: Uuid,
        want: BTreeMap<String, Option<ReleaseSpec>>,
        timeout_secs: u64,
    ) -> WorkflowResult<crate::rollout_activities::ReleaseOutcome> {
        for (cell, release) in &want {
            ctx.external_workflow(crate::cells::workflow_id(cell), None)
                .signal(
                    CellWorkflow::apply_release,
                    ApplyRelease {
                        release: release.clone(),
                        rollout: id.to_string(),
                    },
                    SignalWorkflowOptions::default(),
                )
                .await?;
        }
        let input = AwaitRelease {
            want: want
                .into_iter()
                .map(|(c, r)| (c, r.map(|r| r.version)))
                .collect(),
            timeout_secs,
        };
        Ok(ctx
            .execute_activity(
                RolloutActivities::await_release,
                input,
                waiting(Duration::from_secs(timeout_secs + 30)),
            )
            .await?)
    }
}

/// The gates of the ring the rollout stands in.
fn current_gates(plan: &Plan, state: &RolloutState) -> tessera_rings::Gates {
    let ring = match tessera_rings::next(plan, state, DateTime::<Utc>::MAX_UTC) {
        Step::ApplyBatch { ring, .. }
        | Step::EvaluateGates { ring, .. }
        | Step::RollBack { ring, .. }
        | Step::AwaitApproval { ring } => ring,
        _ => 0,
    };
    plan.rings
        .get(ring)
        .map(|r| r.gates.clone())
        .unwrap_or_default()
}

fn now<W>(ctx: &WorkflowContext<W>) -> DateTime<Utc> {
    ctx.workflow_time()
        .map(DateTime::<Utc>::from)
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// [`Progress`] plus `events`: what happened when (batches applied, gate reports, rollbacks,
/// signals), the record an SRE reads.
pub fn view(plan: &Plan, state: &RolloutState, now: DateTime<Utc>) -> serde_json::Value {
    let progress: Progress = state.progress(plan, now);
    let mut v = serde_json::to_value(progress).unwrap_or_default();
    v["events"] = serde_json::to_value(state.history()).unwrap_or_default();
    v
}

async fn save(
    ctx: &WorkflowContext<RolloutWorkflow>,
    id: Uuid,
    view: serde_json::Value,
) -> WorkflowResult<()> {
    let status = view["status"].as_str().unwrap_or_default().to_string();
    ctx.execute_activity(RolloutActivities::save_rollout, (id, status, view), short())
        .await?;
    Ok(())
}
