//! Health gates: after a batch has baked, what its cells showed is checked against the ring's
//! gates. The caller gathers the observations (agent reports, canary results, runtime metrics);
//! this module only judges them, so the verdict is reproducible from the report alone.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::file::Gates;

pub const RUNTIME_HEALTHY: &str = "runtime_healthy";
pub const CANARY_SUCCESS_RATE: &str = "canary_success_rate_min";
pub const RUNTIME_ERROR_RATE: &str = "runtime_error_rate_max";

/// What one cell of the batch showed during the bake.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellObservation {
    pub cell: String,
    pub runtimes_total: u32,
    pub runtimes_healthy: u32,
    /// Only cells that run the synthetic canary (ring 0) have one.
    pub canary: Option<CanaryObs>,
    /// Requests served and failed by the cell's runtimes during the bake (deltas of the runtime
    /// metrics' counters between the bake's start and end).
    pub requests: u64,
    pub errors: u64,
}

/// The canary's results over its window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanaryObs {
    /// Share of successful canary runs, 0–1.
    pub success_rate: f64,
    pub runs: u64,
}

/// One gate checked on one cell (`cell: None`: on the batch as a whole).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateResult {
    /// The gate's key in the rings file, e.g. `runtime_error_rate_max`.
    pub gate: String,
    pub passed: bool,
    pub observed: String,
    pub threshold: String,
    pub cell: Option<String>,
}

/// The verdict on a batch: every gate result, and which cells were observed (the rollout
/// refuses a report that misses a cell of the batch).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GateReport {
    pub results: Vec<GateResult>,
    /// Ids of the observed cells, sorted.
    pub cells: Vec<String>,
}

impl GateReport {
    /// True when no result failed (a report without results passes).
    pub fn passed(&self) -> bool {
        self.results.iter().all(|r| r.passed)
    }

    pub fn failures(&self) -> impl Iterator<Item = &GateResult> {
        self.results.iter().filter(|r| !r.passed)
    }

    /// One line naming the failed gates (the first few), for a rollback reason.
    pub fn summary(&self) -> String {
        const SHOWN: usize = 3;
        let failures: Vec<&GateResult> = self.failures().collect();
        if failures.is_empty() {
            return "all gates passed".into();
        }
        let mut text = failures
            .iter()
            .take(SHOWN)
            .map(|r| {
                let on = r
                    .cell
                    .as_ref()
                    .map(|c| format!(" on cell {c}"))
                    .unwrap_or_default();
                format!("{}{on}: {} (required: {})", r.gate, r.observed, r.threshold)
            })
            .collect::<Vec<_>>()
            .join("; ");
        if failures.len() > SHOWN {
            text.push_str(&format!("; and {} more", failures.len() - SHOWN));
        }
        text
    }
}

