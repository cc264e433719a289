//! Nothing is lost by mistake, on the real binaries: a desired document this control plane
//! cannot read empties nothing, a removed runtime's store goes to the cell's trash, and a
//! deleted namespace comes back from it with its workflows (real Python SDK through the ingress).

use std::path::{Path, PathBuf};
use std::time::Duration;

use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use tessera_api::agent::DESIRED_SCHEMA_VERSION;
use tessera_pki::{CertificateAuthority, Usage};
use tessera_store::Store;
use tessera_system_tests::{
    Api, CellProcesses, ControlPlane, Creds, EdgeProcess, eventually, python_worker,
    runtime_servers, start_edge, worker_command, write_creds,
};

/// A namespace of `tenant` accepting its own CA, active, with a client certificate from it.
async fn namespace(tenant: &Api, dir: &Path, name: &str) -> (Value, Creds) {
    let ca = CertificateAuthority::generate_root("acme CA", chrono::Duration::days(30)).unwrap();
    let cert = ca
        .issue(
            &format!("{name}-worker"),
            &[],
            Usage::Client,
            chrono::Duration::days(1),
        )
        .unwrap();
    let (s, v) = tenant
        .post(
            "/namespaces",
            json!({"name": name, "region": "local-east", "retention_days": 7,
                   "accepted_client_ca": ca.cert_pem}),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    tenant.fulfilled(&v, Duration::from_secs(180)).await;
    let ns = tenant.get(&format!("/namespaces/{name}")).await;
    let root = ns["endpoint"]["server_root_ca_pem"].as_str().unwrap();
    let creds = write_creds(dir, name, &cert.cert_pem, &cert.key_pem, root);
    (ns, creds)
}

/// Runs a workflow to completion through the ingress; returns its id.
async fn run_workflow(ns: &Value, creds: &Creds) -> String {
    let run = python_worker(ns, creds, false)
        .await
        .expect("the Python worker runs its workflow through the ingress");
    run["workflow_id"].as_str().unwrap().to_string()
}

/// The workflow's status and result as the namespace serves them now.
async fn describe(ns: &Value, creds: &Creds, workflow_id: &str) -> Result<Value, String> {
    let out = worker_command(ns, creds)
        .args(["--describe", workflow_id])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    match out.status.success() {
        true => Ok(serde_json::from_str(stdout.lines().last().unwrap_or("null")).unwrap()),
        false => Err(String::from_utf8_lossy(&out.stderr).to_string()),
    }
}

async fn assert_still_served(ns: &Value, creds: &Creds, workflow_id: &str) {
    let d = describe(ns, creds, workflow_id).await.unwrap();
    assert_eq!(d["status"], "COMPLETED", "{d}");
    assert_eq!(d["result"], "hello, tessera (after a timer)", "{d}");
}

async fn store(cp: &ControlPlane) -> Store {
    Store::connect(&Store::sqlite_url(&cp.data_dir.join("tessera.db")))
        .await
        .unwrap()
}

fn cell_dir(data: &Path, cell: &str) -> PathBuf {
    data.join("cells").join(cell)
}

/// The runtime id serving `temporal_namespace`, from the cell's report.
async fn runtime_of(admin: &Api, cell: &str, temporal_namespace: &str) -> String {
    let c = admin.get(&format!("/admin/cells/{cell}")).await;
    c["observed"]["runtimes"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, r)| r["temporal_namespace"] == temporal_namespace)
        .map(|(id, _)| id.clone())
        .unwrap_or_else(|| panic!("no runtime serves {temporal_namespace}: {c}"))
}

/// The trash entries of `runtime` in a cell's folder.
fn trashed(cell_dir: &Path, runtime: &str) -> Vec<PathBuf> {
    std::fs::read_dir(cell_dir.join("trash"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{runtime}@"))
        })
        .map(|e| e.path())
        .collect()
}

/// A control plane with one ring-1 cell in `local-east`, and acme's namespace `orders` (its own
/// CA) on it, which has run one workflow through the ingress.
struct World {
    // Dropped in this order: the control plane, the cell's processes, then the folder.
    cp: ControlPlane,
    _edge: EdgeProcess,
    _cells: CellProcesses,
    data: tempfile::TempDir,
    admin: Api,
    cell: String,
    acme: Api,
    orders: Value,
    creds: Creds,
    /// The id of the workflow that ran.
    workflow: String,
    /// The runtime serving `orders`.
    runtime: String,
}

