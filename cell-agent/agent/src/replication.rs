//! Store shipping with Litestream: one task per runtime the desired state names in
//! `replication`.
//!
//! - A **source** runs `litestream replicate` on the runtime's store (one process, one replica;
//!   `AWS_CA_BUNDLE` unset, since Litestream refuses to start with it). When fenced, its
//!   Litestream is killed first, then the supervisor kills the runtime; once the runtime is
//!   gone a new Litestream opens the store alone (so SQLite recovers the WAL from the file),
//!   `litestream sync -wait` pushes the last transactions to the replica and the task reports
//!   the replica's final transaction.
//!
//!   Why in that order (measured): a Litestream that keeps the store open while the server is
//!   killed with SIGKILL may already have shipped a transaction whose frames the server wrote
//!   but never published in the WAL index; Litestream's own connection then sees the older
//!   index, checkpoints, restarts the WAL and writes over it. The replica then holds a
//!   transaction the store no longer has, and a copy restored from it is corrupt ("database
//!   disk image is malformed"). A Litestream that opens the store after the server is gone
//!   recovers the WAL from the file like the server would, and ships exactly that.
//! - A **follower** runs `litestream restore -f` into the runtime's folder (no server runs on
//!   it) and reports the transaction it has applied against the newest in the replica. Given
//!   `until_txid`, it stops once that transaction is applied, marks the store as one in
//!   global-namespace mode, and reports itself caught up: a server may start on the store.
//!
//! Both restart Litestream with backoff when it exits, and report why.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use sha2::{Digest, Sha256};
use tessera_api::agent::{ReplicaSpec, ReplicationObserved, ReplicationSpec, ReplicationState};
use tessera_domain::Backoff;
use tokio::process::{Child, Command};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::runtime::Supervisor;

mod credentials;
mod leftover;
mod listing;

use leftover::{kill_leftover, leftover_runs};
use listing::{Lag, list_replica};

/// How often a follower polls the replica (Litestream's `-follow-interval`) and a source syncs.
const INTERVAL: &str = "100ms";
/// How long a final sync may take before the store ships again in a new stream (well inside
/// the 30 s the control plane waits for a fence).
const FINAL_SYNC_TIMEOUT_SECS: &str = "10";
/// How often a follower's progress is read.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);
/// How often it is read once the follower has a transaction to stop at (a cutover waits).
const CATCH_UP_EVERY: Duration = Duration::from_millis(20);
/// How often the replica's newest transaction is listed (a subprocess; for lag).
const REPLICA_LIST_EVERY: Duration = Duration::from_secs(2);
/// Written in a follower's folder once it caught up: an agent restarted later does not follow
/// again (the store may have a server on it by then).
const CAUGHT_UP: &str = "caught-up";
/// The pid of the Litestream process the agent runs for a runtime.
const PID_FILE: &str = "litestream.pid";
/// The last stream a source started (see [`ReplicationSpec::Source`]): a restarted agent
/// starts the next one.
const STREAM_FILE: &str = "replica-stream";

pub struct Replicator {
    bin: PathBuf,
    /// The cell's directory, for a replica in a bucket: Litestream gets its credentials from
    /// the control plane through `cell-agent replica-credentials` (see [`Job::command`]).
    cell_dir: Option<PathBuf>,
    supervisor: Arc<Supervisor>,
    changed: Arc<Notify>,
    tasks: Mutex<BTreeMap<String, Task>>,
}

struct Task {
    spec: watch::Sender<ReplicationSpec>,
    status: Arc<Mutex<ReplicationObserved>>,
    cancel: CancellationToken,
    /// The Litestream process the task runs now (0: none).
    litestream: Arc<AtomicU32>,
}

impl Drop for Task {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl Replicator {
    pub fn new(bin: PathBuf, supervisor: Arc<Supervisor>, changed: Arc<Notify>) -> Self {
        Self {
            bin,
            cell_dir: None,
            supervisor,
            changed,
            tasks: Mutex::new(BTreeMap::new()),
        }
    }

    /// Replicas in buckets are reached with credentials the control plane issues to this cell
    /// (`dir`) for each one, asked for by Litestream itself whenever they are about to expire.
    pub fn with_issued_credentials(mut self, dir: PathBuf) -> Self {
        self.cell_dir = Some(dir);
        self
    }

