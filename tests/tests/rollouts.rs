//! Releases rolled out through the deployment rings, on local cells with real runtimes: a good
//! release reaches every cell ring by ring (ring 1 after its approval) while a tenant's worker
//! runs without a failed call, surviving a pause and a control-plane SIGKILL during a bake; a bad release is stopped in ring 0's first
//! batch, rolled back automatically, and never reaches ring 1.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use tessera_system_tests::{
    Api, CellProcesses, ControlPlane, Creds, SteadyWorker, eventually, free_port, rollout_ended,
    rollout_event_at, start_edge, write_creds,
};

/// Short bakes, so the test takes a minute; the gates are the real ones.
const RINGS: &str = r#"
[defaults]
batch = 1
bake = "4s"
bake_after_ring = "2s"

[defaults.gates]
runtime_healthy = true
canary_success_rate_min = 0.5
runtime_error_rate_max = 0.2
min_requests = 0

[[ring]]
name = "canary"
cells = { ring = 0 }
# Long enough for several canary runs (one a second) on a loaded machine.
bake = "8s"

[[ring]]
name = "early"
cells = { ring = 1 }
approval = true
"#;

/// Every cell's report: cell id → observed state.
async fn observed(admin: &Api, cells: &[String]) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for c in cells {
        out.insert(
            c.clone(),
            admin.get(&format!("/admin/cells/{c}")).await["observed"].clone(),
        );
    }
    out
}

async fn rollout(admin: &Api, id: &str) -> Value {
    admin.get(&format!("/admin/rollouts/{id}")).await
}

