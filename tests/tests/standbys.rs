//! Standby replicas on the real binaries: a namespace under load gets a standby in its
//! region's other cell and one in another region, both warm Litestream followers of the active
//! store; they stay in sync through a restart of the active cell's agent, and go (copies to the
//! trash, the replica out of the object store) when removed or when the namespace is deleted.

use std::time::Duration;

use serde_json::{Value, json};
use tessera_system_tests::{SteadyWorker, TwoCells, agent_metrics, eventually, litestreams};

/// The namespace's standby in `region`, once `f` holds for it.
async fn replica_when(t: &TwoCells, region: &str, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    eventually(
        &format!("the replica in {region} {what}"),
        Duration::from_secs(120),
        || async {
            let ns = t.acme.get("/namespaces/orders").await;
            ns["replicas"]
                .as_array()?
                .iter()
                .find(|r| r["region"] == region)
                .filter(|r| f(r))
                .cloned()
        },
    )
    .await
}

/// The value of the one series of `name` with `role="<role>"` in a Prometheus text.
fn metric(text: &str, name: &str, role: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(&format!("{name}{{")) && l.contains(&format!("role=\"{role}\"")))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} for a {role}:\n{text}"))
}

fn in_sync(r: &Value) -> bool {
    r["state"] == "in_sync" && r["lag_seconds"].as_f64().is_some_and(|l| l < 1.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn standbys_follow_a_namespace_under_load_through_an_agent_restart_and_go_when_removed() {
    let t = TwoCells::start(&[]).await;
    let (admin, acme) = (&t.admin, &t.acme);
    admin.create_region("local-west").await;
    let west = admin.provision("local-west", 1).await;
    let worker = SteadyWorker::start(&t.orders, &t.creds, t.dir()).await;
    let cells = t.dir().join("cells");

    // Bad input changes nothing.
    let (s, v) = acme
        .post("/namespaces/orders/replicas", json!({"region": "nowhere"}))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_argument")),
        "{v}"
    );
    let (s, v) = acme.delete("/namespaces/orders/replicas/local-west").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{v}"
    );
    assert_eq!(acme.get("/namespaces/orders").await["replicas"], json!([]));

    // Same-region HA: the standby goes to the region's other cell, never the active one.
    let (s, added) = acme
        .post(
            "/namespaces/orders/replicas",
            json!({"region": "local-east"}),
        )
        .await;
    assert_eq!(s, 202, "{added}");
    acme.fulfilled(&added, Duration::from_secs(180)).await;
    let east = replica_when(&t, "local-east", "in sync", in_sync).await;
    assert_eq!(east["cell"], t.target.as_str(), "{east}");
    assert!(east["last_applied_at"].is_string(), "{east}");
    assert_eq!(litestreams(&cells, &t.source), 1, "one replicate");
    assert_eq!(litestreams(&cells, &t.target), 1, "one follower");

    // Neither its cell nor the standby's is drained meanwhile: refused, nothing changes.
    for cell in [&t.source, &t.target] {
        let (s, v) = admin
            .post(&format!("/admin/cells/{cell}/drain"), json!({}))
            .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (409, Some("failed_precondition")),
            "{v}"
        );
        assert_eq!(
            v["error"]["details"]["replicated"],
            json!(["orders.acme"]),
            "{v}"
        );
        assert_eq!(
            admin.get(&format!("/admin/cells/{cell}")).await["status"],
            "healthy"
        );
    }

    // One per region; a replicated namespace does not move.
    let (s, v) = acme
        .post(
            "/namespaces/orders/replicas",
            json!({"region": "local-east"}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("failed_precondition")),
        "{v}"
    );
    let (s, v) = acme
        .post("/namespaces/orders/move", json!({"region": "local-west"}))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("failed_precondition")),
        "{v}"
    );
    assert!(
        v["error"]["message"].as_str().unwrap().contains("replicas"),
        "{v}"
    );

    // Another region: the same replica (one per store), followed from there too.
    let (s, added) = acme
        .post(
            "/namespaces/orders/replicas",
            json!({"region": "local-west"}),
        )
        .await;
    assert_eq!(s, 202, "{added}");
    acme.fulfilled(&added, Duration::from_secs(180)).await;
    let w = replica_when(&t, "local-west", "in sync", in_sync).await;
    assert_eq!(w["cell"], west.as_str(), "{w}");
    assert_eq!(litestreams(&cells, &t.source), 1, "still one replicate");
    assert_eq!(
        litestreams(&cells, &west),
        1,
        "a follower in the other region"
    );

    // The active cell's agent killed: the one it comes back as streams anew, and both standbys
    // are in sync again, applying what the namespace wrote since.
    let restart = chrono::Utc::now();
    let pid = admin.get(&format!("/admin/cells/{}", t.source)).await["observed"]["agent_pid"]
        .as_u64()
        .unwrap();
    let _ = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status();
    let later = |r: &Value| {
        in_sync(r)
            && r["last_applied_at"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .is_some_and(|t| t > restart + chrono::Duration::seconds(2))
    };
    replica_when(&t, "local-east", "in sync after the restart", later).await;
    replica_when(&t, "local-west", "in sync after the restart", later).await;
    assert_eq!(
        litestreams(&cells, &t.source),
        1,
        "one replicate after the restart"
    );
    // Each cell says what it ships, and how far behind, on its Prometheus endpoint.
    let source_metrics =
        agent_metrics(&admin.get(&format!("/admin/cells/{}", t.source)).await).await;
    let stream = metric(
        &source_metrics,
        "tessera_agent_replication_stream",
        "source",
    );
    assert!(
        stream >= 2.0,
        "a new stream after the restart:\n{source_metrics}"
    );
    let standby_metrics = agent_metrics(&admin.get(&format!("/admin/cells/{west}")).await).await;
    assert_eq!(
        metric(
            &standby_metrics,
            "tessera_agent_replication_stream",
            "follower"
        ),
        stream,
        "the standby follows that stream:\n{standby_metrics}"
    );
    let lag = metric(
        &standby_metrics,
        "tessera_agent_replication_lag_seconds",
        "follower",
    );
    assert!((0.0..5.0).contains(&lag), "the standby's lag: {lag}");

    // Removed: its copy goes to its cell's trash and its follower stops; the active cell
    // streams on for the other.
    let (s, removed) = acme.delete("/namespaces/orders/replicas/local-east").await;
    assert_eq!(s, 202, "{removed}");
    acme.fulfilled(&removed, Duration::from_secs(180)).await;
    let ns = acme.get("/namespaces/orders").await;
    let regions: Vec<&str> = ns["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["region"].as_str().unwrap())
        .collect();
    assert_eq!(regions, ["local-west"], "{ns}");
    assert_eq!(litestreams(&cells, &t.target), 0, "the follower stopped");
    assert!(
        std::fs::read_dir(cells.join(&t.target).join("trash"))
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("ns-")),
        "the standby's copy is in its cell's trash"
    );
    assert_eq!(litestreams(&cells, &t.source), 1);

    let report = worker.finish().await;
    println!("tenant worker while replicas came and went: {report}");
    assert_eq!(report["failures"], 0, "no failed call: {report}");

    // Deleting the namespace removes its last standby and the replica itself.
    let (s, deleted) = acme.delete("/namespaces/orders").await;
    assert_eq!(s, 202, "{deleted}");
    acme.fulfilled(&deleted, Duration::from_secs(240)).await;
    for cell in [&t.source, &t.target, &west] {
        assert_eq!(litestreams(&cells, cell), 0, "no Litestream left on {cell}");
    }
    let stores = ["local-east", "local-west"].map(|r| t.dir().join("object-store").join(r));
    let left: Vec<_> = stores
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|d| d.flatten().map(|e| e.path()))
        .collect();
    assert!(
        left.is_empty(),
        "replicas left in the object stores: {left:?}"
    );
}
