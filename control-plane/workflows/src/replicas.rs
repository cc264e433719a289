//! Standby replicas of a namespace (added and removed by the namespace's workflow, see
//! [`crate::namespaces`]). The active cell's agent streams the store into one replica in an
//! object store (the first standby's region's: the data survives the loss of the active
//! region) and every standby's agent follows it with `litestream restore -f`.
//!
//! Which stream a standby follows, and how it stands, is kept current from the cells' reports
//! ([`on_report`]): the active agent starts a new stream whenever its Litestream starts
//! afresh, and the standbys move to it.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tessera_api::agent::{
    ObservedState, RemovedRuntime, ReplicaSpec, ReplicationObserved, ReplicationSpec,
    ReplicationState,
};
use tessera_object_store::{Issuer, ObjectStores};
use tessera_store::entity::replica;
use tessera_store::{ReplicaStatus, Store, StoreError};
use uuid::Uuid;

use crate::errors::{retryable, store_err};
use crate::migration_activities::READY_LAG_SECONDS;
use crate::namespace_activities::runtime_id;

/// How long a removal waits for a cell to confirm it stopped shipping the store.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

pub struct ReplicaActivities {
    pub store: Store,
    pub object_stores: ObjectStores,
    /// Removes replicas from buckets (with the control plane's AWS identity).
    pub replica_issuer: Issuer,
}

#[activities]
impl ReplicaActivities {
    /// The active cell streams the store into the namespace's replica (if it does not yet);
    /// the standby's cell follows it once the active cell reports a stream.
    #[activity]
    pub async fn begin_replica(
        self: Arc<Self>,
        _ctx: ActivityContext,
        id: Uuid,
    ) -> Result<Result<(), String>, ActivityError> {
        let r = self.store.replica(id).await.map_err(store_err)?;
        let ns = self
            .store
            .namespace_by_id(r.namespace_id)
            .await
            .map_err(store_err)?;
        let Some(active) = ns.cell_id.clone() else {
            return Ok(Err(format!("namespace {} is not placed", ns.name)));
        };
        let runtime = runtime_id(ns.id);
        let source = ReplicationSpec::Source {
            replica: replica_spec(&r),
            fence: false,
        };
        self.store
            .update_desired(&active, None, |d| {
                d.replication
                    .entry(runtime.clone())
                    .or_insert(source.clone());
            })
            .await
            .map_err(store_err)?;
        self.store
            .update_desired(&r.cell_id, None, |d| {
                d.removed.remove(&runtime);
            })
            .await
            .map_err(store_err)?;
        sync_standbys(&self.store, ns.id).await.map_err(store_err)?;
        Ok(Ok(()))
    }

