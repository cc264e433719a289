//! The tenant's side of the system tests: client credentials as files, and the Python
//! `temporalio` worker (`tests/python/tenant_worker.py`) run against a namespace's endpoint.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::eventually;

const WORKER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/python/tenant_worker.py");

/// A client certificate, its key and the server root, as files an SDK reads.
pub struct Creds {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub server_ca: PathBuf,
}

impl Creds {
    /// `<name>.pem`, `<name>.key` and `<name>-server-ca.pem` in `dir`: the files the CLI and
    /// the console download.
    pub fn in_dir(dir: &Path, name: &str) -> Self {
        Creds {
            cert: dir.join(format!("{name}.pem")),
            key: dir.join(format!("{name}.key")),
            server_ca: dir.join(format!("{name}-server-ca.pem")),
        }
    }
}

pub fn write_creds(
    dir: &Path,
    name: &str,
    cert_pem: &str,
    key_pem: &str,
    server_ca: &str,
) -> Creds {
    let c = Creds::in_dir(dir, name);
    std::fs::write(&c.cert, cert_pem).unwrap();
    std::fs::write(&c.key, key_pem).unwrap();
    std::fs::write(&c.server_ca, server_ca).unwrap();
    c
}

/// `python3 tests/python/tenant_worker.py` pointed at a namespace's endpoint with `creds`.
pub fn worker_command(ns: &serde_json::Value, creds: &Creds) -> tokio::process::Command {
    let e = &ns["endpoint"];
    let mut cmd = tokio::process::Command::new("python3");
    cmd.arg(WORKER)
        .args(["--address", e["address"].as_str().unwrap()])
        .args(["--server-name", e["tls_server_name"].as_str().unwrap()])
        .args(["--namespace", e["temporal_namespace"].as_str().unwrap()])
        .arg("--cert")
        .arg(&creds.cert)
        .arg("--key")
        .arg(&creds.key)
        .arg("--server-ca")
        .arg(&creds.server_ca);
    cmd
}

/// The Python tenant worker in `--steady` mode: a worker and a client running workflows back
/// to back through the namespace's endpoint until [`SteadyWorker::finish`].
pub struct SteadyWorker {
    child: tokio::process::Child,
    stdout: tokio::io::BufReader<tokio::process::ChildStdout>,
    stop: PathBuf,
    snapshot: PathBuf,
}

impl SteadyWorker {
    /// Starts it and waits until its worker runs and its client is connected; `dir` holds its
    /// stop file.
    pub async fn start(ns: &serde_json::Value, creds: &Creds, dir: &Path) -> Self {
        Self::spawn(ns, creds, dir, &["--steady"]).await
    }

    /// Order workflows instead, `per_second` of them (an activity, a signal, a 20 s timer and a
    /// child each) and a schedule firing every 5 s; see [`Self::take_snapshot`].
    pub async fn orders(
        ns: &serde_json::Value,
        creds: &Creds,
        dir: &Path,
        per_second: f64,
    ) -> Self {
        Self::spawn(
            ns,
            creds,
            dir,
            &["--orders", &per_second.to_string(), "--stop"],
        )
        .await
    }

    async fn spawn(ns: &serde_json::Value, creds: &Creds, dir: &Path, args: &[&str]) -> Self {
        use tokio::io::AsyncBufReadExt;
        let id = uuid::Uuid::now_v7();
        let stop = dir.join(format!("stop-steady-{id}"));
        let snapshot = dir.join(format!("snapshot-{id}.json"));
        let mut child = worker_command(ns, creds)
            .args(args)
            .arg(&stop)
            .arg("--snapshot")
            .arg(&snapshot)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        tokio::time::timeout(Duration::from_secs(120), stdout.read_line(&mut first))
            .await
            .expect("the steady worker connects")
            .unwrap();
        assert!(
            first.contains("ready"),
            "the steady worker did not start: {first}"
        );
        Self {
            child,
            stdout,
            stop,
            snapshot,
        }
    }

    /// With [`Self::orders`]: the event counts of the workflows closed by now, as the
    /// namespace serves them now (the report compares them with the final histories).
    pub async fn take_snapshot(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut take = self.snapshot.clone().into_os_string();
        take.push(".take");
        std::fs::write(take, "").unwrap();
        eventually("the snapshot", Duration::from_secs(120), || async {
            let text = std::fs::read(&self.snapshot).ok()?;
            serde_json::from_slice(&text).ok()
        })
        .await
    }

    /// Stops it and returns its report: `runs`, `failures`, `errors`, `longest_gap_seconds`,
    /// and the `first` and `last` workflow ids (with [`Self::orders`]: see
    /// `tests/python/tenant_worker.py`).
    pub async fn finish(mut self) -> serde_json::Value {
        use tokio::io::AsyncReadExt;
        std::fs::write(&self.stop, "").unwrap();
        let out = tokio::time::timeout(Duration::from_secs(300), async {
            let mut s = String::new();
            self.stdout.read_to_string(&mut s).await.unwrap();
            self.child.wait().await.unwrap();
            s
        })
        .await
        .expect("the steady worker stops");
        serde_json::from_str(out.lines().last().unwrap_or("null")).unwrap()
    }
}

/// What a tenant would check after [`SteadyWorker::orders`] ran through a move: no call failed;
/// every acknowledged workflow (at least `min_starts`) completed, with exactly one timer, signal,
/// child and completion; the `closed_before` histories of the snapshot are unchanged; and the
/// schedule fired every 5 s for at least 30 s without missing an action.
pub fn assert_orders_unharmed(report: &serde_json::Value, closed_before: usize, min_starts: u64) {
    use serde_json::json;
    assert_eq!(report["failures"], 0, "no failed call: {report}");
    assert_eq!(report["lost"], json!([]), "{report}");
    assert_eq!(report["completed"], report["starts"], "{report}");
    assert!(report["starts"].as_u64().unwrap() >= min_starts, "{report}");
    assert_eq!(report["not_exactly_once"], json!([]), "{report}");
    assert_eq!(report["snapshot"], closed_before, "{report}");
    assert_eq!(report["history_changed"], json!([]), "{report}");
    let span = report["schedule_span_seconds"].as_f64().unwrap();
    assert!(span >= 30.0, "the schedule ran through the move: {report}");
    assert_eq!(
        report["schedule_actions"].as_f64().unwrap(),
        span / 5.0 + 1.0,
        "one action every 5 s: {report}"
    );
    assert_eq!(report["schedule_max_gap_seconds"], 5.0, "{report}");
}

/// Runs the Python tenant worker against a namespace's endpoint: `Ok(json)` when it ran its
/// workflow (or, with `check`, connected), `Err(stderr)` otherwise.
pub async fn python_worker(
    ns: &serde_json::Value,
    creds: &Creds,
    check: bool,
) -> Result<serde_json::Value, String> {
    let mut cmd = worker_command(ns, creds);
    if check {
        cmd.arg("--check");
    }
    let out = cmd.output().await.expect("python3 with temporalio");
    if out.status.success() {
        let stdout = String::from_utf8_lossy(&out.stdout);
        Ok(serde_json::from_str(stdout.lines().last().unwrap_or("null")).unwrap())
    } else {
        Err(format!(
            "{}{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
