//! Activities of a live migration (run by the namespace's workflow, see
//! [`crate::namespaces`]). The store ships with Litestream: the source streams into the
//! replica, the target follows it; the cutover holds new connections at the source's ingress
//! (the edge follows the cells' routes and holds too), fences the source (SIGKILL, then a final
//! sync), lets the target catch up to the final transaction, starts the server there, and
//! flips the routes. Each activity is idempotent: it writes desired state and waits for what
//! the agents report.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tessera_api::agent::{
    ObservedState, RemovedRuntime, ReplicationSpec, ReplicationState, RouteTargetSpec,
    RuntimeHealth, RuntimeSpec,
};
use tessera_api::{MigrationProgress, MigrationState, MigrationStep};
use tessera_store::Store;
use uuid::Uuid;

use crate::certs::{PlatformPki, namespace_server_cert_id};
use crate::errors::{cert_err, store_err};
use tessera_object_store::ObjectStores;

mod parts;
use parts::Parts;

/// How long a held connection waits at an ingress (and the edge) during a cutover.
pub const CUTOVER_HOLD_MS: u64 = 15_000;
/// The target is ready for the cutover when its copy is less than this behind.
pub const READY_LAG_SECONDS: f64 = 1.0;

pub struct MigrationActivities {
    pub store: Store,
    pub pki: PlatformPki,
    /// Test hook: wait this long at the start of every migration activity (so a test can
    /// kill the control plane in each state).
    pub step_delay: Option<Duration>,
    /// Each region's object store.
    pub object_stores: ObjectStores,
    /// Removes replicas from buckets (with the control plane's AWS identity).
    pub replica_issuer: tessera_object_store::Issuer,
}

/// A migration a drain started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainMigration {
    pub namespace: String,
    pub migration_id: Uuid,
    pub operation_id: Uuid,
}

/// How the target's copy stands, as its agent last reported it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FollowerStatus {
    /// Following, less than [`READY_LAG_SECONDS`] behind.
    pub ready: bool,
    pub lag_seconds: Option<f64>,
    pub lag_bytes: Option<u64>,
    /// Why the target cannot take the namespace any more (its agent stopped reporting): the
    /// migration aborts.
    #[serde(default)]
    pub lost: Option<String>,
}

#[activities]
impl MigrationActivities {
    /// Records a state the migration reached (and when).
    #[activity]
    pub async fn migration_reached(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: (Uuid, MigrationState, Option<String>),
    ) -> Result<(), ActivityError> {
        let (id, state, error) = input;
        let m = self.store.migration(id).await.map_err(store_err)?;
        let mut p: MigrationProgress =
            serde_json::from_value(m.progress.clone()).unwrap_or_default();
        if p.steps.last().map(|s| s.state) != Some(state) {
            p.steps.push(MigrationStep {
                state,
                at: Utc::now(),
            });
        }
        if state == MigrationState::Completed
            && let (Some(from), Some(to)) = (
                p.steps
                    .iter()
                    .find(|s| s.state == MigrationState::CuttingOver),
                p.steps.last(),
            )
        {
            p.cutover_ms = Some((to.at - from.at).num_milliseconds().max(0) as u64);
        }
        self.save_progress(id, &p).await?;
        self.store
            .set_migration_state(id, state.as_str(), error)
            .await
            .map_err(store_err)?;
        if matches!(
            state,
            MigrationState::Completed | MigrationState::Aborted | MigrationState::Failed
        ) {
            self.store
                .set_namespace_state(m.namespace_id, "active")
                .await
                .map_err(store_err)?;
        }
        Ok(())
    }

    /// The live namespaces of a cell that is being drained.
    #[activity]
    pub async fn drain_namespaces(
        self: Arc<Self>,
        _ctx: ActivityContext,
        cell: String,
    ) -> Result<Vec<Uuid>, ActivityError> {
        Ok(self
            .store
            .namespaces_on_cell(&cell)
            .await
            .map_err(store_err)?
            .into_iter()
            .filter(|ns| ns.deleted_at.is_none())
            .map(|ns| ns.id)
            .collect())
    }

