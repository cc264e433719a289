//! Two cells of one region with namespace `orders.acme` on one of them, and what tests of
//! moving it between them look at.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{
    Api, CellProcesses, ControlPlane, Creds, EdgeProcess, eventually, namespace_with_generated_ca,
    start_edge,
};

/// Waits for a migration to end (completed, aborted or failed); the migration.
pub async fn migration_end(admin: &Api, id: &str, within: Duration) -> Value {
    eventually("the migration ends", within, || async {
        let m = admin.get(&format!("/admin/migrations/{id}")).await;
        matches!(
            m["state"].as_str(),
            Some("completed" | "aborted" | "failed")
        )
        .then_some(m)
    })
    .await
}

/// The states a migration went through, in order.
pub fn migration_states(m: &Value) -> Vec<String> {
    m["progress"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap().to_string())
        .collect()
}

/// Namespace `orders.acme` on one of two cells of region `local-east`, served through the
/// edge; `source` is its cell, `target` the other.
pub struct TwoCells {
    pub cp: ControlPlane,
    pub admin: Api,
    pub acme: Api,
    pub orders: Value,
    pub creds: Creds,
    pub source: String,
    pub target: String,
    _edge: EdgeProcess,
    _cells: CellProcesses,
    /// Kept after the test (its logs and stores) when `TESSERA_KEEP_TEST_DIRS` is set.
    data: tempfile::TempDir,
}

impl TwoCells {
    pub async fn start(env: &[(&str, &str)]) -> Self {
        let mut data = tempfile::tempdir().unwrap();
        if std::env::var_os("TESSERA_KEEP_TEST_DIRS").is_some() {
            data.disable_cleanup(true);
            eprintln!("test dir kept: {}", data.path().display());
        }
        let cells = CellProcesses(data.path().to_path_buf());
        let cp = ControlPlane::start(data.path(), env).await;
        let admin = Api::admin(&cp);
        admin.create_region("local-east").await;
        let edge = start_edge(&cp, &admin, "local-east").await;
        let one = admin.provision("local-east", 1).await;
        let two = admin.provision("local-east", 1).await;
        let acme = Api::signup(&cp, "acme").await;
        let (orders, creds) =
            namespace_with_generated_ca(&acme, data.path(), "orders", "local-east").await;
        let on_one = admin.get(&format!("/admin/cells/{one}")).await["ingress_address"]
            == orders["endpoint"]["cell_address"];
        let (source, target) = if on_one { (one, two) } else { (two, one) };
        Self {
            cp,
            admin,
            acme,
            orders,
            creds,
            source,
            target,
            _edge: edge,
            _cells: cells,
            data,
        }
    }

    pub fn dir(&self) -> &std::path::Path {
        self.data.path()
    }

    /// Starts moving `orders.acme` to the target cell; the migration's id.
    pub async fn migrate(&self, cutover: &str) -> String {
        let (s, started) = self
            .admin
            .post(
                "/admin/migrations",
                json!({"namespace": "orders.acme", "target_cell": self.target, "cutover": cutover}),
            )
            .await;
        assert_eq!(s, 202, "{started}");
        started["migration"]["id"].as_str().unwrap().to_string()
    }

    pub async fn await_state(&self, id: &str, state: &str) {
        eventually(state, Duration::from_secs(120), || async {
            let m = self.admin.get(&format!("/admin/migrations/{id}")).await;
            (m["state"] == state).then_some(())
        })
        .await;
    }
}

/// SIGKILLs every process of a cell: its agent first, then its runtimes and Litestream.
pub fn kill_cell(dir: &std::path::Path, cell: &str) {
    let cell_dir = dir.join("cells").join(cell);
    let mut pids = crate::processes_mentioning(&cell_dir.to_string_lossy());
    pids.sort_by_key(|pid| {
        !std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains("cell-agent"))
    });
    for pid in pids {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    }
}

/// Every Litestream log of a cell's runtime folders.
pub fn litestream_logs(cells: &std::path::Path, cell: &str) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(cells.join(cell).join("ns"))
        .into_iter()
        .flatten()
        .flatten()
    {
        if let Ok(log) = std::fs::read_to_string(entry.path().join("litestream.log")) {
            out += &format!("--- {}\n{log}", entry.path().display());
        }
    }
    out
}

/// The Litestream processes that run for a runtime folder.
pub fn litestreams(cells: &std::path::Path, cell: &str) -> usize {
    crate::processes_mentioning(&cells.join(cell).join("ns").to_string_lossy())
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let argv0 = c.split(|b| *b == 0).next().unwrap_or_default();
                String::from_utf8_lossy(argv0).ends_with("litestream")
            })
        })
        .count()
}
