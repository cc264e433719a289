//! Two control planes on one PostgreSQL serve the same cells: a cell provisioned through one is
//! used through the other, and a change written by any process reaches an agent long-polling
//! either one through LISTEN/NOTIFY, not by polling.

use std::path::Path;
use std::time::{Duration, Instant};

use sea_orm::ConnectionTrait;
use tessera_store::Store;
use tessera_system_tests::{
    Api, CellProcesses, ControlPlane, namespace_with_generated_ca, python_worker, start_edge,
};

/// A new database on the test PostgreSQL, or `None` where there is none (a failure on CI).
async fn fresh_database() -> Option<String> {
    let Ok(admin_url) = std::env::var("TESSERA_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must run this test on PostgreSQL: set TESSERA_TEST_POSTGRES_URL"
        );
        eprintln!("TESSERA_TEST_POSTGRES_URL unset: skipped");
        return None;
    };
    let db = format!("tessera_replicas_{}", uuid::Uuid::new_v4().simple());
    Store::connect_raw(&admin_url)
        .await
        .unwrap()
        .execute_unprepared(&format!("CREATE DATABASE {db}"))
        .await
        .unwrap();
    let (base, _) = admin_url.rsplit_once('/').unwrap();
    Some(format!("{base}/{db}"))
}

/// The Temporal address a control plane printed at start.
fn temporal_address(cp: &ControlPlane) -> String {
    cp.log()
        .lines()
        .find_map(|l| l.trim().strip_prefix("Temporal:"))
        .and_then(|l| l.split_whitespace().next())
        .expect("the control plane prints its Temporal address")
        .to_string()
}

/// The generation of the desired state an agent has cached (what it fetched last).
fn cached_generation(cell_dir: &Path) -> u64 {
    std::fs::read(cell_dir.join("desired.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["generation"].as_u64())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_control_planes_on_one_postgres_serve_the_same_agents() {
    let Some(database_url) = fresh_database().await else {
        return;
    };
    let one = tempfile::tempdir().unwrap();
    let two = tempfile::tempdir().unwrap();
    let _cells_one = CellProcesses(one.path().to_path_buf());
    let _cells_two = CellProcesses(two.path().to_path_buf());
    // Both advertise the one edge address, as the control planes of one installation do.
    let edge_addr = format!("127.0.0.1:{}", tessera_system_tests::free_port());
    let cp1 = ControlPlane::start(
        one.path(),
        &[
            ("DATABASE_URL", &database_url),
            ("TESSERA_EDGE_ADDR", &edge_addr),
        ],
    )
    .await;
    let key = std::fs::read_to_string(one.path().join("master.key")).unwrap();
    let temporal = temporal_address(&cp1);
    let cp2 = ControlPlane::start(
        two.path(),
        &[
            ("DATABASE_URL", &database_url),
            ("TESSERA_MASTER_KEY", key.trim()),
            ("TEMPORAL_ADDRESS", &temporal),
            ("TESSERA_EDGE_ADDR", &edge_addr),
        ],
    )
    .await;

    // Provisioned through the first, used through the second.
    let admin1 = Api::admin(&cp1);
    admin1.create_region("local-east").await;
    let _edge = start_edge(&cp1, &admin1, "local-east").await;
    let cell = admin1.provision("local-east", 1).await;
    let admin2 = Api::admin(&cp2);
    let seen = admin2.get(&format!("/admin/cells/{cell}")).await;
    assert_eq!(seen["status"], "healthy", "{seen}");
    let acme = Api::signup(&cp2, "acme").await;
    let (orders, creds) =
        namespace_with_generated_ca(&acme, one.path(), "orders", "local-east").await;
    python_worker(&orders, &creds, false)
        .await
        .expect("the namespace serves through the cell");

    // The agent long-polls one of them (the one whose worker provisioned it). A change written
    // by another process reaches it at once: the long poll falls back to reading again only
    // after 25 s on PostgreSQL, so only a notification can be this fast.
    let cell_dir = [one.path(), two.path()]
        .iter()
        .map(|d| d.join("cells").join(&cell))
        .find(|d| d.join("desired.json").exists())
        .expect("the cell's folder");
    let writer = Store::connect(&database_url).await.unwrap();
    let mut took = Vec::new();
    for _ in 0..5 {
        let before = cached_generation(&cell_dir);
        let generation = writer
            .update_desired(&cell, None, |d| d.cert_serial += 1)
            .await
            .unwrap();
        assert!(generation > before);
        let started = Instant::now();
        while cached_generation(&cell_dir) < generation {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the agent never fetched generation {generation}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        took.push(started.elapsed());
    }
    eprintln!("change → agent: {took:?}");
    took.sort();
    assert!(
        took[took.len() - 1] < Duration::from_secs(2),
        "a notified change reaches the agent in well under the 25 s fallback: {took:?}"
    );
}
