//! Namespace runtimes: one `temporal server start-dev` per namespace, with its own SQLite store.
//!
//! Each runtime lives in `<cell-dir>/ns/<id>/` (`store.db`, `runtime.json`, `runtime.log`). A
//! runtime is started in its own process group so that it outlives the agent: a restarted agent
//! reads `runtime.json`, finds the process still running its store, and adopts it instead of
//! restarting it. Ready means the gRPC health service answers SERVING; a dead runtime is
//! restarted with backoff on the same ports, so routes to it stay valid.
//!
//! New stores are put in global-namespace mode before first use (see [`enable_global_namespace`]).
//! A new namespace usually gets a warm runtime (a server already running, see [`warm`]); starts
//! of the others are spread over the cores (see [`starts`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tessera_api::ReleaseSpec;
use tessera_api::agent::{
    RemovedRuntime, RuntimeHealth, RuntimeObserved, RuntimeSpec, TrashedObserved,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

mod drain;
mod fence;
mod process;
mod starts;
mod stores;
pub mod trash;
mod warm;

pub use process::health_check;
use process::{
    Proc, check_version, linked, remove_runtime_dir, rss_bytes, runs_store, spawn, spawn_recorded,
    terminate,
};
use starts::{StartPermit, Starts, start};
pub use stores::enable_global_namespace;
pub(crate) use stores::mark_global;
use stores::{SPARE_BUILD, SPARE_COUNT, global_marker, make_spare, ready_spares};
use tessera_domain::Backoff;
use warm::WarmPool;

/// How long a new runtime may take to answer SERVING before it counts as unhealthy.
const STARTUP_GRACE: Duration = Duration::from_secs(60);
/// An unhealthy runtime that stays so this long is restarted.
const UNHEALTHY_RESTART_AFTER: Duration = Duration::from_secs(30);

/// `runtime.json`: what a later agent needs to adopt the process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimeRecord {
    pub pid: u32,
    pub grpc_port: u16,
    pub http_port: u16,
    pub metrics_port: u16,
    pub started_at: DateTime<Utc>,
    pub spec: RuntimeSpec,
    /// Restarts since it was started on `release`.
    #[serde(default)]
    pub restarts: u32,
    /// The release the process was started on.
    #[serde(default)]
    pub release: Option<String>,
}

#[derive(Debug, Clone)]
struct Status {
    health: RuntimeHealth,
    record: Option<RuntimeRecord>,
    global_namespace: bool,
    last_error: Option<String>,
    /// Killed for good by a fence (the namespace moved): never started again by this task.
    fenced: bool,
}

