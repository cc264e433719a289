//! What a standby replica costs and how far behind it stays: one namespace under a steady load
//! of workflow starts (Python `temporalio` client through the edge, mTLS, and a worker) gets a
//! standby in its region's other cell; the bench samples the standby's lag as the control plane
//! reports it, and the CPU and memory of the two Litestream processes a standby adds (the active
//! cell's `replicate`, the standby's `restore -f`) against the namespace's own Temporal server.
//!
//! `cargo build --release --workspace --bins && target/release/standby-bench [--write BENCHMARKS.md]`
//! (`./dev bench` does both).

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::Utc;
use clap::Parser;
use serde_json::json;
use tessera_system_tests::{LoadedNamespace, processes_mentioning, write_bench_section};

#[derive(Parser)]
struct Args {
    /// Seconds of steady state to sample.
    #[arg(long, default_value_t = 120)]
    seconds: u64,
    /// Workflow starts per second.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Megabytes written to the store before the standby is added.
    #[arg(long, default_value_t = 50)]
    fill_mb: u32,
    /// Write the results as the "## Standby replicas" section of this file.
    #[arg(long)]
    write: Option<std::path::PathBuf>,
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// A process's CPU time so far (seconds) and resident memory (MiB).
fn usage(pid: u32) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command (which may hold spaces) start at the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let hz = clock_ticks();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some((ticks / hz, rss_kb / 1024.0))
}

/// Clock ticks per second of `/proc/<pid>/stat` times (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// The processes under a cell's runtime folders whose program name ends with `name`.
fn programs(cell_dir: &Path, name: &str) -> Vec<u32> {
    processes_mentioning(&cell_dir.join("ns").to_string_lossy())
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let argv0 = c.split(|b| *b == 0).next().unwrap_or_default();
                String::from_utf8_lossy(argv0).ends_with(name)
            })
        })
        .collect()
}

