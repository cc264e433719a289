//! The edge on the real binaries: the one address every namespace endpoint advertises. A real
//! Python `temporalio` worker connects to it with mTLS; the edge passes the connection through
//! to the cell's ingress (where the tenant's mTLS ends), keeps serving when the control plane is
//! gone, shares its port with the region's other edges, and stops when it is removed.

use std::time::Duration;

use serde_json::json;
use tessera_system_tests::{
    Api, CellProcesses, ControlPlane, eventually, namespace_with_generated_ca, python_worker,
    start_edge,
};

#[tokio::test(flavor = "multi_thread")]
async fn clients_reach_every_namespace_through_the_edge_and_keep_reaching_it_without_the_control_plane()
 {
    let data = tempfile::tempdir().unwrap();
    let _cells = CellProcesses(data.path().to_path_buf());
    let agent_addr = format!("127.0.0.1:{}", tessera_system_tests::free_port());
    let env = [("TESSERA_AGENT_ADDR", agent_addr.as_str())];
    let mut cp = ControlPlane::start(data.path(), &env).await;
    let admin = Api::admin(&cp);
    admin.create_region("local-east").await;

    // Bad input changes nothing.
    let (s, v) = admin
        .post("/admin/edges", json!({"region": "nowhere"}))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{v}"
    );
    let acme = Api::signup(&cp, "acme").await;
    let (s, v) = acme
        .post("/admin/edges", json!({"region": "local-east"}))
        .await;
    assert_eq!(s, 403, "{v}");
    let (s, v) = acme
        .post(
            "/self-hosted/regions",
            json!({"id": "acme-dc", "location": "basement"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = admin
        .post("/admin/edges", json!({"region": "acme-dc"}))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_argument")),
        "{v}"
    );
    assert_eq!(admin.get("/admin/edges").await, json!([]));

    // Two edges share the address (SO_REUSEPORT), as the edges of one host do.
    let mut first = start_edge(&cp, &admin, "local-east").await;
    let mut second = start_edge(&cp, &admin, "local-east").await;
    assert_eq!(first.id, "local-east-edge-1");
    assert_eq!(second.id, "local-east-edge-2");

    let cell = admin.provision("local-east", 1).await;
    let (orders, creds) =
        namespace_with_generated_ca(&acme, data.path(), "orders", "local-east").await;
    let detail = admin.get(&format!("/admin/cells/{cell}")).await;
    let endpoint = &orders["endpoint"];
    assert_eq!(endpoint["address"], cp.edge_addr.as_str(), "{orders}");
    assert_eq!(
        endpoint["cell_address"], detail["ingress_address"],
        "{orders}"
    );

    // Both edges come to serve the route to the cell's ingress.
    let edges = eventually(
        "both edges serve the newest routes",
        Duration::from_secs(30),
        || async {
            let edges = admin.get("/admin/edges").await;
            let all = edges.as_array().unwrap();
            let current = all.iter().all(|e| {
                e["status"] == "joined"
                    && e["observed"]["generation"] == e["routes_generation"]
                    && e["routes_generation"].as_u64() > Some(0)
            });
            (all.len() == 2 && current).then_some(edges)
        },
    )
    .await;
    assert_eq!(
        edges[0]["observed"]["address"],
        cp.edge_addr.as_str(),
        "{edges}"
    );
    for _ in 0..3 {
        python_worker(&orders, &creds, false)
            .await
            .expect("a workflow through the edge");
    }
    // The tenant's mTLS ends at the cell ingress, not at the edge: a stranger's certificate is
    // refused there, through the edge.
    let (_, strangers) =
        namespace_with_generated_ca(&acme, data.path(), "payments", "local-east").await;
    python_worker(&orders, &strangers, true)
        .await
        .expect_err("another namespace's certificate is refused");

    // One edge gone: the other serves every new connection.
    first.kill9();
    for _ in 0..3 {
        python_worker(&orders, &creds, false)
            .await
            .expect("a workflow through the remaining edge");
    }

    // Without the control plane, an edge restarted from its cache serves the same routes.
    cp.kill9();
    second.restart(&cp.edge_addr);
    python_worker(&orders, &creds, false)
        .await
        .unwrap_or_else(|e| panic!("the edge serves its cached routes: {e}\n{}", second.log()));

    // Back with the control plane: a removed edge's identity is refused and it stops.
    cp = ControlPlane::start(data.path(), &env).await;
    let admin = Api::admin(&cp);
    let (s, _) = admin.delete(&format!("/admin/edges/{}", second.id)).await;
    assert_eq!(s, 204);
    let status = eventually("the removed edge stops", Duration::from_secs(60), || {
        let exited = second.child.try_wait().unwrap();
        async move { exited }
    })
    .await;
    assert!(!status.success(), "{status}");
    assert!(
        second.log().contains("refuses this edge"),
        "{}",
        second.log()
    );
    let (s, v) = admin.delete(&format!("/admin/edges/{}", second.id)).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edge_join_token_works_once() {
    let data = tempfile::tempdir().unwrap();
    let cp = ControlPlane::start(data.path(), &[]).await;
    let admin = Api::admin(&cp);
    admin.create_region("local-east").await;
    let (s, created) = admin
        .post("/admin/edges", json!({"region": "local-east"}))
        .await;
    assert_eq!(s, 201, "{created}");
    assert_eq!(created["edge"]["status"], "pending");
    let token = created["join_token"].as_str().unwrap();
    let join = |dir: &std::path::Path| {
        std::process::Command::new(tessera_system_tests::bin("tessera-edge"))
            .arg("--dir")
            .arg(dir)
            .args(["join", "--token", token])
            .output()
            .unwrap()
    };
    let one = data.path().join("one");
    let two = data.path().join("two");
    assert!(join(&one).status.success());
    let again = join(&two);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("unknown, used or expired"),
        "{again:?}"
    );
    let e = admin.get("/admin/edges/local-east-edge-1").await;
    assert_eq!(e["status"], "joined", "{e}");
}
