//! A rollout as a pure state machine ("decide, then act"): `next` says what to do now, the
//! workflow does it and reports back through `RolloutState`'s methods.
//!
//! Every decision (order, bakes, approvals, gate verdicts, rollback) is made here, so the
//! workflow has none of its own to get wrong: it persists the `Plan` and the `RolloutState`
//! (both serde) across continue-as-new, passes in its deterministic workflow time, and loops:
//!
//! ```text
//! loop match next(&plan, &state, now) {
//!     AwaitApproval { .. } | Paused => wait for a signal (approve, pause, resume, abort),
//!     Bake { until }               => wait until `until` or a signal,
//!     ApplyBatch { cells, .. }     => apply; state.batch_applied(&plan, now) or batch_failed,
//!     EvaluateGates { cells, .. }  => observe; state.gates_evaluated(&plan, evaluate(..), now),
//!     RollBack { cells, .. }       => restore the previous release; state.rolled_back(now),
//!     Done | Halted { .. } | Aborted => return,
//! }
//! ```
//!
//! Guarantees: at most one batch is in flight; a batch's gates pass only after its bake; a ring
//! starts only after the previous ring's `bake_after_ring` and, if it needs one, its approval;
//! after a failed batch only its rollback and then `Halted` are returned. `abort` stops the
//! rollout where it stands and rolls nothing back (batches that passed keep the release; a batch
//! in flight is left as it is); rollback is only for a failed batch.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::gates::GateReport;
use crate::plan::Plan;

/// What the rollout should do now. Indexes are positions in the plan, from 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Wait for `approved` of this ring (or another signal), then ask again.
    AwaitApproval {
        ring: usize,
    },
    /// Apply the release to these cells, then report `batch_applied` (or `batch_failed`).
    ApplyBatch {
        ring: usize,
        batch: usize,
        cells: Vec<String>,
    },
    /// Wait until `until` (or a signal), then ask again.
    Bake {
        until: DateTime<Utc>,
    },
    /// Observe these cells, `evaluate` the ring's gates, report `gates_evaluated`.
    EvaluateGates {
        ring: usize,
        batch: usize,
        cells: Vec<String>,
    },
    /// Put the previous release back on these cells, then report `rolled_back`.
    RollBack {
        ring: usize,
        batch: usize,
        cells: Vec<String>,
        reason: String,
    },
    /// Every batch passed.
    Done,
    /// A batch failed and was rolled back; nothing more will happen.
    Halted {
        reason: String,
    },
    /// Wait for `resume` or `abort`.
    Paused,
    Aborted,
}

/// Where the rollout stands. Positions always name a batch of the plan, except `Ready`, which
/// may point past a ring without batches (see `Plan::first_batch_from`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// The next batch to apply is the first at or after this position; a ring's first batch may
    /// first need the ring's approval.
    Ready { ring: usize, batch: usize },
    /// The batch is applied and bakes until `until`; then its gates are evaluated.
    Baking {
        ring: usize,
        batch: usize,
        until: DateTime<Utc>,
    },
    /// Every batch of the ring passed; the next ring waits until `until`.
    RingBake { ring: usize, until: DateTime<Utc> },
    /// The batch failed and is being rolled back.
    RollingBack {
        ring: usize,
        batch: usize,
        reason: String,
    },
    /// The failed batch was rolled back (final).
    Halted {
        ring: usize,
        batch: usize,
        reason: String,
    },
    /// Stopped by `abort` while in phase `from` (final).
    Aborted { from: Box<Phase> },
    /// Every batch passed (final).
    Done,
}

/// Something that happened, for the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub at: DateTime<Utc>,
    pub what: EventKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    Approved {
        ring: usize,
    },
    BatchApplied {
        ring: usize,
        batch: usize,
    },
    /// `passed` is the rollout's verdict: the report passed and covered every cell of the batch.
    GatesEvaluated {
        ring: usize,
        batch: usize,
        passed: bool,
        report: GateReport,
    },
    BatchFailed {
        ring: usize,
        batch: usize,
        reason: String,
    },
    RolledBack {
        ring: usize,
        batch: usize,
    },
    Paused,
    Resumed,
    Aborted,
}

