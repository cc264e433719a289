//! Release store tests, on SQLite and (with `TESSERA_TEST_POSTGRES_URL`) PostgreSQL.

mod common;

use chrono::{Duration, Utc};
use common::backends;
use serde_json::json;
use tessera_store::{NewRelease, StoreError};
use uuid::Uuid;

fn new_release(version: &str, minutes_ago: i64) -> NewRelease {
    NewRelease {
        id: Uuid::now_v7(),
        version: version.into(),
        runtime: json!({
            "version": "1.9.1",
            "flags": ["--log-level", "warn"],
            "dynamic_config": {"frontend.rps": 2400, "limit.blobSize.error": [{"value": 1}]}
        }),
        agent: json!({"report_interval_ms": 3000}),
        notes: Some(format!("release {version}")),
        created_at: Utc::now() - Duration::minutes(minutes_ago),
    }
}

#[tokio::test]
async fn releases_are_created_once_and_read_back() {
    for b in backends().await {
        let s = &b.store;
        let new = new_release("2026.11.1", 0);
        let created = s.create_release(new.clone()).await.unwrap();
        assert_eq!(created.version, "2026.11.1", "{}", b.name);
        assert_eq!(created.runtime, new.runtime, "{}: JSON round trip", b.name);
        assert_eq!(created.agent, new.agent, "{}", b.name);
        assert_eq!(
            s.release("2026.11.1").await.unwrap(),
            Some(created.clone()),
            "{}",
            b.name
        );
        assert_eq!(s.release("2026.11.2").await.unwrap(), None, "{}", b.name);

        // A second release with the same version is refused and the first one stays.
        let mut dup = new_release("2026.11.1", 0);
        dup.runtime = json!({"version": "9.9.9"});
        let err = s.create_release(dup).await.unwrap_err();
        assert!(
            matches!(err, StoreError::Conflict(_)),
            "{}: {err:?}",
            b.name
        );
        assert_eq!(
            s.release("2026.11.1").await.unwrap(),
            Some(created),
            "{}",
            b.name
        );
        let none = s
            .create_release(NewRelease {
                notes: None,
                ..new_release("2026.11.2", 0)
            })
            .await
            .unwrap();
        assert_eq!(none.notes, None, "{}", b.name);
    }
}

#[tokio::test]
async fn releases_list_newest_first_in_pages() {
    for b in backends().await {
        let s = &b.store;
        assert!(s.list_releases(None, None).await.unwrap().items.is_empty());
        for (i, v) in ["1.0.0", "1.1.0", "1.2.0", "2.0.0-rc.1", "2.0.0"]
            .iter()
            .enumerate()
        {
            s.create_release(new_release(v, 10 - i as i64))
                .await
                .unwrap();
        }
        let p1 = s.list_releases(None, Some(2)).await.unwrap();
        let versions = |p: &tessera_store::Paged<tessera_store::entity::release::Model>| {
            p.items
                .iter()
                .map(|r| r.version.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(versions(&p1), ["2.0.0", "2.0.0-rc.1"], "{}", b.name);
        let p2 = s.list_releases(p1.next_after, Some(2)).await.unwrap();
        assert_eq!(versions(&p2), ["1.2.0", "1.1.0"], "{}", b.name);
        let p3 = s.list_releases(p2.next_after, Some(2)).await.unwrap();
        assert_eq!(versions(&p3), ["1.0.0"], "{}", b.name);
        assert!(p3.next_after.is_none(), "{}", b.name);
        let all = s.list_releases(None, None).await.unwrap();
        assert_eq!(all.items.len(), 5, "{}", b.name);
        assert!(all.next_after.is_none(), "{}", b.name);
    }
}
