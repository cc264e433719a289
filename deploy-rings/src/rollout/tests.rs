use std::collections::BTreeMap;

use chrono::TimeZone;

use super::*;
use crate::progress::{BatchState, Progress, RingState, RolloutStatus};
use crate::{CellObservation, CellRef, Gates, RingsFile, evaluate, plan};

/// canary: [c0], bake 30s, ring bake 1m
/// early:  [e1, e2] [e3], bake 30s, ring bake 2m
/// broad:  [b1] [b2], bake 1m, needs approval
const THREE_RINGS: &str = r#"
[[ring]]
name = "canary"
cells = { ring = 0 }
bake = "30s"
bake_after_ring = "1m"

[[ring]]
name = "early"
cells = { ring = 1 }
batch = 2
bake = "30s"
bake_after_ring = "2m"

[[ring]]
name = "broad"
cells = { ring_at_least = 2 }
batch = "50%"
bake = "1m"
approval = true
"#;

fn cell(id: &str, ring: u32) -> CellRef {
    CellRef {
        id: id.into(),
        region: "local-east".into(),
        ring,
        labels: BTreeMap::new(),
    }
}

fn plan_of(toml: &str, cells: &[CellRef]) -> Plan {
    plan(&RingsFile::parse(toml).unwrap(), cells, &BTreeMap::new()).unwrap()
}

pub(super) fn three_rings() -> Plan {
    let cells = [
        cell("c0", 0),
        cell("e1", 1),
        cell("e2", 1),
        cell("e3", 1),
        cell("b1", 2),
        cell("b2", 3),
    ];
    plan_of(THREE_RINGS, &cells)
}

/// `secs` seconds after the rollout starts.
pub(super) fn at(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap() + TimeDelta::seconds(secs)
}

fn observation(cell: &str, healthy: bool) -> CellObservation {
    CellObservation {
        cell: cell.into(),
        runtimes_total: 3,
        runtimes_healthy: if healthy { 3 } else { 0 },
        canary: None,
        requests: 500,
        errors: 0,
    }
}

pub(super) fn healthy(cells: &[&str]) -> GateReport {
    let observed: Vec<_> = cells.iter().map(|c| observation(c, true)).collect();
    evaluate(&Gates::default(), &observed)
}

/// A report on `cells` in which `sick` has no healthy runtime.
pub(super) fn sick(cells: &[&str], sick: &str) -> GateReport {
    let observed: Vec<_> = cells.iter().map(|c| observation(c, *c != sick)).collect();
    evaluate(&Gates::default(), &observed)
}

fn apply(ring: usize, batch: usize, cells: &[&str]) -> Step {
    Step::ApplyBatch {
        ring,
        batch,
        cells: cells.iter().map(|c| c.to_string()).collect(),
    }
}

fn evaluate_gates(ring: usize, batch: usize, cells: &[&str]) -> Step {
    Step::EvaluateGates {
        ring,
        batch,
        cells: cells.iter().map(|c| c.to_string()).collect(),
    }
}

fn bake(until: i64) -> Step {
    Step::Bake { until: at(until) }
}

/// Each ring's state and its batches' states.
fn states(progress: &Progress) -> Vec<(RingState, Vec<BatchState>)> {
    progress
        .rings
        .iter()
        .map(|r| (r.state, r.batches.iter().map(|b| b.state).collect()))
        .collect()
}

