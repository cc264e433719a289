//! Warm runtimes: Temporal servers already running on a global-namespace store, with no
//! tenant yet. A new namespace claims one instead of starting a server, so it serves about as
//! soon as its namespace is registered.
//!
//! A warm runtime lives in `ns/.warm-<nonce>/` (the same files as any runtime: `store.db`,
//! `runtime.json`, `runtime.log`). Claiming it registers the namespace through its frontend,
//! rewrites `runtime.json` with the namespace's spec and makes `ns/<runtime-id>` a symlink to
//! the folder; from then on it is an ordinary runtime (restarts go through the symlink, so the
//! store stays where the server opened it). A folder no symlink points at is unclaimed: the
//! next agent adopts it if it still runs on the cell's release, and removes it otherwise
//! (including a claim cut short by a crash). The pool is refilled in the background, only
//! while no tenant's runtime is starting (see [`super::starts`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::Context;
use chrono::Utc;
use tessera_api::agent::RuntimeSpec;

use super::stores::{bootstrap_global, claim_spare, global_marker};
use super::{
    CtxFactory, Proc, RuntimeCtx, RuntimeRecord, STARTUP_GRACE, health_check, read_record,
    remove_runtime_dir, spawn_recorded, terminate,
};
use crate::identity::write_atomic;

/// Folder names of warm runtimes start with this.
pub(super) const WARM_PREFIX: &str = ".warm-";

/// What a warm runtime runs until a namespace claims it.
fn warm_spec() -> RuntimeSpec {
    RuntimeSpec {
        temporal_namespace: "default".into(),
        global_namespace: true,
        dynamic_config: Default::default(),
    }
}

/// Whether a runtime can start from a warm one: a global-namespace store and the release's own
/// settings (a namespace's dynamic config is passed on the command line, so it needs a start).
pub(super) fn qualifies(spec: &RuntimeSpec) -> bool {
    spec.global_namespace && spec.dynamic_config.is_empty()
}

struct Warm {
    dir: PathBuf,
    record: RuntimeRecord,
    proc: Proc,
}

pub(super) struct WarmPool {
    root: PathBuf,
    target: usize,
    ready: Mutex<Vec<Warm>>,
    building: AtomicBool,
    /// The cell is being decommissioned: keep no warm runtime.
    closed: AtomicBool,
    /// What an earlier agent left has been adopted or removed.
    adopted: AtomicBool,
    /// The cell's release, which new warm runtimes start on.
    release: Mutex<Option<tessera_api::ReleaseSpec>>,
}

impl WarmPool {
    pub(super) fn new(root: &Path, target: usize) -> Arc<Self> {
        Arc::new(Self {
            root: root.to_path_buf(),
            target,
            ready: Mutex::new(Vec::new()),
            building: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            adopted: AtomicBool::new(false),
            release: Mutex::new(None),
        })
    }

    /// How many warm runtimes wait for a namespace.
    pub(super) fn ready(&self) -> usize {
        self.ready.lock().expect("warm lock").len()
    }

    /// Whether a warm runtime is being started (or an earlier agent's adopted) right now.
    pub(super) fn building(&self) -> bool {
        self.building.load(Ordering::SeqCst)
    }