/// A report or signal that does not fit the rollout's phase. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// `done`, `halted` or `aborted`.
    #[error("the rollout is already {0}")]
    Finished(&'static str),
    #[error("{event} does not fit: the rollout is {phase}")]
    Unexpected { event: &'static str, phase: String },
    #[error("{event} too early: the bake lasts until {until}")]
    BakeNotOver {
        event: &'static str,
        until: DateTime<Utc>,
    },
    #[error("ring {0:?} has not been approved yet")]
    NotApproved(String),
    #[error("ring {0:?} does not need approval")]
    ApprovalNotNeeded(String),
    #[error("ring {0:?} is not the next ring to start")]
    NotNextRing(String),
    #[error("the plan has no ring {0:?}")]
    UnknownRing(String),
    #[error("the rollout state does not match the plan: {0}")]
    PlanMismatch(String),
}

/// The rollout's progress through its plan, persisted by the workflow. Create it with
/// `RolloutState::new()`; change it only through the methods below, which refuse (with a
/// `TransitionError`, changing nothing) what does not fit the current phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutState {
    phase: Phase,
    paused: bool,
    /// Rings approved, by index.
    approved: BTreeSet<usize>,
    history: Vec<Event>,
}

/// What comes after a `Ready` phase or a finished ring bake.
pub(crate) enum Upcoming {
    Apply { ring: usize, batch: usize },
    AwaitApproval { ring: usize },
    Done,
}

/// What the rollout should do at `now`.
pub fn next(plan: &Plan, state: &RolloutState, now: DateTime<Utc>) -> Step {
    if let Err(reason) = state.check_against(plan, &state.phase) {
        return Step::Halted {
            reason: format!("the rollout state does not match the plan: {reason}"),
        };
    }
    let cells = |ring: usize, batch: usize| plan.rings[ring].batches[batch].cells.clone();
    match &state.phase {
        Phase::Done => Step::Done,
        Phase::Aborted { .. } => Step::Aborted,
        Phase::Halted { reason, .. } => Step::Halted {
            reason: reason.clone(),
        },
        // Rolling back a failed batch is a safety action: pause does not hold it.
        Phase::RollingBack {
            ring,
            batch,
            reason,
        } => Step::RollBack {
            ring: *ring,
            batch: *batch,
            cells: cells(*ring, *batch),
            reason: reason.clone(),
        },
        _ if state.paused => Step::Paused,
        Phase::Baking { until, .. } | Phase::RingBake { until, .. } if now < *until => {
            Step::Bake { until: *until }
        }
        Phase::Baking { ring, batch, .. } => Step::EvaluateGates {
            ring: *ring,
            batch: *batch,
            cells: cells(*ring, *batch),
        },
        Phase::Ready { .. } | Phase::RingBake { .. } => match state.upcoming(plan, &state.phase) {
            Upcoming::Done => Step::Done,
            Upcoming::AwaitApproval { ring } => Step::AwaitApproval { ring },
            Upcoming::Apply { ring, batch } => Step::ApplyBatch {
                ring,
                batch,
                cells: cells(ring, batch),
            },
        },
    }
}

impl Default for RolloutState {
    fn default() -> Self {
        Self::new()
    }
}

impl RolloutState {
    /// A rollout that has not started: its first step is the first ring's approval or batch.
    pub fn new() -> Self {
        RolloutState {
            phase: Phase::Ready { ring: 0, batch: 0 },
            paused: false,
            approved: BTreeSet::new(),
            history: Vec::new(),
        }
    }

    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    pub fn history(&self) -> &[Event] {
        &self.history
    }

    /// Done, halted or aborted.
    pub fn is_finished(&self) -> bool {
        self.finished().is_some()
    }