#[test]
fn three_rings_end_to_end_with_bakes_ring_bakes_and_approval() {
    use BatchState::{Baking, Passed, Pending};
    use RingState::{AwaitingApproval, Done, InProgress};
    let plan = three_rings();
    let mut s = RolloutState::new();

    // canary
    assert_eq!(next(&plan, &s, at(0)), apply(0, 0, &["c0"]));
    s.batch_applied(&plan, at(2)).unwrap();
    assert_eq!(next(&plan, &s, at(2)), bake(32));
    assert_eq!(next(&plan, &s, at(31)), bake(32));
    assert_eq!(
        s.gates_evaluated(&plan, healthy(&["c0"]), at(31)),
        Err(TransitionError::BakeNotOver {
            event: "gates_evaluated",
            until: at(32)
        })
    );
    assert_eq!(next(&plan, &s, at(32)), evaluate_gates(0, 0, &["c0"]));
    s.gates_evaluated(&plan, healthy(&["c0"]), at(33)).unwrap();

    // canary's ring bake: early waits until 33 + 60.
    assert_eq!(next(&plan, &s, at(33)), bake(93));
    assert!(matches!(
        s.batch_applied(&plan, at(92)),
        Err(TransitionError::BakeNotOver { .. })
    ));
    let progress = s.progress(&plan, at(50));
    assert_eq!(progress.rings[0].state, RingState::Baking);
    assert_eq!(progress.bake_until, Some(at(93)));

    // early, two batches
    assert_eq!(next(&plan, &s, at(93)), apply(1, 0, &["e1", "e2"]));
    s.batch_applied(&plan, at(95)).unwrap();
    assert_eq!(next(&plan, &s, at(100)), bake(125));
    let progress = s.progress(&plan, at(100));
    assert_eq!(progress.status, RolloutStatus::Running);
    assert_eq!(
        states(&progress),
        [
            (Done, vec![Passed]),
            (InProgress, vec![Baking, Pending]),
            (RingState::Pending, vec![Pending, Pending]),
        ]
    );
    assert_eq!(progress.fraction, 1.0 / 6.0);
    assert_eq!(
        next(&plan, &s, at(125)),
        evaluate_gates(1, 0, &["e1", "e2"])
    );
    s.gates_evaluated(&plan, healthy(&["e1", "e2"]), at(126))
        .unwrap();
    // The next batch of the same ring follows at once.
    assert_eq!(next(&plan, &s, at(126)), apply(1, 1, &["e3"]));
    s.batch_applied(&plan, at(127)).unwrap();
    assert_eq!(next(&plan, &s, at(157)), evaluate_gates(1, 1, &["e3"]));
    s.gates_evaluated(&plan, healthy(&["e3"]), at(158)).unwrap();

    // early's ring bake, then broad waits for approval, however long.
    assert_eq!(next(&plan, &s, at(277)), bake(278));
    assert_eq!(next(&plan, &s, at(278)), Step::AwaitApproval { ring: 2 });
    assert_eq!(
        next(&plan, &s, at(100_000)),
        Step::AwaitApproval { ring: 2 }
    );
    assert_eq!(
        s.batch_applied(&plan, at(100_000)),
        Err(TransitionError::NotApproved("broad".into()))
    );
    let progress = s.progress(&plan, at(300));
    assert_eq!(progress.status, RolloutStatus::AwaitingApproval);
    assert_eq!(
        states(&progress),
        [
            (Done, vec![Passed]),
            (Done, vec![Passed, Passed]),
            (AwaitingApproval, vec![Pending, Pending]),
        ]
    );
    assert_eq!(progress.fraction, 4.0 / 6.0);
    s.approved(&plan, "broad", at(100_001)).unwrap();

    // broad, two batches, then done.
    assert_eq!(next(&plan, &s, at(100_001)), apply(2, 0, &["b1"]));
    s.batch_applied(&plan, at(100_002)).unwrap();
    assert_eq!(next(&plan, &s, at(100_003)), bake(100_062));
    assert_eq!(next(&plan, &s, at(100_062)), evaluate_gates(2, 0, &["b1"]));
    s.gates_evaluated(&plan, healthy(&["b1"]), at(100_062))
        .unwrap();
    assert_eq!(next(&plan, &s, at(100_062)), apply(2, 1, &["b2"]));
    s.batch_applied(&plan, at(100_063)).unwrap();
    assert_eq!(next(&plan, &s, at(100_123)), evaluate_gates(2, 1, &["b2"]));
    s.gates_evaluated(&plan, healthy(&["b2"]), at(100_124))
        .unwrap();
    // The last ring's bake_after_ring is not waited: there is no next ring.
    assert_eq!(next(&plan, &s, at(100_124)), Step::Done);
    assert_eq!(s.phase(), &Phase::Done);

    let progress = s.progress(&plan, at(100_124));
    assert_eq!(progress.status, RolloutStatus::Done);
    assert_eq!(progress.fraction, 1.0);
    assert!(progress.rings.iter().all(|r| r.state == Done));
    let gates = progress.rings[2].batches[1].gate_results.as_ref().unwrap();
    assert!(
        gates
            .iter()
            .all(|g| g.passed && g.cell.as_deref() == Some("b2"))
    );

    let kinds: Vec<&EventKind> = s.history().iter().map(|e| &e.what).collect();
    assert_eq!(kinds.len(), 11);
    assert_eq!(kinds[9], &EventKind::BatchApplied { ring: 2, batch: 1 });
    assert_eq!(s.history()[6].what, EventKind::Approved { ring: 2 });
    assert_eq!(s.history()[6].at, at(100_001));
}

