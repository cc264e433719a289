//! Cells on the real binaries: provisioning through the admin API, the agent's runtimes and
//! ingress, an agent SIGKILL, a control-plane outage, decommissioning.

use std::time::Duration;

use serde_json::{Value, json};
use tessera_api::agent::{RouteSpec, RouteTargetSpec, RuntimeSpec};
use tessera_pki::{CertificateAuthority, IssuedCert, MasterKey, Usage};
use tessera_platform_pki::PlatformPki;
use tessera_store::Store;
use tessera_system_tests::{
    Api, CellProcesses, ControlPlane, agent_metrics, bin, eventually, processes_mentioning,
    runtime_servers,
};
use tessera_workflows::probe::{ProbeTarget, describe};

async fn store_and_pki(cp: &ControlPlane) -> (Store, PlatformPki) {
    let store = Store::connect(&Store::sqlite_url(&cp.data_dir.join("tessera.db")))
        .await
        .unwrap();
    let key =
        MasterKey::from_base64(&std::fs::read_to_string(cp.data_dir.join("master.key")).unwrap())
            .unwrap();
    (store.clone(), PlatformPki::new(store, key))
}

/// A tenant: a CA of its own and a client certificate from it.
fn tenant() -> (CertificateAuthority, IssuedCert) {
    let ca =
        CertificateAuthority::generate_root("tenant acme", chrono::Duration::days(30)).unwrap();
    let cert = ca
        .issue("worker", &[], Usage::Client, chrono::Duration::days(1))
        .unwrap();
    (ca, cert)
}

/// Adds a runtime and a route for `host` to the cell's desired state, with the ingress
/// certificate covering the host (what the namespace workflow will do).
async fn serve_namespace(
    store: &Store,
    pki: &PlatformPki,
    cell: &str,
    runtime: &str,
    host: &str,
    tenant_ca: &str,
) {
    let mut hosts = vec![format!("{cell}.cells.tessera.localhost"), host.to_string()];
    let doc = store.cell_state(cell).await.unwrap().desired;
    hosts.extend(doc.routes.keys().cloned());
    pki.ensure_ingress_cert(cell, &hosts).await.unwrap();
    store
        .update_desired(cell, None, |d| {
            d.runtimes.insert(
                runtime.into(),
                RuntimeSpec {
                    temporal_namespace: format!("{runtime}.acme"),
                    global_namespace: true,
                    dynamic_config: Default::default(),
                },
            );
            d.routes.insert(
                host.into(),
                RouteSpec {
                    accepted_ca_pem: tenant_ca.into(),
                    target: RouteTargetSpec::Local {
                        runtime: runtime.into(),
                    },
                },
            );
        })
        .await
        .unwrap();
}

/// A real Temporal call (GetSystemInfo, then DescribeNamespace) through the cell ingress, mTLS.
async fn temporal_call(
    ingress: &str,
    host: &str,
    root_pem: &str,
    cert: &IssuedCert,
    namespace: &str,
) -> Result<(), String> {
    let target = ProbeTarget {
        address: ingress,
        host,
        server_root_pem: root_pem,
        temporal_namespace: namespace,
    };
    describe(&target, cert, "tessera-system-test").await
}

async fn cell_detail(admin: &Api, cell: &str) -> Value {
    admin.get(&format!("/admin/cells/{cell}")).await
}

