//! What a live migration costs the clients of a namespace: repeated migrations of one namespace
//! between two cells while a Python `temporalio` client starts workflows at a steady rate
//! through the edge (mTLS) and a worker runs them, on the real release binaries and Litestream.
//!
//! Per migration: the client-visible stall (the longest gap between two acknowledged starts
//! that overlaps the cutover), the server-side stall (holding new connections → routed to the
//! target), and the whole cutover. Over the run: failed starts and acknowledged workflows that
//! never completed.
//!
//! `cargo build --release --workspace --bins && target/release/migration-bench [--write BENCHMARKS.md]`
//! (`./dev bench` does both).

use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Parser;
use serde_json::{Value, json};
use tessera_system_tests::{LoadedNamespace, eventually, write_bench_section};
use tokio::io::AsyncReadExt;

#[derive(Parser)]
struct Args {
    /// Migrations to measure.
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// Workflow starts per second during the run.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Megabytes written to the store before the first migration.
    #[arg(long, default_value_t = 50)]
    fill_mb: u32,
    /// Write the results as the "## Live migration" section of this file.
    #[arg(long)]
    write: Option<std::path::PathBuf>,
}

struct Sample {
    client_stall: f64,
    server_stall: f64,
    cutover: f64,
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn at(s: &str) -> f64 {
    DateTime::parse_from_rfc3339(s)
        .unwrap()
        .with_timezone(&Utc)
        .timestamp_micros() as f64
        / 1e6
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let mut bench =
        LoadedNamespace::start(args.fill_mb, args.rate, std::process::Stdio::piped()).await;
    let (admin, tenant, cells) = (&bench.admin, &bench.tenant, bench.cells.clone());

    let mut windows = Vec::new();
    for run in 0..args.runs {
        let current = tenant.get("/namespaces/orders").await["endpoint"]["cell_address"].clone();
        let mut target = cells[0].clone();
        for c in &cells {
            let detail = admin.get(&format!("/admin/cells/{c}")).await;
            if detail["ingress_address"] != current {
                target = c.clone();
            }
        }
        let (s, v) = admin
            .post(
                "/admin/migrations",
                json!({"namespace": "orders.bench", "target_cell": target}),
            )
            .await;
        assert_eq!(s, 202, "{v}");
        let id = v["migration"]["id"].as_str().unwrap().to_string();
        let m: Value = eventually("the migration ends", Duration::from_secs(600), || async {
            let m = admin.get(&format!("/admin/migrations/{id}")).await;
            matches!(
                m["state"].as_str(),
                Some("completed" | "aborted" | "failed")
            )
            .then_some(m)
        })
        .await;
        assert_eq!(m["state"], "completed", "{m}");
        let steps = m["progress"]["steps"].as_array().unwrap();
        let step = |name: &str| {
            at(steps.iter().find(|s| s["state"] == name).unwrap()["at"]
                .as_str()
                .unwrap())
        };
        let (hold, done) = (step("cutting_over"), step("completed"));
        eprintln!(
            "migration {}: {} → {target}, stall {} ms, cutover {} ms",
            run + 1,
            m["source_cell"],
            m["progress"]["stall_ms"],
            m["progress"]["cutover_ms"]
        );
        windows.push((
            hold,
            done,
            m["progress"]["stall_ms"].as_f64().unwrap() / 1000.0,
            m["progress"]["cutover_ms"].as_f64().unwrap() / 1000.0,
        ));
        tokio::time::sleep(Duration::from_secs(3)).await;
    }

    std::fs::write(&bench.stop, "").unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(300), async {
        bench
            .load
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .await
            .unwrap();
        bench.load.wait().await.unwrap();
    })
    .await
    .expect("the load stops");
    let report: Value = out
        .lines()
        .rev()
        .find_map(|l| {
            serde_json::from_str::<Value>(l)
                .ok()
                .filter(|v| v.get("starts").is_some())
        })
        .unwrap_or_else(|| panic!("the load reported nothing: {out}"));
    let acks: Vec<f64> = report["acks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_f64().unwrap())
        .collect();
    let samples: Vec<Sample> = windows
        .iter()
        .map(|&(hold, done, server_stall, cutover)| {
            // The longest gap between consecutive acknowledgements that overlaps the cutover.
            let client_stall = acks
                .windows(2)
                .filter(|w| w[1] >= hold && w[0] <= done)
                .map(|w| w[1] - w[0])
                .fold(0.0, f64::max);
            Sample {
                client_stall,
                server_stall,
                cutover,
            }
        })
        .collect();
    let col = |f: fn(&Sample) -> f64| samples.iter().map(f).collect::<Vec<f64>>();
    let (client, server, cutover) = (
        col(|s| s.client_stall),
        col(|s| s.server_stall),
        col(|s| s.cutover),
    );
    let starts = report["starts"].as_u64().unwrap();
    let failures = report["failures"].as_u64().unwrap();
    let lost = report["lost"].as_u64().unwrap();
    let verdict = |ok: bool| if ok { "pass" } else { "FAIL" };
    let (c50, cmax) = (percentile(client.clone(), 0.5), percentile(client, 1.0));
    let section = format!(
        "## Live migration\n\n\
         `target/release/migration-bench`, {date}: {runs} migrations of one namespace between two \
         cells of one region, its store first grown by about {fill} MB, while a Python \
         `temporalio` client started {rate} workflows a second through the edge (mTLS) and a \
         worker ran them (an activity and a 1 s timer each). Control plane, two cell agents, \
         two runtimes, Litestream, the edge and the client share this machine's cores.\n\n\
         | measurement | p50 | max |\n|---|---:|---:|\n\
         | client-visible stall (longest gap between acknowledged starts around the cutover) | {c50:.2} s | {cmax:.2} s |\n\
         | server-side stall (connections held → routed to the target) | {s50:.2} s | {smax:.2} s |\n\
         | whole cutover (hold → verified on the target) | {k50:.2} s | {kmax:.2} s |\n\n\
         {starts} starts: {failures} failed, {lost} acknowledged workflows lost.\n\n\
         | goal | measured | result |\n|---|---:|---|\n\
         | stall ≤ 1 s p50 | {c50:.2} s | {g1} |\n\
         | stall ≤ 2 s max | {cmax:.2} s | {g2} |\n\
         | 0 failed calls | {failures} | {g3} |\n\
         | 0 lost workflows | {lost} | {g4} |\n",
        date = Utc::now().format("%Y-%m-%d %H:%M UTC"),
        runs = args.runs,
        fill = args.fill_mb,
        rate = args.rate,
        s50 = percentile(server.clone(), 0.5),
        smax = percentile(server, 1.0),
        k50 = percentile(cutover.clone(), 0.5),
        kmax = percentile(cutover, 1.0),
        g1 = verdict(c50 <= 1.0),
        g2 = verdict(cmax <= 2.0),
        g3 = verdict(failures == 0),
        g4 = verdict(lost == 0),
    );
    println!("{section}");
    if !report["errors"].as_array().unwrap().is_empty() {
        eprintln!("errors: {}", report["errors"]);
    }
    if let Some(path) = args.write {
        write_bench_section(&path, &section);
    }
}
