//! Store shipping on real Temporal servers and real Litestream: a runtime in one cell streams
//! its store into a replica, a second cell follows it, and a fence hands the namespace over
//! with every acknowledged workflow start on the second cell's server, also after the
//! source's Litestream was killed while its server wrote (a new stream).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use temporalio_client::{Connection, ConnectionOptions, Url, tonic};
use temporalio_common::protos::temporal::api::common::v1::{WorkflowExecution, WorkflowType};
use temporalio_common::protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_common::protos::temporal::api::workflowservice::v1::{
    DescribeWorkflowExecutionRequest, StartWorkflowExecutionRequest,
};
use tessera_api::agent::{
    ReplicaSpec, ReplicationObserved, ReplicationSpec, ReplicationState, RuntimeHealth, RuntimeSpec,
};
use tessera_cell_agent::replication::Replicator;
use tessera_cell_agent::runtime::Supervisor;
use tessera_system_tests::processes_mentioning;
use tokio::sync::Notify;

const NAMESPACE: &str = "orders.acme";

struct Cell {
    supervisor: Arc<Supervisor>,
    replicator: Replicator,
}

impl Cell {
    fn new(dir: &Path) -> Self {
        let supervisor = Arc::new(
            Supervisor::new(dir, "temporal".into(), Arc::new(Notify::new())).with_spare_stores(0),
        );
        let replicator = Replicator::new(
            "litestream".into(),
            supervisor.clone(),
            Arc::new(Notify::new()),
        );
        Cell {
            supervisor,
            replicator,
        }
    }

    /// Applies a desired state the way the agent does: replication (fences) first.
    fn apply(
        &self,
        runtimes: &BTreeMap<String, RuntimeSpec>,
        replication: &BTreeMap<String, ReplicationSpec>,
    ) {
        self.replicator.apply(replication);
        self.supervisor.apply(runtimes, None);
    }

    fn replication(&self, id: &str) -> Option<ReplicationObserved> {
        self.replicator.observed().remove(id)
    }
}

async fn until<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} did not happen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

type Service = Box<dyn temporalio_client::grpc::WorkflowService>;

async fn client(grpc: &str) -> Service {
    let url = Url::parse(&format!("http://{grpc}")).unwrap();
    let conn = Connection::connect(
        ConnectionOptions::new(url)
            .identity("shipping".to_string())
            .build(),
    )
    .await
    .unwrap();
    conn.workflow_service()
}

async fn start(svc: &mut Service, id: String) {
    svc.start_workflow_execution(tonic::Request::new(StartWorkflowExecutionRequest {
        namespace: NAMESPACE.into(),
        workflow_id: id.clone(),
        workflow_type: Some(WorkflowType {
            name: "Anything".into(),
        }),
        task_queue: Some(TaskQueue {
            name: "q".into(),
            ..Default::default()
        }),
        request_id: id,
        ..Default::default()
    }))
    .await
    .expect("the start is acknowledged");
}