struct Handle {
    spec: RuntimeSpec,
    /// The release this runtime is (being) started on.
    release: Option<String>,
    status: Arc<Mutex<Status>>,
    /// Stop the runtime and move its folder to the trash (it left the desired state).
    remove: CancellationToken,
    /// Stop the runtime, keep its store (its spec changed; a new task starts it again).
    restart: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Handle {
    /// Supervises `ctx`'s runtime on a new task, after `previous` (the task that stops the
    /// process it replaces) has finished.
    fn spawn(ctx: RuntimeCtx, previous: Option<tokio::task::JoinHandle<()>>) -> Self {
        let handle = |task| Handle {
            spec: ctx.spec.clone(),
            release: ctx.release.as_ref().map(|r| r.version.clone()),
            status: ctx.status.clone(),
            remove: ctx.remove.clone(),
            restart: ctx.restart.clone(),
            task,
        };
        let partial = handle(tokio::spawn(async {}));
        let task = tokio::spawn(async move {
            if let Some(p) = previous {
                let _ = p.await;
            }
            supervise(ctx).await
        });
        Handle { task, ..partial }
    }

    fn health(&self) -> RuntimeHealth {
        self.status.lock().expect("status lock").health
    }
}

/// What the desired state says about runtimes that are not (or no longer) desired.
#[derive(Debug, Default)]
struct Removals {
    /// Named as removed: their folders go to the trash.
    removed: std::collections::BTreeSet<String>,
    /// To bring back from the trash when they have no folder.
    restore: std::collections::BTreeSet<String>,
    /// Folders being moved to the trash now, by a removed runtime's own task or by the sweep
    /// of folders no task supervises: each folder by one of them only.
    trashing: std::collections::BTreeSet<String>,
    /// Folders nothing names (see [`Supervisor::unlisted`]).
    unlisted: Vec<String>,
}

/// Supervises every runtime of the cell.
pub struct Supervisor {
    root: PathBuf,
    factory: CtxFactory,
    runtimes: Mutex<BTreeMap<String, Handle>>,
    /// A spare store is being prepared.
    preparing_spare: Arc<std::sync::atomic::AtomicBool>,
    /// How many spare stores to keep.
    spares: usize,
    /// Set by a decommission: keep no warm runtime or spare store (see [`drain`]).
    retiring: Arc<std::sync::atomic::AtomicBool>,
    /// A sweep of the pools' folders is under way.
    sweeping: Arc<std::sync::atomic::AtomicBool>,
}

/// What every runtime's context shares.
#[derive(Clone)]
struct CtxFactory {
    root: PathBuf,
    bin: PathBuf,
    /// Detach on agent shutdown: stop supervising, leave the processes running.
    detach: CancellationToken,
    changed: Arc<Notify>,
    starts: Arc<Starts>,
    warm: Arc<WarmPool>,
    /// Shared with the supervisor (see [`Removals`]).
    removals: Arc<Mutex<Removals>>,
    /// Runtimes fenced by the desired state (see [`Supervisor::set_fences`]).
    fences: tokio::sync::watch::Sender<std::collections::BTreeSet<String>>,
}

impl CtxFactory {
    fn context(&self, id: &str, spec: RuntimeSpec, release: Option<&ReleaseSpec>) -> RuntimeCtx {
        RuntimeCtx {
            id: id.to_string(),
            dir: self.root.join(id),
            bin: self.bin.clone(),
            release: release.cloned(),
            status: Arc::new(Mutex::new(Status {
                health: RuntimeHealth::Starting,
                record: None,
                global_namespace: false,
                last_error: None,
                fenced: false,
            })),
            spec,
            restore: false,
            fences: self.fences.subscribe(),
            removals: self.removals.clone(),
            remove: self.detach.child_token(),
            restart: CancellationToken::new(),
            detach: self.detach.clone(),
            changed: self.changed.clone(),
            starts: self.starts.clone(),
            warm: self.warm.clone(),
        }
    }
}

impl Supervisor {
    /// A supervisor without warm runtimes (see [`Supervisor::with_warm_runtimes`]).
    pub fn new(cell_dir: &Path, temporal_bin: PathBuf, changed: Arc<Notify>) -> Self {
        let root = cell_dir.join("ns");
        Self {
            factory: CtxFactory {
                root: root.clone(),
                bin: temporal_bin,
                detach: CancellationToken::new(),
                changed,
                starts: Starts::per_core(),
                warm: WarmPool::new(&root, 0),
                removals: Arc::new(Mutex::new(Removals::default())),
                fences: tokio::sync::watch::channel(Default::default()).0,
            },
            root,
            runtimes: Mutex::new(BTreeMap::new()),
            preparing_spare: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            spares: SPARE_COUNT,
            retiring: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            sweeping: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        }
    }

    /// Keeps `count` spare stores (files only) for runtimes that find no warm runtime.
    pub fn with_spare_stores(mut self, count: usize) -> Self {
        self.spares = count;
        self
    }

    /// Keeps `count` warm runtimes (servers already running, on the cell's release) for new
    /// namespaces to claim.
    pub fn with_warm_runtimes(mut self, count: usize) -> Self {
        self.factory.warm = WarmPool::new(&self.root, count);
        self
    }

    /// Warm runtimes ready to be claimed.
    pub fn warm_ready(&self) -> usize {
        self.factory.warm.ready()
    }

    /// Spare stores ready to be claimed.
    pub fn spares_ready(&self) -> usize {
        ready_spares(&self.root).len()
    }

