//! The global-namespace switch on a store shaped like Temporal's (`cluster_metadata_info`).

use sqlx::{Connection, Row};
use tessera_cell_agent::runtime::enable_global_namespace;

#[tokio::test]
async fn appends_the_flag_once_and_bumps_the_version() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query(
        "CREATE TABLE cluster_metadata_info (metadata_partition INT NOT NULL, cluster_name VARCHAR(255) NOT NULL, \
         data MEDIUMBLOB NOT NULL, data_encoding VARCHAR(16) NOT NULL, version BIGINT NOT NULL, \
         PRIMARY KEY(metadata_partition, cluster_name))",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    // A real prefix: field 1 (cluster name "active"), then field 8 = 1.
    let original = b"\x0a\x06active\x40\x01".to_vec();
    sqlx::query("INSERT INTO cluster_metadata_info VALUES (0, 'active', ?, 'Proto3', 1)")
        .bind(&original)
        .execute(&mut conn)
        .await
        .unwrap();

    enable_global_namespace(&db).await.unwrap();
    enable_global_namespace(&db).await.unwrap();

    let row = sqlx::query("SELECT data, version FROM cluster_metadata_info")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let data: Vec<u8> = row.get("data");
    let version: i64 = row.get("version");
    assert_eq!(data, [original, vec![0x48, 0x01]].concat());
    assert_eq!(version, 2, "bumped once");

    let missing = dir.path().join("empty.db");
    assert!(
        enable_global_namespace(&missing).await.is_err(),
        "no store, no switch"
    );
}
