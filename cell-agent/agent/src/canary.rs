//! The synthetic canary of a ring-0 cell: real Temporal traffic through the cell's own ingress.
//!
//! While desired state holds a canary and its runtime has served once, the agent runs, on a
//! thread of its own (the SDK's `Worker::run` is not `Send`):
//! - a **worker** polling task queue [`TASK_QUEUE`] of the canary namespace, and
//! - a **driver** that every `interval_ms` starts [`CanaryWorkflow`] (one trivial activity and a
//!   short timer) and waits up to [`RUN_TIMEOUT`] for its result.
//!
//! Both dial the ingress exactly as a tenant's SDK does: TLS with the canary host as SNI, the
//! platform root as trust anchor, the canary's client certificate. The last [`CANARY_WINDOW`]
//! results give the success rate and latency percentiles the agent reports (observed state and
//! Prometheus), which rollouts use as a health gate. A restarted runtime is survived: the
//! driver reconnects after every failure, and the worker is rebuilt when runs keep failing.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use temporalio_client::{
    Client, ClientOptions, ClientTlsOptions, ConnectionOptions, TlsOptions, Url,
    WorkflowGetResultOptions, WorkflowStartOptions,
};
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{
    ActivityOptions, Runtime, Worker, WorkerOptions, WorkflowContext, WorkflowResult,
};
use tessera_api::agent::{CANARY_WINDOW, CanaryObserved, CanarySpec};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::error::{AgentError, Context};
use crate::metrics::AgentMetrics;
use tessera_domain::Backoff;

/// The task queue of the canary's worker.
pub const TASK_QUEUE: &str = "canary";
/// A run that has no result after this long is a failure.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long dialing the ingress may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The workflow's timer.
const TIMER: Duration = Duration::from_millis(100);
/// Failed runs in a row after which the worker is rebuilt (its connection may be wedged).
const FAILURES_BEFORE_WORKER_RESTART: u32 = 3;
/// How long a stopping canary thread may take before it is left behind.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// The canary's one activity: hands its input back.
pub struct CanaryActivities;

#[activities]
impl CanaryActivities {
    #[activity]
    pub async fn echo(_ctx: ActivityContext, input: String) -> Result<String, ActivityError> {
        Ok(input)
    }
}

/// One activity, one timer, and the input back as the result.
#[workflow]
#[derive(Default)]
pub struct CanaryWorkflow;

#[workflow_methods]
impl CanaryWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: String) -> WorkflowResult<String> {
        let echoed = ctx
            .execute_activity(
                CanaryActivities::echo,
                input,
                ActivityOptions::with_start_to_close_timeout(Duration::from_secs(5)).build(),
            )
            .await?;
        ctx.timer(TIMER).await;
        Ok(echoed)
    }
}

/// The canary's results: totals since it started, and a window of the most recent runs.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    runs: u64,
    successes: u64,
    failures: u64,
    /// The latency in ms of each recent run; `None` for a failure.
    window: VecDeque<Option<f64>>,
    last_error: Option<String>,
    last_run_at: Option<DateTime<Utc>>,
    last_success_at: Option<DateTime<Utc>>,
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Stats {
    pub fn record(&mut self, outcome: Result<Duration, String>, at: DateTime<Utc>) {
        self.runs += 1;
        self.last_run_at = Some(at);
        match outcome {
            Ok(latency) => {
                self.successes += 1;
                self.last_success_at = Some(at);
                self.window.push_back(Some(latency.as_secs_f64() * 1000.0));
            }
            Err(e) => {
                self.failures += 1;
                self.last_error = Some(e);
                self.window.push_back(None);
            }
        }
        while self.window.len() > CANARY_WINDOW {
            self.window.pop_front();
        }
    }

    pub fn success_rate(&self) -> f64 {
        if self.window.is_empty() {
            return 0.0;
        }
        self.window.iter().filter(|r| r.is_some()).count() as f64 / self.window.len() as f64
    }

    pub fn observed(&self) -> CanaryObserved {
        let mut latencies: Vec<f64> = self.window.iter().flatten().copied().collect();
        latencies.sort_by(f64::total_cmp);
        CanaryObserved {
            runs: self.runs,
            successes: self.successes,
            failures: self.failures,
            success_rate: self.success_rate(),
            latency_p50_ms: percentile(&latencies, 0.50),
            latency_p95_ms: percentile(&latencies, 0.95),
            last_error: self.last_error.clone(),
            last_run_at: self.last_run_at,
            last_success_at: self.last_success_at,
        }
    }
}

