//! Warm runtimes on real Temporal servers: a new namespace claims a server that is already
//! running, can be used at once, survives a restart of its server and of the agent, and leaves
//! nothing behind when removed; the pool refills behind it. A decommission removes everything.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use temporalio_client::{Connection, ConnectionOptions, Url, tonic};
use temporalio_common::protos::temporal::api::common::v1::WorkflowType;
use temporalio_common::protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_common::protos::temporal::api::workflowservice::v1::{
    DescribeNamespaceRequest, StartWorkflowExecutionRequest,
};
use tessera_api::agent::{RuntimeHealth, RuntimeObserved, RuntimeSpec};
use tessera_api::{ReleaseSpec, RuntimeRelease};
use tessera_cell_agent::runtime::Supervisor;
use tessera_system_tests::processes_mentioning;
use tokio::sync::Notify;

fn spec(namespace: &str) -> RuntimeSpec {
    RuntimeSpec {
        temporal_namespace: namespace.into(),
        global_namespace: true,
        dynamic_config: Default::default(),
    }
}

async fn until<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} did not happen");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Applies `desired` until `id` serves; returns what the supervisor reports for it.
async fn serving(
    sup: &Supervisor,
    desired: &BTreeMap<String, RuntimeSpec>,
    id: &str,
) -> RuntimeObserved {
    until(&format!("{id} serving"), 120, || {
        sup.apply(desired, None);
        sup.observed()
            .remove(id)
            .filter(|r| r.health == RuntimeHealth::Serving)
    })
    .await
}

fn warm_dirs(ns: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(ns) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".warm-")
        })
        .collect();
    out.sort();
    out
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

fn pid_of(dir: &Path) -> u32 {
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("runtime.json")).unwrap()).unwrap();
    record["pid"].as_u64().unwrap() as u32
}

/// The namespace is registered and takes a workflow (no worker needed to accept it).
async fn usable(grpc_address: &str, namespace: &str) {
    let url = Url::parse(&format!("http://{grpc_address}")).unwrap();
    let conn = Connection::connect(
        ConnectionOptions::new(url)
            .identity("warm-test".to_string())
            .build(),
    )
    .await
    .unwrap();
    let mut svc = conn.workflow_service();
    svc.describe_namespace(tonic::Request::new(DescribeNamespaceRequest {
        namespace: namespace.into(),
        ..Default::default()
    }))
    .await
    .expect("the claimed runtime knows its namespace");
    svc.start_workflow_execution(tonic::Request::new(StartWorkflowExecutionRequest {
        namespace: namespace.into(),
        workflow_id: format!("wf-{}", uuid_ish()),
        workflow_type: Some(WorkflowType {
            name: "Anything".into(),
        }),
        task_queue: Some(TaskQueue {
            name: "q".into(),
            ..Default::default()
        }),
        request_id: uuid_ish(),
        ..Default::default()
    }))
    .await
    .expect("the claimed runtime takes workflows in its namespace at once");
}

fn uuid_ish() -> String {
    format!(
        "{:x}",
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
    )
}

