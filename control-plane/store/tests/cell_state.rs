//! Typed cell state on SQLite and PostgreSQL: documents that cannot be read are errors that
//! change nothing, writers with a stale generation lose, and a change wakes its waiters.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::backends;
use serde_json::json;
use tessera_api::agent::{DESIRED_SCHEMA_VERSION, RuntimeSpec};
use tessera_store::{NewCell, Store, StoreError};

async fn cell(s: &Store, id: &str, desired: serde_json::Value) {
    if s.region("local-east").await.is_err() {
        s.create_region("local-east", "local", "here", Utc::now())
            .await
            .unwrap();
    }
    s.create_cell(NewCell {
        id: id.into(),
        region_id: "local-east".into(),
        ring: 1,
        provider: "local".into(),
        status: "healthy".into(),
        labels: json!({}),
        provider_config: json!({}),
        desired,
        created_at: Utc::now(),
    })
    .await
    .unwrap();
}

fn runtime(ns: &str) -> RuntimeSpec {
    RuntimeSpec {
        temporal_namespace: ns.into(),
        global_namespace: true,
        dynamic_config: Default::default(),
    }
}

#[tokio::test]
async fn a_document_from_a_newer_control_plane_is_neither_read_as_empty_nor_rewritten() {
    for b in backends().await {
        let s = &b.store;
        let newer = json!({
            "schema_version": DESIRED_SCHEMA_VERSION + 1,
            "runtimes": {"ns-1": {"temporal_namespace": "orders.acme"}},
            "placement_epochs": {"ns-1": 7},
        });
        cell(s, "newer", newer.clone()).await;
        let err = s.cell_state("newer").await.unwrap_err();
        assert!(
            matches!(err, StoreError::NewerSchema { found, .. } if found == u64::from(DESIRED_SCHEMA_VERSION) + 1),
            "{}: {err}",
            b.name
        );
        let write = s
            .update_desired("newer", None, |d| {
                d.runtimes.clear();
            })
            .await;
        assert!(
            matches!(write, Err(StoreError::NewerSchema { .. })),
            "{}",
            b.name
        );
        let row = s.cell("newer").await.unwrap();
        assert_eq!(row.desired, newer, "{}: the document was rewritten", b.name);
        assert_eq!(row.generation, 1, "{}", b.name);

        // The same version with a field this binary does not know: unreadable, not trimmed.
        let unknown = json!({"runtimes": {}, "placement_epochs": {"ns-1": 2}});
        cell(s, "unknown", unknown.clone()).await;
        let err = s
            .update_desired("unknown", None, |d| d.renew_identity = true)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Unreadable { what: "desired state", reason, .. } if reason.contains("placement_epochs")),
            "{}: {err}",
            b.name
        );
        assert_eq!(s.cell("unknown").await.unwrap().desired, unknown);

        // A value of the wrong shape.
        cell(s, "shape", json!({"runtimes": ["not", "a", "map"]})).await;
        assert!(matches!(
            s.cell_state("shape").await,
            Err(StoreError::Unreadable { .. })
        ));
    }
}

#[tokio::test]
async fn updates_carry_the_schema_version_and_a_stale_generation_loses() {
    for b in backends().await {
        let s = &b.store;
        // A document written before schema versions existed reads as version 1.
        cell(s, "c", json!({})).await;
        let g = s
            .update_desired("c", Some(1), |d| {
                d.runtimes.insert("ns-1".into(), runtime("orders.acme"));
            })
            .await
            .unwrap();
        assert_eq!(g, 2, "{}", b.name);
        let row = s.cell("c").await.unwrap();
        assert_eq!(row.desired["schema_version"], DESIRED_SCHEMA_VERSION);
        assert!(
            matches!(
                s.update_desired("c", Some(1), |d| d.runtimes.clear()).await,
                Err(StoreError::Conflict(_))
            ),
            "{}",
            b.name
        );
        assert_eq!(s.cell_state("c").await.unwrap().desired.runtimes.len(), 1);
        // No change, no new generation.
        assert_eq!(s.update_desired("c", None, |_| {}).await.unwrap(), 2);
        // Without an expected generation a writer retries after losing a race.
        let (a, b2) = tokio::join!(
            s.update_desired("c", None, |d| {
                d.runtimes.insert("ns-2".into(), runtime("a.acme"));
            }),
            s.update_desired("c", None, |d| {
                d.runtimes.insert("ns-3".into(), runtime("b.acme"));
            }),
        );
        let mut gens = [a.unwrap(), b2.unwrap()];
        gens.sort();
        assert_eq!(gens, [3, 4], "{}", b.name);
        assert_eq!(s.cell_state("c").await.unwrap().desired.runtimes.len(), 3);
    }
}

