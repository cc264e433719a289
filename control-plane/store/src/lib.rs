//! The control-plane store: every durable record of Tessera outside Temporal's own histories.
//!
//! SQLite in the data dir by default, PostgreSQL with `DATABASE_URL=postgres://…`; migrations run
//! at connect. Repositories are methods on [`Store`] grouped by resource, one module each.
//! Writes made by workflow activities are idempotent: they take ids chosen before the workflow
//! started, so a retried activity finds its own earlier write instead of making a second one.

mod cell_state;
pub mod entity;
mod migration;
mod migration_cells;
mod migration_edges;
mod migration_migrations;
mod migration_namespaces;
mod migration_regions;
mod migration_releases;
mod migration_replicas;
mod migration_rollouts;

mod accounts;
mod api_keys;
mod audit;
mod cells;
mod edges;
mod idempotency;
mod migrations;
mod namespaces;
mod operations;
mod pki;
mod releases;
mod replicas;
mod rollouts;
mod service_accounts;
mod sessions;
mod users;

pub use accounts::{AccountUsage, NewAccount};
pub use api_keys::{ApiKeyRecord, NewApiKey};
pub use audit::NewAuditEntry;
pub use cell_state::{CellState, decode_desired, decode_observed};
pub use cells::NewCell;
pub use edges::EdgeFeed;
pub use idempotency::StoredResponse;
pub use migrations::{MIGRATION_RUNNING, NewMigration};
pub use namespaces::NewNamespace;
pub use operations::{NewOperation, OperationUpdate};
pub use releases::NewRelease;
pub use replicas::{MAX_REPLICAS, NewReplica, ReplicaStatus};
pub use rollouts::{FINISHED as FINISHED_ROLLOUT, NewRollout};
pub use users::{INVITATION_TTL, NewUser};

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, SqlErr,
};
use sea_orm_migration::MigratorTrait;
use thiserror::Error;
use uuid::Uuid;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A unique constraint refused the write (duplicate name, email…).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The account already has `limit` of what it asked for.
    #[error("the account has reached its quota of {limit} {what}")]
    Quota { what: &'static str, limit: i64 },
    #[error("database error: {0}")]
    Db(#[from] DbErr),
    /// A stored document does not decode. Never replaced by a default: an empty desired state
    /// would stop every runtime of the cell.
    #[error("the {what} of cell {cell} cannot be read: {reason}")]
    Unreadable {
        cell: String,
        what: &'static str,
        reason: String,
    },
    /// A newer control plane wrote the cell's desired state; this one will not rewrite it.
    #[error(
        "the desired state of cell {cell} has schema version {found}, newer than the {supported} this control plane understands; it is left as it is"
    )]
    NewerSchema {
        cell: String,
        found: u64,
        supported: u32,
    },
}

impl StoreError {
    /// Connection and lock errors are worth retrying; constraint violations are not.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Db(e) => {
                matches!(
                    e,
                    DbErr::Conn(_) | DbErr::ConnectionAcquire(_) | DbErr::Exec(_) | DbErr::Query(_)
                ) && e.sql_err().is_none()
            }
            _ => false,
        }
    }

    fn from_write(e: DbErr) -> Self {
        match e.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(m)) => StoreError::Conflict(m),
            _ => StoreError::Db(e),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Handle to the store; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
    events: std::sync::Arc<cell_state::CellEvents>,
}

/// Page size bounds shared by every list.
pub const DEFAULT_PAGE_SIZE: u64 = 50;
pub const MAX_PAGE_SIZE: u64 = 200;

/// One page of a list, keyed by the last id returned.
#[derive(Debug, Clone)]
pub struct Paged<T, K = Uuid> {
    pub items: Vec<T>,
    pub next_after: Option<K>,
}

impl Store {
    /// Connects to `url` (`sqlite://path?mode=rwc` or `postgres://…`) and runs pending migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        let mut opts = ConnectOptions::new(url.to_string());
        opts.sqlx_logging(false)
            .max_connections(if url.starts_with("sqlite") { 4 } else { 16 });
        let db = Database::connect(opts).await?;
        if db.get_database_backend() == DbBackend::Sqlite {
            // WAL lets readers run beside the single writer; sqlx already waits up to 5 s on locks.
            db.execute_unprepared("PRAGMA journal_mode=WAL").await?;
            db.execute_unprepared("PRAGMA foreign_keys=ON").await?;
        }
        migration::Migrator::up(&db, None).await?;
        Ok(Self {
            db,
            events: cell_state::CellEvents::for_database(url),
        })
    }

    /// A connection without migrations, for administrative statements (creating test databases).
    pub async fn connect_raw(url: &str) -> Result<DatabaseConnection> {
        Ok(Database::connect(url).await?)
    }

    /// The URL of the SQLite store inside a data dir.
    pub fn sqlite_url(path: &std::path::Path) -> String {
        format!("sqlite://{}?mode=rwc", path.display())
    }

    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// A cheap round trip, for readiness checks.
    pub async fn ping(&self) -> Result<()> {
        self.db.ping().await.map_err(StoreError::Db)
    }
}

fn page_size(requested: Option<u64>) -> u64 {
    requested
        .unwrap_or(DEFAULT_PAGE_SIZE)
        .clamp(1, MAX_PAGE_SIZE)
}

fn paged<T>(mut rows: Vec<T>, size: u64, id: impl Fn(&T) -> Uuid) -> Paged<T> {
    let next_after = if rows.len() as u64 > size {
        rows.truncate(size as usize);
        rows.last().map(&id)
    } else {
        None
    };
    Paged {
        items: rows,
        next_after,
    }
}
