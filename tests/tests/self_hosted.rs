//! A tenant's own self-hosted region on the real binaries: its host joins from another network
//! (its own network namespace, dialing the control plane's public agent URL on a veth address),
//! the tenant's namespace runs there and serves a real Python worker, and another tenant can
//! neither see, nor name, nor place into that region (API and CLI).

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use tessera_system_tests::{
    Api, CellProcesses, ControlPlane, SteadyWorker, assert_orders_unharmed, bin, eventually,
    free_port, namespace_with_generated_ca, python_worker, start_edge,
};

/// A network namespace joined to this one by a veth pair: `host_ip` here, `peer_ip` there.
/// Both go when it is dropped (the processes in it are the cell guard's to stop).
struct Netns {
    name: String,
    host_ip: String,
    peer_ip: String,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Netns {
    fn new() -> Self {
        let tag = format!("{:x}", std::process::id() & 0xffff);
        let subnet = 1 + (std::process::id() % 250);
        let ns = Netns {
            name: format!("tessera-{tag}"),
            host_ip: format!("10.213.{subnet}.1"),
            peer_ip: format!("10.213.{subnet}.2"),
        };
        let (here, there) = (format!("vt{tag}a"), format!("vt{tag}b"));
        // What a killed earlier run of the same name left (its veth pair goes with it).
        let _ = Command::new("ip").args(["netns", "del", &ns.name]).status();
        let _ = Command::new("ip").args(["link", "del", &here]).status();
        ip(&["netns", "add", &ns.name]);
        ip(&["link", "add", &here, "type", "veth", "peer", "name", &there]);
        ip(&["link", "set", &there, "netns", &ns.name]);
        ip(&["addr", "add", &format!("{}/30", ns.host_ip), "dev", &here]);
        ip(&["link", "set", &here, "up"]);
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &ns.name, "ip"];
            all.extend_from_slice(args);
            ip(&all);
        };
        inside(&["addr", "add", &format!("{}/30", ns.peer_ip), "dev", &there]);
        inside(&["link", "set", &there, "up"]);
        inside(&["link", "set", "lo", "up"]);
        ns
    }

    /// `cell-agent` with `args`, run inside the namespace.
    fn agent(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name])
            .arg(bin("cell-agent"))
            .args(args);
        cmd
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace deletes the veth pair with it.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// The CLI as `tenant`, answering JSON.
fn cli(cp: &ControlPlane, tenant: &Api, args: &[&str]) -> String {
    let mut all = vec!["--output", "json"];
    all.extend_from_slice(args);
    tessera_system_tests::cli(cp, tenant, &all)
}