/// The share of one core `pids` used between two snapshots of their CPU time `secs` apart.
fn cpu_share(start: &[(u32, f64)], end: &[(u32, f64)], secs: f64) -> f64 {
    end.iter()
        .filter_map(|(pid, t)| start.iter().find(|(p, _)| p == pid).map(|(_, t0)| t - t0))
        .sum::<f64>()
        / secs
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let mut bench =
        LoadedNamespace::start(args.fill_mb, args.rate, std::process::Stdio::null()).await;
    let (admin, tenant) = (&bench.admin, &bench.tenant);

    let added_at = Instant::now();
    let (s, v) = tenant
        .post("/namespaces/orders/replicas", json!({"region": "bench"}))
        .await;
    assert_eq!(s, 202, "{v}");
    let op = tenant
        .wait_op(
            v["operation"]["id"].as_str().unwrap(),
            Duration::from_secs(600),
        )
        .await;
    assert_eq!(op["state"], "fulfilled", "{op}");
    let to_sync = added_at.elapsed().as_secs_f64();
    let standby = tenant.get("/namespaces/orders").await["replicas"][0].clone();
    let standby_cell = standby["cell"].as_str().unwrap().to_string();
    let cells = bench.data.path().join("cells");
    let active_cell = std::fs::read_dir(&cells)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .find(|c| *c != standby_cell)
        .unwrap();
    eprintln!(
        "standby on {standby_cell} in sync after {to_sync:.1} s; sampling {} s",
        args.seconds
    );

    let pids = |cell: &str, name: &str| programs(&cells.join(cell), name);
    let replicate = pids(&active_cell, "litestream");
    let follow = pids(&standby_cell, "litestream");
    let server: Vec<u32> =
        admin.get(&format!("/admin/cells/{active_cell}")).await["observed"]["runtimes"]
            .as_object()
            .unwrap()
            .values()
            .filter_map(|r| r["pid"].as_u64().map(|p| p as u32))
            .collect();
    let snapshot = |pids: &[u32]| -> Vec<(u32, f64)> {
        pids.iter()
            .filter_map(|p| usage(*p).map(|(t, _)| (*p, t)))
            .collect()
    };
    let (r0, f0, s0) = (snapshot(&replicate), snapshot(&follow), snapshot(&server));
    let started = Instant::now();
    let mut lags = Vec::new();
    let mut states = std::collections::BTreeMap::<String, usize>::new();
    let mut rss = (Vec::new(), Vec::new(), Vec::new());
    while started.elapsed() < Duration::from_secs(args.seconds) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let r = tenant.get("/namespaces/orders").await["replicas"][0].clone();
        if let Some(lag) = r["lag_seconds"].as_f64() {
            lags.push(lag);
        }
        *states
            .entry(r["state"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
        let mem = |pids: &[u32]| {
            pids.iter()
                .filter_map(|p| usage(*p))
                .map(|u| u.1)
                .sum::<f64>()
        };
        rss.0.push(mem(&replicate));
        rss.1.push(mem(&follow));
        rss.2.push(mem(&server));
    }
    let secs = started.elapsed().as_secs_f64();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let (cr, cf, cs) = (
        cpu_share(&r0, &snapshot(&replicate), secs),
        cpu_share(&f0, &snapshot(&follow), secs),
        cpu_share(&s0, &snapshot(&server), secs),
    );
    std::fs::write(&bench.stop, "").unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(60), bench.load.wait()).await;
    assert!(!lags.is_empty(), "no lag was reported");
    let (p50, p99, max) = (
        percentile(lags.clone(), 0.5),
        percentile(lags.clone(), 0.99),
        percentile(lags.clone(), 1.0),
    );
    let in_sync = states.get("in_sync").copied().unwrap_or(0) as f64 / lags.len() as f64;
    let verdict = |ok: bool| if ok { "pass" } else { "FAIL" };
    let section = format!(
        "## Standby replicas\n\n\
         `target/release/standby-bench`, {date}: one namespace, its store first grown by about \
         {fill} MB, under {rate} workflow starts a second (Python `temporalio` client through the \
         edge with mTLS, and a worker), gets a standby in its region's other cell; then {secs:.0} s \
         of steady state are sampled once a second. Lag is what `GET /namespaces/{{name}}` \
         reports (`replicas[].lag_seconds`, from the standby agent's reports). Control plane, \
         two agents, the runtime, Litestream, the edge and the client share this machine's \
         cores.\n\n\
         | measurement | value |\n|---|---:|\n\
         | add → in sync (operation fulfilled) | {to_sync:.1} s |\n\
         | lag p50 | {p50:.2} s |\n\
         | lag p99 | {p99:.2} s |\n\
         | lag max | {max:.2} s |\n\
         | samples `in_sync` | {in_sync:.0}% of {n} |\n\
         | active cell's `litestream replicate`: CPU, memory | {rc:.0}% of a core, {rm:.0} MiB |\n\
         | standby's `litestream restore -f`: CPU, memory | {fc:.0}% of a core, {fm:.0} MiB |\n\
         | the namespace's Temporal server (for scale) | {sc:.0}% of a core, {sm:.0} MiB |\n\n\
         | goal | measured | result |\n|---|---:|---|\n\
         | steady-state lag p99 ≤ 1 s | {p99:.2} s | {g1} |\n",
        date = Utc::now().format("%Y-%m-%d %H:%M UTC"),
        fill = args.fill_mb,
        rate = args.rate,
        n = lags.len(),
        in_sync = in_sync * 100.0,
        rc = cr * 100.0,
        rm = mean(&rss.0),
        fc = cf * 100.0,
        fm = mean(&rss.1),
        sc = cs * 100.0,
        sm = mean(&rss.2),
        g1 = verdict(p99 <= 1.0),
    );
    println!("{section}");
    if let Some(path) = args.write {
        write_bench_section(&path, &section);
    }
}
