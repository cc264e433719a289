//! Activities of the rollout workflow: what a cell runs, waiting for cells to run a release,
//! reading the numbers the gates judge, and saving the rollout's progress for the API.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tessera_api::ReleaseSpec;
use tessera_api::agent::{ObservedState, RuntimeHealth};
use tessera_store::entity::cell;
use tessera_store::{OperationUpdate, Store};
use uuid::Uuid;

use crate::cell_activities::RECHECK;
use crate::errors::store_err;

pub struct RolloutActivities {
    pub store: Store,
}

/// Wait until each cell runs its release (`None`: no release, the agent's defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AwaitRelease {
    pub want: BTreeMap<String, Option<String>>,
    pub timeout_secs: u64,
}

/// How waiting for a release ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseOutcome {
    /// Every cell runs its release, every runtime serving.
    pub applied: bool,
    /// Why not: the first runtime the release broke, or the timeout.
    pub reason: Option<String>,
    /// The cells as last seen.
    pub cells: Vec<CellSnapshot>,
}

/// What a cell's agent last reported, in the terms of the gates. Counters are cumulative since
/// the agent (canary) or the runtime (requests) started; the workflow subtracts the snapshot
/// taken when the batch was applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellSnapshot {
    pub cell: String,
    pub runtimes_total: u32,
    pub runtimes_healthy: u32,
    /// `(runs, successes)` of the canary, when the cell runs one.
    pub canary: Option<(u64, u64)>,
    pub requests: u64,
    pub errors: u64,
}

impl CellSnapshot {
    /// What the cell showed between `before` and this snapshot.
    pub fn since(&self, before: Option<&CellSnapshot>) -> tessera_rings::CellObservation {
        // A counter lower than before was reset (the agent or the runtime restarted): all of it
        // was counted since, as Prometheus's `increase` reads a reset.
        let delta = |now: u64, then: Option<u64>| match then {
            Some(then) if then <= now => now - then,
            _ => now,
        };
        tessera_rings::CellObservation {
            cell: self.cell.clone(),
            runtimes_total: self.runtimes_total,
            runtimes_healthy: self.runtimes_healthy,
            canary: self.canary.map(|(runs, ok)| {
                let (runs0, ok0) = before.and_then(|b| b.canary).unwrap_or((0, 0));
                let (runs, ok) = (delta(runs, Some(runs0)), delta(ok, Some(ok0)));
                tessera_rings::CanaryObs {
                    success_rate: if runs == 0 {
                        0.0
                    } else {
                        ok as f64 / runs as f64
                    },
                    runs,
                }
            }),
            requests: delta(self.requests, before.map(|b| b.requests)),
            errors: delta(self.errors, before.map(|b| b.errors)),
        }
    }
}

fn observed(c: &cell::Model) -> Result<Option<ObservedState>, ActivityError> {
    tessera_store::decode_observed(c).map_err(store_err)
}

fn snapshot(cell_id: &str, o: Option<&ObservedState>) -> CellSnapshot {
    let runtimes = o.map(|o| o.runtimes.values().collect::<Vec<_>>());
    let runtimes = runtimes.unwrap_or_default();
    CellSnapshot {
        cell: cell_id.to_string(),
        runtimes_total: runtimes.len() as u32,
        runtimes_healthy: runtimes
            .iter()
            .filter(|r| r.health == RuntimeHealth::Serving)
            .count() as u32,
        canary: o
            .and_then(|o| o.canary.as_ref())
            .map(|c| (c.runs, c.successes)),
        requests: runtimes.iter().map(|r| r.requests_total).sum(),
        errors: runtimes.iter().map(|r| r.errors_total).sum(),
    }
}

/// Whether the cell runs `want` on every runtime, each serving, at the newest desired
/// generation (so the report is about the release just written, not an older document).
fn runs(c: &cell::Model, o: &ObservedState, want: &Option<String>) -> bool {
    c.observed_generation.is_some_and(|g| g >= c.generation)
        && o.release_target == *want
        && match want {
            Some(_) => o.release == *want,
            None => o
                .runtimes
                .values()
                .all(|r| r.release.is_none() && r.health == RuntimeHealth::Serving),
        }
}

/// Exits on a new release after which its runtime counts as broken. One exit can be bad luck
/// (a port taken between choosing and binding it); a release that breaks the server exits
/// again at once.
const EXITS_OF_A_BROKEN_RUNTIME: u32 = 2;

/// The first runtime that `want` broke: on it, not serving, and either exited
/// [`EXITS_OF_A_BROKEN_RUNTIME`] times or could not be started at all.
fn broken_by(o: &ObservedState, want: &Option<String>) -> Option<String> {
    o.runtimes.iter().find_map(|(id, r)| {
        let on_it = want.is_some() && r.release == *want;
        let never_started = r.restarts == 0 && r.last_error.is_some();
        let failed = r.health != RuntimeHealth::Serving
            && (r.restarts >= EXITS_OF_A_BROKEN_RUNTIME || never_started);
        (on_it && failed).then(|| {
            format!(
                "runtime {id} does not serve on release {}: {}",
                want.as_deref().unwrap_or("-"),
                r.last_error.as_deref().unwrap_or("it keeps restarting")
            )
        })
    })
}

#[activities]
impl RolloutActivities {
    /// The release a cell is asked to run now (from its desired state): what a rollback puts back.
    #[activity]
    pub async fn current_release(
        self: Arc<Self>,
        _ctx: ActivityContext,
        cell_id: String,
    ) -> Result<Option<ReleaseSpec>, ActivityError> {
        let state = self.store.cell_state(&cell_id).await.map_err(store_err)?;
        Ok(state.desired.release)
    }