    /// An operator approves `ring` (by name). Accepted for the next ring to start, including
    /// during the previous ring's bake (the bake is still honoured); repeating it is harmless.
    pub fn approved(
        &mut self,
        plan: &Plan,
        ring: &str,
        now: DateTime<Utc>,
    ) -> Result<(), TransitionError> {
        if let Some(e) = self.finished() {
            return Err(e);
        }
        let index = plan
            .ring_index(ring)
            .ok_or_else(|| TransitionError::UnknownRing(ring.into()))?;
        if !plan.rings[index].approval {
            return Err(TransitionError::ApprovalNotNeeded(ring.into()));
        }
        if self.approved.contains(&index) {
            return Ok(());
        }
        if self.ring_to_start(plan) != Some(index) {
            return Err(TransitionError::NotNextRing(ring.into()));
        }
        self.approved.insert(index);
        self.record(now, EventKind::Approved { ring: index });
        Ok(())
    }

    /// The batch of the last `ApplyBatch` is applied: its bake starts now.
    pub fn batch_applied(
        &mut self,
        plan: &Plan,
        now: DateTime<Utc>,
    ) -> Result<(), TransitionError> {
        if self.is_late_report()? {
            return Ok(());
        }
        let (ring, batch) = self.batch_to_apply(plan, now, "batch_applied")?;
        let bake = plan.rings[ring].batches[batch].bake;
        self.phase = Phase::Baking {
            ring,
            batch,
            until: after(now, bake),
        };
        self.record(now, EventKind::BatchApplied { ring, batch });
        Ok(())
    }

    /// The gates of the batch in flight were evaluated. The batch passes if the report passed
    /// and covers every cell of the batch; a pass before the bake ends is refused, a failure is
    /// taken at once. A pass moves to the next batch, or to the ring bake after a ring's last
    /// batch (or to done after the plan's last one); a failure rolls the batch back.
    pub fn gates_evaluated(
        &mut self,
        plan: &Plan,
        report: GateReport,
        now: DateTime<Utc>,
    ) -> Result<(), TransitionError> {
        if self.is_late_report()? {
            return Ok(());
        }
        let Phase::Baking { ring, batch, until } = self.phase else {
            return Err(self.unexpected("gates_evaluated"));
        };
        let planned = plan.batch(ring, batch).ok_or_else(|| self.mismatch(plan))?;
        let missing: Vec<&str> = planned
            .cells
            .iter()
            .filter(|c| !report.cells.contains(c))
            .map(String::as_str)
            .collect();
        let passed = report.passed() && missing.is_empty();
        if passed && now < until {
            return Err(TransitionError::BakeNotOver {
                event: "gates_evaluated",
                until,
            });
        }
        let mut reasons = Vec::new();
        if !missing.is_empty() {
            reasons.push(format!("no observation of cell {}", missing.join(", ")));
        }
        if !report.passed() {
            reasons.push(report.summary());
        }
        self.record(
            now,
            EventKind::GatesEvaluated {
                ring,
                batch,
                passed,
                report,
            },
        );
        self.phase = if passed {
            self.after_batch(plan, ring, batch, now)
        } else {
            Phase::RollingBack {
                ring,
                batch,
                reason: format!("{}: {}", batch_label(plan, ring, batch), reasons.join("; ")),
            }
        };
        Ok(())
    }

    /// The batch in flight failed without a gate report (applying it or observing it failed):
    /// it is rolled back.
    pub fn batch_failed(
        &mut self,
        plan: &Plan,
        reason: impl Into<String>,
        now: DateTime<Utc>,
    ) -> Result<(), TransitionError> {
        if self.is_late_report()? {
            return Ok(());
        }
        let (ring, batch) = match self.phase {
            Phase::Baking { ring, batch, .. } => (ring, batch),
            Phase::Ready { .. } | Phase::RingBake { .. } => {
                self.batch_to_apply(plan, now, "batch_failed")?
            }
            _ => return Err(self.unexpected("batch_failed")),
        };
        let reason = reason.into();
        self.phase = Phase::RollingBack {
            ring,
            batch,
            reason: format!("{}: {reason}", batch_label(plan, ring, batch)),
        };
        self.record(
            now,
            EventKind::BatchFailed {
                ring,
                batch,
                reason,
            },
        );
        Ok(())
    }

