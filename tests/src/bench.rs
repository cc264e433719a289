//! What the migration and standby benchmarks share: namespace `orders.bench` on one of two
//! cells of region `bench`, its store grown first, under a steady load of workflow starts.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::{
    Api, CellProcesses, ControlPlane, Creds, EdgeProcess, namespace_with_generated_ca, start_edge,
    worker_command,
};

pub struct LoadedNamespace {
    pub cp: ControlPlane,
    pub admin: Api,
    pub tenant: Api,
    pub ns: Value,
    pub creds: Creds,
    /// The region's two cells.
    pub cells: [String; 2],
    /// The load client: starts workflows until `stop` exists, then prints its report.
    pub load: tokio::process::Child,
    pub stop: PathBuf,
    _edge: EdgeProcess,
    _cells: CellProcesses,
    pub data: tempfile::TempDir,
}

impl LoadedNamespace {
    /// Grows the store by about `fill_mb` MB, then starts `rate` workflows a second (the load
    /// client's stdout: `report`) and lets it run 5 s.
    pub async fn start(fill_mb: u32, rate: f64, report: std::process::Stdio) -> Self {
        let data = tempfile::tempdir().unwrap();
        let cells_guard = CellProcesses(data.path().to_path_buf());
        let cp = ControlPlane::start(data.path(), &[]).await;
        let admin = Api::admin(&cp);
        admin.create_region("bench").await;
        let edge = start_edge(&cp, &admin, "bench").await;
        let cells = [
            admin.provision("bench", 1).await,
            admin.provision("bench", 1).await,
        ];
        let tenant = Api::signup(&cp, "bench").await;
        let (ns, creds) =
            namespace_with_generated_ca(&tenant, data.path(), "orders", "bench").await;
        eprintln!("filling the store with about {fill_mb} MB");
        let filled = worker_command(&ns, &creds)
            .args(["--fill", &fill_mb.to_string()])
            .output()
            .await
            .unwrap();
        assert!(filled.status.success(), "{filled:?}");
        let stop = data.path().join("stop-load");
        let load = worker_command(&ns, &creds)
            .args(["--load", &rate.to_string(), "--stop"])
            .arg(&stop)
            .stdout(report)
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        Self {
            cp,
            admin,
            tenant,
            ns,
            creds,
            cells,
            load,
            stop,
            _edge: edge,
            _cells: cells_guard,
            data,
        }
    }
}