    /// Makes the supervised set match `desired`: starts (or adopts) the missing, stops and
    /// removes the extra, restarts those whose spec changed, and moves runtimes to `release`.
    /// Also removes runtime folders left on disk that nothing wants any more.
    ///
    /// A new release is rolled through the cell one runtime at a time: a runtime is restarted
    /// on it only while every other runtime serves, so at most one namespace is restarting
    /// (its route holds new connections meanwhile). A runtime that is not serving on an old
    /// release is restarted at once: it serves nobody, and this is what makes a rollback to the
    /// previous release fast after a bad one never came up.
    pub fn apply(&self, desired: &BTreeMap<String, RuntimeSpec>, release: Option<&ReleaseSpec>) {
        let want = release.map(|r| r.version.clone());
        if self.is_retiring() {
            self.drain_pools();
        } else {
            self.prepare_spare();
            self.factory.warm.retire_other_releases(want.as_deref());
            self.factory.warm.fill(&self.factory, release);
        }
        let mut runtimes = self.runtimes.lock().expect("supervisor lock");
        let stale: Vec<String> = runtimes
            .iter()
            .filter(|(id, h)| desired.get(*id) != Some(&h.spec))
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            let Some(h) = runtimes.remove(&id) else {
                continue;
            };
            match desired.get(&id) {
                Some(spec) => {
                    tracing::info!(runtime = %id, "restarting runtime with a new spec");
                    let next = self.replace(h, &id, spec.clone(), release);
                    runtimes.insert(id, next);
                }
                None => {
                    tracing::info!(runtime = %id, "stopping the runtime; its folder goes to the trash");
                    self.removals().trashing.insert(id.clone());
                    h.remove.cancel();
                }
            }
        }
        for (id, spec) in desired {
            if runtimes.contains_key(id) {
                continue;
            }
            tracing::info!(runtime = %id, namespace = %spec.temporal_namespace, "supervising runtime");
            let ctx = self.context(id, spec.clone(), release);
            runtimes.insert(id.clone(), Handle::spawn(ctx, None));
        }
        let outdated: Vec<String> = runtimes
            .iter()
            .filter(|(_, h)| h.release != want)
            .map(|(id, _)| id.clone())
            .collect();
        let broken: Vec<String> = outdated
            .iter()
            .filter(|id| runtimes[*id].health() != RuntimeHealth::Serving)
            .cloned()
            .collect();
        let all_serving = runtimes
            .values()
            .all(|h| h.health() == RuntimeHealth::Serving);
        let restart_now = if !broken.is_empty() {
            broken
        } else if all_serving {
            outdated.into_iter().take(1).collect()
        } else {
            Vec::new()
        };
        for id in restart_now {
            let Some(h) = runtimes.remove(&id) else {
                continue;
            };
            tracing::info!(runtime = %id, from = ?h.release, to = ?want, "moving runtime to the cell's release");
            let spec = h.spec.clone();
            let next = self.replace(h, &id, spec, release);
            runtimes.insert(id, next);
        }
        drop(runtimes);
        self.trash_removed_folders();
    }

    /// The cell's runtime folders (`ns/`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Names the runtimes removed on purpose (their folders go to the trash, even those no
    /// agent supervises any more) and those to bring back from the trash.
    pub fn set_removals(
        &self,
        removed: &BTreeMap<String, RemovedRuntime>,
        restore: &std::collections::BTreeSet<String>,
    ) {
        let mut r = self.removals();
        r.removed = removed.keys().cloned().collect();
        r.restore = restore.clone();
    }

