//! `tessera rollout …` (alias `rollouts`, platform-admin key): start a release's rollout through
//! the deployment rings, follow it, and pause, resume, abort or approve it.
//!
//! The API gives a rollout's progress as JSON; this module reads the fields it shows leniently
//! (states stay strings, missing fields take defaults), so a server that adds a state or a
//! field does not break the CLI.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::Subcommand;
use serde::Deserialize;
use tessera_api::*;
use tessera_client::{Client, RolloutAction};
use uuid::Uuid;

use crate::output::{
    Output, or_dash, out, pairs_table, print_item, print_list, print_table, table, time,
};

#[derive(Subcommand)]
pub enum RolloutCmd {
    /// Start rolling a release out, ring by ring; `--wait` follows it until it ends.
    Start {
        /// Version of a published release (`tessera admin releases list`).
        #[arg(long)]
        release: String,
        /// Ring definitions (the TOML of deploy-rings/README.md); default: the control plane's.
        #[arg(long, value_name = "FILE.toml")]
        rings: Option<PathBuf>,
        /// How long a batch may take to run the release before it fails (default 300).
        #[arg(long, value_name = "SECS")]
        apply_timeout: Option<u64>,
        /// Follow the rollout until it ends: exit status 0 when done, 1 when halted or aborted.
        #[arg(long)]
        wait: bool,
    },
    /// Every rollout, newest first.
    List,
    /// One rollout: its status, then each ring's batches with their cells, state and failed
    /// gates (`-o json`: the API's JSON).
    Get { id: Uuid },
    /// Follow a rollout until it ends: exit status 0 when done, 1 when halted or aborted.
    Watch { id: Uuid },
    /// Hold the rollout where it stands (a bake that ends meanwhile waits for `resume`).
    Pause { id: Uuid },
    /// Continue a paused rollout.
    Resume { id: Uuid },
    /// Stop the rollout for good; batches that passed keep the release.
    Abort { id: Uuid },
    /// Let the rollout start a ring that needs approval.
    Approve {
        id: Uuid,
        /// The ring to approve; default: the one waiting.
        #[arg(long, value_name = "NAME")]
        ring: Option<String>,
    },
}

pub async fn run(c: &Client, out: Output, cmd: RolloutCmd) -> anyhow::Result<()> {
    match cmd {
        RolloutCmd::Start {
            release,
            rings,
            apply_timeout,
            wait,
        } => {
            let rings = rings
                .map(|p| {
                    std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))
                })
                .transpose()?;
            let r = c
                .start_rollout(&StartRollout {
                    release,
                    rings,
                    apply_timeout_secs: apply_timeout,
                })
                .await?;
            let id = r.rollout.id;
            match (out, wait) {
                (Output::Json, false) => print_item(out, &r),
                (Output::Json, true) => watch(c, out, id).await,
                (Output::Table, false) => {
                    show(out, &r.rollout)?;
                    eprintln!("Rollout {id} started: follow it with `tessera rollout watch {id}`.");
                    Ok(())
                }
                (Output::Table, true) => {
                    eprintln!("Rollout {id} started.");
                    watch(c, out, id).await
                }
            }
        }
        RolloutCmd::List => {
            let items = crate::all_pages(|p| async move { c.list_rollouts(&p).await }).await?;
            match out {
                Output::Json => print_list(out, &items)?,
                Output::Table => print_table(
                    &["id", "release", "status", "progress", "created_at"],
                    items
                        .iter()
                        .map(|r| {
                            vec![
                                r.id.to_string(),
                                r.release.clone(),
                                r.status.clone(),
                                percent(r.progress["fraction"].as_f64().unwrap_or(0.0)),
                                time(r.created_at),
                            ]
                        })
                        .collect(),
                ),
            }
            Ok(())
        }
        RolloutCmd::Get { id } => show(out, &c.rollout(id).await?),
        RolloutCmd::Watch { id } => watch(c, out, id).await,
        RolloutCmd::Pause { id } => act(c, out, id, RolloutAction::Pause, None).await,
        RolloutCmd::Resume { id } => act(c, out, id, RolloutAction::Resume, None).await,
        RolloutCmd::Abort { id } => act(c, out, id, RolloutAction::Abort, None).await,
        RolloutCmd::Approve { id, ring } => {
            act(c, out, id, RolloutAction::Approve, ring.as_deref()).await
        }
    }
}

