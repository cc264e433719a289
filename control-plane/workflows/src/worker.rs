//! The control-plane worker, on a thread of its own.
//!
//! The SDK's `Worker::run` future is not `Send`, so it cannot be spawned on the API's runtime.
//! It runs on a dedicated thread with its own runtime and store connection pool; it reconnects
//! with backoff when the Temporal server goes away (the supervisor restarts it).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use temporalio_sdk::{Runtime, Worker, WorkerOptions};
use tessera_store::Store;

use tessera_pki::MasterKey;

use crate::activities::ControlActivities;
use crate::cell_activities::{CellActivities, Providers};
use crate::cells::CellWorkflow;
use crate::certs::PlatformPki;
use crate::client::connect_client;
use crate::namespace_activities::NamespaceActivities;
use crate::signup::SignupWorkflow;
use tessera_domain::Backoff;

#[derive(Clone)]
pub struct WorkerConfig {
    /// `host:port` of the Temporal frontend.
    pub temporal_address: String,
    pub namespace: String,
    pub task_queue: String,
    pub database_url: String,
    pub signup_step_delay: Option<Duration>,
    /// Test hook: a pause at the start of every namespace activity.
    pub namespace_step_delay: Option<Duration>,
    /// Cell providers by name, and what cell activities hand to agents.
    pub providers: Providers,
    pub master_key: MasterKey,
    pub agent_url: String,
    pub base_domain: String,
    pub lifetimes: crate::certs::Lifetimes,
    /// Local regions' object stores (store shipping): `<data-dir>/object-store`.
    pub object_stores: tessera_object_store::ObjectStores,
    pub replica_issuer: tessera_object_store::Issuer,
}

impl std::fmt::Debug for WorkerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerConfig")
            .field("temporal_address", &self.temporal_address)
            .field("namespace", &self.namespace)
            .field("task_queue", &self.task_queue)
            .field("providers", &self.providers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

type ShutdownFn = Box<dyn Fn() + Send + Sync>;

/// Owns the worker thread; [`WorkerHandle::shutdown`] stops it gracefully.
pub struct WorkerHandle {
    stop: Arc<AtomicBool>,
    shutdown: Arc<Mutex<Option<ShutdownFn>>>,
    thread: Option<JoinHandle<()>>,
}

impl WorkerHandle {
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(f) = self.shutdown.lock().expect("worker lock").as_ref() {
            f();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

pub fn spawn_worker(cfg: WorkerConfig) -> std::io::Result<WorkerHandle> {
    let stop = Arc::new(AtomicBool::new(false));
    let shutdown: Arc<Mutex<Option<ShutdownFn>>> = Arc::new(Mutex::new(None));
    let (s, sd) = (stop.clone(), shutdown.clone());
    let thread = std::thread::Builder::new()
        .name("temporal-worker".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("temporal-worker-rt")
                .enable_all()
                .build()
                .expect("worker runtime");
            rt.block_on(run_until_stopped(cfg, s, sd));
        })?;
    Ok(WorkerHandle {
        stop,
        shutdown,
        thread: Some(thread),
    })
}

async fn run_until_stopped(
    cfg: WorkerConfig,
    stop: Arc<AtomicBool>,
    shutdown: Arc<Mutex<Option<ShutdownFn>>>,
) {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    let store = loop {
        match Store::connect(&cfg.database_url).await {
            Ok(s) => break s,
            Err(e) if !stop.load(Ordering::SeqCst) => {
                tracing::warn!(error = %e, "worker cannot open the store; retrying");
                tokio::time::sleep(backoff.next_delay()).await;
            }
            Err(_) => return,
        }
    };
    while !stop.load(Ordering::SeqCst) {
        match run_once(&cfg, &store, &shutdown).await {
            Ok(()) => backoff.reset(),
            Err(e) => {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                tracing::warn!(error = %e, "control worker stopped; restarting");
            }
        }
        *shutdown.lock().expect("worker lock") = None;
        if stop.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

async fn run_once(
    cfg: &WorkerConfig,
    store: &Store,
    shutdown: &Mutex<Option<ShutdownFn>>,
) -> anyhow::Result<()> {
    let client = connect_client(&cfg.temporal_address, &cfg.namespace).await?;
    let runtime =
        Runtime::from_current_tokio(Default::default()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let opts = WorkerOptions::new(cfg.task_queue.as_str())
        .register_workflow::<SignupWorkflow>()?
        .register_workflow::<CellWorkflow>()?
        .register_workflow::<crate::renewal::CertRenewalWorkflow>()?
        .register_workflow::<crate::namespaces::NamespaceWorkflow>()?
        .register_workflow::<crate::migrations::MigrationWorkflow>()?
        .register_workflow::<crate::rollouts::RolloutWorkflow>()?
        .register_workflow::<crate::drain::DrainWorkflow>()?
        .register_activities(ControlActivities {
            store: store.clone(),
            step_delay: cfg.signup_step_delay,
        })
        .register_activities(CellActivities {
            store: store.clone(),
            pki: PlatformPki::new(store.clone(), cfg.master_key.clone())
                .with_lifetimes(cfg.lifetimes),
            providers: cfg.providers.clone(),
            agent_url: cfg.agent_url.clone(),
            base_domain: cfg.base_domain.clone(),
        })
        .register_activities(NamespaceActivities {
            store: store.clone(),
            pki: PlatformPki::new(store.clone(), cfg.master_key.clone())
                .with_lifetimes(cfg.lifetimes),
            step_delay: cfg.namespace_step_delay,
        })
        .register_activities(crate::migration_activities::MigrationActivities {
            store: store.clone(),
            pki: PlatformPki::new(store.clone(), cfg.master_key.clone())
                .with_lifetimes(cfg.lifetimes),
            step_delay: cfg.namespace_step_delay,
            object_stores: cfg.object_stores.clone(),
            replica_issuer: cfg.replica_issuer.clone(),
        })
        .register_activities(crate::replicas::ReplicaActivities {
            store: store.clone(),
            object_stores: cfg.object_stores.clone(),
            replica_issuer: cfg.replica_issuer.clone(),
        })
        .register_activities(crate::rollout_activities::RolloutActivities {
            store: store.clone(),
        })
        .graceful_shutdown_period(Duration::from_secs(5))
        .build();
    let mut worker = Worker::new(&runtime, client, opts)?;
    let handle = worker.shutdown_handle();
    *shutdown.lock().expect("worker lock") = Some(Box::new(handle));
    tracing::info!(task_queue = %cfg.task_queue, namespace = %cfg.namespace, "control worker running");
    worker.run().await?;
    Ok(())
}