/// The target follows stream `n` of the source's replica until it applies transactions of it.
async fn follow(
    source: &Cell,
    target: &Cell,
    runtimes: &BTreeMap<String, RuntimeSpec>,
    streaming: &BTreeMap<String, ReplicationSpec>,
    replica: &ReplicaSpec,
    n: u64,
) {
    let following = BTreeMap::from([(
        "ns-a".to_string(),
        ReplicationSpec::Follower {
            replica: replica.clone(),
            stream: Some(n),
            until_txid: None,
        },
    )]);
    until(&format!("the target following stream {n}"), 120, || {
        source.apply(runtimes, streaming);
        target.apply(&BTreeMap::new(), &following);
        target
            .replication("ns-a")
            .filter(|r| r.state == ReplicationState::Following && r.stream == Some(n))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fenced_runtime_hands_every_acknowledged_start_to_its_follower() {
    let dir = tempfile::tempdir().unwrap();
    let replica = ReplicaSpec {
        url: format!("file://{}", dir.path().join("object-store/ns-a").display()),
        env: Default::default(),
    };
    let source = Cell::new(&dir.path().join("source"));
    let target = Cell::new(&dir.path().join("target"));
    let runtimes = BTreeMap::from([(
        "ns-a".to_string(),
        RuntimeSpec {
            temporal_namespace: NAMESPACE.into(),
            global_namespace: true,
            dynamic_config: Default::default(),
        },
    )]);
    let none: BTreeMap<String, RuntimeSpec> = BTreeMap::new();

    // The source serves and streams its store; the target follows the replica.
    let streaming = BTreeMap::from([(
        "ns-a".to_string(),
        ReplicationSpec::Source {
            replica: replica.clone(),
            fence: false,
        },
    )]);
    let grpc = until("the source serving", 120, || {
        source.apply(&runtimes, &streaming);
        source
            .supervisor
            .observed()
            .remove("ns-a")
            .filter(|r| r.health == RuntimeHealth::Serving)
            .and_then(|r| r.grpc_address)
    })
    .await;
    let mut svc = client(&grpc).await;
    let mut started = Vec::new();
    for i in 0..20 {
        let id = format!("before-follow-{i}");
        start(&mut svc, id.clone()).await;
        started.push(id);
    }
    let first = until("the source streaming", 60, || {
        source.apply(&runtimes, &streaming);
        source
            .replication("ns-a")
            .filter(|r| r.state == ReplicationState::Streaming)
            .and_then(|r| r.stream)
    })
    .await;
    follow(&source, &target, &runtimes, &streaming, &replica, first).await;
    // Starts keep being acknowledged up to the fence.
    for i in 0..30 {
        let id = format!("while-following-{i}");
        start(&mut svc, id.clone()).await;
        started.push(id);
    }

    // Its Litestream killed from outside while the server writes (as a restarted agent stops
    // the one an earlier agent left): the source begins a new stream with a snapshot of the
    // store as it is, and the follower restores that one.
    let writer = {
        let mut svc = client(&grpc).await;
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..40 {
                let id = format!("while-restarting-{i}");
                start(&mut svc, id.clone()).await;
                ids.push(id);
            }
            ids
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid: i32 = std::fs::read_to_string(dir.path().join("source/ns/ns-a/litestream.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    started.extend(writer.await.unwrap());
    let second = until("a new stream", 60, || {
        source.apply(&runtimes, &streaming);
        source
            .replication("ns-a")
            .filter(|r| r.state == ReplicationState::Streaming)
            .and_then(|r| r.stream)
            .filter(|&n| n > first)
    })
    .await;
    follow(&source, &target, &runtimes, &streaming, &replica, second).await;

    // Fence: the source's server is killed at once and never restarted; the replica gets the
    // last transactions.
    let fenced = BTreeMap::from([(
        "ns-a".to_string(),
        ReplicationSpec::Source {
            replica: replica.clone(),
            fence: true,
        },
    )]);
    let (txid, stream) = until("the source fenced", 60, || {
        source.apply(&runtimes, &fenced);
        source
            .replication("ns-a")
            .filter(|r| r.state == ReplicationState::Fenced)
            .and_then(|r| Some((r.txid?, r.stream?)))
    })
    .await;
    assert_eq!(
        stream, second,
        "the fence's last sync goes into the stream followed"
    );
    let stopped = source.supervisor.observed().remove("ns-a").unwrap();
    assert_eq!(stopped.health, RuntimeHealth::Stopped, "{stopped:?}");
    assert!(
        processes_mentioning(&dir.path().join("source/ns").to_string_lossy())
            .iter()
            .all(
                |pid| !std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                    .unwrap_or_default()
                    .contains("server")
            ),
        "no server runs on the fenced store"
    );

    // The follower catches up to that transaction and stops; a server starts on its store.
    let caught_up = BTreeMap::from([(
        "ns-a".to_string(),
        ReplicationSpec::Follower {
            replica: replica.clone(),
            stream: Some(stream),
            until_txid: Some(txid),
        },
    )]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let r = loop {
        target.apply(&none, &caught_up);
        let r = target.replication("ns-a");
        if let Some(r) = r.clone().filter(|r| r.state == ReplicationState::CaughtUp) {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "the target did not catch up to {txid}: {r:?}\n{}",
            std::fs::read_to_string(dir.path().join("target/ns/ns-a/litestream.log"))
                .unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(r.txid >= Some(txid), "{r:?}");
    let no_shipping = BTreeMap::new();
    let grpc = until("the target serving", 120, || {
        target.apply(&runtimes, &no_shipping);
        target
            .supervisor
            .observed()
            .remove("ns-a")
            .filter(|r| r.health == RuntimeHealth::Serving)
            .and_then(|r| r.grpc_address)
    })
    .await;
    let mut svc = client(&grpc).await;
    for id in &started {
        svc.describe_workflow_execution(tonic::Request::new(DescribeWorkflowExecutionRequest {
            namespace: NAMESPACE.into(),
            execution: Some(WorkflowExecution {
                workflow_id: id.clone(),
                run_id: String::new(),
            }),
        }))
        .await
        .unwrap_or_else(|e| panic!("{id}, acknowledged by the source, is on the target: {e}"));
    }
    // And the target takes new work.
    start(&mut svc, "after-cutover".into()).await;

    // The source stays fenced through a new supervisor (an agent restart).
    let again = Cell::new(&dir.path().join("source"));
    again.apply(&runtimes, &fenced);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let r = again.supervisor.observed().remove("ns-a").unwrap();
    assert_eq!(r.health, RuntimeHealth::Stopped, "{r:?}");

    for pid in processes_mentioning(&dir.path().to_string_lossy()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}
