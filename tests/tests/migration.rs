//! Live migration on the real binaries: a namespace moves between two cells while a Python
//! `temporalio` worker and client run workflows through the edge with mTLS. Its store ships
//! with real Litestream; the address clients use never changes; no call fails.

use std::time::Duration;

use serde_json::{Value, json};
use tessera_system_tests::{
    Api, CellProcesses, ControlPlane, SteadyWorker, TwoCells, assert_orders_unharmed, eventually,
    kill_cell, litestream_logs, litestreams, migration_end, migration_states,
    namespace_with_generated_ca, python_worker, start_edge, worker_command,
};

/// The migration ran as its own workflow, `migration-<id>`, a child of the namespace's.
async fn assert_runs_as_child(t: &TwoCells, id: &str) {
    let d = eventually(
        "the migration's workflow closed",
        Duration::from_secs(30),
        || async {
            let d = t.cp.describe_workflow(&format!("migration-{id}")).await;
            let status = d["workflowExecutionInfo"]["status"].as_str()?.to_string();
            (status != "WORKFLOW_EXECUTION_STATUS_RUNNING").then_some(d)
        },
    )
    .await;
    let info = &d["workflowExecutionInfo"];
    assert_eq!(info["status"], "WORKFLOW_EXECUTION_STATUS_COMPLETED", "{d}");
    let parent = info["parentExecution"]["workflowId"]
        .as_str()
        .unwrap_or_default();
    assert!(parent.starts_with("namespace-"), "{d}");
    // The namespace's own workflow lives on, waiting for its next request.
    let p = t.cp.describe_workflow(parent).await;
    let p = &p["workflowExecutionInfo"];
    assert_eq!(p["type"]["name"], "NamespaceWorkflow", "{p}");
    assert_eq!(p["status"], "WORKFLOW_EXECUTION_STATUS_RUNNING", "{p}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_namespace_moves_to_another_cell_under_load_without_a_failed_call() {
    let t = TwoCells::start(&[]).await;
    let (admin, acme, orders, creds) = (&t.admin, &t.acme, &t.orders, &t.creds);
    let (source, target) = (t.source.clone(), t.target.clone());
    let data = t.dir();
    let before = python_worker(orders, creds, false)
        .await
        .expect("a workflow before the move");

    // Bad input changes nothing.
    for (body, status) in [
        (
            json!({"namespace": "nope.acme", "target_cell": target}),
            404,
        ),
        (
            json!({"namespace": "orders.acme", "target_cell": source}),
            400,
        ),
        (
            json!({"namespace": "orders.acme", "target_cell": "no-such-cell"}),
            400,
        ),
    ] {
        let (s, v) = admin.post("/admin/migrations", body).await;
        assert_eq!(s, status, "{v}");
    }
    let (s, v) = acme
        .post(
            "/admin/migrations",
            json!({"namespace": "orders.acme", "target_cell": target}),
        )
        .await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(admin.get("/admin/migrations").await, json!([]));

    // A worker and a client run order workflows (an activity, a signal, a 20 s timer and a
    // child each) and a schedule firing every 5 s through the edge for the whole move. The
    // histories of those closed before the move are kept to compare with the target's.
    let worker = SteadyWorker::orders(orders, creds, data, 2.0).await;
    tokio::time::sleep(Duration::from_secs(26)).await;
    let closed_on_source = worker.take_snapshot().await;
    assert!(
        !closed_on_source.is_empty(),
        "workflows closed before the move"
    );

    let (s, started) = admin
        .post(
            "/admin/migrations",
            json!({"namespace": "orders.acme", "target_cell": target}),
        )
        .await;
    assert_eq!(s, 202, "{started}");
    assert_eq!(started["operation"]["kind"], "namespace.migrate");
    let id = started["migration"]["id"].as_str().unwrap().to_string();
    assert_eq!(acme.get("/namespaces/orders").await["state"], "migrating");
    // One migration at a time.
    let (s, v) = admin
        .post(
            "/admin/migrations",
            json!({"namespace": "orders.acme", "target_cell": target}),
        )
        .await;
    assert_eq!(s, 409, "{v}");

    let m = migration_end(admin, &id, Duration::from_secs(300)).await;
    assert_eq!(m["state"], "completed", "{m}\n{}", t.cp.log());
    assert_eq!(
        migration_states(&m),
        [
            "replicating",
            "ready_for_cutover",
            "cutting_over",
            "completed"
        ],
        "{m}"
    );
    assert!(m["progress"]["final_txid"].as_u64().is_some(), "{m}");
    let op = acme
        .wait_op(
            started["operation"]["id"].as_str().unwrap(),
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(op["state"], "fulfilled", "{op}");
    assert_runs_as_child(&t, &id).await;

    // Clients saw nothing but a short stall: no call failed, every acknowledged workflow
    // completed with one timer, one signal, one child and one completion, the histories closed
    // on the source are the same on the target, and the schedule missed no action.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let report = worker.finish().await;
    println!("tenant worker during the migration: {report}\nmigration: {m}");
    assert_orders_unharmed(&report, closed_on_source.len(), 40);

    // Same address; the namespace runs on the target, with its history.
    let moved = acme.get("/namespaces/orders").await;
    assert_eq!(moved["state"], "active", "{moved}");
    assert_eq!(moved["endpoint"]["address"], orders["endpoint"]["address"]);
    let target_detail = admin.get(&format!("/admin/cells/{target}")).await;
    assert_eq!(
        moved["endpoint"]["cell_address"], target_detail["ingress_address"],
        "{moved}"
    );
    let workflow = before["workflow_id"].as_str().unwrap();
    let d = worker_command(&moved, creds)
        .args(["--describe", workflow])
        .output()
        .await
        .unwrap();
    assert!(d.status.success(), "{d:?}");
    let d: Value = serde_json::from_slice(
        d.stdout
            .trim_ascii_end()
            .rsplit(|b| *b == b'\n')
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(d["status"], "COMPLETED", "{workflow}: {d}");
    // The source's copy is in its cell's trash; the source runs nothing of the namespace.
    let runtime = eventually(
        "the source's copy in its trash",
        Duration::from_secs(60),
        || async {
            let c = admin.get(&format!("/admin/cells/{source}")).await;
            let o = &c["observed"];
            let trashed = o["trash"].as_array().and_then(|t| t.first().cloned())?;
            o["runtimes"]
                .as_object()
                .unwrap()
                .is_empty()
                .then(|| trashed["runtime"].as_str().unwrap().to_string())
        },
    )
    .await;
    assert!(runtime.starts_with("ns-"), "{runtime}");
    let (s, v) = admin
        .post(&format!("/admin/migrations/{id}/abort"), json!({}))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("failed_precondition")),
        "{v}"
    );

    // A manual migration back waits for its cutover; aborted, nothing changes.
    let (s, back) = admin
        .post(
            "/admin/migrations",
            json!({"namespace": "orders.acme", "target_cell": source, "cutover": "manual"}),
        )
        .await;
    assert_eq!(s, 202, "{back}");
    let back_id = back["migration"]["id"].as_str().unwrap().to_string();
    eventually("ready for cutover", Duration::from_secs(120), || async {
        let m = admin.get(&format!("/admin/migrations/{back_id}")).await;
        (m["state"] == "ready_for_cutover").then_some(())
    })
    .await;
    let m = admin.get(&format!("/admin/migrations/{back_id}")).await;
    assert!(m["progress"]["lag_seconds"].as_f64().unwrap() < 1.0, "{m}");
    let replica = t.dir().join("object-store/local-east").join(&back_id);
    assert!(replica.is_dir(), "the replica in the region's object store");
    let (s, v) = admin
        .post(&format!("/admin/migrations/{back_id}/abort"), json!({}))
        .await;
    assert_eq!(s, 202, "{v}");
    let m = migration_end(admin, &back_id, Duration::from_secs(60)).await;
    assert_eq!(m["state"], "aborted", "{m}");
    assert_runs_as_child(&t, &back_id).await;
    // An ended migration leaves no replica behind (the completed one's went too).
    eventually("the replica removed", Duration::from_secs(60), || async {
        (!replica.exists()).then_some(())
    })
    .await;
    assert!(!t.dir().join("object-store/local-east").join(&id).exists());
    let stayed = acme.get("/namespaces/orders").await;
    assert_eq!(stayed["state"], "active");
    assert_eq!(
        stayed["endpoint"]["cell_address"],
        moved["endpoint"]["cell_address"]
    );
    python_worker(&stayed, creds, false)
        .await
        .expect("a workflow after the aborted move");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_migration_survives_a_control_plane_sigkill_in_each_state() {
    let agent_addr = format!("127.0.0.1:{}", tessera_system_tests::free_port());
    let edge_addr = format!("127.0.0.1:{}", tessera_system_tests::free_port());
    let env = [
        ("TESSERA_AGENT_ADDR", agent_addr.as_str()),
        ("TESSERA_EDGE_ADDR", edge_addr.as_str()),
        ("TESSERA_TEST_NAMESPACE_STEP_DELAY_MS", "1000"),
    ];
    let mut t = TwoCells::start(&env).await;
    let worker = SteadyWorker::start(&t.orders, &t.creds, t.dir()).await;
    let id = t.migrate("manual").await;

    // SIGKILL the control plane as soon as the migration is in each state; it goes on.
    let mut killed_in = Vec::new();
    for state in ["replicating", "ready_for_cutover", "cutting_over"] {
        let admin = Api::admin(&t.cp);
        if state == "cutting_over" {
            let (s, v) = admin
                .post(&format!("/admin/migrations/{id}/cutover"), json!({}))
                .await;
            assert_eq!(s, 202, "{v}");
        }
        let seen = eventually(state, Duration::from_secs(120), || async {
            let m = admin.get(&format!("/admin/migrations/{id}")).await;
            let s = m["state"].as_str().unwrap().to_string();
            (s == state || s == "completed").then_some(s)
        })
        .await;
        if seen == "completed" {
            break;
        }
        t.cp.kill9();
        killed_in.push(state);
        t.cp = ControlPlane::start(t.dir(), &env).await;
    }
    let admin = Api::admin(&t.cp);
    let m = migration_end(&admin, &id, Duration::from_secs(300)).await;
    assert_eq!(m["state"], "completed", "{m}\n{}", t.cp.log());
    assert_eq!(
        killed_in,
        ["replicating", "ready_for_cutover", "cutting_over"]
    );

    let report = worker.finish().await;
    println!("tenant worker during the migration: {report}\nmigration: {m}");
    assert_eq!(report["failures"], 0, "no failed call: {report}");
    let acme = Api::with_token(&t.cp, t.acme.token.clone());
    let moved = acme.get("/namespaces/orders").await;
    assert_eq!(moved["state"], "active", "{moved}");
    assert_eq!(
        moved["endpoint"]["cell_address"],
        admin.get(&format!("/admin/cells/{}", t.target)).await["ingress_address"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn decommissioning_a_cell_with_five_namespaces_under_load_drains_it_first() {
    let data = tempfile::tempdir().unwrap();
    let _cells = CellProcesses(data.path().to_path_buf());
    let cp = ControlPlane::start(data.path(), &[]).await;
    let admin = Api::admin(&cp);
    admin.create_region("local-east").await;
    let _edge = start_edge(&cp, &admin, "local-east").await;
    let old = admin.provision("local-east", 1).await;
    let acme = Api::signup(&cp, "acme").await;
    let mut namespaces = Vec::new();
    for name in ["ns1", "ns2", "ns3", "ns4", "ns5"] {
        namespaces.push(namespace_with_generated_ca(&acme, data.path(), name, "local-east").await);
    }

    // Nowhere to go: refused, nothing changes.
    let (s, v) = admin
        .post(&format!("/admin/cells/{old}/drain"), json!({}))
        .await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(
        v["error"]["details"]["namespaces"]
            .as_array()
            .unwrap()
            .len(),
        5,
        "{v}"
    );
    let new = admin.provision("local-east", 1).await;
    let (s, v) = admin
        .post(
            &format!("/admin/cells/{old}/drain"),
            json!({"max_parallel": 0}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(
        admin.get(&format!("/admin/cells/{old}")).await["status"],
        "healthy"
    );

    let (ns1, creds1) = &namespaces[0];
    let worker = SteadyWorker::start(ns1, creds1, data.path()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Decommissioning drains first: every namespace moves, then the cell goes.
    let (s, v) = admin.delete(&format!("/admin/cells/{old}")).await;
    assert_eq!(s, 202, "{v}");
    let op = admin
        .wait_op(
            v["operation"]["id"].as_str().unwrap(),
            Duration::from_secs(900),
        )
        .await;
    assert_eq!(op["state"], "fulfilled", "{op}\n{}", cp.log());
    let gone = admin.get(&format!("/admin/cells/{old}")).await;
    assert_eq!(gone["status"], "decommissioned", "{gone}");
    let migrations = admin.get("/admin/migrations").await;
    assert_eq!(migrations.as_array().unwrap().len(), 5, "{migrations}");
    assert!(
        migrations
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["state"] == "completed" && m["target_cell"] == new.as_str()),
        "{migrations}"
    );

    let report = worker.finish().await;
    println!("tenant worker during the drain: {report}");
    assert_eq!(report["failures"], 0, "no failed call: {report}");

    let new_ingress = admin.get(&format!("/admin/cells/{new}")).await["ingress_address"].clone();
    for (ns, creds) in &namespaces {
        let name = ns["name"].as_str().unwrap();
        let now = acme.get(&format!("/namespaces/{name}")).await;
        assert_eq!(now["state"], "active", "{now}");
        assert_eq!(now["endpoint"]["cell_address"], new_ingress, "{now}");
        python_worker(&now, creds, false)
            .await
            .unwrap_or_else(|e| panic!("{name} serves on the new cell: {e}"));
    }
    // Nothing of the old cell runs any more.
    let leftovers = tessera_system_tests::processes_mentioning(
        &data.path().join("cells").join(&old).to_string_lossy(),
    );
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// The Litestream logs of a cell's runtime folders.
#[tokio::test(flavor = "multi_thread")]
async fn both_agents_killed_mid_replication_leave_one_litestream_each_and_the_move_completes() {
    let t = TwoCells::start(&[]).await;
    let (admin, source, target) = (&t.admin, &t.source, &t.target);
    let worker = SteadyWorker::start(&t.orders, &t.creds, t.dir()).await;
    let id = t.migrate("manual").await;
    t.await_state(&id, "ready_for_cutover").await;
    let cells = t.dir().join("cells");
    assert_eq!(litestreams(&cells, source), 1);
    assert_eq!(litestreams(&cells, target), 1);

    let stream = |o: &Value| {
        o["replication"]
            .as_object()
            .and_then(|r| r.values().next())
            .and_then(|r| r["stream"].as_u64())
    };
    let first = stream(&admin.get(&format!("/admin/cells/{source}")).await["observed"])
        .expect("the source reports the stream it writes");

    // SIGKILL both agents: their Litestream processes outlive them. The restarted agents stop
    // those and start one each again, the source in a new stream (its Litestream was stopped
    // while the server wrote).
    let mut killed = Vec::new();
    for cell in [source, target] {
        let pid = admin.get(&format!("/admin/cells/{cell}")).await["observed"]["agent_pid"]
            .as_u64()
            .unwrap();
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
        killed.push((cell.clone(), pid));
    }
    for (cell, pid) in &killed {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            let o = &admin.get(&format!("/admin/cells/{cell}")).await["observed"];
            if o["agent_pid"].as_u64() != Some(*pid)
                && o["replication"].as_object().is_some_and(|r| {
                    r.values()
                        .all(|r| matches!(r["state"].as_str(), Some("streaming" | "following")))
                })
                && (cell != source || stream(o) > Some(first))
            {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the agent of {cell} back and shipping: {o}\n{}",
                litestream_logs(&cells, cell)
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let logs = || {
        format!(
            "{}\n{}",
            litestream_logs(&cells, source),
            litestream_logs(&cells, target)
        )
    };
    assert_eq!(
        litestreams(&cells, source),
        1,
        "one replicate per store: {}",
        logs()
    );
    assert_eq!(
        litestreams(&cells, target),
        1,
        "one follower per store: {}",
        logs()
    );

    let (s, v) = admin
        .post(&format!("/admin/migrations/{id}/cutover"), json!({}))
        .await;
    assert_eq!(s, 202, "{v}");
    let m = migration_end(admin, &id, Duration::from_secs(300)).await;
    assert_eq!(m["state"], "completed", "{m}\n{}", t.cp.log());
    assert!(
        m["progress"]["final_stream"].as_u64() > Some(first),
        "the cutover took the new stream: {m}"
    );
    let report = worker.finish().await;
    println!("tenant worker during the migration: {report}");
    assert_eq!(
        report["failures"],
        0,
        "no failed call: {report}\n{}\n{}",
        logs(),
        tessera_system_tests::tail(&t.cp.log(), 40)
    );
    let moved = t.acme.get("/namespaces/orders").await;
    python_worker(&moved, &t.creds, false)
        .await
        .expect("a workflow on the target");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_target_cell_lost_before_the_cutover_aborts_the_move_and_clients_stay_on_the_source() {
    let t = TwoCells::start(&[]).await;
    let worker = SteadyWorker::start(&t.orders, &t.creds, t.dir()).await;
    let id = t.migrate("manual").await;
    t.await_state(&id, "ready_for_cutover").await;

    // The target's host is gone: every process killed, its disk with them (so nothing starts
    // its agent again). The cutover asked for now is not made on the target's last report.
    let cells = t.dir().join("cells");
    std::fs::rename(
        cells.join(&t.target),
        cells.join(format!("{}-lost", t.target)),
    )
    .unwrap();
    kill_cell(t.dir(), &t.target);
    let (s, v) = t
        .admin
        .post(&format!("/admin/migrations/{id}/cutover"), json!({}))
        .await;
    assert_eq!(s, 202, "{v}");
    let m = migration_end(&t.admin, &id, Duration::from_secs(120)).await;
    assert_eq!(m["state"], "aborted", "{m}\n{}", t.cp.log());
    assert!(
        m["error"].as_str().unwrap().contains(&t.target),
        "the reason names the target: {m}"
    );
    assert!(
        !migration_states(&m).contains(&"cutting_over".to_string()),
        "{m}"
    );

    // Nothing changed for clients: the namespace stays on the source and serves.
    let report = worker.finish().await;
    println!("tenant worker during the migration: {report}");
    assert_eq!(report["failures"], 0, "no failed call: {report}");
    let stayed = t.acme.get("/namespaces/orders").await;
    assert_eq!(stayed["state"], "active", "{stayed}");
    assert_eq!(
        stayed["endpoint"]["cell_address"],
        t.orders["endpoint"]["cell_address"]
    );
    python_worker(&stayed, &t.creds, false)
        .await
        .expect("a workflow on the source");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_source_cell_killed_as_the_cutover_begins_completes_from_the_replica_with_rpo_zero() {
    let t = TwoCells::start(&[("TESSERA_TEST_NAMESPACE_STEP_DELAY_MS", "500")]).await;
    let worker = SteadyWorker::start(&t.orders, &t.creds, t.dir()).await;
    let id = t.migrate("auto").await;

    // Every process of the source cell dies the moment the cutover begins; its agent comes
    // back (the cell's host restarts it), finishes the fence and ships the last transactions.
    let agent = |c: Value| c["observed"]["agent_pid"].as_u64();
    let source_agent = agent(t.admin.get(&format!("/admin/cells/{}", t.source)).await);
    t.await_state(&id, "cutting_over").await;
    kill_cell(t.dir(), &t.source);
    let m = migration_end(&t.admin, &id, Duration::from_secs(300)).await;
    assert_eq!(m["state"], "completed", "{m}\n{}", t.cp.log());
    assert_eq!(
        m["progress"]["rpo_seconds"],
        0.0,
        "{m}\nthe source's agent:\n{}",
        tessera_system_tests::tail(
            &std::fs::read_to_string(t.dir().join("cells").join(&t.source).join("agent.log"))
                .unwrap_or_default(),
            60
        )
    );
    let restarted = agent(t.admin.get(&format!("/admin/cells/{}", t.source)).await);
    assert!(
        restarted.is_some() && restarted != source_agent,
        "the source's agent came back and fenced: {source_agent:?} → {restarted:?}"
    );
    assert!(m["progress"]["final_txid"].as_u64().is_some(), "{m}");

    let report = worker.finish().await;
    println!("tenant worker during the migration: {report}");
    assert_eq!(report["failures"], 0, "no failed call: {report}");
    let moved = t.acme.get("/namespaces/orders").await;
    assert_eq!(
        moved["endpoint"]["cell_address"],
        t.admin.get(&format!("/admin/cells/{}", t.target)).await["ingress_address"]
    );
    // Every workflow the worker saw complete before the move is there, completed.
    for workflow in [
        report["first"][0].as_str().unwrap(),
        report["last"][0].as_str().unwrap(),
    ] {
        let d = worker_command(&moved, &t.creds)
            .args(["--describe", workflow])
            .output()
            .await
            .unwrap();
        assert!(
            String::from_utf8_lossy(&d.stdout).contains("COMPLETED"),
            "{workflow}: {d:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_source_cell_lost_for_good_during_the_cutover_completes_and_reports_the_possible_loss()
{
    let t = TwoCells::start(&[("TESSERA_TEST_NAMESPACE_STEP_DELAY_MS", "500")]).await;
    let id = t.migrate("auto").await;

    // The source's host is gone for good as the cutover begins: no final sync can happen, so
    // the target is promoted with what the replica holds and the possible loss is reported.
    t.await_state(&id, "cutting_over").await;
    let cells = t.dir().join("cells");
    std::fs::rename(
        cells.join(&t.source),
        cells.join(format!("{}-lost", t.source)),
    )
    .unwrap();
    kill_cell(t.dir(), &t.source);
    let m = migration_end(&t.admin, &id, Duration::from_secs(300)).await;
    assert_eq!(m["state"], "completed", "{m}\n{}", t.cp.log());
    assert!(m["progress"]["final_txid"].is_null(), "{m}");
    assert!(
        m["progress"]["rpo_seconds"]
            .as_f64()
            .is_some_and(|s| s > 0.0),
        "the possible loss is reported: {m}"
    );
    let moved = t.acme.get("/namespaces/orders").await;
    assert_eq!(moved["state"], "active", "{moved}");
    python_worker(&moved, &t.creds, false)
        .await
        .expect("the namespace serves on the target");
}