    /// Keeps no warm runtime from now on: stops the ready ones, and one being started is
    /// stopped once it is ready.
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let ready = std::mem::take(&mut *self.ready.lock().expect("warm lock"));
        for w in ready {
            tracing::info!(dir = %w.dir.display(), "stopping a warm runtime: the cell is decommissioned");
            discard(w);
        }
    }

    /// Adopts the warm runtimes an earlier agent left running on `release`; removes the other
    /// unclaimed warm folders. Runs once, before any claim.
    pub(super) async fn adopt(&self, release: Option<&str>) {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return;
        };
        let mut owned = Vec::new();
        let mut warm = Vec::new();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with(WARM_PREFIX) {
                warm.push(e.path());
            } else if let Some(target) = super::linked(&e.path()) {
                owned.push(target);
            }
        }
        for dir in warm {
            if owned.contains(&dir) {
                continue;
            }
            match read_record(&dir) {
                Some(r)
                    if r.spec == warm_spec()
                        && r.release.as_deref() == release
                        && self.ready() < self.target
                        && super::runs_store(r.pid, &dir) =>
                {
                    tracing::info!(pid = r.pid, dir = %dir.display(), "adopted a warm runtime");
                    let proc = Proc::Adopted(r.pid);
                    self.ready.lock().expect("warm lock").push(Warm {
                        dir,
                        record: r,
                        proc,
                    });
                }
                _ => remove_runtime_dir(&dir).await,
            }
        }
    }

    /// Stops warm runtimes started on another release than `release` (they would have to be
    /// restarted when claimed).
    pub(super) fn retire_other_releases(&self, release: Option<&str>) {
        let stale: Vec<Warm> = {
            let mut ready = self.ready.lock().expect("warm lock");
            let (keep, stale) = std::mem::take(&mut *ready)
                .into_iter()
                .partition(|w| w.record.release.as_deref() == release);
            *ready = keep;
            stale
        };
        for w in stale {
            tracing::info!(dir = %w.dir.display(), "retiring a warm runtime of another release");
            discard(w);
        }
    }

    /// Hands a warm runtime to `ctx`'s runtime: registers its namespace, records it as the
    /// runtime's own, and links the runtime's folder to it. `None` when no warm runtime on the
    /// runtime's release is ready (the caller then starts a server).
    pub(super) async fn claim(&self, ctx: &RuntimeCtx) -> Option<(Proc, RuntimeRecord)> {
        if !qualifies(&ctx.spec) || ctx.dir.symlink_metadata().is_ok() {
            return None;
        }
        let release = ctx.release_version();
        loop {
            let mut w = {
                let mut ready = self.ready.lock().expect("warm lock");
                let i = ready.iter().position(|w| w.record.release == release)?;
                ready.remove(i)
            };
            if !w.proc.alive(&w.dir) {
                discard(w);
                continue;
            }
            match self.hand_over(&w, ctx).await {
                Ok(record) => {
                    tracing::info!(runtime = %ctx.id, pid = record.pid, "claimed a warm runtime");
                    return Some((w.proc, record));
                }
                Err(e) => {
                    tracing::warn!(runtime = %ctx.id, error = %format!("{e:#}"), "claiming a warm runtime failed; starting one");
                    discard(w);
                    return None;
                }
            }
        }
    }

    async fn hand_over(&self, w: &Warm, ctx: &RuntimeCtx) -> crate::Result<RuntimeRecord> {
        register_namespace(w.record.grpc_port, &ctx.spec.temporal_namespace).await?;
        let record = RuntimeRecord {
            spec: ctx.spec.clone(),
            ..w.record.clone()
        };
        write_atomic(
            &w.dir.join("runtime.json"),
            &serde_json::to_vec_pretty(&record)?,
            0o644,
        )?;
        let name = w.dir.file_name().context("a warm folder has a name")?;
        std::os::unix::fs::symlink(name, &ctx.dir)
            .with_context(|| format!("linking {}", ctx.dir.display()))?;
        Ok(record)
    }

    fn release(&self) -> Option<tessera_api::ReleaseSpec> {
        self.release.lock().expect("warm lock").clone()
    }

    /// Starts warm runtimes on `release` in the background until there are `target` of them
    /// (the first time, after adopting what an earlier agent left).
    pub(super) fn fill(
        self: &Arc<Self>,
        factory: &CtxFactory,
        release: Option<&tessera_api::ReleaseSpec>,
    ) {
        *self.release.lock().expect("warm lock") = release.cloned();
        if (self.adopted.load(Ordering::SeqCst) && self.ready() >= self.target)
            || self.closed.load(Ordering::SeqCst)
            || self.building.swap(true, Ordering::SeqCst)
        {
            return;
        }
        let (pool, factory) = (self.clone(), factory.clone());
        tokio::spawn(async move {
            if !pool.adopted.swap(true, Ordering::SeqCst) {
                let release = pool.release();
                pool.adopt(release.as_ref().map(|r| r.version.as_str()))
                    .await;
            }
            while pool.ready() < pool.target
                && !factory.detach.is_cancelled()
                && !pool.closed.load(Ordering::SeqCst)
            {
                let name = format!(
                    "{WARM_PREFIX}{}",
                    Utc::now().timestamp_nanos_opt().unwrap_or_default()
                );
                let release = pool.release();
                let ctx = factory.context(&name, warm_spec(), release.as_ref());
                match build(&pool.root, &ctx).await {
                    // The cell moved to another release, or began its decommission, while this
                    // one started.
                    Ok(w)
                        if pool.release().map(|r| r.version) != ctx.release_version()
                            || pool.closed.load(Ordering::SeqCst) =>
                    {
                        discard(w);
                    }
                    Ok(w) => {
                        pool.ready.lock().expect("warm lock").push(w);
                        ctx.changed.notify_one();
                    }
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "starting a warm runtime failed");
                        remove_runtime_dir(&ctx.dir).await;
                        tokio::time::sleep(Duration::from_secs(10)).await;
                        break;
                    }
                }
            }
            pool.building.store(false, Ordering::SeqCst);
        });
    }
}

