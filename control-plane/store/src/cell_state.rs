//! Typed cell state: the one place where a cell's desired and observed documents are decoded
//! and the desired one is written.
//!
//! A document that does not decode is an error, never a default: an empty desired state would
//! tell the agent to stop every runtime of the cell. A document written by a newer control plane
//! (a higher `schema_version`, or fields this binary does not know) is refused for writing, so an
//! older binary (a rollback) cannot drop what it does not understand.
//!
//! Every write to a cell row wakes the waiters of that cell ([`Store::cell_changes`]): in this
//! process through a `tokio::sync::watch` per cell, across control-plane processes sharing one
//! PostgreSQL through `LISTEN/NOTIFY` ([`Store::listen_for_cell_changes`]).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use tessera_api::agent::{DESIRED_SCHEMA_VERSION, DesiredDoc, ObservedState};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::entity::cell;
use crate::{Result, Store, StoreError};

/// The PostgreSQL channel on which cell changes are announced (payload: the cell id).
const CHANNEL: &str = "tessera_cell_changes";

/// How many times [`Store::update_desired`] reads again after losing a race to another writer.
const CONFLICT_RETRIES: usize = 10;

/// A cell row with its desired document decoded.
#[derive(Debug, Clone)]
pub struct CellState {
    pub cell: cell::Model,
    pub desired: DesiredDoc,
    /// The generation of `desired`.
    pub generation: u64,
}

/// Decodes a stored desired document: a newer schema, an unknown field or a malformed value is
/// an error that names the cell.
pub fn decode_desired(cell_id: &str, value: &serde_json::Value) -> Result<DesiredDoc> {
    let found = value
        .get("schema_version")
        .map(|v| v.as_u64().unwrap_or(u64::MAX))
        .unwrap_or(1);
    if found > u64::from(DESIRED_SCHEMA_VERSION) {
        return Err(StoreError::NewerSchema {
            cell: cell_id.into(),
            found,
            supported: DESIRED_SCHEMA_VERSION,
        });
    }
    serde_json::from_value(value.clone()).map_err(|e| StoreError::Unreadable {
        cell: cell_id.into(),
        what: "desired state",
        reason: e.to_string(),
    })
}

/// The agent's last report, if it ever sent one.
pub fn decode_observed(c: &cell::Model) -> Result<Option<ObservedState>> {
    c.observed
        .clone()
        .map(|o| {
            serde_json::from_value(o).map_err(|e| StoreError::Unreadable {
                cell: c.id.clone(),
                what: "observed state",
                reason: e.to_string(),
            })
        })
        .transpose()
}

impl Store {
    /// The cell with its desired document decoded.
    pub async fn cell_state(&self, id: &str) -> Result<CellState> {
        let cell = self.cell(id).await?;
        let desired = decode_desired(&cell.id, &cell.desired)?;
        Ok(CellState {
            generation: cell.generation.max(0) as u64,
            desired,
            cell,
        })
    }

    /// Reads the cell's desired document, lets `change` edit it and writes it back with the
    /// next generation. With `expected_generation`, the write happens only if the document is
    /// still at that generation (else `Conflict`); without, a concurrent writer makes it read
    /// again and retry. Returns the generation after the call: unchanged when `change` left the
    /// document as it was (nothing is written then).
    pub async fn update_desired(
        &self,
        cell_id: &str,
        expected_generation: Option<u64>,
        mut change: impl FnMut(&mut DesiredDoc),
    ) -> Result<u64> {
        for _ in 0..CONFLICT_RETRIES {
            let state = self.cell_state(cell_id).await?;
            if let Some(g) = expected_generation
                && g != state.generation
            {
                return Err(desired_conflict(cell_id));
            }
            let mut doc = state.desired.clone();
            change(&mut doc);
            if doc == state.desired {
                return Ok(state.generation);
            }
            doc.schema_version = DESIRED_SCHEMA_VERSION;
            let value = serde_json::to_value(&doc).expect("a desired document serializes");
            match self
                .replace_desired(cell_id, state.generation as i64, value)
                .await
            {
                Ok(g) => return Ok(g.max(0) as u64),
                Err(StoreError::Conflict(_)) if expected_generation.is_none() => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict(format!(
            "desired state of cell {cell_id} keeps changing"
        )))
    }

    /// A receiver that sees a new value after every change to the cell's row (desired state,
    /// reports, status, identity). Subscribe before reading, then wait with `changed()`: a change
    /// between the read and the wait is not missed.
    pub fn cell_changes(&self, cell_id: &str) -> watch::Receiver<u64> {
        self.events.sender(cell_id).subscribe()
    }

    /// As [`Store::cell_changes`], for a change to any cell (what the edges' routes follow).
    pub fn any_cell_changes(&self) -> watch::Receiver<u64> {
        self.events.any.subscribe()
    }

    /// Whether every writer announces its changes to this process's waiters: on PostgreSQL all
    /// do (`NOTIFY`). On SQLite only writers in this process do; a waiter there also reads again
    /// now and then for writers in other processes (tools, tests).
    pub fn announces_all_changes(&self) -> bool {
        self.backend() == DbBackend::Postgres
    }

    /// Wakes the waiters of the cell here and, on PostgreSQL, in every other control plane.
    pub(crate) async fn cell_changed(&self, cell_id: &str) {
        self.events.notify(cell_id);
        if self.backend() == DbBackend::Postgres {
            let stmt = Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_notify($1, $2)",
                [CHANNEL.into(), cell_id.into()],
            );
            if let Err(e) = self.connection().execute(stmt).await {
                // Other control planes still see the change on their next read.
                tracing::warn!(cell = %cell_id, error = %e, "announcing a cell change failed");
            }
        }
    }