#[test]
fn a_failed_gate_rolls_back_exactly_that_batch_and_halts() {
    let plan = three_rings();
    let mut s = RolloutState::new();
    for (cells, t) in [(&["c0"][..], 0), (&["e1", "e2"][..], 200)] {
        s.batch_applied(&plan, at(t)).unwrap();
        s.gates_evaluated(&plan, healthy(cells), at(t + 30))
            .unwrap();
    }
    assert_eq!(next(&plan, &s, at(230)), apply(1, 1, &["e3"]));
    s.batch_applied(&plan, at(231)).unwrap();
    s.gates_evaluated(&plan, sick(&["e3"], "e3"), at(261))
        .unwrap();

    let reason = "ring \"early\", batch 2 of 2: runtime_healthy on cell e3: \
                  0/3 runtimes healthy (required: all runtimes healthy)";
    let rollback = Step::RollBack {
        ring: 1,
        batch: 1,
        cells: vec!["e3".into()],
        reason: reason.into(),
    };
    assert_eq!(next(&plan, &s, at(262)), rollback);
    // A rollback is not held by a pause, and no later batch can be applied meanwhile.
    s.pause(at(263)).unwrap();
    assert_eq!(next(&plan, &s, at(1_000)), rollback);
    assert!(matches!(
        s.batch_applied(&plan, at(1_000)),
        Err(TransitionError::Unexpected { .. })
    ));
    let progress = s.progress(&plan, at(1_000));
    assert_eq!(progress.status, RolloutStatus::RollingBack);
    assert_eq!(progress.reason.as_deref(), Some(reason));

    s.rolled_back(at(1_001)).unwrap();
    for t in [1_001, 100_000] {
        assert_eq!(
            next(&plan, &s, at(t)),
            Step::Halted {
                reason: reason.into()
            }
        );
    }
    assert_eq!(
        s.batch_applied(&plan, at(1_002)),
        Err(TransitionError::Finished("halted"))
    );
    assert_eq!(
        s.resume(at(1_002)),
        Err(TransitionError::Finished("halted"))
    );
    assert_eq!(s.abort(at(1_002)), Err(TransitionError::Finished("halted")));

    let progress = s.progress(&plan, at(1_002));
    assert_eq!(progress.status, RolloutStatus::Halted);
    assert_eq!(
        states(&progress),
        [
            (RingState::Done, vec![BatchState::Passed]),
            (
                RingState::Failed,
                vec![BatchState::Passed, BatchState::RolledBack]
            ),
            (
                RingState::Pending,
                vec![BatchState::Pending, BatchState::Pending]
            ),
        ]
    );
    assert_eq!(progress.fraction, 3.0 / 6.0);
    let results = progress.rings[1].batches[1].gate_results.as_ref().unwrap();
    assert!(results.iter().any(|r| !r.passed));
}

#[test]
fn a_failing_report_is_taken_before_the_bake_ends_but_a_passing_one_is_not() {
    let plan = three_rings();
    let mut s = RolloutState::new();
    s.batch_applied(&plan, at(0)).unwrap();
    assert!(matches!(
        s.gates_evaluated(&plan, healthy(&["c0"]), at(10)),
        Err(TransitionError::BakeNotOver { .. })
    ));
    s.gates_evaluated(&plan, sick(&["c0"], "c0"), at(10))
        .unwrap();
    assert!(matches!(
        next(&plan, &s, at(10)),
        Step::RollBack {
            ring: 0,
            batch: 0,
            ..
        }
    ));
}

#[test]
fn a_report_missing_a_cell_of_the_batch_fails_it() {
    let plan = three_rings();
    let mut s = RolloutState::new();
    s.batch_applied(&plan, at(0)).unwrap();
    s.gates_evaluated(&plan, healthy(&["c0"]), at(30)).unwrap();
    s.batch_applied(&plan, at(100)).unwrap();
    s.gates_evaluated(&plan, healthy(&["e1"]), at(130)).unwrap();
    let Step::RollBack { reason, cells, .. } = next(&plan, &s, at(130)) else {
        panic!("expected a rollback");
    };
    assert_eq!(cells, ["e1", "e2"]);
    assert_eq!(
        reason,
        "ring \"early\", batch 1 of 2: no observation of cell e2"
    );
}