fn region_ids(regions: &Value) -> Vec<String> {
    regions
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenants_own_region_joins_from_its_network_and_no_other_tenant_sees_it() {
    let net = Netns::new();
    let data = tempfile::tempdir().unwrap();
    let _cells = CellProcesses(data.path().to_path_buf());
    let port = free_port();
    let public = format!("https://{}:{port}", net.host_ip);
    let cp = ControlPlane::start(
        data.path(),
        &[
            ("TESSERA_AGENT_ADDR", &format!("0.0.0.0:{port}")),
            ("TESSERA_AGENT_PUBLIC_URL", &public),
        ],
    )
    .await;
    let admin = Api::admin(&cp);
    admin.create_region("local-east").await;
    let _edge = start_edge(&cp, &admin, "local-east").await;
    let acme = Api::signup(&cp, "acme").await;
    let globex = Api::signup(&cp, "globex").await;

    // Acme's own region: bad input changes nothing, then it is created.
    let (s, v) = acme
        .post(
            "/self-hosted/regions",
            json!({"id": "Acme DC", "location": "rack 4"}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["details"]["field"].as_str()),
        (400, Some("id")),
        "{v}"
    );
    let (s, v) = acme
        .post(
            "/self-hosted/regions",
            json!({"id": "acme-dc", "location": "rack 4"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["self_hosted"], true, "{v}");
    assert_eq!(v["cloud"], "self_hosted", "{v}");
    let (s, v) = globex
        .post(
            "/self-hosted/regions",
            json!({"id": "acme-dc", "location": "mine"}),
        )
        .await;
    assert_eq!(s, 409, "the id is taken: {v}");

    // Acme sees it among its regions; Globex does not, through the API or the CLI.
    assert!(region_ids(&acme.get("/regions").await).contains(&"acme-dc".to_string()));
    assert_eq!(
        region_ids(&globex.get("/regions").await),
        ["local-east"],
        "globex sees only the platform's regions"
    );
    assert_eq!(globex.get("/self-hosted/regions").await, json!([]));
    let listed: Value = serde_json::from_str(&cli(&cp, &globex, &["regions"])).unwrap();
    assert_eq!(region_ids(&listed), ["local-east"]);
    let own: Value = serde_json::from_str(&cli(&cp, &globex, &["self-hosted", "regions"])).unwrap();
    assert_eq!(own, json!([]));
    assert!(region_ids(&admin.get("/admin/regions").await).contains(&"acme-dc".to_string()));

    // Naming it is like naming a region that does not exist.
    let body = |region: &str| json!({"name": "stolen", "region": region, "retention_days": 1, "generate_ca": true});
    let (s1, unknown) = globex.post("/namespaces", body("no-such-region")).await;
    let (s2, foreign) = globex.post("/namespaces", body("acme-dc")).await;
    assert_eq!((s1, s2), (400, 400), "{unknown} {foreign}");
    assert_eq!(
        unknown["error"]["message"]
            .as_str()
            .unwrap()
            .replace("no-such-region", "X"),
        foreign["error"]["message"]
            .as_str()
            .unwrap()
            .replace("acme-dc", "X"),
    );
    let (s, v) = globex
        .post("/self-hosted/regions/acme-dc/join-tokens", json!({}))
        .await;
    assert_eq!(s, 404, "{v}");
    let (s, v) = acme
        .post("/self-hosted/regions/local-east/join-tokens", json!({}))
        .await;
    assert_eq!(s, 404, "a platform region is not the tenant's: {v}");

    // A host of Acme's, in a network of its own, joins with nothing but the token: it names
    // the control plane's public agent URL, which the endpoint's certificate covers.
    let token: Value =
        serde_json::from_str(&cli(&cp, &acme, &["self-hosted", "join-token", "acme-dc"])).unwrap();
    assert_eq!(token["control_plane"], public.as_str(), "{token}");
    let host = data.path().join("cells").join("acme-host");
    let joined = net
        .agent(&["--dir", host.to_str().unwrap(), "join", "--token"])
        .arg(token["token"].as_str().unwrap())
        .output()
        .unwrap();
    assert!(
        joined.status.success(),
        "{}",
        String::from_utf8_lossy(&joined.stderr)
    );
    let ingress = format!("{}:{}", net.peer_ip, free_port());
    let mut agent = net
        .agent(&[
            "--dir",
            host.to_str().unwrap(),
            "run",
            "--ingress-addr",
            &ingress,
            "--warm-runtimes",
            "1",
            "--spare-stores",
            "1",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let cell = token["cell_id"].as_str().unwrap();
    eventually("acme's cell healthy", Duration::from_secs(90), || async {
        let regions = acme.get("/self-hosted/regions").await;
        let c = &regions[0]["cells"][0];
        (c["id"] == cell && c["status"] == "healthy").then_some(())
    })
    .await;

    // Acme's namespace runs there and serves a real worker through the edge, which passes
    // the connection on to that cell's ingress.
    let (orders, creds) =
        namespace_with_generated_ca(&acme, data.path(), "orders", "acme-dc").await;
    assert_eq!(
        orders["endpoint"]["cell_address"],
        ingress.as_str(),
        "{orders}"
    );
    assert_eq!(
        orders["endpoint"]["address"],
        cp.edge_addr.as_str(),
        "{orders}"
    );
    python_worker(&orders, &creds, false)
        .await
        .expect("the worker runs its workflow on acme's own host");

    // Off its own host to the platform's region and back, live, under load: the store streams
    // between the networks, the edge follows, no call fails.
    let platform_cell = admin.provision("local-east", 1).await;
    // Order workflows (an activity, a signal, a 20 s timer and a child each) and a schedule
    // every 5 s run through both moves; the histories closed before are compared after.
    let worker = SteadyWorker::orders(&orders, &creds, data.path(), 2.0).await;
    tokio::time::sleep(Duration::from_secs(26)).await;
    let closed_before = worker.take_snapshot().await;
    assert!(
        !closed_before.is_empty(),
        "workflows closed before the moves"
    );
    // There through the API, back with `tessera namespace move --wait`.
    for (region, cell) in [("local-east", platform_cell.as_str()), ("acme-dc", cell)] {
        if region == "acme-dc" {
            let out = tokio::task::block_in_place(|| {
                cli(
                    &cp,
                    &acme,
                    &["namespace", "move", "orders", "--region", region, "--wait"],
                )
            });
            let shown: Value = serde_json::from_str(&out).unwrap();
            assert_eq!(shown["region"], region, "{shown}");
        } else {
            let (s, v) = acme
                .post("/namespaces/orders/move", json!({ "region": region }))
                .await;
            assert_eq!(s, 202, "{v}");
            assert_eq!(v["namespace"]["state"], "migrating", "{v}");
            assert_eq!(v["namespace"]["migration"]["target_region"], region, "{v}");
            let op = acme
                .wait_op(
                    v["operation"]["id"].as_str().unwrap(),
                    Duration::from_secs(300),
                )
                .await;
            assert_eq!(op["state"], "fulfilled", "{op}\n{}", cp.log());
        }
        let moved = acme.get("/namespaces/orders").await;
        assert_eq!(moved["region"], region, "{moved}");
        assert_eq!(moved["state"], "active", "{moved}");
        assert!(moved.get("migration").is_none(), "{moved}");
        assert_eq!(
            moved["endpoint"]["cell_address"],
            admin.get(&format!("/admin/cells/{cell}")).await["ingress_address"],
            "{moved}"
        );
        assert_eq!(moved["endpoint"]["address"], orders["endpoint"]["address"]);
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    let report = worker.finish().await;
    println!("tenant worker during the moves: {report}");
    assert_orders_unharmed(&report, closed_before.len(), 40);
    // Globex cannot move a namespace into Acme's region.
    let (s, v) = globex
        .post("/namespaces/orders/move", json!({ "region": "acme-dc" }))
        .await;
    assert_eq!(s, 404, "{v}");

    // Still invisible to Globex, cells included.
    assert_eq!(globex.get("/self-hosted/regions").await, json!([]));
    let _ = agent.kill();
    let _ = agent.wait();
}
