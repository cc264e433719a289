//! The rollout played end to end against a simulated workflow, once cleanly and once with
//! each batch failing in turn, checking the guarantees on what happened.

use chrono::{DateTime, TimeDelta, Utc};

use super::tests::{at, healthy, sick, three_rings};
use crate::{EventKind, Plan, RolloutState, Step, next};

/// Plays the workflow against the state machine: applies take 5s, gates 1s, approvals come
/// 10 minutes after they are asked for, and the batch `fail` (if any) fails its gates. Every
/// step is taken from a JSON round trip of the state too, as after continue-as-new.
fn simulate(
    plan: &Plan,
    fail: Option<(usize, usize)>,
) -> (RolloutState, Vec<(DateTime<Utc>, Step)>) {
    let mut state = RolloutState::new();
    let mut now = at(0);
    let mut log = Vec::new();
    for _ in 0..200 {
        let step = next(plan, &state, now);
        let restored: RolloutState =
            serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
        assert_eq!(restored, state);
        assert_eq!(next(plan, &restored, now), step);
        log.push((now, step.clone()));
        match step {
            Step::AwaitApproval { ring } => {
                now += TimeDelta::minutes(10);
                state.approved(plan, &plan.rings[ring].name, now).unwrap();
            }
            Step::ApplyBatch { .. } => {
                now += TimeDelta::seconds(5);
                state.batch_applied(plan, now).unwrap();
            }
            Step::Bake { until } => now = until,
            Step::EvaluateGates { ring, batch, cells } => {
                now += TimeDelta::seconds(1);
                let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
                let report = if fail == Some((ring, batch)) {
                    sick(&cells, cells[0])
                } else {
                    healthy(&cells)
                };
                state.gates_evaluated(plan, report, now).unwrap();
            }
            Step::RollBack { .. } => {
                now += TimeDelta::seconds(5);
                state.rolled_back(now).unwrap();
            }
            Step::Done | Step::Halted { .. } | Step::Aborted | Step::Paused => {
                return (state, log);
            }
        }
    }
    panic!("the rollout did not finish: {log:?}");
}

/// Checks the rollout's guarantees on a finished simulation.
fn check_invariants(plan: &Plan, state: &RolloutState, log: &[(DateTime<Utc>, Step)]) {
    let in_order: Vec<(usize, usize)> = plan.batches().map(|(r, b)| (r, b.index)).collect();
    let mut applied = 0; // batches applied so far, in plan order
    let mut in_flight: Option<((usize, usize), DateTime<Utc>)> = None;
    let mut last_pass: Option<(usize, DateTime<Utc>)> = None; // ring, time
    let mut failed: Option<(usize, usize)> = None;
    for event in state.history() {
        match &event.what {
            EventKind::BatchApplied { ring, batch } => {
                assert!(in_flight.is_none(), "two batches in flight: {event:?}");
                assert!(failed.is_none(), "a batch applied after a failure");
                assert_eq!(
                    in_order.get(applied),
                    Some(&(*ring, *batch)),
                    "out of order"
                );
                applied += 1;
                if let Some((prev_ring, passed_at)) = last_pass.filter(|(r, _)| r != ring) {
                    let ring_bake =
                        TimeDelta::from_std(plan.rings[prev_ring].bake_after_ring).unwrap();
                    assert!(
                        event.at >= passed_at + ring_bake,
                        "ring {ring} started early"
                    );
                }
                if *batch == 0 && plan.rings[*ring].approval {
                    assert!(
                        state
                            .history()
                            .iter()
                            .any(|e| e.at <= event.at
                                && e.what == EventKind::Approved { ring: *ring })
                    );
                }
                in_flight = Some(((*ring, *batch), event.at));
            }
            EventKind::GatesEvaluated {
                ring,
                batch,
                passed,
                ..
            } => {
                let (position, applied_at) = in_flight.take().expect("gates of no batch");
                assert_eq!(position, (*ring, *batch));
                let bake = TimeDelta::from_std(plan.rings[*ring].batches[*batch].bake).unwrap();
                assert!(event.at >= applied_at + bake, "gates before the bake ended");
                if *passed {
                    last_pass = Some((*ring, event.at));
                } else {
                    failed = Some((*ring, *batch));
                }
            }
            EventKind::RolledBack { ring, batch } => {
                assert_eq!(failed, Some((*ring, *batch)));
            }
            EventKind::Approved { .. } => {}
            other => panic!("unexpected in this simulation: {other:?}"),
        }
    }
    // After a rollback starts, only that rollback and then Halted are ever returned.
    if let Some(first) = log
        .iter()
        .position(|(_, s)| matches!(s, Step::RollBack { .. }))
    {
        let (ring, batch) = failed.expect("a rollback without a failure");
        let cells = plan.rings[ring].batches[batch].cells.clone();
        for (_, step) in &log[first..] {
            match step {
                Step::RollBack {
                    ring: r,
                    batch: b,
                    cells: c,
                    ..
                } => assert_eq!((*r, *b, c), (ring, batch, &cells)),
                Step::Halted { .. } => {}
                other => panic!("after a failed gate: {other:?}"),
            }
        }
    }
}

#[test]
fn every_rollout_keeps_its_guarantees_whichever_batch_fails() {
    let plan = three_rings();
    let (state, log) = simulate(&plan, None);
    check_invariants(&plan, &state, &log);
    assert_eq!(log.last().unwrap().1, Step::Done);

    for (ring, batch) in plan.batches().map(|(r, b)| (r, b.index)) {
        let (state, log) = simulate(&plan, Some((ring, batch)));
        check_invariants(&plan, &state, &log);
        let cells = &plan.rings[ring].batches[batch].cells;
        let rollbacks: Vec<&Step> = log
            .iter()
            .map(|(_, s)| s)
            .filter(|s| matches!(s, Step::RollBack { .. }))
            .collect();
        assert_eq!(
            rollbacks.len(),
            1,
            "one rollback of batch ({ring}, {batch})"
        );
        let Step::Halted { reason } = &log.last().unwrap().1 else {
            panic!("batch ({ring}, {batch}) failed but the rollout did not halt");
        };
        assert!(
            reason.contains(&format!("runtime_healthy on cell {}", cells[0])),
            "{reason}"
        );
        // Halted is final.
        assert_eq!(next(&plan, &state, at(10_000_000)), log.last().unwrap().1);
    }
}