#[tokio::test]
async fn a_change_wakes_the_cells_waiters_and_no_other() {
    for b in backends().await {
        let s = &b.store;
        cell(s, "w1", json!({})).await;
        cell(s, "w2", json!({})).await;
        let mut w1 = s.cell_changes("w1");
        let mut w2 = s.cell_changes("w2");
        // Another handle on the same database (the worker opens its own) wakes the same waiters.
        let other = Store::connect(&b.url).await.unwrap();
        other
            .update_desired("w1", None, |d| d.renew_identity = true)
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(1), w1.changed())
            .await
            .expect("the waiter of w1 was woken")
            .unwrap();
        assert!(!w2.has_changed().unwrap(), "{}", b.name);
        other
            .record_observed("w2", json!({}), 1, None, Utc::now())
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(1), w2.changed())
            .await
            .expect("a report wakes the waiters too")
            .unwrap();
    }
}

/// Two control planes on one PostgreSQL: a change made through one wakes the waiters of the
/// other, through LISTEN/NOTIFY.
#[tokio::test]
async fn on_postgres_a_change_through_one_control_plane_wakes_another() {
    for b in backends().await {
        if b.name != "postgres" {
            continue;
        }
        cell(&b.store, "pg", json!({})).await;
        // A different URL is a different process as far as in-process wake-ups go.
        let replica = Store::connect(&format!("{}?application_name=replica2", b.url))
            .await
            .unwrap();
        let cancel = tokio_util::sync::CancellationToken::new();
        let listener = replica
            .listen_for_cell_changes(cancel.clone())
            .expect("PostgreSQL listens");
        let mut waiter = replica.cell_changes("pg");
        // The listener connects first; it wakes every waiter once it listens.
        tokio::time::timeout(Duration::from_secs(5), waiter.changed())
            .await
            .expect("the listener started")
            .unwrap();
        let started = tokio::time::Instant::now();
        b.store
            .update_desired("pg", None, |d| d.renew_identity = true)
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(2), waiter.changed())
            .await
            .expect("the other control plane's waiter was woken")
            .unwrap();
        eprintln!("woken after {:?}", started.elapsed());
        cancel.cancel();
        listener.await.unwrap();
    }
}

/// SQLite keeps JSON as text: bytes that are not JSON at all read as an unreadable document
/// of that cell, not as a database failure of every caller.
#[tokio::test]
async fn corrupt_json_in_the_column_is_an_unreadable_document() {
    use sea_orm::ConnectionTrait;
    for b in backends().await {
        if b.name != "sqlite" {
            continue;
        }
        let s = &b.store;
        cell(s, "corrupt", json!({})).await;
        s.connection()
            .execute_unprepared(
                "UPDATE cells SET desired = '{\"runtimes\": {' WHERE id = 'corrupt'",
            )
            .await
            .unwrap();
        let err = s.cell_state("corrupt").await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Unreadable { cell, .. } if cell == "corrupt"),
            "{err:?}"
        );
        assert!(matches!(
            s.update_desired("corrupt", None, |d| d.runtimes.clear())
                .await,
            Err(StoreError::Unreadable { .. })
        ));
    }
}