    /// Polls the cells' reports until every cell runs its release, a runtime on a new release
    /// fails (at once: a release that breaks its first runtime is not waited out), or the
    /// timeout passes.
    #[activity]
    pub async fn await_release(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: AwaitRelease,
    ) -> Result<ReleaseOutcome, ActivityError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(input.timeout_secs);
        let mut changes: Vec<_> = input
            .want
            .keys()
            .map(|id| self.store.cell_changes(id))
            .collect();
        loop {
            let mut cells = Vec::new();
            let mut all = true;
            let mut reason = None;
            for (cell_id, want) in &input.want {
                let c = self.store.cell(cell_id).await.map_err(store_err)?;
                let o = observed(&c)?;
                cells.push(snapshot(cell_id, o.as_ref()));
                match &o {
                    Some(o) if runs(&c, o, want) => {}
                    Some(o) => {
                        all = false;
                        reason = reason
                            .or_else(|| broken_by(o, want).map(|r| format!("cell {cell_id}: {r}")));
                    }
                    None => all = false,
                }
            }
            if all || reason.is_some() || tokio::time::Instant::now() >= deadline {
                let reason = match (all, reason) {
                    (true, _) => None,
                    (false, Some(r)) => Some(r),
                    (false, None) => Some(format!(
                        "the cells did not run the release within {} s",
                        input.timeout_secs
                    )),
                };
                return Ok(ReleaseOutcome {
                    applied: all,
                    reason,
                    cells,
                });
            }
            let _ = ctx.record_heartbeat(()).await;
            let any_change = changes.iter_mut().map(|c| Box::pin(c.changed()));
            let _ = tokio::time::timeout_at(
                deadline.min(tokio::time::Instant::now() + RECHECK),
                futures::future::select_all(any_change),
            )
            .await;
        }
    }

    /// The cells' numbers now, for the gates.
    #[activity]
    pub async fn observe_cells(
        self: Arc<Self>,
        _ctx: ActivityContext,
        cells: Vec<String>,
    ) -> Result<Vec<CellSnapshot>, ActivityError> {
        let mut out = Vec::new();
        for id in cells {
            let c = self.store.cell(&id).await.map_err(store_err)?;
            out.push(snapshot(&id, observed(&c)?.as_ref()));
        }
        Ok(out)
    }

    /// Records the rollout's status and progress (what the API lists and shows after the
    /// workflow has ended).
    #[activity]
    pub async fn save_rollout(
        self: Arc<Self>,
        _ctx: ActivityContext,
        (id, status, progress): (Uuid, String, serde_json::Value),
    ) -> Result<(), ActivityError> {
        let fraction = progress["fraction"].as_f64().unwrap_or(0.0);
        let reason = progress["reason"].as_str().map(str::to_string);
        self.store
            .save_rollout_progress(id, &status, progress, Utc::now())
            .await
            .map_err(store_err)?;
        // The operation that follows the rollout has the rollout's id.
        let (state, error) = match status.as_str() {
            "done" => ("fulfilled", None),
            "halted" => ("failed", reason.clone()),
            "aborted" => ("cancelled", None),
            _ => ("in_progress", None),
        };
        let update = OperationUpdate {
            state: state.into(),
            progress: fraction,
            step: Some(match &reason {
                Some(r) => format!("{}: {r}", status.replace('_', " ")),
                None => status.replace('_', " "),
            }),
            error_code: error.as_ref().map(|_| "failed_precondition".to_string()),
            error_message: error,
        };
        match self.store.update_operation(id, update).await {
            Ok(_) | Err(tessera_store::StoreError::NotFound(_)) => Ok(()),
            Err(e) => Err(store_err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(health: &str, restarts: u32, last_error: Option<&str>) -> ObservedState {
        let runtime = serde_json::json!({
            "health": health, "temporal_namespace": "orders.acme", "rss_bytes": 0,
            "uptime_seconds": 0, "restarts": restarts, "global_namespace": false,
            "last_error": last_error, "release": "r2",
        });
        ObservedState {
            runtimes: [(
                "orders".to_string(),
                serde_json::from_value(runtime).unwrap(),
            )]
            .into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_runtime_is_broken_by_its_release_after_two_exits_or_a_failed_start() {
        let r2 = Some("r2".to_string());
        let exited = Some("the runtime process exited");
        assert_eq!(
            broken_by(&cell("stopped", 1, exited), &r2),
            None,
            "one exit"
        );
        assert_eq!(broken_by(&cell("starting", 1, None), &r2), None);
        assert_eq!(
            broken_by(&cell("stopped", 2, exited), &r2).as_deref(),
            Some("runtime orders does not serve on release r2: the runtime process exited")
        );
        assert!(
            broken_by(
                &cell("stopped", 0, Some("temporal 1.2 is not installed")),
                &r2
            )
            .is_some()
        );
        assert_eq!(broken_by(&cell("serving", 3, None), &r2), None, "it serves");
        assert_eq!(
            broken_by(&cell("stopped", 2, exited), &Some("r3".into())),
            None,
            "not on the release being judged"
        );
    }

    #[test]
    fn counters_reset_by_a_restart_count_from_zero() {
        let snap = |runs, ok, requests| CellSnapshot {
            cell: "c1".into(),
            runtimes_total: 1,
            runtimes_healthy: 1,
            canary: Some((runs, ok)),
            requests,
            errors: 0,
        };
        let before = snap(40, 40, 1000);
        let o = snap(55, 54, 1300).since(Some(&before));
        assert_eq!((o.canary.as_ref().unwrap().runs, o.requests), (15, 300));
        // The agent restarted during the bake: its canary counts again from 0.
        let o = snap(6, 6, 1300).since(Some(&before));
        let canary = o.canary.unwrap();
        assert_eq!((canary.runs, canary.success_rate), (6, 1.0));
    }
}