/// Kills whatever still runs from `dir` (a spare store being prepared when the test ends).
fn kill_leftovers(dir: &Path) {
    for pid in processes_mentioning(&dir.to_string_lossy()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_namespace_claims_a_warm_runtime_and_the_pool_refills() {
    let dir = tempfile::tempdir().unwrap();
    let ns = dir.path().join("ns");
    let new = || {
        Supervisor::new(dir.path(), "temporal".into(), Arc::new(Notify::new()))
            .with_warm_runtimes(2)
    };
    let sup = new();
    let empty = BTreeMap::new();
    until("two warm runtimes", 120, || {
        sup.apply(&empty, None);
        (sup.warm_ready() == 2).then_some(())
    })
    .await;
    let warm_before = warm_dirs(&ns);
    assert_eq!(warm_before.len(), 2);
    let warm_pids: Vec<u32> = warm_before.iter().map(|d| pid_of(d)).collect();

    // A new runtime is one of the warm servers, serving its namespace right away.
    let desired = BTreeMap::from([("ns-a".to_string(), spec("orders.acme"))]);
    let claimed_at = Instant::now();
    let a = serving(&sup, &desired, "ns-a").await;
    let took = claimed_at.elapsed();
    let pid = a.pid.unwrap();
    assert!(
        warm_pids.contains(&pid),
        "ns-a runs on a warm server ({pid} not in {warm_pids:?})"
    );
    assert!(took < Duration::from_secs(10), "claiming took {took:?}");
    let link = std::fs::read_link(ns.join("ns-a")).expect("ns/ns-a links to the warm folder");
    assert!(link.to_string_lossy().starts_with(".warm-"), "{link:?}");
    assert!(a.global_namespace);
    usable(a.grpc_address.as_deref().unwrap(), "orders.acme").await;

    // The pool refills to two unclaimed warm runtimes.
    until("the pool refilled", 120, || {
        sup.apply(&desired, None);
        (sup.warm_ready() == 2).then_some(())
    })
    .await;
    assert_eq!(warm_dirs(&ns).len(), 3);

    // Its server dies: it is restarted through the link, on the same store.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let restarted = until("ns-a restarted", 120, || {
        sup.apply(&desired, None);
        sup.observed()
            .remove("ns-a")
            .filter(|r| r.health == RuntimeHealth::Serving && r.pid != Some(pid))
    })
    .await;
    assert_eq!(restarted.restarts, 1);
    usable(restarted.grpc_address.as_deref().unwrap(), "orders.acme").await;

    // A new agent adopts the runtime and the warm pool: no process is started or lost.
    sup.detach().await;
    let before: Vec<u32> = warm_dirs(&ns).iter().map(|d| pid_of(d)).collect();
    let sup = new();
    let adopted = serving(&sup, &desired, "ns-a").await;
    assert_eq!(
        adopted.pid, restarted.pid,
        "the runtime was adopted, not restarted"
    );
    until("the warm runtimes adopted", 60, || {
        sup.apply(&desired, None);
        (sup.warm_ready() == 2).then_some(())
    })
    .await;
    let after: Vec<u32> = warm_dirs(&ns).iter().map(|d| pid_of(d)).collect();
    assert_eq!(before, after, "the same servers, none started again");

    // Removing the runtime removes its server, the warm folder and the link.
    let claimed = std::fs::canonicalize(ns.join("ns-a")).unwrap();
    let a_pid = adopted.pid.unwrap();
    until("ns-a removed", 60, || {
        sup.apply(&empty, None);
        (!alive(a_pid) && !claimed.exists() && ns.join("ns-a").symlink_metadata().is_err())
            .then_some(())
    })
    .await;

    // An agent configured without warm runtimes stops and removes the pool.
    sup.detach().await;
    let pool: Vec<u32> = warm_dirs(&ns).iter().map(|d| pid_of(d)).collect();
    let sup = Supervisor::new(dir.path(), "temporal".into(), Arc::new(Notify::new()));
    until("the warm pool removed", 60, || {
        sup.apply(&empty, None);
        (warm_dirs(&ns).is_empty() && pool.iter().all(|p| !alive(*p))).then_some(())
    })
    .await;
    sup.detach().await;
    kill_leftovers(dir.path());
}

fn release_of(dir: &Path) -> Option<String> {
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("runtime.json")).ok()?).ok()?;
    r["release"].as_str().map(str::to_string)
}