/// Sends a control and shows the rollout as the answer has it (a signal the workflow has not
/// handled yet may not show in it).
async fn act(
    c: &Client,
    out: Output,
    id: Uuid,
    action: RolloutAction,
    ring: Option<&str>,
) -> anyhow::Result<()> {
    let r = c.rollout_action(id, action, ring).await?;
    show(out, &r)
}

/// Polls the rollout every second, with a progress bar on a terminal (a line per change when
/// stderr is not one), until it ends; then shows it. An error unless it is done.
async fn watch(c: &Client, out: Output, id: Uuid) -> anyhow::Result<()> {
    let human = matches!(out, Output::Table);
    let pb = crate::progress_bar(human)?;
    let mut last = String::new();
    loop {
        let r = c.rollout(id).await?;
        let p = Progress::of(&r)?;
        let line = status_line(&r.status, &p);
        pb.set_position((p.fraction.clamp(0.0, 1.0) * 100.0).round() as u64);
        if line != last {
            if human && pb.is_hidden() {
                eprintln!("{line}");
            }
            if human && r.status == "awaiting_approval" && !last.starts_with("awaiting approval") {
                pb.suspend(|| eprintln!("Approve the ring with `tessera rollout approve {id}`."));
            }
            pb.set_message(line.clone());
            last = line;
        }
        if let Some(end) = Ended::of(&r.status) {
            if end == Ended::Done {
                pb.finish();
            } else {
                // Left where it stopped: a halted rollout does not show 100%.
                pb.abandon();
            }
            show(out, &r)?;
            return end.verdict(id, p.reason.as_deref());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The rollout: the API's JSON, or [`render`]ed.
fn show(out: Output, r: &Rollout) -> anyhow::Result<()> {
    match out {
        Output::Json => print_item(out, r),
        Output::Table => {
            out!("{}", render(r, &Progress::of(r)?));
            Ok(())
        }
    }
}

/// How a rollout ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Done,
    Halted,
    Aborted,
}

impl Ended {
    /// `None` while the rollout can still move (running, paused, awaiting approval, rolling
    /// back, or a status this CLI does not know).
    fn of(status: &str) -> Option<Self> {
        match status {
            "done" => Some(Ended::Done),
            "halted" => Some(Ended::Halted),
            "aborted" => Some(Ended::Aborted),
            _ => None,
        }
    }

    /// The command's outcome: an error (exit status 1) with the reason unless it is done.
    fn verdict(self, id: Uuid, reason: Option<&str>) -> anyhow::Result<()> {
        let why = reason.map(|r| format!(": {r}")).unwrap_or_default();
        match self {
            Ended::Done => Ok(()),
            Ended::Halted => bail!("rollout {id} halted{why}"),
            Ended::Aborted => bail!("rollout {id} was aborted{why}"),
        }
    }
}

/// The fields of `Rollout.progress` shown here.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Progress {
    status: String,
    reason: Option<String>,
    bake_until: Option<DateTime<Utc>>,
    fraction: f64,
    rings: Vec<Ring>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Ring {
    name: String,
    state: String,
    batches: Vec<Batch>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Batch {
    cells: Vec<String>,
    state: String,
    /// `None`: the gates have not been evaluated for this batch.
    gate_results: Option<Vec<Gate>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Gate {
    gate: String,
    passed: bool,
    observed: String,
    threshold: String,
    cell: Option<String>,
}

impl Progress {
    fn of(r: &Rollout) -> anyhow::Result<Self> {
        serde_json::from_value(r.progress.clone()).with_context(|| {
            format!(
                "rollout {}: its progress has an unexpected shape (`-o json` shows it)",
                r.id
            )
        })
    }

    /// Where the rollout stands: the first ring not done, and in it the batch in flight (the
    /// first neither passed nor pending; in a ring in progress, else the next pending one).
    /// `None` when every ring is done.
    fn position(&self) -> Option<(usize, Option<usize>)> {
        let ri = self.rings.iter().position(|r| r.state != "done")?;
        let ring = &self.rings[ri];
        let batch = ring
            .batches
            .iter()
            .position(|b| b.state != "passed" && b.state != "pending")
            .or_else(|| {
                (ring.state == "in_progress")
                    .then(|| ring.batches.iter().position(|b| b.state == "pending"))
                    .flatten()
            });
        Some((ri, batch))
    }
}

/// One line for the progress bar: status, then where it stands (ring, batch and their state),
/// until when it bakes, and why it halted or rolls back.
fn status_line(status: &str, p: &Progress) -> String {
    let mut line = status.replace('_', " ");
    if let Some((ri, batch)) = p.position() {
        let ring = &p.rings[ri];
        line += &format!(" · ring {} ({}/{})", ring.name, ri + 1, p.rings.len());
        match batch {
            Some(bi) => {
                let b = &ring.batches[bi];
                line += &format!(
                    " · batch {}/{} {}",
                    bi + 1,
                    ring.batches.len(),
                    b.state.replace('_', " ")
                );
            }
            None => line += &format!(" {}", ring.state.replace('_', " ")),
        }
    }
    if let Some(until) = p.bake_until {
        line += &format!(" until {}", time(until));
    }
    if let Some(reason) = &p.reason {
        line += &format!(": {reason}");
    }
    line
}

/// The table view of `get`: the rollout's fields, then its rings' batches.
fn render(r: &Rollout, p: &Progress) -> String {
    let head = pairs_table(vec![
        ("id", r.id.to_string()),
        ("release", r.release.clone()),
        ("status", r.status.clone()),
        ("reason", p.reason.clone().unwrap_or_default()),
        ("progress", percent(p.fraction)),
        ("bake_until", p.bake_until.map(time).unwrap_or_default()),
        ("created_at", time(r.created_at)),
        ("updated_at", time(r.updated_at)),
    ]);
    let rings = table(
        &[
            "ring",
            "state",
            "batch",
            "cells",
            "batch_state",
            "failed_gates",
        ],
        batch_rows(p),
    );
    format!("{head}\n{rings}")
}

/// One row per batch, the ring's name and state on its first one; a ring without batches
/// has a row of its own.
fn batch_rows(p: &Progress) -> Vec<Vec<String>> {
    let mut rows = vec![];
    for ring in &p.rings {
        if ring.batches.is_empty() {
            let dash = || "-".to_string();
            rows.push(vec![
                ring.name.clone(),
                ring.state.clone(),
                dash(),
                dash(),
                dash(),
                dash(),
            ]);
        }
        for (i, b) in ring.batches.iter().enumerate() {
            let (name, state) = match i {
                0 => (ring.name.clone(), ring.state.clone()),
                _ => Default::default(),
            };
            rows.push(vec![
                name,
                state,
                format!("{}/{}", i + 1, ring.batches.len()),
                or_dash(&b.cells.join(", ")),
                b.state.clone(),
                gates(b.gate_results.as_deref()),
            ]);
        }
    }
    rows
}

/// The failed gates, one a line; `N passed` when none failed; `-` before any evaluation (or
/// when there are no gates).
fn gates(results: Option<&[Gate]>) -> String {
    let results = results.unwrap_or_default();
    if results.is_empty() {
        return "-".into();
    }
    let failed: Vec<String> = results
        .iter()
        .filter(|g| !g.passed)
        .map(|g| {
            let on = g
                .cell
                .as_ref()
                .map(|c| format!(" on {c}"))
                .unwrap_or_default();
            format!("{}{on}: {} (threshold {})", g.gate, g.observed, g.threshold)
        })
        .collect();
    if failed.is_empty() {
        format!("{} passed", results.len())
    } else {
        failed.join("\n")
    }
}

fn percent(fraction: f64) -> String {
    format!("{:.0}%", fraction.clamp(0.0, 1.0) * 100.0)
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use serde_json::json;

    use super::*;
    use crate::{Cli, Command};

    fn parse(args: &[&str]) -> Result<RolloutCmd, clap::Error> {
        let cli = Cli::try_parse_from(std::iter::once("tessera").chain(args.iter().copied()))?;
        match cli.command {
            Command::Rollout(cmd) => Ok(cmd),
            _ => panic!("not a rollout command: {args:?}"),
        }
    }

    const ID: &str = "0190f3a2-7b1c-7d3e-8f40-123456789abc";

    /// A rollout halted in its second batch of `canary`, with one failed gate.
    fn halted() -> Rollout {
        rollout(json!({
            "status": "halted",
            "reason": "gate runtime_error_rate_max failed on cell-b",
            "bake_until": null,
            "fraction": 0.2,
            "rings": [
                {"name": "canary", "state": "failed", "batches": [
                    {"cells": ["cell-a"], "state": "passed", "gate_results": [
                        {"gate": "runtime_error_rate_max", "passed": true, "observed": "0.001", "threshold": "0.01", "cell": "cell-a"},
                        {"gate": "agent_healthy", "passed": true, "observed": "true", "threshold": "true", "cell": null}
                    ]},
                    {"cells": ["cell-b", "cell-c"], "state": "rolled_back", "gate_results": [
                        {"gate": "runtime_error_rate_max", "passed": false, "observed": "0.2", "threshold": "0.01", "cell": "cell-b"},
                        {"gate": "runtime_error_rate_max", "passed": true, "observed": "0", "threshold": "0.01", "cell": "cell-c"}
                    ]}
                ]},
                {"name": "prod", "state": "pending", "batches": [
                    {"cells": ["cell-d", "cell-e"], "state": "pending", "gate_results": null}
                ]},
                {"name": "empty", "state": "pending", "batches": []}
            ]
        }))
    }

    fn rollout(progress: serde_json::Value) -> Rollout {
        Rollout {
            id: ID.parse().unwrap(),
            release: "2026.11.1".into(),
            status: progress["status"].as_str().unwrap().into(),
            progress,
            operation_id: ID.parse().unwrap(),
            created_at: "2026-11-02T10:00:00Z".parse().unwrap(),
            updated_at: "2026-11-02T10:20:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn get_view_shows_rings_batches_and_failed_gates() {
        let r = halted();
        let p = Progress::of(&r).unwrap();
        let want: Vec<Vec<&str>> = vec![
            vec!["canary", "failed", "1/2", "cell-a", "passed", "2 passed"],
            vec![
                "",
                "",
                "2/2",
                "cell-b, cell-c",
                "rolled_back",
                "runtime_error_rate_max on cell-b: 0.2 (threshold 0.01)",
            ],
            vec!["prod", "pending", "1/1", "cell-d, cell-e", "pending", "-"],
            vec!["empty", "pending", "-", "-", "-", "-"],
        ];
        assert_eq!(batch_rows(&p), want);

        let text = render(&r, &p);
        let lines: Vec<&str> = text.lines().collect();
        let line = |field: &str| {
            lines
                .iter()
                .find(|l| l.trim_start_matches('│').trim_start().starts_with(field))
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                .unwrap_or_else(|| panic!("no {field} line in\n{text}"))
        };
        assert_eq!(line("status"), "│ status halted │");
        assert_eq!(line("progress"), "│ progress 20% │");
        assert_eq!(line("bake_until"), "│ bake_until - │");
        assert_eq!(
            line("reason"),
            "│ reason gate runtime_error_rate_max failed on cell-b │"
        );
        assert!(line("ring").contains("batch_state failed_gates"), "{text}");
        assert!(line("canary").contains("cell-a passed 2 passed"), "{text}");
    }

    #[test]
    fn several_failed_gates_take_a_line_each() {
        let g = |gate: &str, passed, cell: Option<&str>| Gate {
            gate: gate.into(),
            passed,
            observed: "9".into(),
            threshold: "1".into(),
            cell: cell.map(str::to_string),
        };
        let results = [
            g("a", false, Some("c1")),
            g("b", true, None),
            g("c", false, None),
        ];
        assert_eq!(
            gates(Some(&results)),
            "a on c1: 9 (threshold 1)\nc: 9 (threshold 1)"
        );
        assert_eq!(gates(Some(&[])), "-");
        assert_eq!(gates(None), "-");
    }

    #[test]
    fn status_line_names_the_ring_and_batch_in_flight() {
        let r = halted();
        assert_eq!(
            status_line(&r.status, &Progress::of(&r).unwrap()),
            "halted · ring canary (1/3) · batch 2/2 rolled back: gate runtime_error_rate_max failed on cell-b"
        );
        let baking = rollout(json!({
            "status": "running",
            "bake_until": "2026-11-02T10:30:00Z",
            "fraction": 0.5,
            "rings": [
                {"name": "canary", "state": "done", "batches": [{"cells": ["a"], "state": "passed", "gate_results": []}]},
                {"name": "prod", "state": "in_progress", "batches": [
                    {"cells": ["b"], "state": "baking", "gate_results": null},
                    {"cells": ["c"], "state": "pending", "gate_results": null}
                ]}
            ]
        }));
        assert_eq!(
            status_line(&baking.status, &Progress::of(&baking).unwrap()),
            "running · ring prod (2/2) · batch 1/2 baking until 2026-11-02T10:30:00Z"
        );
        // Between batches: the next pending batch of the ring in progress.
        let between = rollout(json!({
            "status": "running",
            "rings": [{"name": "prod", "state": "in_progress", "batches": [
                {"cells": ["b"], "state": "passed"}, {"cells": ["c"], "state": "pending"}
            ]}]
        }));
        assert_eq!(
            status_line(&between.status, &Progress::of(&between).unwrap()),
            "running · ring prod (1/1) · batch 2/2 pending"
        );
        let waiting = rollout(json!({
            "status": "awaiting_approval",
            "rings": [
                {"name": "canary", "state": "done", "batches": [{"cells": ["a"], "state": "passed"}]},
                {"name": "prod", "state": "awaiting_approval", "batches": [{"cells": ["b"], "state": "pending"}]}
            ]
        }));
        assert_eq!(
            status_line(&waiting.status, &Progress::of(&waiting).unwrap()),
            "awaiting approval · ring prod (2/2) awaiting approval"
        );
        let done = rollout(json!({
            "status": "done", "fraction": 1.0,
            "rings": [{"name": "canary", "state": "done", "batches": [{"cells": ["a"], "state": "passed"}]}]
        }));
        assert_eq!(
            status_line(&done.status, &Progress::of(&done).unwrap()),
            "done"
        );
    }

    #[test]
    fn only_done_exits_zero() {
        let id: Uuid = ID.parse().unwrap();
        for running in [
            "running",
            "paused",
            "awaiting_approval",
            "rolling_back",
            "new",
        ] {
            assert_eq!(Ended::of(running), None, "{running}");
        }
        assert_eq!(Ended::of("done"), Some(Ended::Done));
        assert!(Ended::Done.verdict(id, None).is_ok());
        let halted = Ended::of("halted")
            .unwrap()
            .verdict(id, Some("gate x failed"))
            .unwrap_err();
        assert_eq!(
            halted.to_string(),
            format!("rollout {ID} halted: gate x failed")
        );
        let aborted = Ended::of("aborted").unwrap().verdict(id, None).unwrap_err();
        assert_eq!(aborted.to_string(), format!("rollout {ID} was aborted"));
    }

    #[test]
    fn progress_of_an_unexpected_shape_is_an_error() {
        let mut r = halted();
        r.progress = json!({"rings": "none"});
        let err = Progress::of(&r).unwrap_err();
        assert!(err.to_string().contains("-o json"), "{err}");
        r.progress = json!({});
        assert_eq!(Progress::of(&r).unwrap().rings.len(), 0);
    }

    #[test]
    fn commands_parse() {
        assert!(matches!(
            parse(&[
                "rollout",
                "start",
                "--release",
                "2026.11.1",
                "--rings",
                "rings.toml",
                "--apply-timeout",
                "60",
                "--wait"
            ])
            .unwrap(),
            RolloutCmd::Start { ref release, rings: Some(ref p), apply_timeout: Some(60), wait: true }
                if release == "2026.11.1" && p == &PathBuf::from("rings.toml")
        ));
        assert!(matches!(
            parse(&["rollouts", "start", "--release", "v1"]).unwrap(),
            RolloutCmd::Start {
                rings: None,
                apply_timeout: None,
                wait: false,
                ..
            }
        ));
        assert!(
            parse(&["rollout", "start"]).is_err(),
            "the release is required"
        );
        assert!(matches!(
            parse(&["rollouts", "list"]).unwrap(),
            RolloutCmd::List
        ));
        assert!(matches!(
            parse(&["rollout", "approve", ID, "--ring", "prod"]).unwrap(),
            RolloutCmd::Approve { ring: Some(ref r), .. } if r == "prod"
        ));
        assert!(matches!(
            parse(&["rollout", "approve", ID]).unwrap(),
            RolloutCmd::Approve { ring: None, .. }
        ));
        for cmd in ["get", "watch", "pause", "resume", "abort"] {
            assert!(parse(&["rollout", cmd, ID]).is_ok(), "{cmd}");
            assert!(
                parse(&["rollout", cmd, "not-a-uuid"]).is_err(),
                "{cmd} takes a rollout id"
            );
        }
    }
}
