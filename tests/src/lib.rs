//! Helpers for system tests: locate the built binaries, run the control plane as a child
//! process, and poll conditions with deadlines (tests never sleep to wait).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `target/<profile>/<name>`, next to the test executable's `deps/` directory.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not built: run `cargo build --workspace --bins` first (./dev test does)",
        path.display()
    );
    path
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
        let mut cmd = Command::new(bin("tessera-control-plane"));
        cmd.env("TESSERA_DATA_DIR", data_dir)
            .env("TESSERA_AGENT_ADDR", &agent_addr)
            .env("TESSERA_CELL_AGENT_BIN", bin("cell-agent"))
            .env("TESSERA_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env_remove("TEMPORAL_ADDRESS")
            .env_remove("DATABASE_URL")
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
            data_dir: data_dir.to_path_buf(),
        };
        let http = reqwest::Client::new();
        eventually("control plane /healthz", Duration::from_secs(90), || {
            let http = http.clone();
            let url = url.clone();
            async move {
                let ok = http
                    .get(format!("{url}/healthz"))
                    .send()
                    .await
                    .ok()?
                    .status()
                    .is_success();
                ok.then_some(())
            }
        })
        .await;
        cp
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("control-plane.log")).unwrap_or_default()
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