/// Where and as whom the canary dials.
#[derive(Clone)]
struct Target {
    ingress: SocketAddr,
    root_ca_pem: String,
    spec: CanarySpec,
    identity: String,
}

impl Target {
    async fn connect(&self) -> Result<Client, String> {
        let tls = TlsOptions::builder()
            .server_root_ca_cert(self.root_ca_pem.as_bytes().to_vec())
            .domain(self.spec.host.clone())
            .client_tls_options(
                ClientTlsOptions::builder()
                    .client_cert(self.spec.client_chain_pem.as_bytes().to_vec())
                    .client_private_key(self.spec.client_key_pem.as_bytes().to_vec())
                    .build(),
            )
            .build();
        let url = Url::from_str(&format!("https://{}", self.ingress)).map_err(|e| e.to_string())?;
        let conn = ConnectionOptions::new(url)
            .identity(self.identity.clone())
            .tls_options(tls)
            .connect_timeout(CONNECT_TIMEOUT)
            .build();
        let client = Client::connect(
            conn,
            ClientOptions::new(self.spec.temporal_namespace.as_str()).build(),
        );
        match tokio::time::timeout(CONNECT_TIMEOUT * 2, client).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(format!("connecting through the ingress: {e}")),
            Err(_) => Err("connecting through the ingress timed out".into()),
        }
    }
}

struct Running {
    spec: CanarySpec,
    cancel: CancellationToken,
    thread: std::thread::JoinHandle<()>,
}

/// The agent's canary: started, restarted and stopped as desired state says.
pub struct Canary {
    ingress: SocketAddr,
    root_ca_pem: String,
    cell_id: String,
    metrics: AgentMetrics,
    /// `None` while the cell has no canary.
    stats: Arc<Mutex<Option<Stats>>>,
    running: Mutex<Option<Running>>,
}

impl Canary {
    /// `ingress` is where the agent's ingress listens; an unspecified address is dialed on
    /// loopback.
    pub fn new(
        ingress: SocketAddr,
        root_ca_pem: String,
        cell_id: String,
        metrics: AgentMetrics,
    ) -> Self {
        let ingress = if ingress.ip().is_unspecified() {
            SocketAddr::from(([127, 0, 0, 1], ingress.port()))
        } else {
            ingress
        };
        Self {
            ingress,
            root_ca_pem,
            cell_id,
            metrics,
            stats: Arc::new(Mutex::new(None)),
            running: Mutex::new(None),
        }
    }

    /// Makes the canary match `desired`. A new canary starts once its runtime serves (so a
    /// runtime's first start is not counted as failures); a running one keeps running through
    /// runtime restarts and records what it sees. A changed spec (a renewed certificate)
    /// restarts it, keeping its results; a removed one stops it and forgets them.
    pub fn apply(&self, desired: Option<&CanarySpec>, runtime_serving: impl Fn(&str) -> bool) {
        let mut running = self.running.lock().expect("canary lock");
        if let Some(r) = running.as_ref()
            && Some(&r.spec) != desired
        {
            tracing::info!(
                restarting = desired.is_some(),
                "the canary changed; stopping it"
            );
            if let Some(r) = running.take() {
                stop_in_background(r);
            }
        }
        let Some(spec) = desired else {
            *self.stats.lock().expect("stats lock") = None;
            self.metrics.canary_success_ratio.set(0.0);
            return;
        };
        if running.is_some() || !runtime_serving(&spec.runtime) {
            return;
        }
        self.stats
            .lock()
            .expect("stats lock")
            .get_or_insert_with(Stats::default);
        let target = Target {
            ingress: self.ingress,
            root_ca_pem: self.root_ca_pem.clone(),
            spec: spec.clone(),
            identity: format!("tessera-canary@{}", self.cell_id),
        };
        let cancel = CancellationToken::new();
        let (stats, metrics, stop) = (self.stats.clone(), self.metrics.clone(), cancel.clone());
        let thread = std::thread::Builder::new()
            .name("canary".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("canary-rt")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(error = %e, "the canary cannot build its runtime");
                        return;
                    }
                };
                rt.block_on(run_canary(target, stats, metrics, stop));
            });
        match thread {
            Ok(thread) => {
                tracing::info!(
                    host = %spec.host,
                    namespace = %spec.temporal_namespace,
                    interval_ms = spec.interval_ms,
                    "canary started"
                );
                *running = Some(Running {
                    spec: spec.clone(),
                    cancel,
                    thread,
                });
            }
            Err(e) => tracing::error!(error = %e, "the canary thread did not start"),
        }
    }

    /// What to report: `None` while the cell has no canary.
    pub fn observed(&self) -> Option<CanaryObserved> {
        self.stats
            .lock()
            .expect("stats lock")
            .as_ref()
            .map(Stats::observed)
    }

    /// Stops the canary and waits (boundedly) for its thread.
    pub async fn shutdown(&self) {
        let Some(r) = self.running.lock().expect("canary lock").take() else {
            return;
        };
        r.cancel.cancel();
        let join = tokio::task::spawn_blocking(move || r.thread.join());
        if tokio::time::timeout(STOP_TIMEOUT, join).await.is_err() {
            tracing::warn!("the canary did not stop in time; leaving it behind");
        }
    }
}

