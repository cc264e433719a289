//! `cell-agent run`: the agent's tasks and how they talk.
//!
//! - the **poller** long-polls desired state and caches it on disk (`desired.json`);
//! - the **reconciler** applies the newest desired state to the runtimes and the ingress, and
//!   re-renders routes whenever a runtime's health changes;
//! - the **reporter** sends observed state every few seconds and whenever something changed;
//! - the **canary** (ring-0 cells) runs a small workflow through the ingress on a timer
//!   ([`crate::canary`]).
//!
//! Losing the control plane stops none of this except the reports: the cell keeps serving
//! from the cached document and catches up when the control plane answers again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::Utc;
use tessera_api::agent::{DesiredState, ObservedState, RuntimeSpec};
use tessera_ingress::{Ingress, IngressMetrics, RouteTable};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::canary::Canary;
use crate::config::RunArgs;
use crate::control_plane::ControlPlane;
use crate::identity::{Identity, write_atomic};
use crate::metrics::AgentMetrics;
use crate::reconcile::{route_table, table_key};
use crate::replication::Replicator;
use crate::runtime::Supervisor;
use tessera_domain::Backoff;

struct Shared {
    dir: PathBuf,
    identity: RwLock<Identity>,
    cp: RwLock<ControlPlane>,
    metrics: AgentMetrics,
    applied: AtomicU64,
    report_now: Notify,
    /// The release of the newest desired state, and when the cell first ran all of it.
    release: std::sync::Mutex<ReleaseProgress>,
    /// Report period in ms: the release's agent setting, else the command-line one.
    report_every_ms: AtomicU64,
    /// The cell is decommissioned and the control plane refuses its identity: stop once
    /// drained, and forget the identity.
    revoked: AtomicBool,
    /// Why the agent does not apply the newest desired state (reported).
    error: std::sync::Mutex<Option<String>>,
    /// How long removed runtimes' folders stay in the trash.
    trash_retention: Duration,
    /// Store shipping (Litestream) of the cell's runtimes.
    replicator: Arc<Replicator>,
}

/// Kept in `release.json`, so that an agent restarted on a cell that already runs its release
/// reports when the release was applied, not when the agent came back.
#[derive(Default, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct ReleaseProgress {
    target: Option<String>,
    applied_at: Option<chrono::DateTime<Utc>>,
}

impl ReleaseProgress {
    fn path(dir: &Path) -> PathBuf {
        dir.join("release.json")
    }