    /// On PostgreSQL: listens for the cell changes other control planes announce and wakes this
    /// process's waiters, until `cancel`. A lost connection is re-established; nothing to do on
    /// SQLite (one process owns the file).
    pub fn listen_for_cell_changes(
        &self,
        cancel: CancellationToken,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let pool = match self.backend() {
            DbBackend::Postgres => self.connection().get_postgres_connection_pool().clone(),
            _ => return None,
        };
        let events = self.events.clone();
        Some(tokio::spawn(async move {
            while !cancel.is_cancelled() {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    Err(e) = listen(&pool, &events) => {
                        tracing::warn!(error = %e, "listening for cell changes failed; reconnecting");
                    }
                }
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(RELISTEN_DELAY) => {}
                }
            }
        }))
    }
}

/// How long to wait before listening again after the connection was lost.
const RELISTEN_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

/// Relays the notifications of [`CHANNEL`] to this process's waiters until the connection fails.
async fn listen(
    pool: &sqlx::PgPool,
    events: &CellEvents,
) -> Result<std::convert::Infallible, sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    // Changes announced while no one listened are not replayed: every waiter reads again.
    events.notify_all();
    loop {
        let n = listener.recv().await?;
        events.notify(n.payload());
    }
}

fn desired_conflict(cell_id: &str) -> StoreError {
    StoreError::Conflict(format!(
        "desired state of cell {cell_id} changed concurrently"
    ))
}

/// One watch channel per cell, shared by every [`Store`] of the process on the same database
/// (the API server and the workflow worker each open their own).
#[derive(Debug)]
pub(crate) struct CellEvents {
    senders: Mutex<HashMap<String, watch::Sender<u64>>>,
    /// Sent on every change of any cell.
    any: watch::Sender<u64>,
}

impl Default for CellEvents {
    fn default() -> Self {
        Self {
            senders: Mutex::default(),
            any: watch::channel(0).0,
        }
    }
}

static EVENTS: LazyLock<Mutex<HashMap<String, Arc<CellEvents>>>> = LazyLock::new(Default::default);

impl CellEvents {
    /// The events of the database at `url`, shared in this process.
    pub(crate) fn for_database(url: &str) -> Arc<CellEvents> {
        EVENTS
            .lock()
            .expect("cell events lock")
            .entry(url.to_string())
            .or_default()
            .clone()
    }

    fn sender(&self, cell_id: &str) -> watch::Sender<u64> {
        self.senders
            .lock()
            .expect("cell events lock")
            .entry(cell_id.to_string())
            .or_insert_with(|| watch::channel(0).0)
            .clone()
    }

    fn notify(&self, cell_id: &str) {
        self.sender(cell_id).send_modify(|n| *n = n.wrapping_add(1));
        self.any.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn notify_all(&self) {
        for s in self.senders.lock().expect("cell events lock").values() {
            s.send_modify(|n| *n = n.wrapping_add(1));
        }
        self.any.send_modify(|n| *n = n.wrapping_add(1));
    }
}