    /// Fences what the desired state fences (before the supervisor applies it), then makes the
    /// tasks match `desired`: a task whose role or replica changed starts again; a fence or an
    /// `until_txid` reaches the running task.
    pub fn apply(&self, desired: &BTreeMap<String, ReplicationSpec>) {
        // A store about to be fenced loses its Litestream before the server is killed (see the
        // module's documentation).
        for (id, t) in self.tasks.lock().expect("replication lock").iter() {
            let fencing = matches!(
                desired.get(id),
                Some(ReplicationSpec::Source { fence: true, .. })
            ) && matches!(
                *t.spec.borrow(),
                ReplicationSpec::Source { fence: false, .. }
            );
            let pid = if fencing {
                t.litestream.swap(0, Ordering::SeqCst)
            } else {
                0
            };
            if pid != 0 {
                tracing::info!(runtime = %id, pid, "fencing: stopping Litestream before the runtime");
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        // So does one an earlier agent left running (this agent restarted during a fence).
        {
            let tasks = self.tasks.lock().expect("replication lock");
            for (id, _) in desired.iter().filter(|(id, s)| {
                matches!(s, ReplicationSpec::Source { fence: true, .. }) && !tasks.contains_key(*id)
            }) {
                kill_leftover(id, &self.supervisor.root().join(id));
            }
        }
        self.supervisor.set_fences(
            desired
                .iter()
                .filter(|(_, s)| matches!(s, ReplicationSpec::Source { fence: true, .. }))
                .map(|(id, _)| id.clone())
                .collect(),
        );
        let mut tasks = self.tasks.lock().expect("replication lock");
        tasks.retain(|id, t| {
            let keep = desired
                .get(id)
                .is_some_and(|d| same_stream(d, &t.spec.borrow()));
            if !keep {
                tracing::info!(runtime = %id, "store shipping stopped");
            }
            keep
        });
        for (id, spec) in desired {
            if let Some(t) = tasks.get(id) {
                t.spec.send_if_modified(|s| {
                    let changed = s != spec;
                    *s = spec.clone();
                    changed
                });
                continue;
            }
            tracing::info!(runtime = %id, replica = %spec.replica().url, "store shipping started");
            let dir = self.supervisor.root().join(id);
            let follower = matches!(spec, ReplicationSpec::Follower { .. });
            let status = Arc::new(Mutex::new(ReplicationObserved {
                role: if follower { "follower" } else { "source" }.into(),
                // Known at once, so a runtime waiting for this store starts without a delay.
                state: if follower && dir.join(CAUGHT_UP).exists() {
                    ReplicationState::CaughtUp
                } else {
                    ReplicationObserved::default().state
                },
                ..Default::default()
            }));
            let (tx, rx) = watch::channel(spec.clone());
            let cancel = CancellationToken::new();
            let litestream = Arc::new(AtomicU32::new(0));
            let job = Job {
                litestream: litestream.clone(),
                id: id.clone(),
                dir,
                cell_dir: self.cell_dir.clone(),
                bin: self.bin.clone(),
                spec: rx,
                status: status.clone(),
                cancel: cancel.clone(),
                changed: self.changed.clone(),
                supervisor: self.supervisor.clone(),
            };
            tokio::spawn(async move {
                match follower {
                    true => job.follower().await,
                    false => job.source().await,
                }
            });
            tasks.insert(
                id.clone(),
                Task {
                    spec: tx,
                    status,
                    cancel,
                    litestream,
                },
            );
        }
    }

    /// Whether a server must not start on the runtime's store yet: Litestream follows a
    /// replica into it and has not caught up.
    pub fn holds_store(&self, id: &str) -> bool {
        let tasks = self.tasks.lock().expect("replication lock");
        tasks.get(id).is_some_and(|t| {
            matches!(*t.spec.borrow(), ReplicationSpec::Follower { .. })
                && t.status.lock().expect("status lock").state != ReplicationState::CaughtUp
        })
    }

    pub fn observed(&self) -> BTreeMap<String, ReplicationObserved> {
        self.tasks
            .lock()
            .expect("replication lock")
            .iter()
            .map(|(id, t)| (id.clone(), t.status.lock().expect("status lock").clone()))
            .collect()
    }
}

/// Whether two specs are the same stream (same role, replica and, for a follower, stream
/// number): then the task goes on.
fn same_stream(a: &ReplicationSpec, b: &ReplicationSpec) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
        && a.replica() == b.replica()
        && following(a) == following(b)
}

/// The stream a follower spec follows.
fn following(spec: &ReplicationSpec) -> Option<u64> {
    match spec {
        ReplicationSpec::Follower { stream, .. } => *stream,
        ReplicationSpec::Source { .. } => None,
    }
}

struct Job {
    id: String,
    dir: PathBuf,
    cell_dir: Option<PathBuf>,
    bin: PathBuf,
    spec: watch::Receiver<ReplicationSpec>,
    status: Arc<Mutex<ReplicationObserved>>,
    cancel: CancellationToken,
    changed: Arc<Notify>,
    supervisor: Arc<Supervisor>,
    litestream: Arc<AtomicU32>,
}

impl Job {
    fn set(&self, f: impl FnOnce(&mut ReplicationObserved)) {
        let mut st = self.status.lock().expect("status lock");
        let before = (st.state, st.txid, st.error.clone());
        f(&mut st);
        if before != (st.state, st.txid, st.error.clone()) {
            self.changed.notify_one();
        }
    }

