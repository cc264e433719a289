//! The backends every store test runs against: SQLite always; PostgreSQL when
//! `TESSERA_TEST_POSTGRES_URL` is set (and with `CI=true` a missing PostgreSQL is a failure).

use sea_orm::ConnectionTrait;
use tessera_store::Store;
use uuid::Uuid;

pub struct Backend {
    pub name: &'static str,
    pub store: Store,
    /// The URL the store was opened with.
    #[allow(dead_code)] // not every test file opens a second handle
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

pub async fn backends() -> Vec<Backend> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite_url = Store::sqlite_url(&dir.path().join("store.db"));
    let sqlite = Store::connect(&sqlite_url).await.unwrap();
    let mut out = vec![Backend {
        name: "sqlite",
        store: sqlite,
        url: sqlite_url,
        _dir: Some(dir),
    }];
    match std::env::var("TESSERA_TEST_POSTGRES_URL") {
        Ok(admin_url) => {
            let db = format!("tessera_test_{}", Uuid::new_v4().simple());
            let admin = Store::connect_raw(&admin_url).await.unwrap();
            admin
                .execute_unprepared(&format!("CREATE DATABASE {db}"))
                .await
                .unwrap();
            let (base, _) = admin_url
                .rsplit_once('/')
                .expect("postgres url has a database path");
            let url = format!("{base}/{db}");
            let store = Store::connect(&url).await.unwrap();
            out.push(Backend {
                name: "postgres",
                store,
                url,
                _dir: None,
            });
        }
        Err(_) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI must run the store tests on PostgreSQL: set TESSERA_TEST_POSTGRES_URL")
        }
        Err(_) => eprintln!("TESSERA_TEST_POSTGRES_URL unset: PostgreSQL store tests skipped"),
    }
    out
}