/// `(ring, batch)` of each `batch_applied` event, in order.
fn applied(r: &Value) -> Vec<(u64, u64)> {
    r["progress"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["what"]["kind"] == "batch_applied")
        .map(|e| {
            (
                e["what"]["ring"].as_u64().unwrap(),
                e["what"]["batch"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn batch_state(r: &Value, ring: usize, batch: usize) -> String {
    r["progress"]["rings"][ring]["batches"][batch]["state"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn create_namespace(tenant: &Api, files: &Path) -> (Value, Creds) {
    let (s, v) = tenant
        .post(
            "/namespaces",
            json!({"name": "orders", "region": "local-east", "retention_days": 1, "generate_ca": true}),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    tenant.fulfilled(&v, Duration::from_secs(180)).await;
    let ns = tenant.get("/namespaces/orders").await;
    let (s, cert) = tenant
        .post(
            "/namespaces/orders/client-certs",
            json!({"common_name": "steady", "valid_days": 1}),
        )
        .await;
    assert_eq!(s, 201, "{cert}");
    let creds = write_creds(
        files,
        "orders",
        cert["certificate_pem"].as_str().unwrap(),
        cert["private_key_pem"].as_str().unwrap(),
        ns["endpoint"]["server_root_ca_pem"].as_str().unwrap(),
    );
    (ns, creds)
}

#[tokio::test(flavor = "multi_thread")]
async fn releases_move_ring_by_ring_and_a_bad_one_is_rolled_back_in_ring_0() {
    let data = tempfile::tempdir().unwrap();
    let _cells = CellProcesses(data.path().to_path_buf());
    let agent_addr = format!("127.0.0.1:{}", free_port());
    let edge_addr = format!("127.0.0.1:{}", free_port());
    let env = [
        ("TESSERA_AGENT_ADDR", agent_addr.as_str()),
        ("TESSERA_EDGE_ADDR", edge_addr.as_str()),
    ];
    let mut cp = ControlPlane::start(data.path(), &env).await;
    let mut admin = Api::admin(&cp);
    admin.create_region("local-east").await;
    let _edge = start_edge(&cp, &admin, "local-east").await;
    let canary_cell = admin.provision("local-east", 0).await;
    let early = vec![
        admin.provision("local-east", 1).await,
        admin.provision("local-east", 1).await,
    ];
    let all: Vec<String> = std::iter::once(canary_cell.clone())
        .chain(early.iter().cloned())
        .collect();
    let acme = Api::signup(&cp, "acme").await;
    let (ns, creds) = create_namespace(&acme, data.path()).await;

    admin
        .publish_release("r-good", &["--search-attribute", "TesseraRelease=Keyword"])
        .await;
    admin.publish_release("r-bad", &["--no-such-flag"]).await;

    // A tenant's worker runs workflows back to back for the whole good rollout.
    let worker = SteadyWorker::start(&ns, &creds, data.path()).await;

    // The good release.
    let good = admin.start_rollout("r-good", RINGS).await;
    let (s, busy) = admin
        .post(
            "/admin/rollouts",
            json!({"release": "r-bad", "rings": RINGS}),
        )
        .await;
    assert_eq!(s, 409, "one active rollout per cell: {busy}");

    // Pause during ring 0's bake: the rollout holds there until resumed.
    eventually("ring 0 baking", Duration::from_secs(120), || async {
        (batch_state(&rollout(&admin, &good).await, 0, 0) == "baking").then_some(())
    })
    .await;
    let (s, v) = admin
        .post(&format!("/admin/rollouts/{good}/pause"), json!({}))
        .await;
    assert_eq!(s, 202, "{v}");
    tokio::time::sleep(Duration::from_secs(10)).await;
    let r = rollout(&admin, &good).await;
    assert_eq!(r["status"], "paused", "{r}");
    assert_eq!(applied(&r), vec![(0, 0)], "nothing moved while paused");
    let (s, v) = admin
        .post(&format!("/admin/rollouts/{good}/resume"), json!({}))
        .await;
    assert_eq!(s, 202, "{v}");

    // Ring 1 needs an approval: the rollout waits for it after ring 0's bake.
    let r = eventually(
        "ring 1 awaiting approval",
        Duration::from_secs(120),
        || async {
            let r = rollout(&admin, &good).await;
            (r["status"] == "awaiting_approval").then_some(r)
        },
    )
    .await;
    assert_eq!(
        r["progress"]["rings"][1]["state"], "awaiting_approval",
        "{r}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(applied(&rollout(&admin, &good).await), vec![(0, 0)]);
    let (s, v) = admin
        .post(
            &format!("/admin/rollouts/{good}/approve"),
            json!({"ring": "early"}),
        )
        .await;
    assert_eq!(s, 202, "{v}");

    // SIGKILL the control plane while ring 1's first batch bakes.
    eventually(
        "ring 1's first batch baking",
        Duration::from_secs(120),
        || async { (batch_state(&rollout(&admin, &good).await, 1, 0) == "baking").then_some(()) },
    )
    .await;
    cp.kill9();
    cp = ControlPlane::start(data.path(), &env).await;
    admin = Api::admin(&cp);

    let r = admin.rollout_end(&good, Duration::from_secs(240)).await;
    assert_eq!(r["status"], "done", "{r}");
    assert_eq!(
        applied(&r),
        vec![(0, 0), (1, 0), (1, 1)],
        "every batch applied once, in order, across the restart: {r}"
    );
    let op = admin
        .get(&format!(
            "/operations/{}",
            r["operation_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(op["state"], "fulfilled", "{op}");

    // Every cell runs it, ring 0 first, then ring 1 batch by batch.
    let o = observed(&admin, &all).await;
    for (cell, obs) in &o {
        assert_eq!(obs["release"], "r-good", "{cell}: {obs}");
        for (id, rt) in obs["runtimes"].as_object().unwrap() {
            assert_eq!(rt["release"], "r-good", "{cell}/{id}");
            assert_eq!(rt["health"], "serving", "{cell}/{id}");
        }
    }
    let at = |c: &str| o[c]["release_applied_at"].as_str().unwrap().to_string();
    let order: Vec<String> = r["progress"]["rings"][1]["batches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["cells"][0].as_str().unwrap().to_string())
        .collect();
    assert!(at(&canary_cell) < at(&order[0]), "ring 0 before ring 1");
    assert!(at(&order[0]) < at(&order[1]), "batch 1 before batch 2");
    // An agent restarted after SIGKILL still reports when its cell was given the release.
    let last = &order[1];
    let agent_pid = o[last]["agent_pid"].as_u64().unwrap();
    std::process::Command::new("kill")
        .args(["-9", &agent_pid.to_string()])
        .status()
        .unwrap();
    let again = eventually("the agent back", Duration::from_secs(60), || async {
        let o = admin.get(&format!("/admin/cells/{last}")).await["observed"].clone();
        (o["agent_pid"].as_u64()? != agent_pid && o["release"] == "r-good").then_some(o)
    })
    .await;
    assert_eq!(
        again["release_applied_at"].as_str().unwrap(),
        at(last),
        "{again}"
    );

    let report = worker.finish().await;
    println!("tenant worker during the rollout: {report}");
    assert_eq!(report["failures"], 0, "no failed call: {report}");
    assert!(report["runs"].as_u64().unwrap() >= 5, "{report}");

    // The bad release: stopped in ring 0's first batch, rolled back, never in ring 1.
    let bad = admin.start_rollout("r-bad", RINGS).await;
    let mut seen_in_ring1 = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(240);
    let r = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the bad rollout did not end: {}",
            rollout(&admin, &bad).await
        );
        for (cell, obs) in observed(&admin, &early).await {
            if obs["release_target"] == "r-bad" {
                seen_in_ring1.push(cell);
            }
        }
        let r = rollout(&admin, &bad).await;
        if rollout_ended(&r) {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(r["status"], "halted", "{r}");
    assert!(
        seen_in_ring1.is_empty(),
        "ring 1 ran r-bad: {seen_in_ring1:?}"
    );
    assert_eq!(batch_state(&r, 0, 0), "rolled_back", "{r}");
    assert_eq!(r["progress"]["rings"][1]["state"], "pending", "{r}");
    assert!(
        r["progress"]["reason"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "{r}"
    );
    let o = observed(&admin, &all).await;
    for (cell, obs) in &o {
        assert_eq!(
            obs["release"], "r-good",
            "{cell} runs the previous release: {obs}"
        );
    }
    // The runtime on the bad release never serves: the batch fails its health gate at once.
    let failed_at = rollout_event_at(&r, "batch_failed");
    let back_at = rollout_event_at(&r, "rolled_back");
    assert!(
        r["progress"]["reason"]
            .as_str()
            .unwrap()
            .contains("runtime_healthy"),
        "{r}"
    );
    println!(
        "failed gate to previous release running again: {:.1} s",
        (back_at - failed_at).num_milliseconds() as f64 / 1000.0
    );
    let op = admin
        .get(&format!(
            "/operations/{}",
            r["operation_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(op["state"], "failed", "{op}");

    // A finished rollout takes no more signals.
    let (s, _) = admin
        .post(&format!("/admin/rollouts/{bad}/resume"), json!({}))
        .await;
    assert_eq!(s, 409);
}
