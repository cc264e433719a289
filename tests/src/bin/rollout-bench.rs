//! How fast a failed gate is undone: the time from a batch failing its gate to that batch
//! running the previous release again, on the real release binaries, with short bakes.
//!
//! A ring-0 cell runs release `good`; then `bad` (a runtime flag the server refuses) is rolled
//! out again and again. Each rollout fails in ring 0's first batch and is rolled back; the
//! sample is the time between the rollout's `batch_failed` event and its `rolled_back` event,
//! which is recorded when the cell's agent reports every runtime serving on `good` again.
//! Also shown: the time from starting the rollout to the failure being detected.
//!
//! `cargo build --release --workspace --bins && target/release/rollout-bench [--write BENCHMARKS.md]`
//! (`./dev bench` does both).

use std::time::Duration;

use chrono::DateTime;
use clap::Parser;
use serde_json::Value;
use tessera_system_tests::{
    Api, CellProcesses, ControlPlane, rollout_event_at, write_bench_section,
};

#[derive(Parser)]
struct Args {
    /// Bad rollouts to measure.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Write the results as the "## Rollback after a failed gate" section of this file.
    #[arg(long)]
    write: Option<std::path::PathBuf>,
}

const RINGS: &str = r#"
[defaults]
batch = 1
bake = "5s"
bake_after_ring = "1s"

[defaults.gates]
canary_success_rate_min = 0.5

[[ring]]
name = "canary"
cells = { ring = 0 }
"#;

/// Runs a rollout of `release` to its end; returns its final view.
async fn roll(admin: &Api, release: &str) -> Value {
    let id = admin.start_rollout(release, RINGS).await;
    admin.rollout_end(&id, Duration::from_secs(300)).await
}

fn secs(d: chrono::TimeDelta) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let data = tempfile::tempdir().unwrap();
    let _cells = CellProcesses(data.path().to_path_buf());
    let cp = ControlPlane::start(data.path(), &[]).await;
    let admin = Api::admin(&cp);
    admin.create_region("bench").await;
    let cell = admin.provision("bench", 0).await;
    admin.publish_release("good", &[]).await;
    admin.publish_release("bad", &["--no-such-flag"]).await;
    let r = roll(&admin, "good").await;
    assert_eq!(r["status"], "done", "{r}");

    let mut rows = Vec::new();
    for i in 0..args.runs {
        let r = roll(&admin, "bad").await;
        assert_eq!(r["status"], "halted", "{r}");
        let cell_now = admin.get(&format!("/admin/cells/{cell}")).await;
        assert_eq!(cell_now["observed"]["release"], "good", "{cell_now}");
        let started = DateTime::parse_from_rfc3339(r["created_at"].as_str().unwrap()).unwrap();
        let failed = rollout_event_at(&r, "batch_failed");
        let back = rollout_event_at(&r, "rolled_back");
        let row = (secs(failed - started), secs(back - failed));
        eprintln!(
            "run {}: failure detected after {:.1} s, previous release running {:.1} s later",
            i + 1,
            row.0,
            row.1
        );
        rows.push(row);
    }
    let mut back: Vec<f64> = rows.iter().map(|r| r.1).collect();
    back.sort_by(f64::total_cmp);
    let mut detect: Vec<f64> = rows.iter().map(|r| r.0).collect();
    detect.sort_by(f64::total_cmp);
    let p = |v: &[f64], q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    let goal_met = back.last().is_some_and(|m| *m <= 30.0);
    let table = format!(
        "| | runs | p50 | max | goal |\n|---|---:|---:|---:|---|\n\
         | failed gate → batch on the previous release | {} | {:.1} s | {:.1} s | ≤ 30 s: {} |\n\
         | rollout start → failure detected | {} | {:.1} s | {:.1} s | |\n",
        back.len(),
        p(&back, 0.5),
        back.last().unwrap(),
        if goal_met { "met" } else { "**not met**" },
        detect.len(),
        p(&detect, 0.5),
        detect.last().unwrap(),
    );
    println!("{table}");
    if let Some(path) = args.write {
        let section = format!(
            "## Rollback after a failed gate\n\n\
             `rollout-bench` (run by `./dev bench`): the release control plane and one local \
             ring-0 cell running release `good` (its canary runtime). Release `bad` adds a \
             runtime flag the server refuses; each run rolls it out with 5 s bakes. The agent \
             restarts the cell's first runtime on `bad`; it exits, is restarted and exits \
             again, and the rollout fails the batch at once (a runtime that exits twice on the \
             release fails the health gate without waiting for the bake). The sample is the time between the rollout's \
             `batch_failed` and `rolled_back` events; `rolled_back` is recorded when the agent \
             reports every runtime of the batch serving on `good` again.\n\n{table}"
        );
        write_bench_section(&path, &section);
    }
}
