//! Wiring: store, secrets, Temporal (local or remote), worker, HTTP server.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tessera_infra::{LocalProvider, Unreliable};
use tessera_store::Store;
use tessera_workflows::{Engine, Providers, WorkerConfig, spawn_worker};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::secrets::{admin_token, load_master_key};
use crate::state::{AppState, SharedState};

/// Builds the API state without a workflow engine (used by router tests and by `run`).
pub async fn build_state(config: Config) -> anyhow::Result<AppState> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    let store = Store::connect(&config.database_url())
        .await
        .context("opening the store")?;
    let master_key = load_master_key(config.master_key.as_deref(), &config.data_dir)?;
    let admin = admin_token(&config.data_dir)?;
    let pki = tessera_platform_pki::PlatformPki::new(store.clone(), master_key.clone())
        .with_lifetimes(config.lifetimes());
    let object_stores = tessera_object_store::ObjectStores::load(
        config.data_dir.join("object-store"),
        config.object_stores.as_deref(),
    )
    .map_err(anyhow::Error::msg)?;
    Ok(AppState {
        limiter: RateLimiter::new(config.rate_limit_per_second, config.rate_limit_burst),
        auth_failures: RateLimiter::new(
            config.auth_failures_per_minute / 60.0,
            config.auth_failure_burst,
        ),
        admin_token_digest: admin.digest(),
        store,
        master_key,
        metrics: Metrics::new(),
        engine: None,
        pki,
        agent_url: Mutex::new(config.agent_url(config.agent_addr)),
        idempotency_inflight: Mutex::new(HashSet::new()),
        object_stores,
        replica_issuer: tessera_object_store::Issuer::new(Duration::from_secs(
            config.replica_credential_secs,
        )),
        config,
    })
}

/// Runs the control plane until SIGINT or SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let cancel = CancellationToken::new();
    let mut state = build_state(config.clone()).await?;

    let (temporal_address, local_temporal) = match &config.temporal_address {
        Some(a) => (a.clone(), None),
        None => {
            let local = crate::temporal::start(
                &config.temporal_bin,
                &config.data_dir,
                &config.temporal_namespace,
                state.metrics.clone(),
                cancel.child_token(),
            )
            .await?;
            (local.address.clone(), Some(local))
        }
    };
    let engine = connect_engine(&temporal_address, &config).await?;
    if config.temporal_address.is_some() {
        engine.ensure_namespace(&config.temporal_namespace).await?;
    }
    state.engine = Some(engine);

    let agent_listener = bind(config.agent_addr, "the agent endpoint").await?;
    let agent_url = config.agent_url(agent_listener.local_addr()?);
    *state.agent_url.lock().expect("agent url lock") = agent_url.clone();
    let local = LocalProvider::new(
        config.data_dir.join("cells"),
        config.cell_agent_bin(),
        config.temporal_bin.clone(),
        tokio::runtime::Handle::current(),
    );
    let resumed = local.resume()?;
    if resumed > 0 {
        tracing::info!(cells = resumed, "supervising the agents of local cells");
    }
    let mut providers: Providers = Default::default();
    match config.test_provider_failures {
        Some(n) => providers.insert("local".into(), Arc::new(Unreliable::new(local, n))),
        None => providers.insert("local".into(), Arc::new(local)),
    };
    let worker = spawn_worker(WorkerConfig {
        temporal_address: temporal_address.clone(),
        namespace: config.temporal_namespace.clone(),
        task_queue: config.task_queue.clone(),
        database_url: config.database_url(),
        signup_step_delay: config.test_signup_step_delay_ms.map(Duration::from_millis),
        namespace_step_delay: config
            .test_namespace_step_delay_ms
            .map(Duration::from_millis),
        providers,
        master_key: state.master_key.clone(),
        agent_url: agent_url.clone(),
        base_domain: config.base_domain.clone(),
        lifetimes: config.lifetimes(),
        object_stores: state.object_stores.clone(),
        replica_issuer: state.replica_issuer.clone(),
    })?;
    if let Some(engine) = &state.engine {
        engine
            .start_renewal(config.cert_renewal_interval_secs)
            .await
            .context("starting the certificate-renewal workflow")?;
        resume_namespace_workflows(&state.store, engine).await?;
    }

    let state: SharedState = Arc::new(state);
    // Other control planes on the same PostgreSQL announce their cell changes; waiters here
    // (desired-state long polls, workflow activities) wake on them.
    let listen_task = state.store.listen_for_cell_changes(cancel.child_token());
    let agent_task =
        crate::agent_endpoint::serve(state.clone(), agent_listener, cancel.child_token()).await?;
    let metrics_task = match config.metrics_addr {
        Some(addr) => {
            let l = bind(addr, "the metrics listener").await?;
            println!("  metrics:    http://{}/metrics", l.local_addr()?);
            Some(tokio::spawn(crate::metrics::listen(
                state.clone(),
                l,
                cancel.child_token(),
            )))
        }
        None => None,
    };
    let listener = bind(config.http_addr, "the HTTP API").await?;
    let addr = listener.local_addr()?;
    println!("Tessera control plane listening on http://{addr}");
    println!("  API:        http://{addr}/api/v1  (OpenAPI: http://{addr}/api/v1/openapi.json)");
    println!("  agents:     {agent_url}  (mTLS)");
    println!(
        "  Temporal:   {temporal_address} (namespace {})",
        config.temporal_namespace
    );
    println!(
        "  admin token: {}",
        config.data_dir.join("admin-token").display()
    );

    let app = crate::routes::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let shutdown = cancel.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        shutdown.cancel();
    });
    let serve_cancel = cancel.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { serve_cancel.cancelled().await })
        .await?;

    tracing::info!("shutting down");
    tokio::task::spawn_blocking(move || worker.shutdown()).await?;
    cancel.cancel();
    let _ = agent_task.await;
    if let Some(t) = listen_task {
        let _ = t.await;
    }
    if let Some(t) = metrics_task {
        let _ = t.await;
    }
    if let Some(local) = local_temporal {
        let _ = local.task.await;
    }
    Ok(())
}