    fn load(dir: &Path) -> Self {
        std::fs::read(Self::path(dir))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn save(&self, dir: &Path) {
        let saved = serde_json::to_vec(self)
            .map_err(std::io::Error::other)
            .and_then(|b| write_atomic(&Self::path(dir), &b, 0o644));
        if let Err(e) = saved {
            tracing::warn!(error = %e, "saving release.json failed");
        }
    }
}

/// How often the trash is checked for folders past their retention.
const TRASH_PURGE_EVERY: Duration = Duration::from_secs(60);

fn desired_cache(dir: &Path) -> PathBuf {
    dir.join("desired.json")
}

fn load_cached(dir: &Path) -> Option<DesiredState> {
    serde_json::from_slice(&std::fs::read(desired_cache(dir)).ok()?).ok()
}

/// Runs until SIGINT/SIGTERM (runtimes are left running for the next agent to adopt), or until
/// the decommissioned cell is drained and its identity refused (see [`forget`]).
pub async fn run(dir: &Path, args: RunArgs) -> crate::Result<()> {
    let identity = Identity::load(dir)?;
    let cell_id = identity.membership.cell_id.clone();
    write_atomic(
        &dir.join("agent.pid"),
        std::process::id().to_string().as_bytes(),
        0o644,
    )?;
    let cancel = CancellationToken::new();
    let metrics = AgentMetrics::new()?;
    let ingress_metrics = IngressMetrics::new(&metrics.registry)?;
    let runtime_changed = Arc::new(Notify::new());
    let supervisor = Arc::new(
        Supervisor::new(dir, args.temporal_bin.clone(), runtime_changed.clone())
            .with_warm_runtimes(args.warm_runtimes)
            .with_spare_stores(args.spare_stores),
    );

    let replicator = Arc::new(
        Replicator::new(
            args.litestream_bin.clone(),
            supervisor.clone(),
            runtime_changed.clone(),
        )
        .with_issued_credentials(dir.to_path_buf()),
    );

    let cached = load_cached(dir);
    if let Some(d) = &cached {
        tracing::info!(
            generation = d.generation,
            "serving the cached desired state until the control plane answers"
        );
    }
    let initial = cached
        .as_ref()
        .map(|d| route_table(d, |_| None))
        .unwrap_or(RouteTable {
            routes: Default::default(),
            server_certs: Vec::new(),
        });
    let ingress = Arc::new(
        Ingress::bind(
            args.ingress_addr,
            initial,
            ingress_metrics,
            cancel.child_token(),
        )
        .await?,
    );
    let metrics_addr = crate::metrics::serve(
        args.metrics_addr,
        metrics.registry.clone(),
        cancel.child_token(),
    )
    .await?;
    println!(
        "cell-agent {cell_id}: ingress on {}, metrics on http://{metrics_addr}/metrics",
        ingress.local_addr()
    );

    let canary = Arc::new(Canary::new(
        ingress.local_addr(),
        identity.root_ca_pem.clone(),
        cell_id.clone(),
        metrics.clone(),
    ));
    let shared = Arc::new(Shared {
        dir: dir.to_path_buf(),
        cp: RwLock::new(ControlPlane::new(&identity)?),
        identity: RwLock::new(identity),
        metrics,
        applied: AtomicU64::new(0),
        report_now: Notify::new(),
        release: std::sync::Mutex::new(ReleaseProgress::load(dir)),
        report_every_ms: AtomicU64::new(args.report_seconds.max(1) * 1000),
        revoked: AtomicBool::new(false),
        error: std::sync::Mutex::new(None),
        trash_retention: Duration::from_secs(args.trash_retention_hours.saturating_mul(3600)),
        replicator,
    });
    let (desired_tx, desired_rx) = watch::channel(cached);

    let poller = tokio::spawn(poll_desired(shared.clone(), desired_tx, cancel.clone()));
    let reporter = tokio::spawn(report(
        shared.clone(),
        supervisor.clone(),
        ingress.clone(),
        canary.clone(),
        metrics_addr.to_string(),
        cancel.clone(),
    ));
    let stop = cancel.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        stop.cancel();
    });
    reconcile(
        &shared,
        &supervisor,
        &ingress,
        &canary,
        desired_rx,
        runtime_changed,
        cancel.clone(),
    )
    .await;

    let _ = tokio::join!(poller, reporter);
    canary.shutdown().await;
    supervisor.detach().await;
    let _ = std::fs::remove_file(dir.join("agent.pid"));
    if shared.revoked.load(Ordering::SeqCst) {
        forget(dir)?;
        println!(
            "cell-agent {cell_id}: the cell is decommissioned; nothing runs and its identity is deleted"
        );
        return Ok(());
    }
    tracing::info!("agent stopped; runtimes left running");
    Ok(())
}