/// Stops a warm runtime and deletes its folder, in the background.
fn discard(mut w: Warm) {
    tokio::spawn(async move {
        terminate(&mut w.proc, &w.dir).await;
        remove_runtime_dir(&w.dir).await;
    });
}

/// Starts one warm runtime in `ctx.dir` (from a spare store when there is one) and waits until
/// it serves.
async fn build(root: &Path, ctx: &RuntimeCtx) -> crate::Result<Warm> {
    let _permit = ctx.starts.background().await;
    if let Some(release) = &ctx.release {
        super::check_version(&ctx.binary(), &release.runtime.version).await?;
    }
    std::fs::create_dir_all(&ctx.dir)?;
    let mut record = RuntimeRecord::fresh(ctx)?;
    if !claim_spare(root, &ctx.dir) {
        bootstrap_global(ctx, &record).await?;
    }
    crate::error::ensure!(
        global_marker(&ctx.dir),
        "the store is not in global-namespace mode"
    );
    let mut child = spawn_recorded(ctx, &mut record)?;
    let deadline = tokio::time::Instant::now() + STARTUP_GRACE;
    while !health_check(record.grpc_port).await {
        if tokio::time::Instant::now() > deadline
            || matches!(child.try_wait(), Ok(Some(_)))
            || ctx.detach.is_cancelled()
        {
            let mut proc = Proc::Child(child);
            terminate(&mut proc, &ctx.dir).await;
            crate::error::bail!("the warm runtime did not become ready");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tracing::debug!(dir = %ctx.dir.display(), "a warm runtime is ready");
    Ok(Warm {
        dir: ctx.dir.clone(),
        record,
        proc: Proc::Child(child),
    })
}

/// `RegisterNamespace` on a runtime's frontend, as `temporal server start-dev --namespace`
/// does at startup (a namespace that exists already is fine).
async fn register_namespace(port: u16, namespace: &str) -> crate::Result<()> {
    use temporalio_client::{Connection, ConnectionOptions, Url, tonic};
    use temporalio_common::protos::temporal::api::workflowservice::v1::RegisterNamespaceRequest;
    let url = Url::parse(&format!("http://127.0.0.1:{port}")).context("the warm runtime's URL")?;
    let options = ConnectionOptions::new(url)
        .identity("tessera-cell-agent".to_string())
        .connect_timeout(Duration::from_secs(5))
        .build();
    let conn = tokio::time::timeout(Duration::from_secs(10), Connection::connect(options))
        .await
        .context("connecting to the warm runtime timed out")?
        .context("connecting to the warm runtime")?;
    let request = RegisterNamespaceRequest {
        namespace: namespace.into(),
        workflow_execution_retention_period: Some(prost_wkt_types::Duration {
            seconds: 86_400,
            nanos: 0,
        }),
        ..Default::default()
    };
    let mut svc = conn.workflow_service();
    match tokio::time::timeout(
        Duration::from_secs(10),
        svc.register_namespace(tonic::Request::new(request)),
    )
    .await
    .context("RegisterNamespace timed out")?
    {
        Ok(_) => Ok(()),
        Err(s) if s.code() == tonic::Code::AlreadyExists => Ok(()),
        Err(s) => crate::error::bail!("RegisterNamespace: {}", s.message()),
    }
}