    /// Waits up to `timeout_secs` for the standby to be in sync; its state then.
    #[activity]
    pub async fn await_replica(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: (Uuid, u64),
    ) -> Result<String, ActivityError> {
        let (id, timeout_secs) = input;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout_secs);
        loop {
            let r = self.store.replica(id).await.map_err(store_err)?;
            sync_standbys(&self.store, r.namespace_id)
                .await
                .map_err(store_err)?;
            if r.state == "in_sync" || tokio::time::Instant::now() >= deadline {
                return Ok(r.state);
            }
            let _ = ctx.record_heartbeat(()).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Records why adding the replica failed.
    #[activity]
    pub async fn replica_failed(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: (Uuid, String),
    ) -> Result<(), ActivityError> {
        let (id, why) = input;
        let r = self.store.replica(id).await.map_err(store_err)?;
        self.store
            .set_replica_status(
                id,
                ReplicaStatus {
                    state: "failed".into(),
                    lag_seconds: r.lag_seconds,
                    last_applied_at: r.last_applied_at,
                    error: Some(why),
                },
            )
            .await
            .map_err(store_err)
    }

    /// The standby's copy goes to its cell's trash; the active cell stops streaming once no
    /// standby is left, and the replica is then deleted from its object store.
    #[activity]
    pub async fn end_replica(
        self: Arc<Self>,
        ctx: ActivityContext,
        id: Uuid,
    ) -> Result<(), ActivityError> {
        let r = match self.store.replica(id).await {
            Ok(r) => r,
            // Ended by an earlier attempt.
            Err(StoreError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(store_err(e)),
        };
        self.store
            .set_replica_state(id, "removing")
            .await
            .map_err(store_err)?;
        let ns = self
            .store
            .namespace_by_id(r.namespace_id)
            .await
            .map_err(store_err)?;
        let runtime = runtime_id(ns.id);
        self.store
            .update_desired(&r.cell_id, None, |d| {
                if !d.runtimes.contains_key(&runtime) && d.replication.remove(&runtime).is_some() {
                    d.removed
                        .entry(runtime.clone())
                        .or_insert_with(|| RemovedRuntime {
                            temporal_namespace: ns.temporal_namespace.clone(),
                            removed_at: Utc::now(),
                        });
                }
            })
            .await
            .map_err(store_err)?;
        let others = self
            .store
            .replicas_of(ns.id)
            .await
            .map_err(store_err)?
            .into_iter()
            .any(|o| o.id != id);
        let mut cells = vec![r.cell_id.clone()];
        if !others && let Some(active) = &ns.cell_id {
            self.store
                .update_desired(active, None, |d| {
                    if matches!(
                        d.replication.get(&runtime),
                        Some(ReplicationSpec::Source { replica, .. }) if replica.url == r.replica_url
                    ) {
                        d.replication.remove(&runtime);
                    }
                })
                .await
                .map_err(store_err)?;
            cells.push(active.clone());
        }
        for cell in &cells {
            if !self.stopped_shipping(&ctx, cell, &runtime).await? {
                tracing::warn!(replica = %id, %cell, "the cell did not confirm it stopped shipping within 60 s; going on");
            }
        }
        if !others {
            delete_replica_data(&self.object_stores, &self.replica_issuer, &r.replica_url).await?;
        }
        self.store
            .delete_replica_record(id)
            .await
            .map_err(store_err)?;
        tracing::info!(replica = %id, namespace = %ns.temporal_namespace, cell = %r.cell_id, "replica removed");
        Ok(())
    }

    /// Every replica of the namespace (before it is deleted).
    #[activity]
    pub async fn replicas_of(
        self: Arc<Self>,
        _ctx: ActivityContext,
        namespace_id: Uuid,
    ) -> Result<Vec<Uuid>, ActivityError> {
        Ok(self
            .store
            .replicas_of(namespace_id)
            .await
            .map_err(store_err)?
            .into_iter()
            .map(|r| r.id)
            .collect())
    }
}

impl ReplicaActivities {
    /// Whether `cell` reported, within [`STOP_TIMEOUT`], that it no longer ships `runtime`.
    async fn stopped_shipping(
        &self,
        ctx: &ActivityContext,
        cell: &str,
        runtime: &str,
    ) -> Result<bool, ActivityError> {
        let deadline = tokio::time::Instant::now() + STOP_TIMEOUT;
        let asked = self
            .store
            .cell_state(cell)
            .await
            .map_err(store_err)?
            .generation;
        loop {
            let c = self.store.cell(cell).await.map_err(store_err)?;
            let applied = c
                .observed_generation
                .is_some_and(|g| g.max(0) as u64 >= asked);
            let shipping = tessera_store::decode_observed(&c)
                .map_err(store_err)?
                .is_none_or(|o| o.replication.contains_key(runtime));
            if applied && !shipping {
                return Ok(true);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            let _ = ctx.record_heartbeat(()).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

fn replica_spec(r: &replica::Model) -> ReplicaSpec {
    ReplicaSpec {
        url: r.replica_url.clone(),
        env: Default::default(),
    }
}

/// Deletes a replica no one ships or follows any more: its directory in a local region's
/// object store, or its objects in a bucket.
pub(crate) async fn delete_replica_data(
    stores: &ObjectStores,
    issuer: &Issuer,
    url: &str,
) -> Result<(), ActivityError> {
    if let Some(dir) = stores.local_dir(url) {
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(retryable(e)),
        }
    } else if let Some((store, key)) = stores.locate(url) {
        let n = issuer
            .delete_replica(store, &key)
            .await
            .map_err(|e| retryable(anyhow::anyhow!("removing replica {key}: {e}")))?;
        tracing::info!(objects = n, %key, "replica removed from its bucket");
    } else {
        // Configured elsewhere since (a bucket no longer in the object-store file): kept.
        tracing::warn!(%url, "the replica is in no object store this control plane knows; left in place");
    }
    Ok(())
}

/// The stream a cell reports writing for `runtime` as its source, once it reports one
/// (`Some(None)`: an agent that writes the replica's own path). Migrations' targets and
/// standbys follow it.
pub(crate) fn source_stream(o: Option<&ObservedState>, runtime: &str) -> Option<Option<u64>> {
    o?.replication
        .get(runtime)
        .filter(|r| r.role == "source")
        .filter(|r| r.stream.is_some() || r.state == ReplicationState::Streaming)
        .map(|r| r.stream)
}

/// Has every standby of the namespace follow the stream its active cell reports writing.
pub async fn sync_standbys(store: &Store, namespace_id: Uuid) -> Result<(), StoreError> {
    let replicas = store.replicas_of(namespace_id).await?;
    if replicas.is_empty() {
        return Ok(());
    }
    let ns = store.namespace_by_id(namespace_id).await?;
    let Some(active) = &ns.cell_id else {
        return Ok(());
    };
    let runtime = runtime_id(ns.id);
    let observed = tessera_store::decode_observed(&store.cell(active).await?)?;
    let Some(stream) = source_stream(observed.as_ref(), &runtime) else {
        return Ok(());
    };
    for r in replicas.iter().filter(|r| r.state != "removing") {
        let follower = ReplicationSpec::Follower {
            replica: replica_spec(r),
            stream,
            until_txid: None,
        };
        let desired = store.cell_state(&r.cell_id).await?.desired;
        if desired.runtimes.contains_key(&runtime)
            || desired.replication.get(&runtime) == Some(&follower)
        {
            continue;
        }
        tracing::info!(replica = %r.id, cell = %r.cell_id, ?stream, "the standby follows the active cell's stream");
        store
            .update_desired(&r.cell_id, None, |d| {
                if !d.runtimes.contains_key(&runtime) {
                    d.replication.insert(runtime.clone(), follower.clone());
                }
            })
            .await?;
    }
    Ok(())
}

/// How a standby stands by its cell's report, against the stream the active cell writes.
fn standby_status(
    r: Option<&ReplicationObserved>,
    active: Option<Option<u64>>,
    now: &str,
) -> ReplicaStatus {
    let starting = if now == "adding" { "adding" } else { "lagging" };
    let Some(r) = r else {
        return ReplicaStatus {
            state: starting.into(),
            lag_seconds: None,
            last_applied_at: None,
            error: None,
        };
    };
    let current = active.is_some_and(|s| s == r.stream);
    let state = match r.state {
        ReplicationState::Failed => "failed",
        ReplicationState::Following
            if current && r.lag_seconds.is_some_and(|l| l < READY_LAG_SECONDS) =>
        {
            "in_sync"
        }
        ReplicationState::Following => "lagging",
        _ => starting,
    };
    ReplicaStatus {
        state: state.into(),
        lag_seconds: r.lag_seconds,
        last_applied_at: r.last_applied_at,
        error: r.error.clone(),
    }
}

/// What a cell's report means for replicas: the standbys it keeps get their state and lag, and
/// a namespace active on it whose stream changed has its standbys follow the new one.
pub async fn on_report(store: &Store, cell: &str, o: &ObservedState) -> Result<(), StoreError> {
    for r in store.replicas_on_cell(cell).await? {
        if r.state == "removing" {
            continue;
        }
        let ns = store.namespace_by_id(r.namespace_id).await?;
        let runtime = runtime_id(ns.id);
        let active = match &ns.cell_id {
            Some(c) => source_stream(
                tessera_store::decode_observed(&store.cell(c).await?)?.as_ref(),
                &runtime,
            ),
            None => None,
        };
        let status = standby_status(o.replication.get(&runtime), active, &r.state);
        if (status.state.as_str(), status.lag_seconds, &status.error)
            != (r.state.as_str(), r.lag_seconds, &r.error)
            || status.last_applied_at != r.last_applied_at
        {
            store.set_replica_status(r.id, status).await?;
        }
    }
    for (runtime, r) in &o.replication {
        if r.role != "source" || r.stream.is_none() {
            continue;
        }
        let Some(id) = runtime
            .strip_prefix("ns-")
            .and_then(|h| Uuid::try_parse(h).ok())
        else {
            continue;
        };
        sync_standbys(store, id).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_standby_is_in_sync_only_in_the_active_stream_and_less_than_a_second_behind() {
        let following = |stream, lag| ReplicationObserved {
            role: "follower".into(),
            state: ReplicationState::Following,
            stream,
            lag_seconds: Some(lag),
            ..Default::default()
        };
        let state =
            |r: Option<&ReplicationObserved>, active, now| standby_status(r, active, now).state;
        assert_eq!(
            state(Some(&following(Some(2), 0.2)), Some(Some(2)), "adding"),
            "in_sync"
        );
        assert_eq!(
            state(Some(&following(Some(1), 0.0)), Some(Some(2)), "in_sync"),
            "lagging"
        );
        assert_eq!(
            state(Some(&following(Some(2), 3.5)), Some(Some(2)), "in_sync"),
            "lagging"
        );
        assert_eq!(state(None, Some(Some(2)), "adding"), "adding");
        assert_eq!(state(None, None, "in_sync"), "lagging");
        let failed = ReplicationObserved {
            role: "follower".into(),
            state: ReplicationState::Failed,
            error: Some("litestream restore -f exited".into()),
            ..Default::default()
        };
        let s = standby_status(Some(&failed), Some(Some(1)), "in_sync");
        assert_eq!(
            (s.state.as_str(), s.error.as_deref()),
            ("failed", Some("litestream restore -f exited"))
        );
    }
}
