//! Local cells: a directory and a supervised `cell-agent` process per cell.
//!
//! `<root>/<cell-id>/` holds `provision.json` (how to run the agent), the agent's own files
//! (identity, cached desired state, runtimes) and `agent.log`. The agent runs in its own process
//! group so that it outlives the control plane: a control plane restarted after a crash adopts
//! the running agent (found through `agent.pid`) instead of starting a second one.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use crate::process::{free_port, pid_runs};
use crate::{CellDescription, CellProvider, CellSpec, InfraState, ProviderError};
use tessera_domain::Backoff;

/// `provision.json`: everything needed to (re)start the cell's agent. Holds no secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Provisioned {
    cell_id: String,
    control_plane: String,
    ingress_addr: String,
}

pub struct LocalProvider {
    root: PathBuf,
    agent_bin: PathBuf,
    temporal_bin: PathBuf,
    runtime: tokio::runtime::Handle,
    supervisors: Mutex<HashMap<String, Supervised>>,
}

struct Supervised {
    cancel: CancellationToken,
    /// A join token waiting for the supervisor to use it.
    token: tokio::sync::watch::Sender<Option<String>>,
    task: tokio::task::JoinHandle<()>,
}

impl LocalProvider {
    /// `root` holds one folder per cell. Supervisor tasks run on `runtime` (the caller's
    /// long-lived runtime), whichever runtime the provider is called from.
    pub fn new(
        root: PathBuf,
        agent_bin: PathBuf,
        temporal_bin: PathBuf,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        Self {
            root,
            agent_bin,
            temporal_bin,
            runtime,
            supervisors: Mutex::new(HashMap::new()),
        }
    }

    fn dir(&self, cell_id: &str) -> Result<PathBuf, ProviderError> {
        let ok = !cell_id.is_empty()
            && cell_id.len() <= 80
            && cell_id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            return Err(ProviderError::InvalidConfig(format!(
                "bad cell id {cell_id:?}"
            )));
        }
        Ok(self.root.join(cell_id))
    }

    /// Supervises the agents of every cell provisioned before this process started.
    pub fn resume(&self) -> std::io::Result<usize> {
        let mut n = 0;
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return Ok(0);
        };
        for e in entries.flatten() {
            let Ok(p) = read_provisioned(&e.path()) else {
                continue;
            };
            self.ensure_supervised(&p, None);
            n += 1;
        }
        Ok(n)
    }

    fn ensure_supervised(&self, p: &Provisioned, token: Option<String>) {
        let mut sups = self.supervisors.lock().expect("supervisors lock");
        if let Some(s) = sups.get(&p.cell_id)
            && !s.task.is_finished()
        {
            if token.is_some() {
                let _ = s.token.send(token);
            }
            return;
        }
        let cancel = CancellationToken::new();
        let (tx, rx) = tokio::sync::watch::channel(token);
        let ctx = AgentCtx {
            dir: self.root.join(&p.cell_id),
            provisioned: p.clone(),
            agent_bin: self.agent_bin.clone(),
            temporal_bin: self.temporal_bin.clone(),
        };
        let task = self.runtime.spawn(supervise_agent(ctx, rx, cancel.clone()));
        sups.insert(
            p.cell_id.clone(),
            Supervised {
                cancel,
                token: tx,
                task,
            },
        );
    }
}

fn read_provisioned(dir: &Path) -> std::io::Result<Provisioned> {
    let bytes = std::fs::read(dir.join("provision.json"))?;
    serde_json::from_slice(&bytes).map_err(std::io::Error::other)
}

#[async_trait::async_trait]
impl CellProvider for LocalProvider {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn provision(&self, spec: &CellSpec) -> Result<CellDescription, ProviderError> {
        let dir = self.dir(&spec.cell_id)?;
        std::fs::create_dir_all(&dir)?;
        let p = match read_provisioned(&dir) {
            Ok(p) => p,
            Err(_) => {
                let port = match spec.config.get("ingress_port") {
                    None | Some(serde_json::Value::Null) => free_port()?,
                    Some(v) => v
                        .as_u64()
                        .and_then(|p| u16::try_from(p).ok())
                        .filter(|p| *p > 0)
                        .ok_or_else(|| {
                            ProviderError::InvalidConfig(format!(
                                "ingress_port must be a port number, got {v}"
                            ))
                        })?,
                };
                let p = Provisioned {
                    cell_id: spec.cell_id.clone(),
                    control_plane: spec.control_plane.clone(),
                    ingress_addr: format!("127.0.0.1:{port}"),
                };
                let tmp = dir.join("provision.json.tmp");
                std::fs::write(
                    &tmp,
                    serde_json::to_vec_pretty(&p).map_err(std::io::Error::other)?,
                )?;
                std::fs::rename(&tmp, dir.join("provision.json"))?;
                p
            }
        };
        self.ensure_supervised(&p, spec.join_token.clone());
        self.describe(&spec.cell_id).await
    }

    async fn describe(&self, cell_id: &str) -> Result<CellDescription, ProviderError> {
        let dir = self.dir(cell_id)?;
        let mut details = BTreeMap::new();
        let state = match read_provisioned(&dir) {
            Err(_) if !dir.exists() => InfraState::Absent,
            Err(_) => InfraState::Starting,
            Ok(p) => {
                details.insert("dir".into(), dir.display().to_string());
                details.insert("ingress_addr".into(), p.ingress_addr.clone());
                match agent_pid(&dir) {
                    Some(pid) => {
                        details.insert("agent_pid".into(), pid.to_string());
                        InfraState::Running
                    }
                    None => InfraState::Starting,
                }
            }
        };
        Ok(CellDescription {
            cell_id: cell_id.into(),
            state,
            details,
        })
    }

