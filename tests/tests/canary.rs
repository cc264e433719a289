//! The synthetic canary of ring-0 cells, on the real binaries: a cell provisioned in ring 0
//! runs a canary namespace whose workflows the agent drives through its own ingress; it
//! reports success rate and latency, survives its runtime being killed, and goes away with the
//! cell. Cells of other rings run none.

use std::time::Duration;

use serde_json::Value;
use tessera_store::Store;
use tessera_system_tests::{
    Api, CellProcesses, ControlPlane, agent_metrics, eventually, processes_mentioning,
};

async fn cell_detail(admin: &Api, cell: &str) -> Value {
    admin.get(&format!("/admin/cells/{cell}")).await
}

fn u64_of(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ring_0_cell_runs_a_canary_that_survives_its_runtime_being_killed() {
    let dir = tempfile::tempdir().unwrap();
    let _cells = CellProcesses(dir.path().to_path_buf());
    let cp = ControlPlane::start(dir.path(), &[]).await;
    let admin = Api::admin(&cp);
    admin.create_region("local-east").await;
    let cell = admin.provision("local-east", 0).await;

    // The canary is part of the desired state: a runtime, a route on its own host, and the
    // canary document referencing two certificates of the cell's PKI.
    let store = Store::connect(&Store::sqlite_url(&cp.data_dir.join("tessera.db")))
        .await
        .unwrap();
    let desired = store.cell(&cell).await.unwrap().desired;
    let host = format!("canary.{cell}.cells.tessera.localhost");
    assert_eq!(desired["canary"]["host"], host.as_str(), "{desired}");
    assert_eq!(
        desired["runtimes"]["canary"]["temporal_namespace"],
        "canary"
    );
    assert_eq!(
        desired["routes"][host.as_str()]["target"]["runtime"],
        "canary"
    );
    for id in ["canary-server", "canary-client"] {
        let o = store
            .pki_object(&format!("cell/{cell}/{id}"))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{id} issued"));
        assert_eq!(o.cell_id.as_deref(), Some(cell.as_str()));
    }

    let c = eventually(
        "three successful canary runs",
        Duration::from_secs(90),
        || async {
            let c = cell_detail(&admin, &cell).await;
            let k = &c["observed"]["canary"];
            (u64_of(&k["successes"]) >= 3
                && k["success_rate"].as_f64() == Some(1.0)
                && k["latency_p50_ms"].as_f64().is_some_and(|l| l > 0.0))
            .then_some(c)
        },
    )
    .await;
    let k = &c["observed"]["canary"];
    assert_eq!(u64_of(&k["failures"]), 0, "{k}");
    assert!(
        k["latency_p95_ms"].as_f64().unwrap() >= k["latency_p50_ms"].as_f64().unwrap(),
        "{k}"
    );
    // One activity and a 100 ms timer: never faster than the timer.
    assert!(k["latency_p50_ms"].as_f64().unwrap() >= 100.0, "{k}");
    assert!(k["last_success_at"].is_string(), "{k}");
    assert_eq!(c["status"], "healthy", "{c}");

    // The agent exports the canary's results as metrics too.
    let text = agent_metrics(&c).await;
    assert!(
        text.contains("tessera_agent_canary_runs_total{result=\"success\"}"),
        "{text}"
    );
    assert!(
        text.contains("tessera_agent_canary_latency_seconds_bucket"),
        "{text}"
    );

    // Kill the canary's runtime: the agent restarts it, and the canary recovers on its own.
    let runtime = c["observed"]["runtimes"]["canary"].clone();
    let pid = u64_of(&runtime["pid"]);
    assert!(pid > 0, "{runtime}");
    let successes_before = u64_of(&c["observed"]["canary"]["successes"]);
    let killed_at = chrono::Utc::now();
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    let after = eventually(
        "the canary succeeding again on a restarted runtime",
        Duration::from_secs(90),
        || async {
            let c = cell_detail(&admin, &cell).await;
            let r = &c["observed"]["runtimes"]["canary"];
            let k = &c["observed"]["canary"];
            let last_success: chrono::DateTime<chrono::Utc> =
                k["last_success_at"].as_str()?.parse().ok()?;
            (r["health"] == "serving"
                && u64_of(&r["pid"]) != pid
                && last_success > killed_at + chrono::Duration::seconds(1)
                && u64_of(&k["successes"]) >= successes_before + 3)
                .then_some(c)
        },
    )
    .await;
    let k = &after["observed"]["canary"];
    eprintln!("canary after the runtime restart: {k}");
    assert_eq!(
        u64_of(&after["observed"]["runtimes"]["canary"]["restarts"]),
        1
    );
    assert_eq!(
        u64_of(&k["runs"]),
        u64_of(&k["successes"]) + u64_of(&k["failures"]),
        "{k}"
    );
    // Runs in flight when the runtime died failed, or waited for it; either way the window
    // shows it: a failure lowers the success rate, and its error is kept.
    if u64_of(&k["failures"]) > 0 {
        assert!(k["success_rate"].as_f64().unwrap() < 1.0, "{k}");
        assert!(k["last_error"].is_string(), "{k}");
    }

    // A runtime that hangs (SIGSTOP) makes runs fail: the failures are counted, the success
    // rate drops and the error is kept. Once it resumes, the canary recovers by itself.
    let pid = u64_of(&after["observed"]["runtimes"]["canary"]["pid"]).to_string();
    let failures_before = u64_of(&k["failures"]);
    std::process::Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap();
    let hung = eventually(
        "a failed canary run while the runtime hangs",
        Duration::from_secs(60),
        || async {
            let c = cell_detail(&admin, &cell).await;
            let k = c["observed"]["canary"].clone();
            (u64_of(&k["failures"]) > failures_before).then_some(k)
        },
    )
    .await;
    std::process::Command::new("kill")
        .args(["-CONT", &pid])
        .status()
        .unwrap();
    let resumed_at = chrono::Utc::now();
    assert!(hung["success_rate"].as_f64().unwrap() < 1.0, "{hung}");
    assert!(hung["last_error"].is_string(), "{hung}");
    let successes_hung = u64_of(&hung["successes"]);
    eventually(
        "the canary succeeding again after the runtime resumed",
        Duration::from_secs(90),
        || async {
            let c = cell_detail(&admin, &cell).await;
            let k = &c["observed"]["canary"];
            let last_success: chrono::DateTime<chrono::Utc> =
                k["last_success_at"].as_str()?.parse().ok()?;
            (last_success > resumed_at && u64_of(&k["successes"]) >= successes_hung + 3)
                .then_some(())
        },
    )
    .await;

    // A cell of another ring runs no canary.
    let other = admin.provision("local-east", 1).await;
    let desired = store.cell(&other).await.unwrap().desired;
    assert!(
        desired.get("canary").is_none_or(Value::is_null),
        "{desired}"
    );
    let o = cell_detail(&admin, &other).await;
    assert!(o["observed"]["canary"].is_null(), "{o}");
    assert!(o["observed"]["runtimes"]["canary"].is_null(), "{o}");

    // Decommissioning takes the canary with the cell: no process, no certificate left.
    for c in [&cell, &other] {
        admin.decommission(c).await;
    }
    for id in ["canary-server", "canary-client"] {
        assert!(
            store
                .pki_object(&format!("cell/{cell}/{id}"))
                .await
                .unwrap()
                .is_none(),
            "{id} deleted"
        );
    }
    let needle = dir.path().join("cells").to_string_lossy().to_string();
    assert_eq!(
        processes_mentioning(&needle),
        Vec::<u32>::new(),
        "no process is left"
    );
}