    /// Records a migration of `namespace` off `cell` to a cell placement picks in its region
    /// (`Ok(None)`: it is gone or left the cell already). A namespace busy with another change
    /// is waited for; `Err` when no cell can take it.
    #[activity]
    pub async fn drain_migration(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: (Uuid, String),
    ) -> Result<Result<Option<DrainMigration>, String>, ActivityError> {
        let (namespace_id, cell) = input;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            let ns = self
                .store
                .namespace_by_id(namespace_id)
                .await
                .map_err(store_err)?;
            if ns.deleted_at.is_some() || ns.cell_id.as_deref() != Some(cell.as_str()) {
                return Ok(Ok(None));
            }
            if let Some(m) = self
                .store
                .running_migration(ns.id)
                .await
                .map_err(store_err)?
            {
                return Ok(Ok(Some(DrainMigration {
                    namespace: ns.temporal_namespace,
                    migration_id: m.id,
                    operation_id: m.operation_id,
                })));
            }
            if ns.state == "active" {
                let placed =
                    crate::namespace_activities::place_in(&self.store, &ns.region_id, Some(&cell))
                        .await
                        .map_err(store_err)?;
                let target = match placed {
                    Ok(target) => target,
                    Err(why) => {
                        return Ok(Err(format!("namespace {}: {why}", ns.temporal_namespace)));
                    }
                };
                let id = Uuid::now_v7();
                let op = Uuid::now_v7();
                let created = self
                    .store
                    .create_migration(tessera_store::NewMigration {
                        id,
                        namespace_id: ns.id,
                        account_id: ns.account_id,
                        operation_id: op,
                        source_cell: cell.clone(),
                        target_cell: target.clone(),
                        cutover: "auto".into(),
                        replica_url: self.object_stores.replica_url(&ns.region_id, id),
                    })
                    .await;
                match created {
                    Ok(_) => {
                        self.store
                            .create_operation(tessera_store::NewOperation {
                                id: op,
                                account_id: Some(ns.account_id),
                                kind: "namespace.migrate".into(),
                                resource_kind: "namespace".into(),
                                resource_id: ns.id.to_string(),
                                workflow_id: crate::migrations::workflow_id(id),
                                created_at: Utc::now(),
                            })
                            .await
                            .map_err(store_err)?;
                        tracing::info!(namespace = %ns.temporal_namespace, from = %cell, to = %target, "draining: migration recorded");
                        return Ok(Ok(Some(DrainMigration {
                            namespace: ns.temporal_namespace,
                            migration_id: id,
                            operation_id: op,
                        })));
                    }
                    // Another change claimed the namespace meanwhile: wait for it.
                    Err(tessera_store::StoreError::Conflict(_)) => {}
                    Err(e) => return Err(store_err(e)),
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(Err(format!(
                    "namespace {} stayed {} for 90 s",
                    ns.temporal_namespace, ns.state
                )));
            }
            let _ = ctx.record_heartbeat(()).await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Waits for a migration to end; its final state (or `running` after `timeout_secs`).
    #[activity]
    pub async fn await_migration(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: (Uuid, u64),
    ) -> Result<String, ActivityError> {
        let (id, timeout_secs) = input;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout_secs);
        loop {
            let m = self.store.migration(id).await.map_err(store_err)?;
            if !tessera_store::MIGRATION_RUNNING.contains(&m.state.as_str()) {
                return Ok(m.state);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok("still running".into());
            }
            let _ = ctx.record_heartbeat(()).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Whether the migration waits for an admin's cutover.
    #[activity]
    pub async fn cutover_mode(
        self: Arc<Self>,
        _ctx: ActivityContext,
        id: Uuid,
    ) -> Result<bool, ActivityError> {
        Ok(self.store.migration(id).await.map_err(store_err)?.cutover == "manual")
    }

    /// The namespace a migration moves.
    #[activity]
    pub async fn migration_namespace(
        self: Arc<Self>,
        _ctx: ActivityContext,
        id: Uuid,
    ) -> Result<Uuid, ActivityError> {
        Ok(self
            .store
            .migration(id)
            .await
            .map_err(store_err)?
            .namespace_id)
    }

    /// The source streams its store into the replica and the target gets the namespace's
    /// server certificate (no route yet: nothing changes for clients). The target follows
    /// the source's stream once the source reports one ([`Self::await_follower`]).
    #[activity]
    pub async fn begin_migration(
        self: Arc<Self>,
        _ctx: ActivityContext,
        id: Uuid,
    ) -> Result<(), ActivityError> {
        let Parts {
            m,
            ns,
            runtime,
            replica,
        } = self.parts(id).await?;
        self.pki
            .ensure_namespace_server_cert(ns.id, &m.target_cell, &ns.host)
            .await
            .map_err(cert_err)?;
        let (cert, fp) = self.server_cert_fingerprint(&ns).await?;
        self.store
            .update_desired(&m.source_cell, None, |d| {
                d.replication.insert(
                    runtime.clone(),
                    ReplicationSpec::Source {
                        replica: replica.clone(),
                        fence: false,
                    },
                );
                d.cert_fingerprints.insert(cert.clone(), fp.clone());
            })
            .await
            .map_err(store_err)?;
        self.store
            .update_desired(&m.target_cell, None, |d| {
                d.removed.remove(&runtime);
                if !d.server_cert_ids.contains(&cert) {
                    d.server_cert_ids.push(cert.clone());
                }
                d.cert_fingerprints.insert(cert.clone(), fp.clone());
            })
            .await
            .map_err(store_err)?;
        Ok(())
    }

    /// How far the target's copy is behind, waiting up to `timeout_secs` for it to be ready.
    /// The target first follows the stream the source writes now ([`Self::follow_source`]),
    /// and it is ready only in that stream. Ready counts only in a report the target made
    /// after this started: a cell that stopped reporting is never ready on the strength of
    /// its last words.
    #[activity]
    pub async fn await_follower(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: (Uuid, u64),
    ) -> Result<FollowerStatus, ActivityError> {
        let (id, timeout_secs) = input;
        let asked_at = Utc::now();
        let parts = self.parts(id).await?;
        let stream = self.follow_source(&parts).await?;
        let Parts { m, runtime, .. } = parts;
        let generation = self
            .store
            .cell_state(&m.target_cell)
            .await
            .map_err(store_err)?
            .generation;
        let status = |o: &ObservedState| {
            let r = o.replication.get(&runtime)?;
            Some(FollowerStatus {
                ready: r.state == ReplicationState::Following
                    && stream.is_some_and(|n| r.stream == n)
                    && r.lag_seconds.is_some_and(|l| l < READY_LAG_SECONDS),
                lag_seconds: r.lag_seconds,
                lag_bytes: r.lag_bytes,
                lost: None,
            })
        };
        let ready = self
            .await_fresh_report(
                &ctx,
                &m.target_cell,
                generation,
                Some(asked_at),
                Duration::from_secs(timeout_secs),
                |o| status(o).filter(|s| s.ready),
            )
            .await?;
        let now = match ready {
            Some(s) => s,
            None => {
                let c = self.store.cell(&m.target_cell).await.map_err(store_err)?;
                let last = tessera_store::decode_observed(&c)
                    .map_err(store_err)?
                    .as_ref()
                    .and_then(status)
                    .unwrap_or_default();
                FollowerStatus {
                    ready: false,
                    ..last
                }
            }
        };
        let mut now = now;
        if !now.ready {
            let c = self.store.cell(&m.target_cell).await.map_err(store_err)?;
            if !crate::cell_activities::reports_recently(&c, Utc::now()) {
                now.lost = Some(format!(
                    "the target cell {} stopped reporting (last report {})",
                    m.target_cell,
                    c.observed_at
                        .map_or("never".to_string(), |t| t.to_rfc3339())
                ));
            }
        }
        let mut p = self.progress(m.id).await?;
        p.lag_seconds = now.lag_seconds;
        p.lag_bytes = now.lag_bytes;
        self.save_progress(id, &p).await?;
        Ok(now)
    }

    /// Has the target follow the stream the source reports writing (a source's Litestream
    /// restarted from scratch writes a new one); `None` while the source reports none yet,
    /// `Some(None)` for an agent that writes the replica's own path.
    async fn follow_source(&self, parts: &Parts) -> Result<Option<Option<u64>>, ActivityError> {
        let Parts {
            m,
            runtime,
            replica,
            ..
        } = parts;
        let source = self.store.cell(&m.source_cell).await.map_err(store_err)?;
        let observed = tessera_store::decode_observed(&source).map_err(store_err)?;
        let Some(stream) = crate::replicas::source_stream(observed.as_ref(), runtime) else {
            return Ok(None);
        };
        let follower = ReplicationSpec::Follower {
            replica: replica.clone(),
            stream,
            until_txid: None,
        };
        let target = self
            .store
            .cell_state(&m.target_cell)
            .await
            .map_err(store_err)?;
        if target.desired.replication.get(runtime) != Some(&follower)
            && !target.desired.runtimes.contains_key(runtime)
        {
            tracing::info!(migration = %m.id, ?stream, "the target follows the source's stream");
            self.store
                .update_desired(&m.target_cell, None, |d| {
                    if !d.runtimes.contains_key(runtime) {
                        d.replication.insert(runtime.clone(), follower.clone());
                    }
                })
                .await
                .map_err(store_err)?;
        }
        Ok(Some(stream))
    }

    /// New connections to the namespace wait at the source's ingress, and at the edge.
    #[activity]
    pub async fn hold_source(
        self: Arc<Self>,
        ctx: ActivityContext,
        id: Uuid,
    ) -> Result<(), ActivityError> {
        let Parts { m, ns, .. } = self.parts(id).await?;
        let route = self
            .route(
                &ns,
                RouteTargetSpec::Hold {
                    max_wait_ms: CUTOVER_HOLD_MS,
                },
            )
            .await?;
        let generation = self
            .store
            .update_desired(&m.source_cell, None, |d| {
                d.routes.insert(ns.host.clone(), route.clone());
            })
            .await
            .map_err(store_err)?;
        // A source that does not answer holds nothing: the edge holds anyway.
        self.await_report(
            &ctx,
            &m.source_cell,
            generation,
            Duration::from_secs(10),
            |_| Some(()),
        )
        .await?;
        Ok(())
    }

    /// Holds new connections at the source's ingress (and so at the edge), kills the source's
    /// runtime for good and syncs its replica one last time, in one change of the source's
    /// desired state. `Ok(txid)`: the replica holds every acknowledged transaction; `Err` when
    /// the source did not answer in time (the cutover goes on with what the replica has).
    #[activity]
    pub async fn fence_source(
        self: Arc<Self>,
        ctx: ActivityContext,
        id: Uuid,
    ) -> Result<Result<u64, String>, ActivityError> {
        let Parts {
            m,
            ns,
            runtime,
            replica,
        } = self.parts(id).await?;
        let hold = self
            .route(
                &ns,
                RouteTargetSpec::Hold {
                    max_wait_ms: CUTOVER_HOLD_MS,
                },
            )
            .await?;
        let generation = self
            .store
            .update_desired(&m.source_cell, None, |d| {
                // A source already forwarding to the target (a retried activity) keeps doing so.
                if !matches!(
                    d.routes.get(&ns.host).map(|r| &r.target),
                    Some(RouteTargetSpec::Forward { .. })
                ) {
                    d.routes.insert(ns.host.clone(), hold.clone());
                }
                d.replication.insert(
                    runtime.clone(),
                    ReplicationSpec::Source {
                        replica: replica.clone(),
                        fence: true,
                    },
                );
            })
            .await
            .map_err(store_err)?;
        let txid = self
            .await_report(
                &ctx,
                &m.source_cell,
                generation,
                Duration::from_secs(30),
                |o| {
                    o.replication
                        .get(&runtime)
                        .filter(|r| r.state == ReplicationState::Fenced)
                        .and_then(|r| Some((r.txid?, r.stream)))
                },
            )
            .await?;
        let Some((txid, stream)) = txid else {
            return Ok(Err(format!(
                "cell {} did not report its runtime fenced and synced within 30 s",
                m.source_cell
            )));
        };
        let mut p = self.progress(m.id).await?;
        p.final_txid = Some(txid);
        p.final_stream = stream;
        p.rpo_seconds = Some(0.0);
        self.save_progress(id, &p).await?;
        Ok(Ok(txid))
    }

    /// One change of the target's desired state names the runtime, its route and the
    /// transaction to stop following at (`txid`, or all the replica has when `None`): its
    /// agent catches up and starts the server at once, while its ingress holds the
    /// namespace's connections. The source's ingress (and so the edge) then forwards to the
    /// target's, and the namespace is the target's once its runtime serves.
    #[activity]
    pub async fn promote_target(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: (Uuid, Option<u64>),
    ) -> Result<Result<(), String>, ActivityError> {
        let (id, txid) = input;
        let Parts {
            m,
            ns,
            runtime,
            replica,
        } = self.parts(id).await?;
        let target = self.store.cell(&m.target_cell).await.map_err(store_err)?;
        let follower = |o: &ObservedState| o.replication.get(&runtime).cloned();
        // Without a final transaction: all the replica has, as the target last saw it, and
        // the writes the source may have made since are reported as possibly lost.
        // The stream `until` is a transaction of: the fenced one, or the one the target
        // follows.
        let (until, stream) = match txid {
            Some(t) => (t, self.progress(m.id).await?.final_stream),
            None => {
                let seen = tessera_store::decode_observed(&target)
                    .map_err(store_err)?
                    .and_then(|o| follower(&o));
                let mut p = self.progress(m.id).await?;
                // At most the time since the target last applied a transaction.
                p.rpo_seconds = seen.as_ref().and_then(|r| {
                    r.last_applied_at
                        .map(|t| (Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0)
                        .or(r.lag_seconds)
                });
                self.save_progress(id, &p).await?;
                seen.map_or((0, None), |r| {
                    (r.replica_txid.or(r.txid).unwrap_or(0), r.stream)
                })
            }
        };
        let local = self
            .route(
                &ns,
                RouteTargetSpec::Local {
                    runtime: runtime.clone(),
                },
            )
            .await?;
        let generation = self
            .store
            .update_desired(&m.target_cell, None, |d| {
                if !d.runtimes.contains_key(&runtime) {
                    d.replication.insert(
                        runtime.clone(),
                        ReplicationSpec::Follower {
                            replica: replica.clone(),
                            stream,
                            until_txid: Some(until),
                        },
                    );
                }
                d.runtimes.insert(
                    runtime.clone(),
                    RuntimeSpec {
                        temporal_namespace: ns.temporal_namespace.clone(),
                        global_namespace: true,
                        dynamic_config: Default::default(),
                    },
                );
                d.routes.insert(ns.host.clone(), local.clone());
            })
            .await
            .map_err(store_err)?;
        // Once the target's ingress knows the route (it holds until the runtime serves),
        // what arrives at the source's ingress or the edge goes on to it.
        self.await_report(
            &ctx,
            &m.target_cell,
            generation,
            Duration::from_secs(10),
            |_| Some(()),
        )
        .await?;
        if let Some(address) = target.ingress_address.clone() {
            let forward = self
                .route(&ns, RouteTargetSpec::Forward { address })
                .await?;
            self.store
                .update_desired(&m.source_cell, None, |d| {
                    d.routes.insert(ns.host.clone(), forward.clone());
                })
                .await
                .map_err(store_err)?;
        }
        let serving = self
            .await_report(
                &ctx,
                &m.target_cell,
                generation,
                Duration::from_secs(180),
                |o| {
                    o.runtimes
                        .get(&runtime)
                        .filter(|r| r.health == RuntimeHealth::Serving)
                        .map(|_| ())
                },
            )
            .await?;
        if serving.is_none() {
            let c = self.store.cell(&m.target_cell).await.map_err(store_err)?;
            let o = tessera_store::decode_observed(&c).map_err(store_err)?;
            let why = match o.as_ref().and_then(follower) {
                Some(r) if r.state != ReplicationState::CaughtUp => format!(
                    "cell {} did not catch up to transaction {until} within 180 s (at {:?}{})",
                    m.target_cell,
                    r.txid,
                    r.error.map(|e| format!(": {e}")).unwrap_or_default()
                ),
                _ => format!(
                    "the runtime on cell {} did not serve within 180 s",
                    m.target_cell
                ),
            };
            return Ok(Err(why));
        }
        self.store
            .move_namespace(ns.id, &m.target_cell)
            .await
            .map_err(store_err)?;
        let mut p = self.progress(m.id).await?;
        if let Some(hold) = p
            .steps
            .iter()
            .find(|s| s.state == MigrationState::CuttingOver)
        {
            p.stall_ms = Some((Utc::now() - hold.at).num_milliseconds().max(0) as u64);
            self.save_progress(id, &p).await?;
        }
        Ok(Ok(()))
    }

    /// After a verified cutover: the source's copy goes to its cell's trash (its retention
    /// applies) and the source keeps nothing of the namespace.
    #[activity]
    pub async fn release_source(
        self: Arc<Self>,
        _ctx: ActivityContext,
        id: Uuid,
    ) -> Result<(), ActivityError> {
        let Parts { m, ns, runtime, .. } = self.parts(id).await?;
        let cert = namespace_server_cert_id(ns.id);
        self.store
            .update_desired(&m.target_cell, None, |d| {
                d.replication.remove(&runtime);
            })
            .await
            .map_err(store_err)?;
        self.store
            .update_desired(&m.source_cell, None, |d| {
                d.replication.remove(&runtime);
                d.runtimes.remove(&runtime);
                d.removed
                    .entry(runtime.clone())
                    .or_insert_with(|| RemovedRuntime {
                        temporal_namespace: ns.temporal_namespace.clone(),
                        removed_at: Utc::now(),
                    });
                d.routes.remove(&ns.host);
                d.server_cert_ids.retain(|c| *c != cert);
                d.cert_fingerprints.remove(&cert);
            })
            .await
            .map_err(store_err)?;
        Ok(())
    }

    /// Before the cutover: the target's copy goes to its cell's trash and the source stops
    /// streaming; clients never noticed anything.
    #[activity]
    pub async fn abort_migration(
        self: Arc<Self>,
        _ctx: ActivityContext,
        id: Uuid,
    ) -> Result<(), ActivityError> {
        let Parts { m, ns, runtime, .. } = self.parts(id).await?;
        let cert = namespace_server_cert_id(ns.id);
        self.store
            .update_desired(&m.target_cell, None, |d| {
                if d.replication.remove(&runtime).is_some() {
                    d.removed
                        .entry(runtime.clone())
                        .or_insert_with(|| RemovedRuntime {
                            temporal_namespace: ns.temporal_namespace.clone(),
                            removed_at: Utc::now(),
                        });
                }
                if !d.routes.contains_key(&ns.host) {
                    d.server_cert_ids.retain(|c| *c != cert);
                    d.cert_fingerprints.remove(&cert);
                }
            })
            .await
            .map_err(store_err)?;
        self.store
            .update_desired(&m.source_cell, None, |d| {
                d.replication.remove(&runtime);
            })
            .await
            .map_err(store_err)?;
        Ok(())
    }

    /// After the migration: once neither cell ships the store any more (a cell that does not
    /// confirm within a minute is not waited for), its replica is deleted from the object
    /// store; the namespace's data is the copy that serves it (and the source's in its trash).
    #[activity]
    pub async fn remove_replica(
        self: Arc<Self>,
        ctx: ActivityContext,
        id: Uuid,
    ) -> Result<(), ActivityError> {
        let Parts { m, runtime, .. } = self.parts(id).await?;
        for cell in [&m.source_cell, &m.target_cell] {
            let generation = self.store.cell(cell).await.map_err(store_err)?.generation as u64;
            let stopped = self
                .await_report(&ctx, cell, generation, Duration::from_secs(60), |o| {
                    (!o.replication.contains_key(&runtime)).then_some(())
                })
                .await?;
            if stopped.is_none() {
                tracing::warn!(migration = %id, %cell, "the cell did not confirm it stopped shipping; removing the replica anyway");
            }
        }
        crate::replicas::delete_replica_data(
            &self.object_stores,
            &self.replica_issuer,
            &m.replica_url,
        )
        .await?;
        Ok(())
    }
}