/// Waits for exactly one warm runtime, started on `release`; returns its pid.
async fn warm_on(sup: &Supervisor, ns: &Path, release: Option<&ReleaseSpec>) -> u32 {
    let want = release.map(|r| r.version.clone());
    let empty = BTreeMap::new();
    until("a warm runtime on the release", 120, || {
        sup.apply(&empty, release);
        let dirs = warm_dirs(ns);
        (sup.warm_ready() == 1 && dirs.len() == 1 && release_of(&dirs[0]) == want)
            .then(|| pid_of(&dirs[0]))
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn warm_runtimes_follow_the_cells_release() {
    let dir = tempfile::tempdir().unwrap();
    let ns = dir.path().join("ns");
    let sup = Supervisor::new(dir.path(), "temporal".into(), Arc::new(Notify::new()))
        .with_warm_runtimes(1);
    let empty = BTreeMap::new();
    let before = warm_on(&sup, &ns, None).await;

    // The cell moves to r1: the warm runtime on no release is replaced by one on r1.
    let r1 = ReleaseSpec {
        version: "r1".into(),
        runtime: RuntimeRelease {
            binary: None,
            version: tessera_system_tests::temporal_cli_version(),
            flags: vec![],
            dynamic_config: Default::default(),
        },
        agent: Default::default(),
    };
    let after = warm_on(&sup, &ns, Some(&r1)).await;
    assert_ne!(before, after);
    until("the old warm runtime stopped", 30, || {
        (!alive(before)).then_some(())
    })
    .await;

    // A namespace on r1 claims it.
    let desired = BTreeMap::from([("ns-b".to_string(), spec("billing.acme"))]);
    let b = until("ns-b serving on r1", 120, || {
        sup.apply(&desired, Some(&r1));
        sup.observed()
            .remove("ns-b")
            .filter(|r| r.health == RuntimeHealth::Serving)
    })
    .await;
    assert_eq!(
        b.pid,
        Some(after),
        "ns-b runs on the warm server started on r1"
    );
    assert_eq!(b.release.as_deref(), Some("r1"));
    usable(b.grpc_address.as_deref().unwrap(), "billing.acme").await;

    until("ns-b removed", 60, || {
        sup.apply(&empty, Some(&r1));
        (!alive(after)).then_some(())
    })
    .await;
    sup.detach().await;
    kill_leftovers(dir.path());
}

/// Whether anything under `dir` is left: files, or processes started from it.
fn nothing_left(dir: &Path) -> bool {
    let empty = std::fs::read_dir(dir).map_or(true, |mut e| e.next().is_none());
    empty && processes_mentioning(&dir.to_string_lossy()).is_empty()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_decommission_leaves_no_runtime_warm_runtime_or_spare_store() {
    let dir = tempfile::tempdir().unwrap();
    let ns = dir.path().join("ns");
    let new = || {
        Supervisor::new(dir.path(), "temporal".into(), Arc::new(Notify::new()))
            .with_warm_runtimes(1)
            .with_spare_stores(1)
    };
    let sup = new();
    let desired = BTreeMap::from([("ns-a".to_string(), spec("orders.acme"))]);
    let a = serving(&sup, &desired, "ns-a").await;
    until("a warm runtime and a spare store ready", 120, || {
        sup.apply(&desired, None);
        (sup.warm_ready() == 1 && sup.spares_ready() == 1).then_some(())
    })
    .await;
    let warm = pid_of(&warm_dirs(&ns)[0]);
    assert!(
        !sup.drained(),
        "a cell that is not decommissioned is never drained"
    );

    // Decommissioned: the desired state lists no runtime, and the pools go too.
    sup.decommission();
    let empty = BTreeMap::new();
    until("drained", 60, || {
        sup.apply(&empty, None);
        sup.drained().then_some(())
    })
    .await;
    assert!(!alive(a.pid.unwrap()) && !alive(warm));
    assert!(
        nothing_left(&ns),
        "{:?}",
        std::fs::read_dir(&ns).map(|e| e.count())
    );
    assert_eq!((sup.warm_ready(), sup.spares_ready()), (0, 0));
    sup.detach().await;

    // An agent restarted during a decommission removes what the earlier one left running.
    let sup = new();
    until("a warm runtime ready", 120, || {
        sup.apply(&empty, None);
        (sup.warm_ready() == 1).then_some(())
    })
    .await;
    sup.detach().await;
    let left = pid_of(&warm_dirs(&ns)[0]);
    let sup = new();
    sup.decommission();
    until("drained after a restart", 60, || {
        sup.apply(&empty, None);
        sup.drained().then_some(())
    })
    .await;
    assert!(!alive(left), "the earlier agent's warm runtime is stopped");
    assert!(nothing_left(&ns));
    sup.detach().await;
    kill_leftovers(dir.path());
}