    fn failed(&self, why: String) {
        tracing::warn!(runtime = %self.id, error = %why, "store shipping failed; retrying");
        self.set(|s| {
            s.state = ReplicationState::Failed;
            s.error = Some(why);
        });
    }

    fn command(&self, replica: &ReplicaSpec) -> Command {
        let mut cmd = Command::new(&self.bin);
        // Litestream refuses to start with it set.
        cmd.env_remove("AWS_CA_BUNDLE");
        if let Some(cell_dir) = self
            .cell_dir
            .as_ref()
            .filter(|_| replica.url.starts_with("s3://"))
        {
            credentials::use_issued(&mut cmd, cell_dir, &self.dir, &self.id);
        }
        cmd.envs(&replica.env)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    /// Kills a Litestream of this runtime that an earlier agent left running (an agent killed
    /// with SIGKILL cannot stop its children) and waits, up to 5 s, until it is gone: one store
    /// has exactly one Litestream. `false`: the task was cancelled meanwhile.
    async fn stop_leftover(&self) -> bool {
        let Some(pid) = kill_leftover(&self.id, &self.dir) else {
            return true;
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while leftover_runs(pid, &self.dir) {
            if tokio::time::Instant::now() >= deadline {
                // Seen as a cause if a store ever has two: worth a line in the log.
                tracing::warn!(runtime = %self.id, pid, "the Litestream an earlier agent left still runs 5 s after SIGKILL; starting anyway");
                break;
            }
            if !self.pause(Duration::from_millis(20)).await {
                return false;
            }
        }
        true
    }

    /// Records a Litestream it started, for a fence and for [`Job::stop_leftover`] of a later
    /// agent.
    fn record(&self, child: &Child) {
        let pid = child.id().unwrap_or(0);
        self.litestream.store(pid, Ordering::SeqCst);
        if let Err(e) = std::fs::write(self.dir.join(PID_FILE), pid.to_string()) {
            tracing::warn!(runtime = %self.id, error = %e, "recording litestream's pid failed");
        }
    }

    fn log(&self) -> std::io::Result<std::fs::File> {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("litestream.log"))
    }

    /// Waits `d`, or less when cancelled; `false` when cancelled.
    async fn pause(&self, d: Duration) -> bool {
        tokio::select! {
            _ = self.cancel.cancelled() => false,
            _ = tokio::time::sleep(d) => true,
        }
    }

    async fn source(mut self) {
        if !self.stop_leftover().await {
            return;
        }
        let db = self.dir.join("store.db");
        let socket = control_socket(&db);
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        let mut resume: Option<u64> = None;
        loop {
            if !db.exists() {
                self.set(|s| s.error = Some("the runtime has no store yet".into()));
                if !self.pause(Duration::from_secs(1)).await {
                    return;
                }
                continue;
            }
            // Fenced: a Litestream opens the store only once the runtime is gone.
            if self.fencing()
                && let Err(e) = self.runtime_stopped().await
            {
                tracing::warn!(runtime = %self.id, error = %e, "fenced, but the runtime is not gone");
                self.set(|s| s.error = Some(format!("final sync: {e}")));
                if !self.pause(Duration::from_millis(200)).await {
                    return;
                }
                continue;
            }
            let alone = self.supervisor.fenced_and_stopped(&self.id);
            // A Litestream stopped for the fence (right before the runtime) goes on in its
            // stream: the server died a moment after it, no other process wrote into the
            // stream, and the follower is nearly there. Any other start (a new task, a
            // Litestream that exited) begins a new stream.
            let stream = match resume.take() {
                Some(n) => n,
                None => match self.new_stream() {
                    Ok(n) => n,
                    Err(e) => {
                        self.failed(format!("starting a new stream: {e}"));
                        if !self.pause(backoff.next_delay()).await {
                            return;
                        }
                        continue;
                    }
                },
            };
            let replica = self.spec.borrow().replica().stream(stream);
            let mut child = match self.start_replicate(&db, &socket, &replica) {
                Ok(child) => {
                    self.record(&child);
                    child
                }
                Err(e) => {
                    resume = Some(stream);
                    self.failed(format!("starting litestream replicate: {e}"));
                    if !self.pause(backoff.next_delay()).await {
                        return;
                    }
                    continue;
                }
            };
            self.set(|s| {
                if s.state != ReplicationState::Fenced {
                    s.state = ReplicationState::Streaming;
                }
                s.stream = Some(stream);
                s.error = None;
            });
            loop {
                self.spec.borrow_and_update();
                if self.fencing() {
                    if !alone {
                        // Started while the runtime ran: a new one ships the last transactions.
                        let _ = child.kill().await;
                        resume = Some(stream);
                        break;
                    }
                    match self.final_sync(&db, &socket, &replica).await {
                        Ok(txid) => {
                            tracing::info!(runtime = %self.id, txid, "fenced; the replica holds every transaction");
                            self.set(|s| {
                                s.state = ReplicationState::Fenced;
                                s.txid = Some(txid);
                                s.replica_txid = Some(txid);
                                s.error = None;
                            });
                        }
                        Err(e) => {
                            // Seen once: the sync of a stream whose Litestream was stopped a
                            // moment after it began never completed. The server is gone, so a
                            // new stream holds every transaction in its snapshot.
                            tracing::warn!(runtime = %self.id, stream, error = %e, "the final sync failed; the store ships again in a new stream");
                            self.set(|s| s.error = Some(format!("final sync: {e}")));
                            let _ = child.kill().await;
                            break;
                        }
                    }
                }
                tokio::select! {
                    _ = self.cancel.cancelled() => {
                        let _ = child.kill().await;
                        return;
                    }
                    status = child.wait() => {
                        if self.status.lock().expect("status lock").state == ReplicationState::Fenced {
                            // The replica holds the store's last transaction, in the stream
                            // reported with it: nothing is left to ship.
                            return self.cancel.cancelled().await;
                        }
                        if self.fencing() {
                            // Killed for the fence (before the runtime): the fence's own
                            // restart, in the same stream.
                            resume = Some(stream);
                        } else {
                            self.failed(format!("litestream replicate exited: {status:?}"));
                        }
                        break;
                    }
                    r = self.spec.changed() => if r.is_err() { return },
                }
            }
            if !self.fencing() && !self.pause(backoff.next_delay()).await {
                return;
            }
            if self.cancel.is_cancelled() {
                return;
            }
        }
    }

    /// Fenced, and the final sync not done yet.
    fn fencing(&self) -> bool {
        matches!(
            *self.spec.borrow(),
            ReplicationSpec::Source { fence: true, .. }
        ) && self.status.lock().expect("status lock").state != ReplicationState::Fenced
    }

    /// Waits until the supervisor has killed the fenced runtime (at most 30 s).
    async fn runtime_stopped(&self) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !self.supervisor.fenced_and_stopped(&self.id) {
            if tokio::time::Instant::now() > deadline {
                return Err("the runtime is still running".into());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// The next stream: its number (kept in the runtime's folder, so a restarted agent never
    /// reuses one), with Litestream's own state of the store removed so that it begins with a
    /// snapshot of the store as it is.
    fn new_stream(&self) -> std::io::Result<u64> {
        let last = std::fs::read_to_string(self.dir.join(STREAM_FILE))
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
            .unwrap_or(0);
        let next = last + 1;
        crate::identity::write_atomic(
            &self.dir.join(STREAM_FILE),
            next.to_string().as_bytes(),
            0o644,
        )?;
        match std::fs::remove_dir_all(self.dir.join(".store.db-litestream")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        tracing::info!(runtime = %self.id, stream = next, "store shipping begins a new stream");
        Ok(next)
    }

    fn start_replicate(
        &self,
        db: &Path,
        socket: &Path,
        replica: &ReplicaSpec,
    ) -> std::io::Result<Child> {
        let config = self.dir.join("litestream.yml");
        let yaml = serde_json::json!({
            "socket": { "enabled": true, "path": socket },
            "dbs": [{
                "path": db,
                "monitor-interval": INTERVAL,
                "replica": { "url": replica.url, "sync-interval": INTERVAL },
            }],
        });
        // JSON is YAML.
        std::fs::write(&config, yaml.to_string())?;
        let _ = std::fs::remove_file(socket);
        let log = self.log()?;
        self.command(replica)
            .arg("replicate")
            .arg("-config")
            .arg(&config)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
    }

    /// Once the runtime is gone and a new Litestream has the store: the last sync, and the
    /// replica's newest transaction after it.
    async fn final_sync(
        &self,
        db: &Path,
        socket: &Path,
        replica: &ReplicaSpec,
    ) -> Result<u64, String> {
        // The control socket opens a moment after the process starts.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !socket.exists() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let out = self
            .command(replica)
            .args([
                "sync",
                "-wait",
                "-timeout",
                FINAL_SYNC_TIMEOUT_SECS,
                "-socket",
            ])
            .arg(socket)
            .arg(db)
            .output()
            .await
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "{}: {}{}",
                out.status,
                text.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        // `litestream sync` prints transaction ids in decimal (file names and `-txid` are hex).
        text.lines()
            .find_map(|l| l.strip_prefix("replica_txid:"))
            .and_then(|t| t.trim().parse().ok())
            .ok_or_else(|| format!("no replica_txid in: {}", text.trim()))
    }

    async fn follower(mut self) {
        if let Err(e) = std::fs::create_dir_all(&self.dir) {
            return self.failed(format!("creating {}: {e}", self.dir.display()));
        }
        if !self.stop_leftover().await {
            return;
        }
        let db = self.dir.join("store.db");
        if self.dir.join(CAUGHT_UP).exists() {
            let txid = read_txid(&db);
            self.set(|s| {
                s.state = ReplicationState::CaughtUp;
                s.txid = txid;
            });
            return self.cancel.cancelled().await;
        }
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        loop {
            let (replica, stream) = {
                let spec = self.spec.borrow();
                let stream = following(&spec);
                let base = spec.replica();
                (
                    stream.map_or_else(|| base.clone(), |n| base.stream(n)),
                    stream,
                )
            };
            let mut child = match self.start_follow(&db, &replica) {
                Ok(child) => {
                    self.record(&child);
                    // A new copy: nothing applied yet.
                    self.set(|s| {
                        if s.state != ReplicationState::Failed {
                            s.state = ReplicationState::Starting;
                        }
                        s.stream = stream;
                        s.txid = None;
                    });
                    child
                }
                Err(e) => {
                    self.failed(format!("starting litestream restore -f: {e}"));
                    if !self.pause(backoff.next_delay()).await {
                        return;
                    }
                    continue;
                }
            };
            let mut next_listing = tokio::time::Instant::now();
            loop {
                let txid = read_txid(&db);
                if tokio::time::Instant::now() >= next_listing {
                    next_listing = tokio::time::Instant::now() + REPLICA_LIST_EVERY;
                    match list_replica(self.command(&replica), &replica.url).await {
                        Ok(files) => {
                            let lag = Lag::of(&files, txid.unwrap_or(0));
                            self.set(|s| {
                                s.replica_txid = files.iter().map(|f| f.max).max();
                                s.lag_seconds = Some(lag.seconds);
                                s.lag_bytes = Some(lag.bytes);
                            });
                        }
                        Err(e) => {
                            tracing::debug!(runtime = %self.id, error = %e, "listing the replica failed")
                        }
                    }
                }
                self.set(|s| {
                    if txid.is_some() && s.txid != txid {
                        s.last_applied_at = Some(Utc::now());
                        if s.replica_txid.is_some_and(|r| Some(r) <= txid) {
                            s.lag_seconds = Some(0.0);
                            s.lag_bytes = Some(0);
                        }
                    }
                    s.txid = txid;
                    if txid.is_some() {
                        s.state = ReplicationState::Following;
                        s.error = None;
                    }
                });
                let until = match *self.spec.borrow_and_update() {
                    ReplicationSpec::Follower { until_txid, .. } => until_txid,
                    ReplicationSpec::Source { .. } => None,
                };
                if let (Some(until), Some(txid)) = (until, txid)
                    && txid >= until
                {
                    let _ = child.kill().await;
                    return self.caught_up(txid).await;
                }
                tokio::select! {
                    _ = self.cancel.cancelled() => {
                        let _ = child.kill().await;
                        return;
                    }
                    status = child.wait() => {
                        self.failed(format!("litestream restore -f exited: {status:?}"));
                        break;
                    }
                    _ = self.spec.changed() => {}
                    _ = tokio::time::sleep(if until.is_some() { CATCH_UP_EVERY } else { PROGRESS_EVERY }) => {}
                }
            }
            if !self.pause(backoff.next_delay()).await {
                return;
            }
        }
    }

    fn start_follow(&self, db: &Path, replica: &ReplicaSpec) -> std::io::Result<Child> {
        // A follower started again (Litestream exited, or the agent restarted) restores anew:
        // Litestream 0.5.17 refuses to resume a follower whose last transaction is newer than
        // the replica's latest snapshot, which is the usual case ("cannot resume follow mode:
        // saved TXID … is ahead of latest snapshot"). The partial copy holds nothing the
        // replica does not: no server has run on it (a caught-up store is never followed).
        for f in ["store.db", "store.db-txid", "store.db-wal", "store.db-shm"] {
            match std::fs::remove_file(self.dir.join(f)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        let log = self.log()?;
        let mut cmd = self.command(replica);
        cmd.args(["restore", "-f", "-follow-interval", INTERVAL]);
        cmd.arg("-o")
            .arg(db)
            .arg(&replica.url)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
    }

    async fn caught_up(&self, txid: u64) {
        let marked = crate::runtime::mark_global(&self.dir)
            .and_then(|_| std::fs::write(self.dir.join(CAUGHT_UP), txid.to_string()));
        if let Err(e) = marked {
            return self.failed(format!("marking the store ready: {e}"));
        }
        tracing::info!(runtime = %self.id, txid, "caught up; the store is ready for a server");
        self.set(|s| {
            s.state = ReplicationState::CaughtUp;
            s.txid = Some(txid);
            s.lag_seconds = Some(0.0);
            s.lag_bytes = Some(0);
            s.error = None;
        });
        self.cancel.cancelled().await
    }
}

/// A control socket path short enough for a Unix socket (108 bytes), one per store.
fn control_socket(db: &Path) -> PathBuf {
    let digest = Sha256::digest(db.as_os_str().as_encoded_bytes());
    std::env::temp_dir().join(format!("tessera-ls-{}.sock", hex::encode(&digest[..8])))
}

/// The transaction a restored store holds (Litestream's `<db>-txid` file, hex).
fn read_txid(db: &Path) -> Option<u64> {
    let mut name = db.as_os_str().to_owned();
    name.push("-txid");
    parse_txid(std::fs::read_to_string(PathBuf::from(name)).ok()?.trim())
}

fn parse_txid(hex: &str) -> Option<u64> {
    u64::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_replica_or_followed_stream_change_restarts_the_task_a_fence_does_not() {
        let replica = |url: &str| ReplicaSpec {
            url: url.into(),
            env: Default::default(),
        };
        let source = ReplicationSpec::Source {
            replica: replica("file:///a"),
            fence: false,
        };
        let fenced = ReplicationSpec::Source {
            replica: replica("file:///a"),
            fence: true,
        };
        let elsewhere = ReplicationSpec::Source {
            replica: replica("file:///b"),
            fence: false,
        };
        let follower = |stream, until_txid| ReplicationSpec::Follower {
            replica: replica("file:///a"),
            stream,
            until_txid,
        };
        assert!(same_stream(&source, &fenced));
        assert!(!same_stream(&source, &elsewhere));
        assert!(!same_stream(&source, &follower(Some(1), None)));
        assert!(same_stream(
            &follower(Some(1), None),
            &follower(Some(1), Some(9))
        ));
        assert!(!same_stream(
            &follower(Some(1), None),
            &follower(Some(2), None)
        ));
    }
}