fn stop_in_background(r: Running) {
    r.cancel.cancel();
    // Joining blocks: do it off the async threads.
    std::thread::spawn(move || {
        let _ = r.thread.join();
    });
}

/// The canary thread: the driver as a task, the worker (not `Send`) on this thread's future.
async fn run_canary(
    target: Target,
    stats: Arc<Mutex<Option<Stats>>>,
    metrics: AgentMetrics,
    cancel: CancellationToken,
) {
    let restart_worker = Arc::new(Notify::new());
    let driver = tokio::spawn(drive(
        target.clone(),
        stats,
        metrics,
        restart_worker.clone(),
        cancel.clone(),
    ));
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(5));
    while !cancel.is_cancelled() {
        match run_worker(&target, &restart_worker, &cancel).await {
            Ok(()) => backoff.reset(),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "canary worker stopped; restarting");
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
    let _ = driver.await;
    tracing::info!("canary stopped");
}

/// Runs the worker until `cancel`, or until the driver asks for a fresh one.
async fn run_worker(
    target: &Target,
    restart: &Notify,
    cancel: &CancellationToken,
) -> crate::Result<()> {
    let client = tokio::select! {
        _ = cancel.cancelled() => return Ok(()),
        c = target.connect() => c.map_err(AgentError::invalid)?,
    };
    let runtime =
        Runtime::from_current_tokio(Default::default()).context("the canary's Temporal runtime")?;
    let opts = WorkerOptions::new(TASK_QUEUE)
        .register_workflow::<CanaryWorkflow>()
        .context("registering the canary workflow")?
        .register_activities(CanaryActivities)
        .max_cached_workflows(10usize)
        .graceful_shutdown_period(Duration::from_secs(1))
        .build();
    let mut worker = Worker::new(&runtime, client, opts).context("the canary worker")?;
    let shutdown = worker.shutdown_handle();
    let run = worker.run();
    tokio::pin!(run);
    tokio::select! {
        r = &mut run => r.context("the canary worker"),
        _ = cancel.cancelled() => {
            shutdown();
            if let Err(e) = finish(run).await {
                tracing::debug!(error = %e, "canary worker shutdown");
            }
            Ok(())
        }
        _ = restart.notified() => {
            tracing::info!("canary runs keep failing; rebuilding the worker");
            shutdown();
            finish(run).await.map_err(AgentError::invalid)
        }
    }
}

/// Waits for a worker that was asked to shut down, boundedly.
async fn finish<E: std::fmt::Display>(
    run: std::pin::Pin<&mut impl std::future::Future<Output = Result<(), E>>>,
) -> Result<(), String> {
    match tokio::time::timeout(Duration::from_secs(10), run).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err("the canary worker did not shut down within 10 s".into()),
    }
}