/// Checks the observations of a batch's cells against `gates`:
/// - `runtime_healthy` (when on): on each cell, every runtime reports healthy;
/// - `canary_success_rate_min`: on each cell with a canary, which must have run at least once;
/// - `runtime_error_rate_max`: on each cell, errors / requests (0 without requests), provided the
///   batch as a whole served at least `min_requests`; if not, the gate fails once, for the batch,
///   as "not enough traffic".
///
/// Results are ordered by cell id, then gate.
pub fn evaluate(gates: &Gates, observed: &[CellObservation]) -> GateReport {
    let mut sorted: Vec<&CellObservation> = observed.iter().collect();
    sorted.sort_by(|a, b| a.cell.cmp(&b.cell));
    let total_requests = observed
        .iter()
        .fold(0u64, |sum, o| sum.saturating_add(o.requests));
    let enough_traffic = total_requests >= gates.min_requests;

    let mut results = Vec::new();
    for obs in sorted.iter().copied() {
        let result = |gate: &str, passed: bool, observed: String, threshold: String| GateResult {
            gate: gate.into(),
            passed,
            observed,
            threshold,
            cell: Some(obs.cell.clone()),
        };
        if gates.runtime_healthy {
            results.push(result(
                RUNTIME_HEALTHY,
                obs.runtimes_healthy >= obs.runtimes_total,
                format!(
                    "{}/{} runtimes healthy",
                    obs.runtimes_healthy, obs.runtimes_total
                ),
                "all runtimes healthy".into(),
            ));
        }
        if let Some(canary) = &obs.canary {
            let observed = if canary.runs == 0 {
                "no canary runs".into()
            } else {
                format!("{} of {} runs", percent(canary.success_rate), canary.runs)
            };
            results.push(result(
                CANARY_SUCCESS_RATE,
                canary.runs > 0 && canary.success_rate >= gates.canary_success_rate_min,
                observed,
                format!("at least {}", percent(gates.canary_success_rate_min)),
            ));
        }
        if enough_traffic {
            let rate = if obs.requests == 0 {
                0.0
            } else {
                obs.errors as f64 / obs.requests as f64
            };
            results.push(result(
                RUNTIME_ERROR_RATE,
                rate <= gates.runtime_error_rate_max,
                format!(
                    "{} ({} errors / {} requests)",
                    percent(rate),
                    obs.errors,
                    obs.requests
                ),
                format!("at most {}", percent(gates.runtime_error_rate_max)),
            ));
        }
    }
    if !enough_traffic {
        results.push(GateResult {
            gate: RUNTIME_ERROR_RATE.into(),
            passed: false,
            observed: format!("not enough traffic: {total_requests} requests < min_requests"),
            threshold: format!("at least {} requests", gates.min_requests),
            cell: None,
        });
    }
    let cells: BTreeSet<String> = observed.iter().map(|o| o.cell.clone()).collect();
    GateReport {
        results,
        cells: cells.into_iter().collect(),
    }
}