    async fn destroy(&self, cell_id: &str) -> Result<(), ProviderError> {
        let dir = self.dir(cell_id)?;
        let sup = self
            .supervisors
            .lock()
            .expect("supervisors lock")
            .remove(cell_id);
        if let Some(s) = sup {
            s.cancel.cancel();
            let _ = s.task.await;
        }
        // Whatever still runs from the folder (an agent or runtimes nobody supervises now).
        if let Some(pid) = agent_pid(&dir) {
            stop_pid(pid, &dir).await;
        }
        for pid in runtime_pids(&dir) {
            stop_pid(pid, &dir).await;
        }
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// The pid of the agent running for `dir`, if one runs.
fn agent_pid(dir: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(dir.join("agent.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    pid_runs(pid, dir).then_some(pid)
}

/// Processes running from the cell's runtime folders: each runtime's server (`runtime.json`)
/// and a server started to prepare a store (`bootstrap.pid`: a new runtime's or a spare's).
fn runtime_pids(dir: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir(dir.join("ns")) else {
        return Vec::new();
    };
    let mut pids = Vec::new();
    for e in entries.flatten() {
        let runtime = std::fs::read(e.path().join("runtime.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v.get("pid")?.as_u64())
            .map(|p| p as u32);
        let bootstrap = std::fs::read_to_string(e.path().join("bootstrap.pid"))
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok());
        pids.extend(
            [runtime, bootstrap]
                .into_iter()
                .flatten()
                .filter(|&pid| pid_runs(pid, &e.path())),
        );
    }
    pids
}

async fn stop_pid(pid: u32, dir: &Path) {
    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
    for _ in 0..200 {
        if !pid_runs(pid, dir) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
    for _ in 0..100 {
        if !pid_runs(pid, dir) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

struct AgentCtx {
    dir: PathBuf,
    provisioned: Provisioned,
    agent_bin: PathBuf,
    temporal_bin: PathBuf,
}

fn joined(dir: &Path) -> bool {
    dir.join("agent.json").exists()
}

/// Joins when a token is at hand, then keeps one agent running (adopting a running one) until
/// cancelled; on cancel the agent is stopped.
async fn supervise_agent(
    ctx: AgentCtx,
    mut token: tokio::sync::watch::Receiver<Option<String>>,
    cancel: CancellationToken,
) {
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(10));
    let log = |name: &str| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(ctx.dir.join(name))
    };
    loop {
        if cancel.is_cancelled() {
            break;
        }
        if !joined(&ctx.dir) {
            let t = token.borrow_and_update().clone();
            let Some(t) = t else {
                // Wait for the workflow to hand us a token.
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = token.changed() => continue,
                }
            };
            let out = match log("agent.log") {
                Ok(f) => f,
                Err(e) => {
                    tracing::error!(error = %e, "cannot open agent.log");
                    break;
                }
            };
            let status = Command::new(&ctx.agent_bin)
                .arg("--dir")
                .arg(&ctx.dir)
                .args(["join", "--control-plane", &ctx.provisioned.control_plane])
                .env("TESSERA_JOIN_TOKEN", &t)
                .stdin(Stdio::null())
                .stdout(out.try_clone().expect("log handle"))
                .stderr(out)
                .status()
                .await;
            if !matches!(status, Ok(s) if s.success()) {
                tracing::warn!(cell = %ctx.provisioned.cell_id, ?status, "cell-agent join failed; retrying");
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(backoff.next_delay()) => {}
                }
            }
            continue;
        }
        let pid = match agent_pid(&ctx.dir) {
            Some(pid) => {
                tracing::info!(cell = %ctx.provisioned.cell_id, pid, "adopted running cell agent");
                pid
            }
            None => match spawn_agent(&ctx, log("agent.log")).await {
                Ok(pid) => pid,
                Err(e) => {
                    tracing::error!(cell = %ctx.provisioned.cell_id, error = %e, "starting cell-agent failed");
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(backoff.next_delay()) => {}
                    }
                    continue;
                }
            },
        };
        // Watch it; restart if it dies.
        loop {
            tokio::select! {
                _ = cancel.cancelled() => {
                    stop_pid(pid, &ctx.dir).await;
                    return;
                }
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            if !pid_runs(pid, &ctx.dir) {
                tracing::warn!(cell = %ctx.provisioned.cell_id, pid, "cell agent exited; restarting");
                tokio::time::sleep(backoff.next_delay()).await;
                break;
            }
        }
    }
    if let Some(pid) = agent_pid(&ctx.dir) {
        stop_pid(pid, &ctx.dir).await;
    }
}

async fn spawn_agent(ctx: &AgentCtx, log: std::io::Result<std::fs::File>) -> std::io::Result<u32> {
    let out = log?;
    let mut child = Command::new(&ctx.agent_bin)
        .arg("--dir")
        .arg(&ctx.dir)
        .args(["run", "--ingress-addr", &ctx.provisioned.ingress_addr])
        .arg("--temporal-bin")
        .arg(&ctx.temporal_bin)
        // The control plane's AWS identity stays with it: a cell gets short-lived credentials
        // for each replica it ships instead.
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        // Its own process group: it outlives a control plane that is killed, and is adopted.
        .process_group(0)
        .kill_on_drop(false)
        .spawn()?;
    let pid = child
        .id()
        .ok_or_else(|| std::io::Error::other("agent has no pid"))?;
    // Reap it whenever it exits, so it never lingers as a zombie.
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    // The agent writes agent.pid itself once it runs; until then, wait for it briefly.
    for _ in 0..100 {
        if agent_pid(&ctx.dir) == Some(pid) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(pid)
}