#[test]
fn a_batch_that_fails_to_apply_is_rolled_back() {
    let plan = three_rings();
    let mut s = RolloutState::new();
    assert_eq!(next(&plan, &s, at(0)), apply(0, 0, &["c0"]));
    s.batch_failed(&plan, "agent of c0 unreachable", at(5))
        .unwrap();
    assert_eq!(
        next(&plan, &s, at(5)),
        Step::RollBack {
            ring: 0,
            batch: 0,
            cells: vec!["c0".into()],
            reason: "ring \"canary\", batch 1 of 1: agent of c0 unreachable".into(),
        }
    );
}

#[test]
fn pause_holds_a_bake_that_ends_until_resume() {
    let plan = three_rings();
    let mut s = RolloutState::new();
    s.batch_applied(&plan, at(0)).unwrap();
    s.pause(at(10)).unwrap();
    s.pause(at(11)).unwrap(); // repeated: no second event
    assert_eq!(next(&plan, &s, at(10)), Step::Paused);
    // The bake ended at 30, but the rollout stays paused.
    assert_eq!(next(&plan, &s, at(500)), Step::Paused);
    let progress = s.progress(&plan, at(500));
    assert_eq!(progress.status, RolloutStatus::Paused);
    assert_eq!(progress.rings[0].batches[0].state, BatchState::Baking);
    // Work in flight may still report while paused.
    s.resume(at(600)).unwrap();
    assert_eq!(next(&plan, &s, at(600)), evaluate_gates(0, 0, &["c0"]));
    s.gates_evaluated(&plan, healthy(&["c0"]), at(601)).unwrap();

    // Paused and resumed inside the ring bake: the bake still holds.
    s.pause(at(610)).unwrap();
    assert_eq!(next(&plan, &s, at(620)), Step::Paused);
    s.resume(at(630)).unwrap();
    assert_eq!(next(&plan, &s, at(630)), bake(661));
    assert_eq!(next(&plan, &s, at(661)), apply(1, 0, &["e1", "e2"]));

    // Paused before a batch is applied: the batch shows as pending, not applying.
    s.pause(at(662)).unwrap();
    assert_eq!(next(&plan, &s, at(662)), Step::Paused);
    let progress = s.progress(&plan, at(662));
    assert_eq!(progress.rings[1].batches[0].state, BatchState::Pending);
    s.resume(at(663)).unwrap();
    assert_eq!(
        s.progress(&plan, at(663)).rings[1].batches[0].state,
        BatchState::Applying
    );

    let kinds: Vec<&EventKind> = s.history().iter().map(|e| &e.what).collect();
    let pauses = kinds.iter().filter(|k| ***k == EventKind::Paused).count();
    let resumes = kinds.iter().filter(|k| ***k == EventKind::Resumed).count();
    assert_eq!((pauses, resumes), (3, 3));
}

#[test]
fn pause_holds_an_approval_wait_and_approval_is_taken_while_paused() {
    let plan = three_rings();
    let mut s = at_broad_approval(&plan);
    s.pause(at(1_000)).unwrap();
    assert_eq!(next(&plan, &s, at(1_000)), Step::Paused);
    s.approved(&plan, "broad", at(1_001)).unwrap();
    assert_eq!(next(&plan, &s, at(1_002)), Step::Paused);
    s.resume(at(1_003)).unwrap();
    assert_eq!(next(&plan, &s, at(1_003)), apply(2, 0, &["b1"]));
}

/// `three_rings` run to the point where broad waits for approval (early's ring bake ends at 310).
fn at_broad_approval(plan: &Plan) -> RolloutState {
    let mut s = RolloutState::new();
    for (cells, t) in [
        (&["c0"][..], 0),
        (&["e1", "e2"][..], 100),
        (&["e3"][..], 150),
    ] {
        s.batch_applied(plan, at(t)).unwrap();
        s.gates_evaluated(plan, healthy(cells), at(t + 40)).unwrap();
    }
    assert_eq!(next(plan, &s, at(400)), Step::AwaitApproval { ring: 2 });
    s
}