    /// The failed batch is rolled back: the rollout halts with the failure's reason.
    pub fn rolled_back(&mut self, now: DateTime<Utc>) -> Result<(), TransitionError> {
        if self.is_late_report()? {
            return Ok(());
        }
        let Phase::RollingBack {
            ring,
            batch,
            reason,
        } = &self.phase
        else {
            return Err(self.unexpected("rolled_back"));
        };
        let (ring, batch) = (*ring, *batch);
        self.phase = Phase::Halted {
            ring,
            batch,
            reason: reason.clone(),
        };
        self.record(now, EventKind::RolledBack { ring, batch });
        Ok(())
    }

    /// Holds the rollout where it is: `next` answers `Paused` until `resume` (except for a
    /// rollback in progress, which goes on). Work in flight may still report; a bake keeps
    /// running and, if it ends while paused, waits for `resume`.
    pub fn pause(&mut self, now: DateTime<Utc>) -> Result<(), TransitionError> {
        if let Some(e) = self.finished() {
            return Err(e);
        }
        if !self.paused {
            self.paused = true;
            self.record(now, EventKind::Paused);
        }
        Ok(())
    }

    /// Lets a paused rollout go on from where it is (`next` decides afresh with the new `now`).
    pub fn resume(&mut self, now: DateTime<Utc>) -> Result<(), TransitionError> {
        if let Some(e) = self.finished() {
            return Err(e);
        }
        if self.paused {
            self.paused = false;
            self.record(now, EventKind::Resumed);
        }
        Ok(())
    }

    /// Stops the rollout for good, rolling nothing back. Reports of work that was in flight
    /// are then accepted and ignored.
    pub fn abort(&mut self, now: DateTime<Utc>) -> Result<(), TransitionError> {
        match self.phase {
            Phase::Aborted { .. } => return Ok(()),
            Phase::Done => return Err(TransitionError::Finished("done")),
            Phase::Halted { .. } => return Err(TransitionError::Finished("halted")),
            _ => {}
        }
        let from = std::mem::replace(&mut self.phase, Phase::Done);
        self.phase = Phase::Aborted {
            from: Box::new(from),
        };
        self.record(now, EventKind::Aborted);
        Ok(())
    }

    fn record(&mut self, at: DateTime<Utc>, what: EventKind) {
        self.history.push(Event { at, what });
    }

    fn finished(&self) -> Option<TransitionError> {
        match self.phase {
            Phase::Done => Some(TransitionError::Finished("done")),
            Phase::Halted { .. } => Some(TransitionError::Finished("halted")),
            Phase::Aborted { .. } => Some(TransitionError::Finished("aborted")),
            _ => None,
        }
    }

    /// `Ok(true)`: aborted, so a report of work in flight is ignored. Errors once done/halted.
    fn is_late_report(&self) -> Result<bool, TransitionError> {
        match (&self.phase, self.finished()) {
            (Phase::Aborted { .. }, _) => Ok(true),
            (_, Some(e)) => Err(e),
            _ => Ok(false),
        }
    }

    fn unexpected(&self, event: &'static str) -> TransitionError {
        TransitionError::Unexpected {
            event,
            phase: describe(&self.phase),
        }
    }

    fn mismatch(&self, plan: &Plan) -> TransitionError {
        match self.check_against(plan, &self.phase) {
            Err(reason) => TransitionError::PlanMismatch(reason),
            Ok(()) => TransitionError::PlanMismatch(describe(&self.phase)),
        }
    }

    /// The step after `phase` if it is `Ready` or a ring bake (whether or not the bake is over).
    /// `phase` is the current phase, or the one an abort stopped.
    pub(crate) fn upcoming(&self, plan: &Plan, phase: &Phase) -> Upcoming {
        let (ring, batch) = match *phase {
            Phase::Ready { ring, batch } => (ring, batch),
            Phase::RingBake { ring, .. } => (ring + 1, 0),
            _ => return Upcoming::Done,
        };
        match plan.first_batch_from(ring, batch) {
            None => Upcoming::Done,
            Some((ring, 0)) if plan.rings[ring].approval && !self.approved.contains(&ring) => {
                Upcoming::AwaitApproval { ring }
            }
            Some((ring, batch)) => Upcoming::Apply { ring, batch },
        }
    }

