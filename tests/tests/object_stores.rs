//! Object stores in buckets on the real binaries: a namespace moves between two cells of a
//! region whose object store is an S3-compatible bucket (moto), its store shipped by real
//! Litestream with short-lived credentials the control plane issues to each cell.

use std::time::Duration;

use serde_json::{Value, json};
use tessera_system_tests::{
    Moto, SteadyWorker, TwoCells, eventually, litestream_logs, migration_end, python_worker,
};

/// What `cell-agent replica-credentials` prints for `runtime` on `cell` (Litestream's
/// `credential_process`), or why it refused.
async fn issued(dir: &std::path::Path, cell: &str, runtime: &str) -> Result<Value, String> {
    let out = tokio::process::Command::new(tessera_system_tests::bin("cell-agent"))
        .arg("--dir")
        .arg(dir.join("cells").join(cell))
        .args(["replica-credentials", "--runtime", runtime])
        .output()
        .await
        .unwrap();
    match out.status.success() {
        true => Ok(serde_json::from_slice(&out.stdout).unwrap()),
        false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bucket_region_ships_the_store_with_short_lived_credentials_issued_per_cell() {
    // The bucket in one moto; STS, enforcing IAM, in another (see tests/src/moto.rs): the
    // control plane's user may only assume the replicas' role.
    let scratch = tempfile::tempdir().unwrap();
    let s3 = Moto::start(scratch.path(), "moto-s3", &["tessera-replicas"]).await;
    let (sts, identity) = Moto::start_sts(scratch.path(), "moto-sts").await;
    let stores = scratch.path().join("object-stores.json");
    let bucket = json!({"local-east": {
        "bucket": "tessera-replicas", "region": "us-east-1", "role_arn": identity.role_arn,
        "endpoint": s3.endpoint, "sts_endpoint": sts.endpoint, "prefix": "east/",
    }});
    std::fs::write(&stores, bucket.to_string()).unwrap();
    let t = TwoCells::start(&[
        ("TESSERA_OBJECT_STORES", stores.to_str().unwrap()),
        ("TESSERA_REPLICA_CREDENTIAL_SECS", "900"),
        ("AWS_ACCESS_KEY_ID", &identity.access_key_id),
        ("AWS_SECRET_ACCESS_KEY", &identity.secret_access_key),
    ])
    .await;
    let (admin, source, target) = (&t.admin, &t.source, &t.target);
    let worker = SteadyWorker::start(&t.orders, &t.creds, t.dir()).await;
    let id = t.migrate("manual").await;
    let cells = t.dir().join("cells");
    let ready = tokio::time::timeout(
        Duration::from_secs(90),
        t.await_state(&id, "ready_for_cutover"),
    )
    .await;
    assert!(
        ready.is_ok(),
        "ready for cutover: {}\n{}\n{}",
        admin.get(&format!("/admin/migrations/{id}")).await,
        litestream_logs(&cells, source),
        litestream_logs(&cells, target)
    );

    // The store streams into the bucket, under the region's prefix.
    let replica = format!("east/migrations/{id}/");
    let keys = s3.keys("tessera-replicas", &replica).await;
    assert!(keys.iter().any(|k| k.ends_with(".ltx")), "{keys:?}");
    assert!(!t.dir().join("object-store/local-east").join(&id).exists());
    // Litestream asked each cell's agent for its credentials, and the agent the control plane.
    let log = tessera_system_tests::strip_ansi(&t.cp.log());
    for cell in [source, target] {
        assert!(
            log.lines()
                .any(|l| l.contains("replica credentials issued") && l.contains(cell.as_str())),
            "credentials issued to {cell}"
        );
    }
    // Each cell gets short-lived credentials for the replica its desired state names, and
    // for nothing else; no agent holds the control plane's identity.
    let replication =
        &admin.get(&format!("/admin/cells/{source}")).await["observed"]["replication"];
    let runtime = replication
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    for cell in [source, target] {
        let c = issued(t.dir(), cell, &runtime).await.expect("credentials");
        assert!(
            c["AccessKeyId"].as_str().unwrap().starts_with("ASIA"),
            "{c}"
        );
        assert_ne!(c["AccessKeyId"], json!(identity.access_key_id));
        assert!(!c["SessionToken"].as_str().unwrap().is_empty(), "{c}");
        let expires = chrono::DateTime::parse_from_rfc3339(c["Expiration"].as_str().unwrap())
            .expect("an RFC 3339 expiration");
        let left = expires
            .signed_duration_since(chrono::Utc::now())
            .num_seconds();
        assert!((60..=910).contains(&left), "{c}");
        let e = issued(t.dir(), cell, "ns-00000000-0000-0000-0000-000000000000")
            .await
            .unwrap_err();
        assert!(e.contains("403") && e.contains("ships no store"), "{e}");
        let pid = admin.get(&format!("/admin/cells/{cell}")).await["observed"]["agent_pid"]
            .as_u64()
            .unwrap();
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
        assert!(
            !String::from_utf8_lossy(&environ).contains("AWS_SECRET_ACCESS_KEY="),
            "the agent of {cell} holds an AWS identity"
        );
    }

    let (s, v) = admin
        .post(&format!("/admin/migrations/{id}/cutover"), json!({}))
        .await;
    assert_eq!(s, 202, "{v}");
    let m = migration_end(admin, &id, Duration::from_secs(300)).await;
    assert_eq!(
        m["state"],
        "completed",
        "{m}\n{}\n{}",
        litestream_logs(&cells, source),
        litestream_logs(&cells, target)
    );
    let report = worker.finish().await;
    println!("tenant worker during the migration: {report}");
    assert_eq!(report["failures"], 0, "no failed call: {report}");
    assert!(report["runs"].as_u64().unwrap() > 0, "{report}");

    // The replica is gone from the bucket once the move is over.
    eventually("the replica removed", Duration::from_secs(60), || async {
        s3.keys("tessera-replicas", &replica)
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    let moved = t.acme.get("/namespaces/orders").await;
    python_worker(&moved, &t.creds, false)
        .await
        .expect("a workflow on the target");
}
