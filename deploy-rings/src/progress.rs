//! What a rollout looks like from outside (the API's and console's view, the workflow's
//! progress query), derived from the plan and the state so it can never disagree with them.
//!
//! Because a failure halts the rollout and only one batch is ever in flight, every batch before
//! the current position has passed and every batch after it is pending: the phase alone says
//! which batch is where.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::gates::GateResult;
use crate::plan::Plan;
use crate::rollout::{EventKind, Phase, RolloutState, Step, Upcoming, next};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub status: RolloutStatus,
    /// Why the rollout is rolling back or halted.
    pub reason: Option<String>,
    /// When the current bake (of a batch or a ring) ends.
    pub bake_until: Option<DateTime<Utc>>,
    pub rings: Vec<RingProgress>,
    /// Share of the plan's cells in batches that passed, 0–1 (1 for a finished empty plan).
    pub fraction: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutStatus {
    Running,
    Paused,
    AwaitingApproval,
    RollingBack,
    Done,
    Halted,
    Aborted,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RingProgress {
    pub name: String,
    pub state: RingState,
    pub batches: Vec<BatchProgress>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RingState {
    Pending,
    AwaitingApproval,
    InProgress,
    /// Every batch passed; the ring bakes before the next ring starts.
    Baking,
    /// Every batch passed (or the rollout passed over the ring, which has none).
    Done,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchProgress {
    pub cells: Vec<String>,
    pub state: BatchState,
    /// The last gate evaluation of this batch, if any.
    pub gate_results: Option<Vec<GateResult>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchState {
    Pending,
    Applying,
    Baking,
    Passed,
    /// Failed; its rollback is in progress.
    Failed,
    RolledBack,
    /// In flight (applying or baking) when the rollout was aborted: its cells may or may not
    /// run the release.
    Aborted,
}

/// The batch the rollout stands at; batches before it passed, batches after are pending.
struct Cursor {
    ring: usize,
    /// `None`: past the ring's last batch (ring bake).
    batch: Option<usize>,
    ring_state: RingState,
    batch_state: BatchState,
}

impl RolloutState {
    /// The rollout as shown to people, at `now` (which decides whether a bake is over).
    pub fn progress(&self, plan: &Plan, now: DateTime<Utc>) -> Progress {
        let step = next(plan, self, now);
        let (status, reason) = match &step {
            Step::Done => (RolloutStatus::Done, None),
            Step::Halted { reason } => (RolloutStatus::Halted, Some(reason.clone())),
            Step::Aborted => (RolloutStatus::Aborted, None),
            Step::RollBack { reason, .. } => (RolloutStatus::RollingBack, Some(reason.clone())),
            Step::Paused => (RolloutStatus::Paused, None),
            Step::AwaitApproval { .. } => (RolloutStatus::AwaitingApproval, None),
            Step::ApplyBatch { .. } | Step::Bake { .. } | Step::EvaluateGates { .. } => {
                (RolloutStatus::Running, None)
            }
        };
        let bake_until = match self.phase() {
            Phase::Baking { until, .. } | Phase::RingBake { until, .. } if now < *until => {
                Some(*until)
            }
            _ => None,
        };
        let cursor = self.cursor(plan, now);
        let mut passed_cells = 0;
        let rings = plan
            .rings
            .iter()
            .map(|ring| {
                let ring_state = match &cursor {
                    None => RingState::Done,
                    Some(c) if ring.index < c.ring => RingState::Done,
                    Some(c) if ring.index == c.ring => c.ring_state,
                    Some(_) => RingState::Pending,
                };
                let batches = ring
                    .batches
                    .iter()
                    .map(|batch| {
                        let here = (ring.index, batch.index);
                        let state = match &cursor {
                            None => BatchState::Passed,
                            Some(c) if here < (c.ring, c.batch.unwrap_or(usize::MAX)) => {
                                BatchState::Passed
                            }
                            Some(c) if here == (c.ring, c.batch.unwrap_or(usize::MAX)) => {
                                c.batch_state
                            }
                            Some(_) => BatchState::Pending,
                        };
                        if state == BatchState::Passed {
                            passed_cells += batch.cells.len();
                        }
                        BatchProgress {
                            cells: batch.cells.clone(),
                            state,
                            gate_results: self.last_gate_results(ring.index, batch.index),
                        }
                    })
                    .collect();
                RingProgress {
                    name: ring.name.clone(),
                    state: ring_state,
                    batches,
                }
            })
            .collect();
        let fraction = match plan.cell_count() {
            0 if status == RolloutStatus::Done => 1.0,
            0 => 0.0,
            total => passed_cells as f64 / total as f64,
        };
        Progress {
            status,
            reason,
            bake_until,
            rings,
            fraction,
        }
    }

    /// Where the rollout stands (`None`: past the last batch).
    fn cursor(&self, plan: &Plan, now: DateTime<Utc>) -> Option<Cursor> {
        let (phase, aborted) = match self.phase() {
            Phase::Aborted { from } => (&**from, true),
            phase => (phase, false),
        };
        let at = |ring, batch, ring_state, batch_state| Cursor {
            ring,
            batch,
            ring_state,
            batch_state,
        };
        let mut cursor = match phase {
            Phase::Done | Phase::Aborted { .. } => None,
            Phase::Baking { ring, batch, .. } => Some(at(
                *ring,
                Some(*batch),
                RingState::InProgress,
                BatchState::Baking,
            )),
            Phase::RollingBack { ring, batch, .. } => Some(at(
                *ring,
                Some(*batch),
                RingState::Failed,
                BatchState::Failed,
            )),
            Phase::Halted { ring, batch, .. } => Some(at(
                *ring,
                Some(*batch),
                RingState::Failed,
                BatchState::RolledBack,
            )),
            Phase::RingBake { ring, until } if now < *until => {
                Some(at(*ring, None, RingState::Baking, BatchState::Passed))
            }
            Phase::Ready { .. } | Phase::RingBake { .. } => match self.upcoming(plan, phase) {
                Upcoming::Done => None,
                Upcoming::AwaitApproval { ring } => Some(at(
                    ring,
                    Some(0),
                    RingState::AwaitingApproval,
                    BatchState::Pending,
                )),
                // Paused before applying: nothing is happening to the batch (nor to the ring, if
                // this is its first batch).
                Upcoming::Apply { ring, batch } if self.is_paused() => {
                    let ring_state = if batch == 0 {
                        RingState::Pending
                    } else {
                        RingState::InProgress
                    };
                    Some(at(ring, Some(batch), ring_state, BatchState::Pending))
                }
                Upcoming::Apply { ring, batch } => Some(at(
                    ring,
                    Some(batch),
                    RingState::InProgress,
                    BatchState::Applying,
                )),
            },
        };
        if aborted && let Some(c) = &mut cursor {
            c.batch_state = match c.batch_state {
                BatchState::Applying | BatchState::Baking => BatchState::Aborted,
                other => other,
            };
            c.ring_state = match c.ring_state {
                RingState::Baking => RingState::Done,
                RingState::AwaitingApproval => RingState::Pending,
                other => other,
            };
        }
        cursor
    }

    fn last_gate_results(&self, ring: usize, batch: usize) -> Option<Vec<GateResult>> {
        self.history().iter().rev().find_map(|e| match &e.what {
            EventKind::GatesEvaluated {
                ring: r,
                batch: b,
                report,
                ..
            } if (*r, *b) == (ring, batch) => Some(report.results.clone()),
            _ => None,
        })
    }
}