    /// The ring whose first batch comes next, if the rollout stands between rings.
    fn ring_to_start(&self, plan: &Plan) -> Option<usize> {
        let from = match self.phase {
            Phase::Ready { ring, batch: 0 } => ring,
            Phase::RingBake { ring, .. } => ring + 1,
            _ => return None,
        };
        match plan.first_batch_from(from, 0) {
            Some((ring, 0)) => Some(ring),
            _ => None,
        }
    }

    /// The batch `next` answers `ApplyBatch` for (pause aside), or why there is none.
    fn batch_to_apply(
        &self,
        plan: &Plan,
        now: DateTime<Utc>,
        event: &'static str,
    ) -> Result<(usize, usize), TransitionError> {
        match self.phase {
            Phase::RingBake { until, .. } if now < until => {
                return Err(TransitionError::BakeNotOver { event, until });
            }
            Phase::Ready { .. } | Phase::RingBake { .. } => {}
            _ => return Err(self.unexpected(event)),
        }
        match self.upcoming(plan, &self.phase) {
            Upcoming::Apply { ring, batch } => Ok((ring, batch)),
            Upcoming::AwaitApproval { ring } => {
                Err(TransitionError::NotApproved(plan.rings[ring].name.clone()))
            }
            Upcoming::Done => Err(self.unexpected(event)),
        }
    }

    /// After `(ring, batch)` passed: the ring's next batch, the ring bake, or done.
    fn after_batch(&self, plan: &Plan, ring: usize, batch: usize, now: DateTime<Utc>) -> Phase {
        let planned = &plan.rings[ring];
        if batch + 1 < planned.batches.len() {
            Phase::Ready {
                ring,
                batch: batch + 1,
            }
        } else if plan.first_batch_from(ring + 1, 0).is_some() {
            Phase::RingBake {
                ring,
                until: after(now, planned.bake_after_ring),
            }
        } else {
            Phase::Done
        }
    }

    /// Positions in `phase` exist in `plan` (they would not if the workflow re-planned).
    fn check_against(&self, plan: &Plan, phase: &Phase) -> Result<(), String> {
        let batch_exists = |ring: usize, batch: usize| {
            plan.batch(ring, batch).map(|_| ()).ok_or_else(|| {
                format!("it is at ring {ring} batch {batch}, which the plan does not have")
            })
        };
        if let Some(ring) = self.approved.iter().find(|r| **r >= plan.rings.len()) {
            return Err(format!(
                "ring {ring} was approved but the plan does not have it"
            ));
        }
        match phase {
            Phase::Ready { ring: 0, batch: 0 } | Phase::Done => Ok(()),
            Phase::Ready { ring, batch }
            | Phase::Baking { ring, batch, .. }
            | Phase::RollingBack { ring, batch, .. }
            | Phase::Halted { ring, batch, .. } => batch_exists(*ring, *batch),
            Phase::RingBake { ring, .. } if *ring < plan.rings.len() => Ok(()),
            Phase::RingBake { ring, .. } => Err(format!(
                "it is at ring {ring}, which the plan does not have"
            )),
            Phase::Aborted { from } => self.check_against(plan, from),
        }
    }
}

/// `ring "early", batch 2 of 3` (batches counted from 1 for people).
fn batch_label(plan: &Plan, ring: usize, batch: usize) -> String {
    let planned = &plan.rings[ring];
    format!(
        "ring {:?}, batch {} of {}",
        planned.name,
        batch + 1,
        planned.batches.len()
    )
}

fn describe(phase: &Phase) -> String {
    match phase {
        Phase::Ready { ring, batch } => format!("ready at ring {ring} batch {batch}"),
        Phase::Baking { ring, batch, until } => {
            format!("baking ring {ring} batch {batch} until {until}")
        }
        Phase::RingBake { ring, until } => format!("baking ring {ring} until {until}"),
        Phase::RollingBack { ring, batch, .. } => {
            format!("rolling back ring {ring} batch {batch}")
        }
        Phase::Halted { .. } => "halted".into(),
        Phase::Aborted { .. } => "aborted".into(),
        Phase::Done => "done".into(),
    }
}

/// `now + wait`, saturating (a deserialized plan could hold any duration).
fn after(now: DateTime<Utc>, wait: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(wait)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod simulation_tests;
#[cfg(test)]
mod tests;