    /// Moves to the trash the folders of runtimes named as removed that no task supervises
    /// (removed while no agent ran); folders that nothing names are left alone and reported.
    fn trash_removed_folders(&self) {
        let supervised: Vec<String> = self
            .runtimes
            .lock()
            .expect("supervisor lock")
            .keys()
            .cloned()
            .collect();
        let mut r = self.removals();
        let mut unlisted = Vec::new();
        for e in std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().to_string();
            // Spares, warm runtimes (see `WarmPool::adopt`) and claims in progress.
            let folder = e.file_type().is_ok_and(|t| t.is_dir() || t.is_symlink());
            if name.starts_with('.') || !folder || supervised.contains(&name) {
                continue;
            }
            if !r.removed.contains(&name) {
                unlisted.push(name);
                continue;
            }
            if r.trashing.insert(name.clone()) {
                let (root, dir, id) = (self.root.clone(), e.path(), name);
                let removals = self.factory.removals.clone();
                tokio::spawn(async move {
                    trash::trash_runtime_dir(&root, &id, &dir).await;
                    removals.lock().expect("removals lock").trashing.remove(&id);
                });
            }
        }
        if r.unlisted != unlisted {
            if !unlisted.is_empty() {
                tracing::warn!(runtimes = ?unlisted, "runtime folders that the desired state neither runs nor removes are left alone");
            }
            r.unlisted = unlisted;
        }
    }

    /// Runtime folders in the trash, newest first.
    pub fn trash(&self) -> Vec<TrashedObserved> {
        trash::list(&self.root)
            .into_iter()
            .map(|t| TrashedObserved {
                runtime: t.runtime,
                trashed_at: t.trashed_at,
            })
            .collect()
    }

    fn removals(&self) -> std::sync::MutexGuard<'_, Removals> {
        self.factory.removals.lock().expect("removals lock")
    }

    /// Folders under `ns/` that the desired state neither runs nor names as removed.
    pub fn unlisted(&self) -> Vec<String> {
        self.removals().unlisted.clone()
    }

    /// Deletes the trashed folders older than `retention`.
    pub fn purge_trash(&self, retention: Duration) {
        trash::purge(&self.root, retention, Utc::now());
    }

    /// Keeps a few new stores ready in global-namespace mode (`ns/.spares/`), so that a new
    /// runtime starts once instead of twice (create the store, stop, switch, start again): the
    /// switch is done ahead of time, off the path of a tenant waiting for a namespace. A spare
    /// is only files (no process runs while it waits).
    fn prepare_spare(&self) {
        use std::sync::atomic::Ordering;
        if ready_spares(&self.root).len() >= self.spares
            || self.preparing_spare.swap(true, Ordering::SeqCst)
        {
            return;
        }
        let ctx = self.context(
            SPARE_BUILD,
            RuntimeSpec {
                temporal_namespace: "default".into(),
                global_namespace: true,
                dynamic_config: Default::default(),
            },
            None,
        );
        let (root, busy, count) = (self.root.clone(), self.preparing_spare.clone(), self.spares);
        let retiring = self.retiring.clone();
        tokio::spawn(async move {
            while ready_spares(&root).len() < count
                && !ctx.detach.is_cancelled()
                && !retiring.load(Ordering::SeqCst)
            {
                if let Err(e) = make_spare(&root, &ctx).await {
                    tracing::warn!(error = %format!("{e:#}"), "preparing a spare runtime store failed");
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    break;
                }
            }
            busy.store(false, Ordering::SeqCst);
        });
    }

    /// Stops `old` (keeping its store) and supervises the runtime again with `spec` on
    /// `release`; the new task starts once the old one has stopped the process.
    fn replace(
        &self,
        old: Handle,
        id: &str,
        spec: RuntimeSpec,
        release: Option<&ReleaseSpec>,
    ) -> Handle {
        old.restart.cancel();
        Handle::spawn(self.context(id, spec, release), Some(old.task))
    }

    fn context(&self, id: &str, spec: RuntimeSpec, release: Option<&ReleaseSpec>) -> RuntimeCtx {
        let mut ctx = self.factory.context(id, spec, release);
        ctx.restore = self.removals().restore.contains(id);
        ctx
    }

    /// Whether every desired runtime is supervised (not whether it is serving yet).
    pub fn supervises_exactly(&self, desired: &BTreeMap<String, RuntimeSpec>) -> bool {
        let runtimes = self.runtimes.lock().expect("supervisor lock");
        runtimes.len() == desired.len()
            && desired
                .iter()
                .all(|(id, s)| runtimes.get(id).map(|h| &h.spec) == Some(s))
    }

    /// Whether the runtime is supervised (starting, serving or failing).
    pub fn supervises(&self, id: &str) -> bool {
        self.runtimes
            .lock()
            .expect("supervisor lock")
            .contains_key(id)
    }

    /// The frontend address of a runtime that is serving now.
    pub fn serving_addr(&self, id: &str) -> Option<SocketAddr> {
        let runtimes = self.runtimes.lock().expect("supervisor lock");
        let st = runtimes
            .get(id)?
            .status
            .lock()
            .expect("status lock")
            .clone();
        match (st.health, st.record) {
            (RuntimeHealth::Serving, Some(r)) => {
                Some(SocketAddr::from(([127, 0, 0, 1], r.grpc_port)))
            }
            _ => None,
        }
    }

    pub fn observed(&self) -> BTreeMap<String, RuntimeObserved> {
        let runtimes = self.runtimes.lock().expect("supervisor lock");
        runtimes
            .iter()
            .map(|(id, h)| {
                let st = h.status.lock().expect("status lock").clone();
                let r = st.record.as_ref();
                let pid = r.map(|r| r.pid);
                (
                    id.clone(),
                    RuntimeObserved {
                        health: st.health,
                        temporal_namespace: h.spec.temporal_namespace.clone(),
                        pid,
                        grpc_address: r.map(|r| format!("127.0.0.1:{}", r.grpc_port)),
                        metrics_address: r.map(|r| format!("127.0.0.1:{}", r.metrics_port)),
                        rss_bytes: pid.map(rss_bytes).unwrap_or(0),
                        uptime_seconds: r
                            .map(|r| (Utc::now() - r.started_at).num_seconds().max(0) as u64)
                            .unwrap_or(0),
                        restarts: r.map(|r| r.restarts).unwrap_or(0),
                        global_namespace: st.global_namespace,
                        last_error: st.last_error.clone(),
                        release: r.and_then(|r| r.release.clone()),
                        requests_total: 0,
                        errors_total: 0,
                    },
                )
            })
            .collect()
    }

    /// Stops supervising and leaves every runtime running, for the next agent to adopt.
    pub async fn detach(&self) {
        self.factory.detach.cancel();
        let tasks: Vec<_> = {
            let mut runtimes = self.runtimes.lock().expect("supervisor lock");
            std::mem::take(&mut *runtimes)
                .into_values()
                .map(|h| h.task)
                .collect()
        };
        for t in tasks {
            let _ = t.await;
        }
    }
}