/// After a decommission: deletes the revoked identity, the cached documents and the (empty)
/// runtime folder, leaving the directory as it was before `cell-agent join`.
fn forget(dir: &Path) -> std::io::Result<()> {
    for sub in ["identity", "ns", "trash"] {
        match std::fs::remove_dir_all(dir.join(sub)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    for file in ["agent.json", "desired.json", "release.json"] {
        match std::fs::remove_file(dir.join(file)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

async fn reconcile(
    shared: &Shared,
    supervisor: &Supervisor,
    ingress: &Ingress,
    canary: &Canary,
    mut desired_rx: watch::Receiver<Option<DesiredState>>,
    runtime_changed: Arc<Notify>,
    cancel: CancellationToken,
) {
    let mut last_key = String::new();
    let mut next_purge = tokio::time::Instant::now();
    loop {
        if tokio::time::Instant::now() >= next_purge {
            supervisor.purge_trash(shared.trash_retention);
            next_purge = tokio::time::Instant::now() + TRASH_PURGE_EVERY;
        }
        let desired = desired_rx.borrow_and_update().clone();
        if let Some(mut d) = desired {
            if d.decommission {
                supervisor.decommission();
            }
            supervisor.set_removals(&d.removed, &d.restore);
            // Fences first: a fenced runtime is never started by the apply that follows.
            shared.replicator.apply(&d.replication);
            // A runtime whose store is still being followed starts once it caught up (a
            // cutover names the runtime and the transaction to stop at in one change).
            let startable: BTreeMap<String, RuntimeSpec> = d
                .runtimes
                .iter()
                .filter(|(id, _)| supervisor.supervises(id) || !shared.replicator.holds_store(id))
                .map(|(id, s)| (id.clone(), s.clone()))
                .collect();
            supervisor.apply(&startable, d.release.as_ref());
            if let Some(agent) = d.release.as_ref().map(|r| &r.agent) {
                if let Some(ms) = agent.report_interval_ms {
                    shared.report_every_ms.store(ms, Ordering::SeqCst);
                }
                if let (Some(ms), Some(c)) = (agent.canary_interval_ms, d.canary.as_mut()) {
                    c.interval_ms = ms;
                }
            }
            {
                let mut rel = shared.release.lock().expect("release lock");
                let target = d.release.as_ref().map(|r| r.version.clone());
                if rel.target != target {
                    *rel = ReleaseProgress {
                        target,
                        applied_at: None,
                    };
                    rel.save(&shared.dir);
                }
            }
            let table = route_table(&d, |id| supervisor.serving_addr(id));
            let key = table_key(&table);
            if key != last_key {
                let rejected = ingress.update(table);
                if !rejected.is_empty() {
                    tracing::error!(routes = ?rejected.routes, server_certs = ?rejected.server_certs, "the ingress left out what does not load; every other route serves");
                }
                last_key = key;
                shared.report_now.notify_one();
            }
            // Applied once everything that can start is supervised and the routes are in place.
            if supervisor.supervises_exactly(&startable)
                && shared.applied.swap(d.generation, Ordering::SeqCst) != d.generation
            {
                shared.metrics.applied_generation.set(d.generation as i64);
                tracing::info!(generation = d.generation, "desired state applied");
                shared.report_now.notify_one();
            }
            canary.apply(d.canary.as_ref(), |id| {
                supervisor.serving_addr(id).is_some()
            });
            if shared.revoked.load(Ordering::SeqCst) && supervisor.drained() {
                tracing::info!("decommissioned and drained; stopping");
                cancel.cancel();
                return;
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            r = desired_rx.changed() => if r.is_err() { return },
            _ = runtime_changed.notified() => shared.report_now.notify_one(),
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

async fn poll_desired(
    shared: Arc<Shared>,
    tx: watch::Sender<Option<DesiredState>>,
    cancel: CancellationToken,
) {
    let mut after = tx.borrow().as_ref().map(|d| d.generation).unwrap_or(0);
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(5));
    loop {
        let asked = tx.borrow().as_ref().is_some_and(|d| d.renew_identity);
        renew_identity_if_due(&shared, asked).await;
        let cp = shared.cp.read().expect("cp lock").clone();
        let res = tokio::select! {
            _ = cancel.cancelled() => return,
            r = cp.desired(after) => r,
        };
        match res {
            Ok(next) => {
                backoff.reset();
                shared.metrics.control_plane_reachable.set(1);
                if let Some(d) = next.filter(|d| d.generation > after) {
                    shared.metrics.desired_generation.set(d.generation as i64);
                    // Applied only once cached: an agent restarted after applying a document
                    // it could not keep would start again from an older one.
                    if let Err(e) = serde_json::to_vec(&d)
                        .map_err(std::io::Error::other)
                        .and_then(|b| write_atomic(&desired_cache(&shared.dir), &b, 0o600))
                    {
                        not_applied(
                            &shared,
                            format!(
                                "cannot persist desired state generation {} ({e}); it is not applied",
                                d.generation
                            ),
                        );
                        tokio::select! {
                            _ = cancel.cancelled() => return,
                            _ = tokio::time::sleep(backoff.next_delay()) => {}
                        }
                        continue;
                    }
                    if shared.error.lock().expect("error lock").take().is_some() {
                        shared.report_now.notify_one();
                    }
                    after = d.generation;
                    tracing::info!(generation = d.generation, "new desired state");
                    let _ = tx.send(Some(d));
                }
            }
            Err(e) if decommissioned(&e, tx.borrow().as_ref()) => {
                tracing::info!(error = %format!("{e:#}"), "the cell is decommissioned and its identity refused; stopping once drained");
                // An agent that was away during the decommission never saw it: drain now.
                if !tx.borrow().as_ref().is_some_and(|d| d.decommission) {
                    let _ = tx.send(Some(DesiredState {
                        cell_id: shared
                            .identity
                            .read()
                            .expect("identity lock")
                            .membership
                            .cell_id
                            .clone(),
                        generation: after,
                        decommission: true,
                        ..Default::default()
                    }));
                }
                shared.revoked.store(true, Ordering::SeqCst);
                // Keep `tx`: the reconciler runs on (and stops the agent) until drained.
                cancel.cancelled().await;
                return;
            }
            Err(e @ crate::AgentError::Unsupported(_)) => {
                // Reachable, but asking for what this agent cannot do: keep the document it has,
                // say why, and look again later (an upgraded agent, or a corrected document).
                shared.metrics.control_plane_reachable.set(1);
                not_applied(&shared, e.to_string());
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(backoff.next_delay()) => {}
                }
            }
            Err(e) => {
                shared.metrics.control_plane_reachable.set(0);
                tracing::warn!(error = %format!("{e:#}"), "control plane unreachable; serving the last desired state");
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(backoff.next_delay()) => {}
                }
            }
        }
    }
}

/// Records why the newest desired state is not applied; a new reason is reported at once.
fn not_applied(shared: &Shared, why: String) {
    tracing::error!(error = %why, "the newest desired state is not applied; keeping the last one");
    if shared
        .error
        .lock()
        .expect("error lock")
        .replace(why)
        .is_none()
    {
        shared.report_now.notify_one();
    }
}

/// Whether `e` is the control plane refusing the identity of a decommissioned cell: it says so,
/// or the last desired state began the decommission.
fn decommissioned(e: &crate::AgentError, last: Option<&DesiredState>) -> bool {
    matches!(e, crate::AgentError::IdentityRefused { decommissioned, .. }
        if *decommissioned || last.is_some_and(|d| d.decommission))
}

/// Renews the identity when the control plane asks or two thirds of its lifetime have passed.
async fn renew_identity_if_due(shared: &Shared, asked: bool) {
    let identity = shared.identity.read().expect("identity lock").clone();
    let due = identity
        .not_before_after()
        .map(|(nb, na)| tessera_pki::renewal_due(nb, na, Utc::now()))
        .unwrap_or(false);
    // Asked, but our certificate is younger than a third of its lifetime: that request was for
    // the certificate we already replaced.
    let current_fresh = identity
        .not_before_after()
        .map(|(nb, na)| Utc::now() - nb < (na - nb) / 3)
        .unwrap_or(false);
    if !(due || (asked && !current_fresh)) {
        return;
    }
    let cp = shared.cp.read().expect("cp lock").clone();
    match cp.renew().await {
        Ok((chain_pem, key_pem)) => {
            let renewed = Identity {
                chain_pem,
                key_pem,
                ..identity
            };
            match renewed
                .save(&shared.dir)
                .and_then(|_| ControlPlane::new(&renewed))
            {
                Ok(client) => {
                    *shared.cp.write().expect("cp lock") = client;
                    *shared.identity.write().expect("identity lock") = renewed;
                    tracing::info!("identity certificate renewed");
                }
                Err(e) => tracing::error!(error = %e, "saving the renewed identity failed"),
            }
        }
        Err(e) => tracing::warn!(error = %format!("{e:#}"), "identity renewal failed; will retry"),
    }
}

async fn report(
    shared: Arc<Shared>,
    supervisor: Arc<Supervisor>,
    ingress: Arc<Ingress>,
    canary: Arc<Canary>,
    metrics_address: String,
    cancel: CancellationToken,
) {
    let started_at = Utc::now();
    let http = reqwest::Client::new();
    loop {
        let mut runtimes = supervisor.observed();
        let counts = futures::future::join_all(runtimes.values().map(|r| {
            let http = &http;
            async move {
                match &r.metrics_address {
                    Some(addr) => crate::runtime_metrics::scrape(http, addr).await,
                    None => None,
                }
            }
        }))
        .await;
        for (r, c) in runtimes.values_mut().zip(counts) {
            if let Some(c) = c {
                r.requests_total = c.requests;
                r.errors_total = c.errors;
            }
        }
        let (release_target, release, release_applied_at) = {
            let mut rel = shared.release.lock().expect("release lock");
            let done = rel.target.is_some()
                && runtimes.values().all(|r| {
                    r.release == rel.target
                        && r.health == tessera_api::agent::RuntimeHealth::Serving
                });
            if done && rel.applied_at.is_none() {
                rel.applied_at = Some(Utc::now());
                rel.save(&shared.dir);
                tracing::info!(release = ?rel.target, "the cell runs its release");
            }
            let applied = rel.applied_at.filter(|_| done);
            (rel.target.clone(), applied.and(rel.target.clone()), applied)
        };
        shared.metrics.runtimes_serving.set(
            runtimes
                .values()
                .filter(|r| r.health == tessera_api::agent::RuntimeHealth::Serving)
                .count() as i64,
        );
        let replication = shared.replicator.observed();
        shared.metrics.replication(&replication);
        let identity = shared.identity.read().expect("identity lock").clone();
        let observed = ObservedState {
            cell_id: identity.membership.cell_id.clone(),
            generation: shared.applied.load(Ordering::SeqCst),
            agent_version: crate::AGENT_VERSION.into(),
            agent_pid: std::process::id(),
            agent_started_at: Some(started_at),
            ingress_address: ingress.local_addr().to_string(),
            metrics_address: metrics_address.clone(),
            runtimes,
            routes: ingress.routes().routes.len(),
            active_connections: ingress.active_connections(),
            identity_not_after: identity.not_before_after().map(|(_, na)| na),
            reported_at: Some(Utc::now()),
            canary: canary.observed(),
            release_target,
            release,
            release_applied_at,
            warm_runtimes: supervisor.warm_ready() as u32,
            spare_stores: supervisor.spares_ready() as u32,
            drained: supervisor.drained(),
            trash: supervisor.trash(),
            unlisted_runtimes: supervisor.unlisted(),
            route_errors: ingress.rejected().routes,
            error: shared.error.lock().expect("error lock").clone(),
            replication,
        };
        let cp = shared.cp.read().expect("cp lock").clone();
        if let Err(e) = cp.report(&observed).await {
            shared.metrics.reports_failed.inc();
            tracing::debug!(error = %format!("{e:#}"), "report failed");
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = shared.report_now.notified() => {
                // Coalesce bursts of changes into one report (short: a cutover waits for it).
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            _ = tokio::time::sleep(Duration::from_millis(
                shared.report_every_ms.load(Ordering::SeqCst),
            )) => {}
        }
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