fn percent(share: f64) -> String {
    format!("{:.2}%", share * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy(cell: &str) -> CellObservation {
        CellObservation {
            cell: cell.into(),
            runtimes_total: 3,
            runtimes_healthy: 3,
            canary: None,
            requests: 1_000,
            errors: 0,
        }
    }

    fn gates() -> Gates {
        Gates {
            runtime_healthy: true,
            canary_success_rate_min: 0.99,
            runtime_error_rate_max: 0.01,
            min_requests: 0,
        }
    }

    /// (gate, cell, passed) of every result.
    fn verdicts(report: &GateReport) -> Vec<(&str, Option<&str>, bool)> {
        report
            .results
            .iter()
            .map(|r| (r.gate.as_str(), r.cell.as_deref(), r.passed))
            .collect()
    }

    #[test]
    fn healthy_cells_pass_every_gate() {
        let report = evaluate(&gates(), &[healthy("c2"), healthy("c1")]);
        assert!(report.passed());
        assert_eq!(report.cells, ["c1", "c2"]);
        assert_eq!(
            verdicts(&report),
            [
                (RUNTIME_HEALTHY, Some("c1"), true),
                (RUNTIME_ERROR_RATE, Some("c1"), true),
                (RUNTIME_HEALTHY, Some("c2"), true),
                (RUNTIME_ERROR_RATE, Some("c2"), true),
            ]
        );
        assert_eq!(report.summary(), "all gates passed");
    }

    #[test]
    fn each_gate_fails_on_its_own() {
        type Change = fn(&mut CellObservation, &mut Gates);
        let cases: &[(&str, Change, &str, &str, &str)] = &[
            (
                "an unhealthy runtime",
                |o, _| o.runtimes_healthy = 2,
                RUNTIME_HEALTHY,
                "2/3 runtimes healthy",
                "all runtimes healthy",
            ),
            (
                "a canary below the minimum",
                |o, _| {
                    o.canary = Some(CanaryObs {
                        success_rate: 0.95,
                        runs: 40,
                    })
                },
                CANARY_SUCCESS_RATE,
                "95.00% of 40 runs",
                "at least 99.00%",
            ),
            (
                "a canary that never ran",
                |o, _| {
                    o.canary = Some(CanaryObs {
                        success_rate: 1.0,
                        runs: 0,
                    })
                },
                CANARY_SUCCESS_RATE,
                "no canary runs",
                "at least 99.00%",
            ),
            (
                "too many errors",
                |o, _| o.errors = 20,
                RUNTIME_ERROR_RATE,
                "2.00% (20 errors / 1000 requests)",
                "at most 1.00%",
            ),
            (
                "a stricter ring",
                |o, g| {
                    o.errors = 1;
                    g.runtime_error_rate_max = 0.0;
                },
                RUNTIME_ERROR_RATE,
                "0.10% (1 errors / 1000 requests)",
                "at most 0.00%",
            ),
        ];
        for (what, change, gate, observed, threshold) in cases {
            let (mut obs, mut gates) = (healthy("c1"), gates());
            change(&mut obs, &mut gates);
            let report = evaluate(&gates, &[obs, healthy("c2")]);
            assert!(!report.passed(), "{what}");
            let failures: Vec<&GateResult> = report.failures().collect();
            assert_eq!(failures.len(), 1, "{what}: {failures:?}");
            assert_eq!(failures[0].gate, *gate, "{what}");
            assert_eq!(failures[0].cell.as_deref(), Some("c1"), "{what}");
            assert_eq!(failures[0].observed, *observed, "{what}");
            assert_eq!(failures[0].threshold, *threshold, "{what}");
        }
    }

    #[test]
    fn a_healthy_canary_passes_and_cells_without_one_skip_the_gate() {
        let mut canary = healthy("canary");
        canary.canary = Some(CanaryObs {
            success_rate: 1.0,
            runs: 12,
        });
        let report = evaluate(&gates(), &[canary, healthy("plain")]);
        assert!(report.passed());
        let canary_results: Vec<_> = report
            .results
            .iter()
            .filter(|r| r.gate == CANARY_SUCCESS_RATE)
            .map(|r| r.cell.as_deref())
            .collect();
        assert_eq!(canary_results, [Some("canary")]);
    }

    #[test]
    fn the_error_rate_gate_needs_enough_traffic_across_the_batch() {
        let gates = Gates {
            min_requests: 100,
            ..gates()
        };
        let quiet = |cell: &str, requests| CellObservation {
            requests,
            ..healthy(cell)
        };
        let report = evaluate(&gates, &[quiet("c1", 30), quiet("c2", 40)]);
        assert!(!report.passed());
        let failure = report.failures().next().unwrap();
        assert_eq!(failure.gate, RUNTIME_ERROR_RATE);
        assert_eq!(failure.cell, None);
        assert_eq!(
            failure.observed,
            "not enough traffic: 70 requests < min_requests"
        );
        assert_eq!(failure.threshold, "at least 100 requests");
        assert_eq!(
            report.summary(),
            "runtime_error_rate_max: not enough traffic: 70 requests < min_requests \
             (required: at least 100 requests)"
        );
        // Enough together, although neither cell alone is.
        assert!(evaluate(&gates, &[quiet("c1", 60), quiet("c2", 40)]).passed());
        // With min_requests = 0 a cell without traffic passes.
        assert!(evaluate(&self::gates(), &[quiet("c1", 0)]).passed());
    }

    #[test]
    fn a_turned_off_health_gate_is_not_reported() {
        let gates = Gates {
            runtime_healthy: false,
            ..gates()
        };
        let mut obs = healthy("c1");
        obs.runtimes_healthy = 0;
        let report = evaluate(&gates, &[obs]);
        assert!(report.passed());
        assert_eq!(verdicts(&report), [(RUNTIME_ERROR_RATE, Some("c1"), true)]);
    }

    #[test]
    fn the_summary_names_the_first_failures() {
        let sick = |cell: &str| CellObservation {
            runtimes_healthy: 0,
            ..healthy(cell)
        };
        let report = evaluate(
            &gates(),
            &[sick("c1"), sick("c2"), sick("c3"), sick("c4"), sick("c5")],
        );
        assert_eq!(
            report.summary(),
            "runtime_healthy on cell c1: 0/3 runtimes healthy (required: all runtimes healthy); \
             runtime_healthy on cell c2: 0/3 runtimes healthy (required: all runtimes healthy); \
             runtime_healthy on cell c3: 0/3 runtimes healthy (required: all runtimes healthy); \
             and 2 more"
        );
    }

    #[test]
    fn no_observations_pass_unless_traffic_is_required() {
        assert!(evaluate(&gates(), &[]).passed());
        let gates = Gates {
            min_requests: 1,
            ..gates()
        };
        assert!(!evaluate(&gates, &[]).passed());
    }
}