struct RuntimeCtx {
    id: String,
    dir: PathBuf,
    bin: PathBuf,
    spec: RuntimeSpec,
    /// Take the folder back from the trash when there is none (a restored namespace).
    restore: bool,
    /// The supervisor's [`Removals`]: a removed runtime's task marks its folder trashed.
    removals: Arc<Mutex<Removals>>,
    release: Option<ReleaseSpec>,
    status: Arc<Mutex<Status>>,
    remove: CancellationToken,
    restart: CancellationToken,
    detach: CancellationToken,
    changed: Arc<Notify>,
    starts: Arc<Starts>,
    warm: Arc<WarmPool>,
    fences: tokio::sync::watch::Receiver<std::collections::BTreeSet<String>>,
}

impl RuntimeCtx {
    /// The runtime left the desired state: stop it and move its folder to the trash.
    async fn stop_and_trash(&self, proc: Option<&mut Proc>) {
        let dir = self.dir.as_path();
        if let Some(p) = proc {
            terminate(p, dir).await;
        }
        if let Some(root) = dir.parent() {
            trash::trash_runtime_dir(root, &self.id, dir).await;
        }
        self.removals
            .lock()
            .expect("removals lock")
            .trashing
            .remove(&self.id);
        self.set(|s| s.health = RuntimeHealth::Stopped);
    }

    fn release_version(&self) -> Option<String> {
        self.release.as_ref().map(|r| r.version.clone())
    }

    /// The binary this runtime runs: the release's, else the agent's own.
    fn binary(&self) -> PathBuf {
        self.release
            .as_ref()
            .and_then(|r| r.runtime.binary.as_ref())
            .map(PathBuf::from)
            .unwrap_or_else(|| self.bin.clone())
    }

    fn health(&self) -> RuntimeHealth {
        self.status.lock().expect("status").health
    }

    fn set(&self, f: impl FnOnce(&mut Status)) {
        let mut st = self.status.lock().expect("status lock");
        let before = (st.health, st.record.as_ref().map(|r| r.pid));
        f(&mut st);
        if before != (st.health, st.record.as_ref().map(|r| r.pid)) {
            self.changed.notify_one();
        }
    }
}

pub(super) fn read_record(dir: &Path) -> Option<RuntimeRecord> {
    serde_json::from_slice(&std::fs::read(dir.join("runtime.json")).ok()?).ok()
}