async fn runtime_serving(admin: &Api, cell: &str, runtime: &str) -> Option<Value> {
    let c = cell_detail(admin, cell).await;
    let r = &c["observed"]["runtimes"][runtime];
    (r["health"] == "serving" && c["observed_generation"] == c["desired_generation"])
        .then(|| r.clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cell_provisioned_through_the_admin_api_becomes_healthy_and_decommission_leaves_nothing()
{
    let dir = tempfile::tempdir().unwrap();
    let _cells = CellProcesses(dir.path().to_path_buf());
    // The provider fails its first two provision and destroy calls: the workflow retries.
    let cp = ControlPlane::start(dir.path(), &[("TESSERA_TEST_PROVIDER_FAILURES", "2")]).await;
    let admin = Api::admin(&cp);

    // Bad input changes nothing.
    let (s, v) = admin
        .post("/admin/cells", json!({"region": "nowhere", "ring": 1}))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_argument")),
        "{v}"
    );
    let (s, _) = admin
        .post(
            "/admin/regions",
            json!({"id": "Not A Label", "cloud": "local", "location": "x"}),
        )
        .await;
    assert_eq!(s, 400);
    let (s, r) = admin
        .post(
            "/admin/regions",
            json!({"id": "local-east", "cloud": "local", "location": "here"}),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    assert_eq!(r["status"], "unavailable");
    let (s, _) = admin
        .post(
            "/admin/regions",
            json!({"id": "local-east", "cloud": "local", "location": "here"}),
        )
        .await;
    assert_eq!(s, 409);
    let (s, _) = admin
        .post("/admin/cells", json!({"region": "local-east", "ring": 99}))
        .await;
    assert_eq!(s, 400);
    assert_eq!(admin.get("/admin/cells").await["items"], json!([]));

    // Provisioned with the CLI, as an SRE would: `--wait` follows the operation.
    let out = std::process::Command::new(bin("tessera"))
        .args(["--url", &cp.url, "--api-key", &admin.token, "-o", "json"])
        .args([
            "admin",
            "cells",
            "provision",
            "--region",
            "local-east",
            "--ring",
            "0",
            "--wait",
        ])
        .env("TESSERA_CONFIG", dir.path().join("cli.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let cell = printed["id"].as_str().unwrap().to_string();
    assert_eq!(printed["status"], "healthy", "{printed}");
    assert_eq!(
        cp.log().matches("injected failure").count(),
        2,
        "both failures were retried"
    );
    let c = cell_detail(&admin, &cell).await;
    assert_eq!(c["status"], "healthy", "{c}");
    assert_eq!(c["ring"], 0);
    assert!(c["ingress_address"].as_str().is_some(), "{c}");
    assert_eq!(c["observed"]["cell_id"], cell.as_str());
    assert_eq!(admin.get("/admin/regions").await[0]["status"], "available");
    let cell_dir = dir.path().join("cells").join(&cell);
    let needle = cell_dir.to_string_lossy().to_string();
    let agents: Vec<u32> = processes_mentioning(&needle)
        .into_iter()
        .filter(|p| processes_mentioning("cell-agent").contains(p))
        .collect();
    assert_eq!(agents.len(), 1, "one agent runs");

    // The agent's metrics endpoint serves agent and ingress metrics.
    let text = agent_metrics(&c).await;
    assert!(text.contains("tessera_agent_applied_generation"), "{text}");
    assert!(
        text.contains("tessera_ingress_active_connections"),
        "{text}"
    );

    // A runtime, so decommissioning has something to stop.
    let (store, pki) = store_and_pki(&cp).await;
    let (ca, _) = tenant();
    serve_namespace(
        &store,
        &pki,
        &cell,
        "ns1",
        "ns1.acme.tessera.localhost",
        &ca.cert_pem,
    )
    .await;
    eventually("runtime ns1 serving", Duration::from_secs(90), || {
        runtime_serving(&admin, &cell, "ns1")
    })
    .await;
    assert_eq!(
        runtime_servers(&std::path::Path::new(&needle).join("ns"), "ns1").len(),
        1,
        "one process runs the runtime"
    );

    // A runtime that dies is restarted by the agent.
    let before = runtime_serving(&admin, &cell, "ns1").await.unwrap();
    std::process::Command::new("kill")
        .args(["-9", &before["pid"].as_u64().unwrap().to_string()])
        .status()
        .unwrap();
    let after = eventually("runtime ns1 restarted", Duration::from_secs(90), || async {
        let r = runtime_serving(&admin, &cell, "ns1").await?;
        (r["pid"] != before["pid"]).then_some(r)
    })
    .await;
    assert_eq!(after["restarts"], 1, "{after}");
    assert_eq!(
        after["grpc_address"], before["grpc_address"],
        "same port: routes stay valid"
    );

    admin.decommission(&cell).await;
    assert_eq!(cell_detail(&admin, &cell).await["status"], "decommissioned");
    assert!(!cell_dir.exists(), "the cell's directory is gone");
    assert_eq!(
        processes_mentioning(&needle),
        Vec::<u32>::new(),
        "no process is left"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_sigkill_and_a_control_plane_outage_keep_the_cell_serving() {
    let dir = tempfile::tempdir().unwrap();
    let _cells = CellProcesses(dir.path().to_path_buf());
    let agent_addr = format!("127.0.0.1:{}", tessera_system_tests::free_port());
    let env = [("TESSERA_AGENT_ADDR", agent_addr.as_str())];
    let mut cp = ControlPlane::start(dir.path(), &env).await;
    let admin = Api::admin(&cp);
    let (s, _) = admin
        .post(
            "/admin/regions",
            json!({"id": "local-west", "cloud": "local", "location": "here"}),
        )
        .await;
    assert_eq!(s, 201);
    let cell = admin.provision("local-west", 1).await;
    let ingress = cell_detail(&admin, &cell).await["ingress_address"]
        .as_str()
        .unwrap()
        .to_string();

    let (store, pki) = store_and_pki(&cp).await;
    let root = pki.root_pem().await.unwrap();
    let (ca, worker) = tenant();
    let host = "orders.acme.tessera.localhost";
    serve_namespace(&store, &pki, &cell, "orders", host, &ca.cert_pem).await;
    let before = eventually("runtime orders serving", Duration::from_secs(90), || {
        runtime_serving(&admin, &cell, "orders")
    })
    .await;
    eventually(
        "a Temporal call through the ingress",
        Duration::from_secs(30),
        || async {
            temporal_call(&ingress, host, &root, &worker, "orders.acme")
                .await
                .ok()
        },
    )
    .await;

    // The runtime's store runs in global-namespace mode: registering a global namespace (which
    // a server refuses otherwise) works, through the ingress, with the tenant's certificate.
    let files = dir.path().join("tenant");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("cert.pem"), &worker.chain_pem).unwrap();
    std::fs::write(files.join("key.pem"), &worker.key_pem).unwrap();
    std::fs::write(files.join("ca.pem"), &root).unwrap();
    let out = std::process::Command::new("temporal")
        .args([
            "operator",
            "namespace",
            "create",
            "--global",
            "-n",
            "probe-global",
        ])
        .args(["--address", &ingress, "--tls-server-name", host])
        .arg("--tls-cert-path")
        .arg(files.join("cert.pem"))
        .arg("--tls-key-path")
        .arg(files.join("key.pem"))
        .arg("--tls-ca-path")
        .arg(files.join("ca.pem"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(before["global_namespace"], true);

    // SIGKILL the agent: the provider restarts it, it adopts the runtime (same pid) and serves.
    let agent_pid = cell_detail(&admin, &cell).await["observed"]["agent_pid"]
        .as_u64()
        .unwrap();
    std::process::Command::new("kill")
        .args(["-9", &agent_pid.to_string()])
        .status()
        .unwrap();
    let after = eventually("a new agent reporting", Duration::from_secs(60), || async {
        let c = cell_detail(&admin, &cell).await;
        let pid = c["observed"]["agent_pid"].as_u64()?;
        (pid != agent_pid && c["observed"]["runtimes"]["orders"]["health"] == "serving")
            .then_some(c)
    })
    .await;
    assert_eq!(
        after["observed"]["runtimes"]["orders"]["pid"], before["pid"],
        "the runtime was adopted, not restarted"
    );
    temporal_call(&ingress, host, &root, &worker, "orders.acme")
        .await
        .expect("served after the agent restart");

    // The control plane goes away for a minute: the cell keeps serving.
    cp.kill9();
    let outage = std::time::Instant::now();
    while outage.elapsed() < Duration::from_secs(60) {
        temporal_call(&ingress, host, &root, &worker, "orders.acme")
            .await
            .expect("served while the control plane is down");
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    // Meanwhile the desired state changed (a second namespace): the agent catches up.
    serve_namespace(
        &store,
        &pki,
        &cell,
        "billing",
        "billing.acme.tessera.localhost",
        &ca.cert_pem,
    )
    .await;
    let _cp = ControlPlane::start(dir.path(), &env).await;
    let admin = Api::admin(&_cp);
    eventually("the agent to catch up", Duration::from_secs(120), || {
        runtime_serving(&admin, &cell, "billing")
    })
    .await;
    temporal_call(
        &ingress,
        "billing.acme.tessera.localhost",
        &root,
        &worker,
        "billing.acme",
    )
    .await
    .expect("the new namespace is served");
    temporal_call(&ingress, host, &root, &worker, "orders.acme")
        .await
        .expect("the old one still is");
    let c = cell_detail(&admin, &cell).await;
    assert_eq!(c["observed"]["runtimes"]["orders"]["pid"], before["pid"]);
    let ns_dir = dir.path().join("cells").join(&cell).join("ns");
    assert_eq!(
        ["orders", "billing"]
            .iter()
            .map(|r| runtime_servers(&ns_dir, r).len())
            .sum::<usize>(),
        2,
        "exactly two runtimes"
    );
    let _ = bin("cell-agent");
}

#[tokio::test(flavor = "multi_thread")]
async fn certificates_are_renewed_before_they_expire_and_the_cell_stays_healthy() {
    let dir = tempfile::tempdir().unwrap();
    let _cells = CellProcesses(dir.path().to_path_buf());
    let cp = ControlPlane::start(
        dir.path(),
        &[
            ("TESSERA_TEST_CERT_VALIDITY_SECS", "30"),
            ("TESSERA_CERT_RENEWAL_INTERVAL_SECS", "2"),
        ],
    )
    .await;
    let admin = Api::admin(&cp);
    let (s, _) = admin
        .post(
            "/admin/regions",
            json!({"id": "local-east", "cloud": "local", "location": "here"}),
        )
        .await;
    assert_eq!(s, 201);
    let edge = tessera_system_tests::start_edge(&cp, &admin, "local-east").await;
    let cell = admin.provision("local-east", 1).await;
    let (store, _) = store_and_pki(&cp).await;
    let first = store.cell(&cell).await.unwrap();
    let first_edge = store.edge(&edge.id).await.unwrap();
    let first_identity = first.identity_fingerprint.clone().unwrap();
    let first_ingress = store
        .pki_object(&format!("cell/{cell}/ingress"))
        .await
        .unwrap()
        .unwrap();
    let first_ca = store
        .pki_object(&format!("cell/{cell}/ca"))
        .await
        .unwrap()
        .unwrap();

    eventually(
        "every certificate of the cell renewed",
        Duration::from_secs(60),
        || async {
            let c = store.cell(&cell).await.ok()?;
            let ingress = store
                .pki_object(&format!("cell/{cell}/ingress"))
                .await
                .ok()??;
            let ca = store.pki_object(&format!("cell/{cell}/ca")).await.ok()??;
            (c.identity_fingerprint.as_deref() != Some(first_identity.as_str())
                && ingress.chain_pem != first_ingress.chain_pem
                && ca.chain_pem != first_ca.chain_pem)
                .then_some(())
        },
    )
    .await;
    // Past the first certificates' expiry the agent still reports with a valid identity.
    let expired_at = first.identity_not_after.unwrap();
    eventually(
        "the first identity to expire",
        Duration::from_secs(60),
        || async { (chrono::Utc::now() > expired_at + chrono::Duration::seconds(3)).then_some(()) },
    )
    .await;
    eventually(
        "a report made after the first identity expired",
        Duration::from_secs(30),
        || async {
            let c = cell_detail(&admin, &cell).await;
            let at: chrono::DateTime<chrono::Utc> = c["last_report_at"].as_str()?.parse().ok()?;
            (at > expired_at && c["status"] == "healthy").then_some(())
        },
    )
    .await;
    // So does the edge, on an identity it renewed.
    let edge_expired_at = first_edge.identity_not_after.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let e = admin.get(&format!("/admin/edges/{}", edge.id)).await;
        let at: Option<chrono::DateTime<chrono::Utc>> =
            e["last_report_at"].as_str().and_then(|t| t.parse().ok());
        if at.is_some_and(|at| at > edge_expired_at + chrono::Duration::seconds(2)) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no edge report after its first identity expired: {e}\n{}",
            edge.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_ne!(
        store.edge(&edge.id).await.unwrap().identity_fingerprint,
        first_edge.identity_fingerprint
    );
    // The ingress serves the renewed certificate.
    let c = cell_detail(&admin, &cell).await;
    let now_after: chrono::DateTime<chrono::Utc> = c["observed"]["identity_not_after"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(now_after > expired_at, "{c}");
}

/// `cell-agent run` on a customer's host directory, with one warm runtime and one spare store.
fn run_agent(dir: &std::path::Path) -> std::process::Child {
    std::process::Command::new(bin("cell-agent"))
        .arg("--dir")
        .arg(dir)
        .args([
            "run",
            "--ingress-addr",
            &format!("127.0.0.1:{}", tessera_system_tests::free_port()),
            "--warm-runtimes",
            "1",
            "--spare-stores",
            "1",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Creates the self-hosted region `acme-dc`; returns a join token for a ring-2 cell in it.
async fn self_hosted_join_token(admin: &Api) -> Value {
    let (s, _) = admin
        .post(
            "/admin/regions",
            json!({"id": "acme-dc", "cloud": "self_hosted", "location": "Acme's rack"}),
        )
        .await;
    assert_eq!(s, 201);
    let (s, t) = admin
        .post(
            "/admin/cells/join-tokens",
            json!({"region": "acme-dc", "ring": 2}),
        )
        .await;
    assert_eq!(s, 201, "{t}");
    t
}

#[tokio::test(flavor = "multi_thread")]
async fn a_self_hosted_cell_joins_once_with_its_token() {
    let dir = tempfile::tempdir().unwrap();
    let _cells = CellProcesses(dir.path().to_path_buf());
    let cp = ControlPlane::start(dir.path(), &[]).await;
    let admin = Api::admin(&cp);
    let t = self_hosted_join_token(&admin).await;
    let (s, v) = admin
        .post("/admin/cells", json!({"region": "acme-dc", "ring": 2}))
        .await;
    assert_eq!(s, 400, "self-hosted cells join with a token: {v}");
    let token = t["token"].as_str().unwrap();
    let cell = t["cell_id"].as_str().unwrap();
    let control_plane = t["control_plane"].as_str().unwrap();

    // The customer's host: a directory of its own under the test dir (so the guard cleans up).
    let host = dir.path().join("cells").join("customer-host");
    let join = |dir: &std::path::Path, token: &str| {
        std::process::Command::new(bin("cell-agent"))
            .arg("--dir")
            .arg(dir)
            .args(["join", "--control-plane", control_plane, "--token", token])
            .output()
            .unwrap()
    };
    // A token whose pinned root is not the platform's is refused before anything is sent.
    let mut parts: Vec<&str> = token.split('_').collect();
    let zeros = "0".repeat(64);
    parts[2] = &zeros; // tjt_<secret>_<root sha256>_<url>
    let forged = parts.join("_");
    let out = join(&dir.path().join("elsewhere"), &forged);
    assert!(!out.status.success());
    let out = join(&host, token);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(host.join("identity/key.pem"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "the agent's key is private");
    // The token is spent.
    let out = join(&dir.path().join("cells").join("second-host"), token);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown, used or expired"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut agent = run_agent(&host);
    let c = eventually(
        "the self-hosted cell healthy",
        Duration::from_secs(60),
        || async {
            let c = cell_detail(&admin, cell).await;
            (c["status"] == "healthy").then_some(c)
        },
    )
    .await;
    assert_eq!(c["provider"], "self_hosted");
    assert_eq!(c["ring"], 2);

    // Nothing supervises a self-hosted agent: when it stops reporting, the health watch notices.
    let _ = agent.kill();
    let _ = agent.wait();
    eventually(
        "the cell marked unhealthy",
        Duration::from_secs(60),
        || async { (cell_detail(&admin, cell).await["status"] == "unhealthy").then_some(()) },
    )
    .await;
    let agent = run_agent(&host);
    eventually(
        "the cell healthy again",
        Duration::from_secs(60),
        || async { (cell_detail(&admin, cell).await["status"] == "healthy").then_some(()) },
    )
    .await;

    // The host keeps a warm runtime and a spare store, which a decommission must not leave
    // behind: nothing but the agent supervises them, and the control plane cannot reach the host.
    pools_ready(&admin, cell).await;
    assert!(!servers_on(&host).is_empty(), "the warm runtime runs");

    // Decommissioned: the agent drains the host, the control plane no longer accepts its
    // identity, and the agent, refused, deletes it and exits.
    admin.decommission(cell).await;
    let c = cell_detail(&admin, cell).await;
    assert_eq!(c["status"], "decommissioned", "{c}");
    assert_eq!(c["observed"]["drained"], true, "{c}");
    assert_eq!(
        servers_on(&host),
        Vec::<u32>::new(),
        "no Temporal server is left"
    );
    the_agent_leaves_nothing(agent, &host).await;
    // Started again, it says why it cannot run.
    let out = std::process::Command::new(bin("cell-agent"))
        .arg("--dir")
        .arg(&host)
        .arg("run")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has this cell joined?"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits until the cell reports its warm runtime and spare store (see [`run_agent`]).
async fn pools_ready(admin: &Api, cell: &str) {
    eventually(
        "a warm runtime and a spare store ready",
        Duration::from_secs(120),
        || async {
            let o = cell_detail(admin, cell).await["observed"].clone();
            (o["warm_runtimes"] == 1 && o["spare_stores"] == 1).then_some(())
        },
    )
    .await;
}

/// Processes started from a host directory other than the agent: Temporal servers.
fn servers_on(host: &std::path::Path) -> Vec<u32> {
    let agents = processes_mentioning("cell-agent");
    processes_mentioning(&host.to_string_lossy())
        .into_iter()
        .filter(|p| !agents.contains(p))
        .collect()
}

/// The agent of a decommissioned cell exits 0 by itself, leaving its directory empty and no
/// process behind.
async fn the_agent_leaves_nothing(mut agent: std::process::Child, host: &std::path::Path) {
    let status = eventually("the agent exits by itself", Duration::from_secs(90), || {
        let exited = agent.try_wait().unwrap();
        async move { exited }
    })
    .await;
    assert!(status.success(), "{status}");
    let left: Vec<_> = std::fs::read_dir(host)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        left.is_empty(),
        "no store, identity or cached state is left on the host: {left:?}"
    );
    assert_eq!(servers_on(host), Vec::<u32>::new(), "no process is left");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_self_hosted_agent_away_during_the_decommission_cleans_up_when_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let _cells = CellProcesses(dir.path().to_path_buf());
    let cp = ControlPlane::start(dir.path(), &[]).await;
    let admin = Api::admin(&cp);
    let t = self_hosted_join_token(&admin).await;
    let cell = t["cell_id"].as_str().unwrap();
    let host = dir.path().join("cells").join("customer-host");
    let out = std::process::Command::new(bin("cell-agent"))
        .arg("--dir")
        .arg(&host)
        .args([
            "join",
            "--control-plane",
            t["control_plane"].as_str().unwrap(),
        ])
        .args(["--token", t["token"].as_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut agent = run_agent(&host);
    pools_ready(&admin, cell).await;

    // The agent is down for the whole decommission; its warm runtime runs on without it.
    let _ = agent.kill();
    let _ = agent.wait();
    admin.decommission(cell).await;
    assert_eq!(cell_detail(&admin, cell).await["status"], "decommissioned");
    assert!(!servers_on(&host).is_empty(), "nothing reached the host");

    // Back, it is told the cell is decommissioned, and drains and forgets it all the same.
    the_agent_leaves_nothing(run_agent(&host), &host).await;
}