#[test]
fn approval_is_for_the_next_ring_only_and_never_shortens_a_bake() {
    let plan = three_rings();
    let mut s = RolloutState::new();
    let cases = [
        ("early", TransitionError::ApprovalNotNeeded("early".into())),
        ("broad", TransitionError::NotNextRing("broad".into())),
        ("nope", TransitionError::UnknownRing("nope".into())),
    ];
    for (ring, error) in cases {
        assert_eq!(s.approved(&plan, ring, at(0)), Err(error));
    }
    s.batch_applied(&plan, at(0)).unwrap();
    s.gates_evaluated(&plan, healthy(&["c0"]), at(30)).unwrap();
    s.batch_applied(&plan, at(90)).unwrap();
    s.gates_evaluated(&plan, healthy(&["e1", "e2"]), at(120))
        .unwrap();
    s.batch_applied(&plan, at(120)).unwrap();
    // During early's last batch: too soon.
    assert_eq!(
        s.approved(&plan, "broad", at(130)),
        Err(TransitionError::NotNextRing("broad".into()))
    );
    s.gates_evaluated(&plan, healthy(&["e3"]), at(150)).unwrap();
    // During early's ring bake (until 270): taken, twice is harmless, and the bake still holds.
    s.approved(&plan, "broad", at(160)).unwrap();
    s.approved(&plan, "broad", at(161)).unwrap();
    assert_eq!(next(&plan, &s, at(200)), bake(270));
    assert_eq!(next(&plan, &s, at(270)), apply(2, 0, &["b1"]));
    let approvals = s
        .history()
        .iter()
        .filter(|e| matches!(e.what, EventKind::Approved { .. }))
        .count();
    assert_eq!(approvals, 1);
}

#[test]
fn abort_stops_without_rolling_back_and_ignores_late_reports() {
    let plan = three_rings();
    let mut s = RolloutState::new();
    s.batch_applied(&plan, at(0)).unwrap();
    s.gates_evaluated(&plan, healthy(&["c0"]), at(30)).unwrap();
    s.batch_applied(&plan, at(100)).unwrap();
    s.abort(at(110)).unwrap();
    for t in [110, 130, 100_000] {
        assert_eq!(next(&plan, &s, at(t)), Step::Aborted);
    }
    // The gate evaluation that was running reports late: ignored, nothing is rolled back.
    s.gates_evaluated(&plan, sick(&["e1", "e2"], "e1"), at(131))
        .unwrap();
    s.batch_failed(&plan, "late", at(132)).unwrap();
    s.rolled_back(at(133)).unwrap();
    assert_eq!(next(&plan, &s, at(134)), Step::Aborted);
    assert_eq!(s.abort(at(135)), Ok(()));
    for result in [
        s.approved(&plan, "broad", at(136)),
        s.pause(at(136)),
        s.resume(at(136)),
    ] {
        assert_eq!(result, Err(TransitionError::Finished("aborted")));
    }

    let progress = s.progress(&plan, at(136));
    assert_eq!(progress.status, RolloutStatus::Aborted);
    assert_eq!(
        states(&progress),
        [
            (RingState::Done, vec![BatchState::Passed]),
            (
                RingState::InProgress,
                vec![BatchState::Aborted, BatchState::Pending]
            ),
            (
                RingState::Pending,
                vec![BatchState::Pending, BatchState::Pending]
            ),
        ]
    );
    assert_eq!(progress.fraction, 1.0 / 6.0);
    assert_eq!(
        s.history().last().map(|e| &e.what),
        Some(&EventKind::Aborted)
    );
}

#[test]
fn abort_while_waiting_for_approval() {
    let plan = three_rings();
    let mut s = at_broad_approval(&plan);
    s.abort(at(500)).unwrap();
    assert_eq!(next(&plan, &s, at(500)), Step::Aborted);
    let progress = s.progress(&plan, at(500));
    assert_eq!(progress.rings[2].state, RingState::Pending);
    assert_eq!(progress.fraction, 4.0 / 6.0);
}

#[test]
fn state_round_trips_through_json_mid_rollout() {
    let plan = three_rings();
    let mut s = RolloutState::new();
    s.batch_applied(&plan, at(0)).unwrap();
    s.gates_evaluated(&plan, healthy(&["c0"]), at(30)).unwrap();
    s.batch_applied(&plan, at(100)).unwrap();
    s.pause(at(101)).unwrap();
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["phase"]["phase"], "baking");
    let restored: RolloutState = serde_json::from_value(json).unwrap();
    assert_eq!(restored, s);
    for t in [101, 129, 130, 1_000] {
        assert_eq!(next(&plan, &restored, at(t)), next(&plan, &s, at(t)));
    }
    let mut restored = restored;
    restored.resume(at(1_000)).unwrap();
    assert_eq!(
        next(&plan, &restored, at(1_000)),
        evaluate_gates(1, 0, &["e1", "e2"])
    );
}