/// Every `interval_ms`: one run, timed and recorded.
async fn drive(
    target: Target,
    stats: Arc<Mutex<Option<Stats>>>,
    metrics: AgentMetrics,
    restart_worker: Arc<Notify>,
    cancel: CancellationToken,
) {
    let mut client: Option<Client> = None;
    let mut failed_in_a_row = 0u32;
    let mut tick = tokio::time::interval(Duration::from_millis(target.spec.interval_ms.max(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let outcome = tokio::select! {
            _ = cancel.cancelled() => return,
            o = one_run(&target, &mut client) => o,
        };
        match &outcome {
            Ok(latency) => {
                failed_in_a_row = 0;
                metrics.canary_runs.with_label_values(&["success"]).inc();
                metrics.canary_latency.observe(latency.as_secs_f64());
                tracing::debug!(
                    latency_ms = latency.as_millis() as u64,
                    "canary run succeeded"
                );
            }
            Err(e) => {
                // A fresh connection for the next run: the runtime may have restarted.
                client = None;
                failed_in_a_row += 1;
                metrics.canary_runs.with_label_values(&["failure"]).inc();
                tracing::warn!(error = %e, failed_in_a_row, "canary run failed");
                if failed_in_a_row.is_multiple_of(FAILURES_BEFORE_WORKER_RESTART) {
                    restart_worker.notify_one();
                }
            }
        }
        let mut guard = stats.lock().expect("stats lock");
        if let Some(s) = guard.as_mut() {
            s.record(outcome, Utc::now());
            metrics.canary_success_ratio.set(s.success_rate());
        }
    }
}

/// Starts one workflow and waits for its result; the latency runs from the start request to
/// the result. Connects first when there is no client (not counted in the latency).
async fn one_run(target: &Target, client: &mut Option<Client>) -> Result<Duration, String> {
    let c = match client {
        Some(c) => c.clone(),
        None => {
            let c = target.connect().await?;
            *client = Some(c.clone());
            c
        }
    };
    let id = format!("canary-{}", Utc::now().timestamp_millis());
    let started = tokio::time::Instant::now();
    let run = async {
        let opts = WorkflowStartOptions::new(TASK_QUEUE, id.as_str())
            // A run nobody finishes must not linger in the store.
            .execution_timeout(Duration::from_secs(60))
            .build();
        let handle = c
            .start_workflow(CanaryWorkflow::run, id.clone(), opts)
            .await
            .map_err(|e| format!("starting {id}: {e}"))?;
        handle
            .get_result(WorkflowGetResultOptions::default())
            .await
            .map_err(|e| format!("result of {id}: {e}"))
    };
    match tokio::time::timeout(RUN_TIMEOUT, run).await {
        Ok(Ok(out)) if out == id => Ok(started.elapsed()),
        Ok(Ok(out)) => Err(format!("{id} returned {out:?}")),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!(
            "{id} had no result within {} s",
            RUN_TIMEOUT.as_secs()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_keeps_the_last_runs_and_latencies_of_successes() {
        let mut s = Stats::default();
        let now = Utc::now();
        assert_eq!(s.observed().success_rate, 0.0);
        for ms in 1..=100u64 {
            s.record(Ok(Duration::from_millis(ms)), now);
        }
        let o = s.observed();
        assert_eq!((o.runs, o.successes, o.failures), (100, 100, 0));
        assert_eq!(o.success_rate, 1.0);
        assert_eq!(o.latency_p50_ms, 50.0);
        assert_eq!(o.latency_p95_ms, 95.0);
        assert_eq!(o.last_error, None);
        for _ in 0..10 {
            s.record(Err("down".into()), now);
        }
        let o = s.observed();
        assert_eq!((o.runs, o.successes, o.failures), (110, 100, 10));
        assert!((o.success_rate - 0.9).abs() < 1e-9, "{}", o.success_rate);
        // The ten oldest successes (1..=10 ms) left the window.
        assert_eq!(o.latency_p50_ms, 55.0);
        assert_eq!(o.last_error.as_deref(), Some("down"));
        assert_eq!(o.last_success_at, Some(now));
    }

    #[test]
    fn percentiles_of_few_values() {
        assert_eq!(percentile(&[], 0.5), 0.0);
        assert_eq!(percentile(&[7.0], 0.95), 7.0);
        assert_eq!(percentile(&[1.0, 2.0], 0.5), 1.0);
        assert_eq!(percentile(&[1.0, 2.0], 0.95), 2.0);
    }
}