async fn connect_engine(address: &str, config: &Config) -> anyhow::Result<Engine> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match Engine::connect(address, &config.temporal_namespace, &config.task_queue).await {
            Ok(e) => return Ok(e),
            Err(e) if tokio::time::Instant::now() >= deadline => return Err(e.into()),
            Err(e) => {
                tracing::warn!(error = %e, "waiting for Temporal");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
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

/// Starts the workflow of every namespace that should have one running. A crash between
/// recording a namespace and starting its workflow would otherwise leave it unattended;
/// starting a running workflow again is a no-op.
/// Binds `addr`, waiting up to 20 s while it is in use: a control plane restarted after a
/// crash may find its port still held for a moment (by its predecessor's last connections, or
/// by a process that briefly took the freed port).
async fn bind(addr: std::net::SocketAddr, what: &str) -> anyhow::Result<tokio::net::TcpListener> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => return Ok(l),
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse
                    && tokio::time::Instant::now() < deadline =>
            {
                tracing::warn!(%addr, "{what}: address in use; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e).with_context(|| format!("binding {what} on {addr}")),
        }
    }
}

async fn resume_namespace_workflows(
    store: &tessera_store::Store,
    engine: &tessera_workflows::Engine,
) -> anyhow::Result<()> {
    let live = store.live_namespaces().await?;
    for ns in &live {
        let id = ns.id.to_string();
        let provisioning = ns.state == "provisioning";
        let restore = match provisioning {
            true => store.open_operation_of("namespace.restore", &id).await?,
            false => None,
        };
        let started = match restore {
            Some(op) => engine.start_namespace_restore(ns.id, op).await,
            None => {
                let create_operation = match provisioning {
                    true => store.open_operation_of("namespace.create", &id).await?,
                    false => None,
                };
                engine.start_namespace(ns.id, create_operation).await
            }
        };
        started.context("resuming namespace workflows")?;
    }
    if !live.is_empty() {
        tracing::info!(namespaces = live.len(), "namespace workflows running");
    }
    Ok(())
}