#[test]
fn rings_without_cells_are_passed_over_without_approval_or_bake() {
    // No ring-1 cells; broad (needing approval) has none either.
    let cells = [cell("c0", 0), cell("c1", 0)];
    let plan = plan_of(
        &THREE_RINGS.replace("name = \"early\"", "name = \"early\"\napproval = true"),
        &cells,
    );
    let mut s = RolloutState::new();
    for (t, cells) in [(0, "c0"), (100, "c1")] {
        assert_eq!(next(&plan, &s, at(t)), apply(0, t as usize / 100, &[cells]));
        s.batch_applied(&plan, at(t)).unwrap();
        s.gates_evaluated(&plan, healthy(&[cells]), at(t + 30))
            .unwrap();
    }
    assert_eq!(next(&plan, &s, at(130)), Step::Done);
    let progress = s.progress(&plan, at(130));
    assert!(progress.rings.iter().all(|r| r.state == RingState::Done));
    assert_eq!(progress.fraction, 1.0);

    // An empty ring in the middle: canary's ring bake, then straight to broad's approval.
    let cells = [cell("c0", 0), cell("b1", 2)];
    let plan = plan_of(THREE_RINGS, &cells);
    let mut s = RolloutState::new();
    s.batch_applied(&plan, at(0)).unwrap();
    s.gates_evaluated(&plan, healthy(&["c0"]), at(30)).unwrap();
    assert_eq!(next(&plan, &s, at(30)), bake(90));
    assert_eq!(
        s.approved(&plan, "broad", at(31)),
        Ok(()),
        "broad is the next ring to start"
    );
    assert_eq!(next(&plan, &s, at(90)), apply(2, 0, &["b1"]));
    assert_eq!(s.progress(&plan, at(90)).rings[1].state, RingState::Done);
}

#[test]
fn a_plan_without_cells_is_done_at_once() {
    let plan = plan_of(THREE_RINGS, &[]);
    let s = RolloutState::new();
    assert_eq!(next(&plan, &s, at(0)), Step::Done);
    let progress = s.progress(&plan, at(0));
    assert_eq!(progress.status, RolloutStatus::Done);
    assert_eq!(progress.fraction, 1.0);
}

#[test]
fn reports_that_do_not_fit_are_refused_and_change_nothing() {
    let plan = three_rings();
    let mut s = RolloutState::new();
    let before = s.clone();
    assert_eq!(
        s.gates_evaluated(&plan, healthy(&["c0"]), at(0)),
        Err(TransitionError::Unexpected {
            event: "gates_evaluated",
            phase: "ready at ring 0 batch 0".into()
        })
    );
    assert_eq!(
        s.rolled_back(at(0)).unwrap_err().to_string(),
        "rolled_back does not fit: the rollout is ready at ring 0 batch 0"
    );
    assert_eq!(s, before);
    s.batch_applied(&plan, at(0)).unwrap();
    assert!(matches!(
        s.batch_applied(&plan, at(1)),
        Err(TransitionError::Unexpected {
            event: "batch_applied",
            ..
        })
    ));
}

#[test]
fn a_state_that_does_not_match_its_plan_halts() {
    let plan = three_rings();
    let mut s = RolloutState::new();
    s.batch_applied(&plan, at(0)).unwrap();
    s.gates_evaluated(&plan, healthy(&["c0"]), at(30)).unwrap();
    s.batch_applied(&plan, at(100)).unwrap();
    // Re-planned with fewer cells: early has no batch any more.
    let smaller = plan_of(THREE_RINGS, &[cell("c0", 0)]);
    assert_eq!(
        next(&smaller, &s, at(200)),
        Step::Halted {
            reason: "the rollout state does not match the plan: \
                     it is at ring 1 batch 0, which the plan does not have"
                .into()
        }
    );
    assert!(matches!(
        s.gates_evaluated(&smaller, healthy(&["e1", "e2"]), at(200)),
        Err(TransitionError::PlanMismatch(_))
    ));
}