async fn supervise(ctx: RuntimeCtx) {
    let dir = ctx.dir.as_path();
    if ctx.restore
        && let Some(root) = dir.parent()
    {
        trash::restore(root, &ctx.id, dir);
    }
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(10));
    let mut proc: Option<Proc> = None;
    let mut record = read_record(&ctx.dir);

    if let Some(r) = &record
        && r.spec == ctx.spec
        && r.release == ctx.release_version()
        && runs_store(r.pid, dir)
    {
        tracing::info!(runtime = %ctx.id, pid = r.pid, "adopted a running runtime");
        proc = Some(Proc::Adopted(r.pid));
        ctx.set(|s| {
            s.record = Some(r.clone());
            s.global_namespace = global_marker(&ctx.dir);
        });
    } else if let Some(r) = &record
        && runs_store(r.pid, dir)
    {
        // Spec or release changed while no agent ran: restart it.
        terminate(&mut Proc::Adopted(r.pid), dir).await;
    }

    let mut unhealthy_since: Option<tokio::time::Instant> = None;
    let mut started = tokio::time::Instant::now();
    // Held from the start of a server until it serves (or fails to).
    let mut start_permit: Option<StartPermit> = None;
    let mut fences = ctx.fences.clone();
    loop {
        if ctx.is_fenced() {
            drop(start_permit.take());
            match fence::stay_fenced(&ctx, proc.take(), &mut fences).await {
                fence::Next::CheckAgain => continue,
                fence::Next::End => return,
            }
        }
        if proc.is_none() {
            match start(&ctx, record.as_ref()).await {
                Ok((p, r, permit)) => {
                    start_permit = permit;
                    ctx.set(|s| {
                        s.health = RuntimeHealth::Starting;
                        s.record = Some(r.clone());
                        s.global_namespace = global_marker(&ctx.dir);
                        s.last_error = None;
                    });
                    record = Some(r);
                    proc = Some(p);
                    started = tokio::time::Instant::now();
                    unhealthy_since = None;
                }
                Err(e) => {
                    tracing::error!(runtime = %ctx.id, error = %format!("{e:#}"), "runtime failed to start");
                    ctx.set(|s| {
                        s.health = RuntimeHealth::Stopped;
                        s.last_error = Some(format!("{e:#}"));
                    });
                }
            }
        }
        tokio::select! {
            _ = ctx.remove.cancelled() => {
                if ctx.detach.is_cancelled() {
                    return; // agent shutdown: leave it running for the next agent
                }
                return ctx.stop_and_trash(proc.as_mut()).await;
            }
            _ = ctx.restart.cancelled() => {
                if let Some(p) = proc.as_mut() {
                    terminate(p, dir).await;
                }
                return;
            }
            Ok(()) = fences.changed() => continue,
            _ = tokio::time::sleep(match &proc {
                // A starting runtime is checked often: its route opens the moment it serves.
                Some(_) if ctx.health() == RuntimeHealth::Starting => Duration::from_millis(100),
                Some(_) => Duration::from_secs(1),
                None => backoff.next_delay(),
            }) => {}
        }
        let Some(p) = proc.as_mut() else {
            continue;
        };
        if !p.alive(dir) {
            tracing::warn!(runtime = %ctx.id, "runtime exited; restarting");
            proc = None;
            drop(start_permit.take());
            if let Some(r) = record.as_mut() {
                r.restarts += 1;
            }
            ctx.set(|s| {
                s.health = RuntimeHealth::Stopped;
                s.last_error = Some("the runtime process exited".into());
            });
            tokio::time::sleep(backoff.next_delay()).await;
            continue;
        }
        let port = record.as_ref().map(|r| r.grpc_port).unwrap_or(0);
        let serving = health_check(port).await;
        if serving {
            backoff.reset();
            unhealthy_since = None;
            ctx.set(|s| s.health = RuntimeHealth::Serving);
        } else if started.elapsed() < STARTUP_GRACE
            && !matches!(
                ctx.status.lock().expect("status").health,
                RuntimeHealth::Serving
            )
        {
            ctx.set(|s| s.health = RuntimeHealth::Starting);
        } else {
            let since = *unhealthy_since.get_or_insert_with(tokio::time::Instant::now);
            ctx.set(|s| s.health = RuntimeHealth::Unhealthy);
            if since.elapsed() >= UNHEALTHY_RESTART_AFTER {
                tracing::warn!(runtime = %ctx.id, "runtime unhealthy for too long; restarting");
                terminate(p, dir).await;
                proc = None;
                if let Some(r) = record.as_mut() {
                    r.restarts += 1;
                }
            }
        }
        if ctx.health() != RuntimeHealth::Starting {
            drop(start_permit.take());
        }
    }
}
