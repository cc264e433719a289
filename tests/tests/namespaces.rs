//! Namespaces on the real binaries, used the way a tenant uses them: sign up, create a
//! namespace, fetch a client certificate, and run a Python `temporalio` worker and client
//! through the cell ingress over mTLS.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use tessera_pki::{CertificateAuthority, Usage};
use tessera_system_tests::{
    Api, CellProcesses, ControlPlane, Creds, cli, eventually, processes_mentioning, python_worker,
    runtime_servers, start_edge, write_creds,
};

/// Creates a namespace and waits until its operation is fulfilled; returns the namespace.
async fn create(tenant: &Api, body: Value) -> Value {
    let name = body["name"].as_str().unwrap().to_string();
    let (s, v) = tenant.post("/namespaces", body).await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["namespace"]["state"], "provisioning", "{v}");
    assert_eq!(v["operation"]["kind"], "namespace.create", "{v}");
    let op = tenant.fulfilled(&v, Duration::from_secs(180)).await;
    assert_eq!(op["progress"], 1.0);
    let ns = tenant.get(&format!("/namespaces/{name}")).await;
    assert_eq!(ns["state"], "active", "{ns}");
    ns
}

async fn client_cert(tenant: &Api, ns: &str, cn: &str) -> Value {
    let (s, v) = tenant
        .post(
            &format!("/namespaces/{ns}/client-certs"),
            json!({"common_name": cn, "valid_days": 7}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    v
}

/// The pid and folder of a namespace's runtime, from its cell's report.
async fn runtime_of(admin: &Api, cell: &str, temporal_namespace: &str) -> (String, u64) {
    let c = admin.get(&format!("/admin/cells/{cell}")).await;
    let (id, r) = c["observed"]["runtimes"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, r)| r["temporal_namespace"] == temporal_namespace)
        .unwrap_or_else(|| panic!("no runtime serves {temporal_namespace}: {c}"));
    (id.clone(), r["pid"].as_u64().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn tenants_run_sdk_workers_on_their_namespaces_over_mtls() {
    let data = tempfile::tempdir().unwrap();
    let _cells = CellProcesses(data.path().to_path_buf());
    let cp = ControlPlane::start(data.path(), &[]).await;
    let admin = Api::admin(&cp);
    admin.create_region("local-east").await;
    let _edge = start_edge(&cp, &admin, "local-east").await;
    let cell = admin.provision("local-east", 1).await;
    let acme = Api::signup(&cp, "acme").await;
    let globex = Api::signup(&cp, "globex").await;
    let files = data.path().join("creds");
    std::fs::create_dir_all(&files).unwrap();

    // A generated CA: the control plane issues the client certificate.
    let orders = create(
        &acme,
        json!({"name": "orders", "region": "local-east", "retention_days": 7, "generate_ca": true}),
    )
    .await;
    let endpoint = &orders["endpoint"];
    assert_eq!(endpoint["tls_server_name"], "orders.acme.tessera.localhost");
    assert_eq!(endpoint["temporal_namespace"], "orders.acme");
    assert!(
        !endpoint["address"].as_str().unwrap().is_empty(),
        "{orders}"
    );
    assert_eq!(orders["retention_days"], 7);
    assert_eq!(orders["accepted_client_ca"].as_array().unwrap().len(), 1);
    // The client certificate comes from the CLI, as a tenant would fetch it.
    cli(
        &cp,
        &acme,
        &[
            "namespace",
            "client-cert",
            "orders",
            "--common-name",
            "orders-worker",
            "--valid-days",
            "7",
            "--out-dir",
            files.to_str().unwrap(),
        ],
    );
    let orders_creds = Creds::in_dir(&files, "orders");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&orders_creds.key)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the key file is private");
    let run = python_worker(&orders, &orders_creds, false)
        .await
        .expect("the Python worker runs its workflow through the ingress");
    assert_eq!(run["result"], "hello, tessera (after a timer)", "{run}");
    let events = run["events"].to_string();
    for kind in [
        "activity_task_completed_event_attributes",
        "timer_fired_event_attributes",
        "workflow_execution_completed_event_attributes",
    ] {
        assert!(events.contains(kind), "{kind} missing from {events}");
    }
    // The retention asked for is what the runtime applies.
    let account = acme.get("/account").await;
    assert_eq!(account["usage"]["namespaces"], 1, "{account}");

    // An uploaded CA bundle: the tenant's own CA signs its workers' certificates.
    let own_ca =
        CertificateAuthority::generate_root("acme workers CA", chrono::Duration::days(30)).unwrap();
    let own_cert = own_ca
        .issue(
            "payments-worker",
            &[],
            Usage::Client,
            chrono::Duration::days(1),
        )
        .unwrap();
    // Created with the CLI: `--wait` follows the operation to the end.
    let ca_file = files.join("acme-workers-ca.pem");
    std::fs::write(&ca_file, &own_ca.cert_pem).unwrap();
    let out = cli(
        &cp,
        &acme,
        &[
            "-o",
            "json",
            "namespace",
            "create",
            "payments",
            "--region",
            "local-east",
            "--retention-days",
            "30",
            "--ca-file",
            ca_file.to_str().unwrap(),
            "--wait",
        ],
    );
    assert!(out.contains("payments.acme"), "{out}");
    let payments = acme.get("/namespaces/payments").await;
    assert_eq!(payments["state"], "active", "{payments}");
    assert_eq!(payments["retention_days"], 30);
    assert_eq!(payments["generated_ca"], false);
    let payments_creds = write_creds(
        &files,
        "payments",
        &own_cert.chain_pem,
        &own_cert.key_pem,
        payments["endpoint"]["server_root_ca_pem"].as_str().unwrap(),
    );
    let run = python_worker(&payments, &payments_creds, false)
        .await
        .expect("a worker with a certificate of the uploaded CA runs");
    assert_eq!(run["result"], "hello, tessera (after a timer)");
    // No client certificates from a CA the control plane does not hold.
    let (s, v) = acme
        .post(
            "/namespaces/payments/client-certs",
            json!({"common_name": "x", "valid_days": 1}),
        )
        .await;
    assert_eq!(s, 409, "{v}");
    // The same name twice is refused.
    let (s, v) = acme
        .post(
            "/namespaces",
            json!({"name": "payments", "region": "local-east", "retention_days": 1, "generate_ca": true}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("already_exists"))
    );

    // Another account's certificate is refused, and the other account cannot see it.
    let billing = create(
        &globex,
        json!({"name": "billing", "region": "local-east", "retention_days": 1, "generate_ca": true}),
    )
    .await;
    let cert = client_cert(&globex, "billing", "billing-worker").await;
    let globex_creds = write_creds(
        &files,
        "billing",
        cert["certificate_pem"].as_str().unwrap(),
        cert["private_key_pem"].as_str().unwrap(),
        billing["endpoint"]["server_root_ca_pem"].as_str().unwrap(),
    );
    python_worker(&billing, &globex_creds, true)
        .await
        .expect("globex reaches its own namespace");
    let refused = python_worker(&orders, &globex_creds, true).await;
    assert!(
        refused.is_err(),
        "globex's certificate must not open acme's namespace"
    );
    let refused = python_worker(&billing, &orders_creds, true).await;
    assert!(refused.is_err(), "and acme's must not open globex's");
    let (s, _) = globex
        .call(reqwest::Method::GET, "/namespaces/orders", None)
        .await;
    assert_eq!(s, 404);
    let listed = acme.get("/namespaces").await;
    let names: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["orders", "payments"]);

    // A CA rotation: append a new CA, then drop the generated one.
    let next_ca =
        CertificateAuthority::generate_root("acme next CA", chrono::Duration::days(30)).unwrap();
    let next_cert = next_ca
        .issue(
            "orders-worker-2",
            &[],
            Usage::Client,
            chrono::Duration::days(1),
        )
        .unwrap();
    let generated = acme.get("/namespaces/orders").await;
    let current_pem = {
        // The generated CA's certificate ends the chain of the client certificate we got.
        let chain = cert_chain_last(orders_creds.cert.as_path());
        assert_eq!(
            generated["accepted_client_ca"][0]["fingerprint_sha256"],
            tessera_pki::inspect_pem(&chain).unwrap().fingerprint_sha256
        );
        chain
    };
    let (s, v) = acme
        .patch(
            "/namespaces/orders",
            json!({"accepted_client_ca": format!("{current_pem}{}", next_ca.cert_pem), "retention_days": 14}),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    acme.fulfilled(&v, Duration::from_secs(120)).await;
    let updated = acme.get("/namespaces/orders").await;
    assert_eq!(updated["retention_days"], 14);
    assert_eq!(updated["accepted_client_ca"].as_array().unwrap().len(), 2);
    let next_creds = write_creds(
        &files,
        "orders-next",
        &next_cert.chain_pem,
        &next_cert.key_pem,
        endpoint["server_root_ca_pem"].as_str().unwrap(),
    );
    python_worker(&orders, &next_creds, true)
        .await
        .expect("the appended CA is accepted");
    python_worker(&orders, &orders_creds, true)
        .await
        .expect("the old CA still is, during the rotation");
    let (s, v) = acme
        .patch(
            "/namespaces/orders",
            json!({"accepted_client_ca": next_ca.cert_pem}),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    acme.fulfilled(&v, Duration::from_secs(120)).await;
    assert!(
        python_worker(&orders, &orders_creds, true).await.is_err(),
        "the removed CA is refused"
    );
    python_worker(&orders, &next_creds, true)
        .await
        .expect("the new CA is accepted");

    // Delete: the endpoint refuses connections, the runtime process and its store are gone.
    let (runtime, pid) = runtime_of(&admin, &cell, "orders.acme").await;
    let ns_dir = data.path().join("cells").join(&cell).join("ns");
    assert_eq!(runtime_servers(&ns_dir, &runtime), vec![pid as u32]);
    // The folder itself, or the warm runtime's folder it links to.
    let store_dir = std::fs::canonicalize(ns_dir.join(&runtime)).unwrap();
    assert!(store_dir.join("store.db").exists());
    let (s, v) = acme.delete("/namespaces/orders").await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["namespace"]["state"], "deleting", "{v}");
    let (s, again) = acme.delete("/namespaces/orders").await;
    assert_eq!(s, 409, "a second delete is refused: {again}");
    acme.fulfilled(&v, Duration::from_secs(120)).await;
    let (s, _) = acme
        .call(reqwest::Method::GET, "/namespaces/orders", None)
        .await;
    assert_eq!(s, 404);
    assert!(
        python_worker(&orders, &next_creds, true).await.is_err(),
        "a deleted namespace's endpoint refuses connections"
    );
    eventually(
        "the runtime process to exit",
        Duration::from_secs(30),
        || async { (!std::path::Path::new(&format!("/proc/{pid}")).exists()).then_some(()) },
    )
    .await;
    eventually(
        "the runtime's store to be removed",
        Duration::from_secs(30),
        || async {
            (!store_dir.exists() && ns_dir.join(&runtime).symlink_metadata().is_err()).then_some(())
        },
    )
    .await;
    assert!(processes_mentioning(&store_dir.to_string_lossy()).is_empty());
    assert!(runtime_servers(&ns_dir, &runtime).is_empty());
    let account = acme.get("/account").await;
    assert_eq!(account["usage"]["namespaces"], 1, "{account}");
    // The audit trail keeps what happened.
    let audit = acme.get("/audit-log").await.to_string();
    for action in [
        "namespace.create",
        "namespace.client_cert.create",
        "namespace.update",
        "namespace.delete",
    ] {
        assert!(
            audit.contains(action),
            "{action} missing from the audit log"
        );
    }
}

/// The last certificate of a PEM chain file (the issuing CA).
fn cert_chain_last(path: &Path) -> String {
    let pem = std::fs::read_to_string(path).unwrap();
    let start = pem.rfind("-----BEGIN CERTIFICATE-----").unwrap();
    pem[start..].to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn namespace_creation_survives_a_control_plane_sigkill_at_every_step() {
    let data = tempfile::tempdir().unwrap();
    let _cells = CellProcesses(data.path().to_path_buf());
    let agent_addr = format!("127.0.0.1:{}", tessera_system_tests::free_port());
    let edge_addr = format!("127.0.0.1:{}", tessera_system_tests::free_port());
    let env = [
        ("TESSERA_AGENT_ADDR", agent_addr.as_str()),
        ("TESSERA_EDGE_ADDR", edge_addr.as_str()),
        ("TESSERA_TEST_NAMESPACE_STEP_DELAY_MS", "1500"),
    ];
    let mut cp = ControlPlane::start(data.path(), &env).await;
    let admin = Api::admin(&cp);
    admin.create_region("local-east").await;
    let _edge = start_edge(&cp, &admin, "local-east").await;
    let cell = admin.provision("local-east", 1).await;
    let acme = Api::signup(&cp, "acme").await;
    let (s, v) = acme
        .post(
            "/namespaces",
            json!({"name": "orders", "region": "local-east", "retention_days": 3, "generate_ca": true}),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    let op_id = v["operation"]["id"].as_str().unwrap().to_string();

    // Kill the control plane once in each step the operation reports, until it is done.
    let mut killed_in: Vec<String> = Vec::new();
    let op = loop {
        let (api, op) = {
            let api = Api::with_token(&cp, acme.token.clone());
            let op = eventually(
                "a new step or the end",
                Duration::from_secs(180),
                || async {
                    let op = api.get(&format!("/operations/{op_id}")).await;
                    let step = op["step"].as_str().unwrap_or("").to_string();
                    let ended = matches!(op["state"].as_str(), Some("fulfilled" | "failed"));
                    (ended || (!step.is_empty() && !killed_in.contains(&step))).then_some(op)
                },
            )
            .await;
            (api, op)
        };
        drop(api);
        if matches!(op["state"].as_str(), Some("fulfilled" | "failed")) {
            break op;
        }
        killed_in.push(op["step"].as_str().unwrap().to_string());
        cp.kill9();
        cp = ControlPlane::start(data.path(), &env).await;
    };
    assert_eq!(op["state"], "fulfilled", "{op}\n{}", cp.log());
    assert!(killed_in.len() >= 5, "killed in only {killed_in:?}");
    let acme = Api::with_token(&cp, acme.token.clone());
    let admin = Api::admin(&cp);
    let ns = acme.get("/namespaces/orders").await;
    assert_eq!(ns["state"], "active", "{ns}");

    // Exactly one runtime serves it, and nothing else was left behind.
    let c = admin.get(&format!("/admin/cells/{cell}")).await;
    let runtimes = c["observed"]["runtimes"].as_object().unwrap();
    assert_eq!(runtimes.len(), 1, "{c}");
    let (runtime, _) = runtime_of(&admin, &cell, "orders.acme").await;
    assert_eq!(
        runtime_servers(&data.path().join("cells").join(&cell).join("ns"), &runtime).len(),
        1,
        "one runtime process"
    );
    let dirs: Vec<_> = std::fs::read_dir(data.path().join("cells").join(&cell).join("ns"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        // `.spares` and `.warm-*` hold the stores and servers kept ready for new namespaces.
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert_eq!(dirs, std::slice::from_ref(&runtime));
    let listed = acme.get("/namespaces").await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);

    let cert = client_cert(&acme, "orders", "worker").await;
    let files = data.path().join("creds");
    std::fs::create_dir_all(&files).unwrap();
    let creds = write_creds(
        &files,
        "orders",
        cert["certificate_pem"].as_str().unwrap(),
        cert["private_key_pem"].as_str().unwrap(),
        ns["endpoint"]["server_root_ca_pem"].as_str().unwrap(),
    );
    let run = python_worker(&ns, &creds, false)
        .await
        .expect("the namespace works");
    assert_eq!(run["result"], "hello, tessera (after a timer)");
}