impl World {
    async fn new() -> Self {
        let data = tempfile::tempdir().unwrap();
        let _cells = CellProcesses(data.path().to_path_buf());
        let cp = ControlPlane::start(data.path(), &[]).await;
        let admin = Api::admin(&cp);
        admin.create_region("local-east").await;
        let _edge = start_edge(&cp, &admin, "local-east").await;
        let cell = admin.provision("local-east", 1).await;
        let acme = Api::signup(&cp, "acme").await;
        let (orders, creds) = namespace(&acme, data.path(), "orders").await;
        let workflow = run_workflow(&orders, &creds).await;
        let runtime = runtime_of(&admin, &cell, "orders.acme").await;
        World {
            cp,
            _edge,
            _cells,
            data,
            admin,
            cell,
            acme,
            orders,
            creds,
            workflow,
            runtime,
        }
    }

    fn cell_dir(&self) -> PathBuf {
        cell_dir(self.data.path(), &self.cell)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_desired_document_this_control_plane_cannot_read_empties_nothing() {
    let w = World::new().await;
    let World {
        cp,
        admin,
        cell,
        acme,
        orders,
        creds,
        runtime,
        ..
    } = &w;
    let done = &w.workflow;
    let ns_dir = w.cell_dir().join("ns");
    let servers = runtime_servers(&ns_dir, runtime);
    assert_eq!(servers.len(), 1);

    // A newer control plane wrote the document: a higher schema version and a field this one
    // does not know.
    let s = store(cp).await;
    let row = s.cell(cell).await.unwrap();
    let mut newer = row.desired.clone();
    newer["schema_version"] = json!(DESIRED_SCHEMA_VERSION + 1);
    newer["placement_epochs"] = json!({ runtime.clone(): 3 });
    s.replace_desired(cell, row.generation, newer.clone())
        .await
        .unwrap();

    // This control plane refuses to change it: a namespace placed there fails, saying why.
    let (st, v) = acme
        .post(
            "/namespaces",
            json!({"name": "billing", "region": "local-east", "retention_days": 7,
                   "generate_ca": true}),
        )
        .await;
    assert_eq!(st, 202, "{v}");
    let op = acme
        .wait_op(
            v["operation"]["id"].as_str().unwrap(),
            Duration::from_secs(120),
        )
        .await;
    assert_eq!(op["state"], "failed", "{op}");
    assert!(
        op["error"]["message"]
            .as_str()
            .unwrap()
            .contains("schema version"),
        "{op}"
    );
    let after = s.cell(cell).await.unwrap();
    assert_eq!(after.desired, newer, "the document was rewritten");
    assert_eq!(after.generation, row.generation + 1);

    // The agent keeps its runtime (the same process) and the namespace keeps its workflows.
    assert_still_served(orders, creds, done).await;
    assert_eq!(runtime_servers(&ns_dir, runtime), servers);
    let c = admin.get(&format!("/admin/cells/{cell}")).await;
    assert_eq!(
        c["observed"]["runtimes"][&runtime]["health"], "serving",
        "{c}"
    );
    run_workflow(orders, creds).await;

    // Corrupt JSON in the column: the same.
    s.connection()
        .execute_unprepared(&format!(
            "UPDATE cells SET desired = '{{\"runtimes\": {{', generation = generation + 1 WHERE id = '{cell}'"
        ))
        .await
        .unwrap();
    // The agent hears of the new generation and is refused it (503), keeping its cached state.
    let agent_log = w.cell_dir().join("agent.log");
    eventually(
        "the agent to be refused the unreadable document",
        Duration::from_secs(30),
        || async {
            std::fs::read_to_string(&agent_log)
                .unwrap_or_default()
                .contains("cannot be read")
                .then_some(())
        },
    )
    .await;
    assert_still_served(orders, creds, done).await;
    assert_eq!(runtime_servers(&ns_dir, runtime), servers);
    assert!(
        trashed(&w.cell_dir(), runtime).is_empty(),
        "nothing went to the trash"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_removed_store_goes_to_the_trash_and_a_deleted_namespace_comes_back() {
    let w = World::new().await;
    let World {
        cp,
        admin,
        cell,
        acme,
        orders,
        creds,
        runtime,
        ..
    } = &w;
    let first = &w.workflow;
    let dir = w.cell_dir();
    let s = store(cp).await;

    // Removed from the desired state by hand: the store goes to the trash, not away.
    let spec = s.cell_state(cell).await.unwrap().desired.runtimes[runtime].clone();
    s.update_desired(cell, None, |d| {
        d.runtimes.remove(runtime);
    })
    .await
    .unwrap();
    let entry = eventually(
        "the store in the trash",
        Duration::from_secs(60),
        || async { trashed(&dir, runtime).pop() },
    )
    .await;
    assert!(entry.join("store.db").exists(), "{entry:?}");
    assert!(dir.join("ns").join(runtime).symlink_metadata().is_err());
    assert!(runtime_servers(&dir.join("ns"), runtime).is_empty());

    // Put back, marked for restore: the same store serves the same workflows again.
    s.update_desired(cell, None, |d| {
        d.runtimes.insert(runtime.clone(), spec.clone());
        d.restore.insert(runtime.clone());
    })
    .await
    .unwrap();
    eventually(
        "the workflow served again",
        Duration::from_secs(120),
        || async { describe(orders, creds, first).await.ok() },
    )
    .await;
    assert_still_served(orders, creds, first).await;
    assert!(trashed(&dir, runtime).is_empty());
    let second = run_workflow(orders, creds).await;

    // Deleted through the API: its store waits in the trash, which the cell reports.
    let (st, v) = acme.delete("/namespaces/orders").await;
    assert_eq!(st, 202, "{v}");
    acme.fulfilled(&v, Duration::from_secs(120)).await;
    eventually(
        "the store in the trash",
        Duration::from_secs(30),
        || async { (trashed(&dir, runtime).len() == 1).then_some(()) },
    )
    .await;
    eventually("the trash reported", Duration::from_secs(30), || async {
        let c = admin.get(&format!("/admin/cells/{cell}")).await;
        c["observed"]["trash"]
            .as_array()
            .is_some_and(|t| t.iter().any(|e| e["runtime"] == runtime.as_str()))
            .then_some(())
    })
    .await;

    // Restoring is for platform admins, names the Temporal namespace, and refuses what is not
    // there; nothing changes on a refusal.
    let (st, v) = acme
        .post("/admin/namespaces/orders.acme/restore", json!({}))
        .await;
    assert_eq!(st, 403, "{v}");
    let (st, v) = admin
        .post("/admin/namespaces/nothing.acme/restore", json!({}))
        .await;
    assert_eq!(st, 404, "{v}");
    assert_eq!(v["error"]["code"], "not_found", "{v}");
    let (st, _) = acme
        .call(reqwest::Method::GET, "/namespaces/orders", None)
        .await;
    assert_eq!(st, 404);

    // Restored: active again, serving both workflows through the ingress.
    let (st, v) = admin
        .post("/admin/namespaces/orders.acme/restore", json!({}))
        .await;
    assert_eq!(st, 202, "{v}");
    assert_eq!(v["operation"]["kind"], "namespace.restore", "{v}");
    assert_eq!(v["namespace"]["state"], "provisioning", "{v}");
    acme.fulfilled(&v, Duration::from_secs(180)).await;
    let back = acme.get("/namespaces/orders").await;
    assert_eq!(back["state"], "active", "{back}");
    assert_still_served(&back, creds, first).await;
    assert_still_served(&back, creds, &second).await;
    assert!(trashed(&dir, runtime).is_empty());
    // A second restore finds nothing deleted.
    let (st, v) = admin
        .post("/admin/namespaces/orders.acme/restore", json!({}))
        .await;
    assert_eq!(st, 404, "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ca_bundle_the_ingress_cannot_load_fails_only_its_own_namespace() {
    let w = World::new().await;
    let World {
        cp,
        admin,
        cell,
        acme,
        orders,
        ..
    } = &w;

    // A bundle an older API let through and the ingress cannot load.
    let s = store(cp).await;
    let row = s
        .list_namespaces(
            uuid::Uuid::parse_str(orders["account_id"].as_str().unwrap()).unwrap(),
            None,
            None,
        )
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|n| n.name == "orders")
        .unwrap();
    let undecodable = "-----BEGIN CERTIFICATE-----\nMIIBAAAAAAAA\n-----END CERTIFICATE-----\n";
    s.update_namespace(row.id, None, Some(undecodable.into()))
        .await
        .unwrap();
    let (st, v) = acme
        .patch("/namespaces/orders", json!({"retention_days": 8}))
        .await;
    assert_eq!(st, 202, "{v}");
    let op = acme
        .wait_op(
            v["operation"]["id"].as_str().unwrap(),
            Duration::from_secs(120),
        )
        .await;
    assert_eq!(op["state"], "failed", "{op}");
    let reason = op["error"]["message"].as_str().unwrap();
    assert!(
        reason.contains("cannot load the route") && reason.contains("orders.acme"),
        "{op}"
    );
    assert_eq!(acme.get("/namespaces/orders").await["state"], "failed");
    let c = admin.get(&format!("/admin/cells/{cell}")).await;
    let host = orders["endpoint"]["tls_server_name"].as_str().unwrap();
    assert!(
        c["observed"]["route_errors"][host].is_string(),
        "the cell reports the route: {c}"
    );

    // Every other route of the cell keeps changing: a new namespace there becomes active and
    // serves a real worker.
    let (billing, creds) = namespace(acme, w.data.path(), "billing").await;
    assert_eq!(billing["state"], "active");
    run_workflow(&billing, &creds).await;
}
