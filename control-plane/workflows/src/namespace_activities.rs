//! Activities of the namespace workflow: placement, certificates, the cell's desired state,
//! waiting for the agent, and the end-to-end probe. Each is idempotent: ids and the placement
//! are recorded on first run and reused by retries, so a crash anywhere converges to one
//! runtime and one route.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tessera_api::CellStatus;
use tessera_api::agent::ObservedState;
use tessera_api::agent::{RemovedRuntime, RouteSpec, RouteTargetSpec, RuntimeHealth, RuntimeSpec};
use tessera_domain::placement::{CellCandidate, place};
use tessera_store::entity::namespace;
use tessera_store::{Store, StoreError};
use uuid::Uuid;

use crate::cell_activities::wait_for_change;
use crate::certs::{PlatformPki, namespace_pki_prefix, namespace_server_cert_id};
use crate::errors::{cert_err, final_error, store_err};
use crate::probe::{ProbeTarget, verify};

/// Namespaces a cell takes unless its provider config says `{"capacity": n}`.
pub const DEFAULT_CELL_CAPACITY: u32 = 50;

pub struct NamespaceActivities {
    pub store: Store,
    pub pki: PlatformPki,
    /// Test hook: wait this long at the start of every namespace activity (so a test can kill
    /// the control plane in the middle of each step).
    pub step_delay: Option<Duration>,
}

/// The runtime id of a namespace in its cell's desired state (also its folder on the cell).
pub fn runtime_id(namespace_id: Uuid) -> String {
    format!("ns-{}", namespace_id.simple())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwaitRuntime {
    pub namespace_id: Uuid,
    /// The desired generation the agent must have applied.
    pub generation: i64,
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyUpdate {
    pub namespace_id: Uuid,
    pub retention_days: Option<u32>,
    pub accepted_ca_pem: Option<String>,
}

fn capacity(provider_config: &serde_json::Value) -> u32 {
    provider_config
        .get("capacity")
        .and_then(|c| c.as_u64())
        .map(|c| c.min(u64::from(u32::MAX)) as u32)
        .unwrap_or(DEFAULT_CELL_CAPACITY)
}

/// The cells of `region` as placement sees them.
pub async fn candidates(store: &Store, region: &str) -> Result<Vec<CellCandidate>, StoreError> {
    let counts = store.namespaces_per_cell().await?;
    Ok(store
        .cells_in_region(region)
        .await?
        .into_iter()
        .map(|c| CellCandidate {
            namespaces: counts
                .iter()
                .find(|(id, _)| *id == c.id)
                .map(|(_, n)| *n as u32)
                .unwrap_or(0),
            capacity: capacity(&c.provider_config),
            healthy: c.status == CellStatus::Healthy.as_str(),
            ring: c.ring.max(0) as u32,
            region: c.region_id,
            id: c.id,
        })
        .collect())
}

/// The cell placement picks for a namespace in `region`, leaving out `leaving` (the cell a
/// moving namespace leaves): `Ok(Err(why))` when no cell can take it.
pub async fn place_in(
    store: &Store,
    region: &str,
    leaving: Option<&str>,
) -> Result<Result<String, String>, StoreError> {
    let cells: Vec<CellCandidate> = candidates(store, region)
        .await?
        .into_iter()
        .filter(|c| Some(c.id.as_str()) != leaving)
        .collect();
    Ok(place(region, &cells)
        .map(|c| c.id.clone())
        .map_err(|e| e.to_string()))
}

impl NamespaceActivities {
    async fn hook(&self) {
        if let Some(d) = self.step_delay {
            tokio::time::sleep(d).await;
        }
    }

    async fn live(&self, id: Uuid) -> Result<namespace::Model, ActivityError> {
        let ns = self.store.namespace_by_id(id).await.map_err(store_err)?;
        if ns.deleted_at.is_some() {
            return Err(final_error(format!("namespace {} is deleted", ns.name)));
        }
        Ok(ns)
    }

    /// Waits until the agent has applied `input.generation` and `until` holds for its report;
    /// `false` after `input.timeout_secs`. `until` answering `Err` ends the wait with that final
    /// failure (something the agent reports that no wait mends).
    async fn await_cell(
        &self,
        ctx: &ActivityContext,
        cell: &str,
        input: &AwaitRuntime,
        until: impl Fn(Option<ObservedState>) -> Result<bool, String>,
    ) -> Result<bool, ActivityError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(input.timeout_secs);
        let mut changes = self.store.cell_changes(cell);
        loop {
            let c = self.store.cell(cell).await.map_err(store_err)?;
            let applied = c.observed_generation.is_some_and(|g| g >= input.generation);
            if applied
                && until(tessera_store::decode_observed(&c).map_err(store_err)?)
                    .map_err(final_error)?
            {
                return Ok(true);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            let _ = ctx.record_heartbeat(()).await;
            wait_for_change(&mut changes, deadline).await;
        }
    }

    async fn placed(&self, id: Uuid) -> Result<(namespace::Model, String), ActivityError> {
        let ns = self.live(id).await?;
        let cell = ns
            .cell_id
            .clone()
            .ok_or_else(|| final_error(format!("namespace {} is not placed", ns.name)))?;
        Ok((ns, cell))
    }
}

#[activities]
impl NamespaceActivities {
    /// Picks the namespace's cell (or returns the one picked before). `Err` with a message for
    /// the tenant when the region has no cell that can take it.
    #[activity]
    pub async fn place_namespace(
        self: Arc<Self>,
        _ctx: ActivityContext,
        namespace_id: Uuid,
    ) -> Result<Result<String, String>, ActivityError> {
        self.hook().await;
        let ns = self.live(namespace_id).await?;
        if let Some(cell) = ns.cell_id {
            return Ok(Ok(cell));
        }
        let chosen = match place_in(&self.store, &ns.region_id, None)
            .await
            .map_err(store_err)?
        {
            Ok(cell) => cell,
            Err(why) => return Ok(Err(why)),
        };
        let ns = self
            .store
            .place_namespace(namespace_id, &chosen)
            .await
            .map_err(store_err)?;
        let cell = ns.cell_id.unwrap_or(chosen);
        tracing::info!(namespace = %ns.name, %cell, "namespace placed");
        Ok(Ok(cell))
    }

    /// Asks the cell a restored namespace ran on to take its store back from the trash. A
    /// generated CA was deleted with the namespace: a new one is generated (the tenant fetches
    /// new client certificates); an uploaded bundle is kept.
    #[activity]
    pub async fn restore_runtime(
        self: Arc<Self>,
        _ctx: ActivityContext,
        namespace_id: Uuid,
    ) -> Result<(), ActivityError> {
        self.hook().await;
        let (ns, cell) = self.placed(namespace_id).await?;
        if ns.generated_ca
            && self
                .store
                .pki_object(&crate::certs::namespace_ca_id(namespace_id))
                .await
                .map_err(store_err)?
                .is_none()
        {
            self.store
                .update_namespace(namespace_id, None, Some(String::new()))
                .await
                .map_err(store_err)?;
        }
        let runtime = runtime_id(namespace_id);
        self.store
            .update_desired(&cell, None, |d| {
                d.restore.insert(runtime.clone());
            })
            .await
            .map_err(store_err)?;
        Ok(())
    }

    /// The namespace's generated CA (when asked for), its probe CA, and its ingress server
    /// certificate signed by its cell.
    #[activity]
    pub async fn namespace_certificates(
        self: Arc<Self>,
        _ctx: ActivityContext,
        namespace_id: Uuid,
    ) -> Result<(), ActivityError> {
        self.hook().await;
        let (ns, cell) = self.placed(namespace_id).await?;
        if ns.generated_ca {
            let ca = self
                .pki
                .namespace_ca(namespace_id, &ns.temporal_namespace)
                .await
                .map_err(cert_err)?;
            if ns.accepted_ca_pem.trim().is_empty() {
                self.store
                    .update_namespace(namespace_id, None, Some(ca.cert_pem.clone()))
                    .await
                    .map_err(store_err)?;
            }
        }
        self.pki.probe_ca(namespace_id).await.map_err(cert_err)?;
        self.pki
            .ensure_namespace_server_cert(namespace_id, &cell, &ns.host)
            .await
            .map_err(cert_err)?;
        Ok(())
    }

    /// Puts the runtime, the route (the tenant's bundle plus the probe CA) and the server
    /// certificate into the cell's desired state. Returns the generation to wait for.
    #[activity]
    pub async fn configure_namespace(
        self: Arc<Self>,
        _ctx: ActivityContext,
        namespace_id: Uuid,
    ) -> Result<i64, ActivityError> {
        self.hook().await;
        let (ns, cell) = self.placed(namespace_id).await?;
        let probe = self.pki.probe_ca(namespace_id).await.map_err(cert_err)?;
        let server_cert = namespace_server_cert_id(namespace_id);
        // The certificate's fingerprint is part of the document: a reissued certificate
        // changes it, so the agent fetches the new one.
        let Some((_, cert_fp)) = self
            .pki
            .chain_and_fingerprint(&server_cert)
            .await
            .map_err(cert_err)?
        else {
            return Err(final_error(format!(
                "namespace {} has no server certificate",
                ns.name
            )));
        };
        let runtime = runtime_id(namespace_id);
        let accepted = format!("{}\n{}", ns.accepted_ca_pem.trim_end(), probe.cert_pem);
        let generation = self
            .store
            .update_desired(&cell, None, |d| {
                d.removed.remove(&runtime);
                d.runtimes.insert(
                    runtime.clone(),
                    RuntimeSpec {
                        temporal_namespace: ns.temporal_namespace.clone(),
                        global_namespace: true,
                        dynamic_config: Default::default(),
                    },
                );
                d.routes.insert(
                    ns.host.clone(),
                    RouteSpec {
                        accepted_ca_pem: accepted.clone(),
                        target: RouteTargetSpec::Local {
                            runtime: runtime.clone(),
                        },
                    },
                );
                if !d.server_cert_ids.contains(&server_cert) {
                    d.server_cert_ids.push(server_cert.clone());
                }
                d.cert_fingerprints
                    .insert(server_cert.clone(), cert_fp.clone());
            })
            .await
            .map_err(store_err)?;
        Ok(generation as i64)
    }

    /// Waits until the agent has applied `generation` and the namespace's runtime serves;
    /// `false` when `timeout_secs` passed first.
    #[activity]
    pub async fn await_runtime(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: AwaitRuntime,
    ) -> Result<bool, ActivityError> {
        self.hook().await;
        let (ns, cell) = self.placed(input.namespace_id).await?;
        let runtime = runtime_id(input.namespace_id);
        self.await_cell(&ctx, &cell, &input, |o| {
            let Some(o) = o else { return Ok(false) };
            if let Some(reason) = o.route_errors.get(&ns.host) {
                return Err(format!(
                    "the ingress of cell {cell} cannot load the route of {}: {reason}",
                    ns.host
                ));
            }
            Ok(o.runtimes
                .get(&runtime)
                .is_some_and(|r| r.health == RuntimeHealth::Serving))
        })
        .await
    }

    /// A real Temporal call over mTLS through the cell's ingress with a probe certificate;
    /// sets the retention on the way. Retries for up to `timeout_secs`; `Err` with the last
    /// failure when it never succeeded.
    #[activity]
    pub async fn verify_namespace(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: (Uuid, u64),
    ) -> Result<Result<u32, String>, ActivityError> {
        self.hook().await;
        let (namespace_id, timeout_secs) = input;
        let (ns, cell) = self.placed(namespace_id).await?;
        let root = self.pki.root_pem().await.map_err(cert_err)?;
        let cert = self.pki.probe_cert(namespace_id).await.map_err(cert_err)?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout_secs);
        let mut delay = Duration::from_millis(50);
        loop {
            let c = self.store.cell(&cell).await.map_err(store_err)?;
            let last = match c.ingress_address.as_deref() {
                None => format!("cell {cell} has not reported its ingress address"),
                Some(address) => {
                    let target = ProbeTarget {
                        address,
                        host: &ns.host,
                        server_root_pem: &root,
                        temporal_namespace: &ns.temporal_namespace,
                    };
                    match verify(&target, &cert, ns.retention_days.max(1) as u32).await {
                        Ok(days) => return Ok(Ok(days)),
                        Err(e) => e,
                    }
                }
            };
            if tokio::time::Instant::now() >= deadline {
                return Ok(Err(last));
            }
            tracing::debug!(namespace = %ns.name, error = %last, "probe failed; retrying");
            let _ = ctx.record_heartbeat(()).await;
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }

    #[activity]
    pub async fn set_namespace_state(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: (Uuid, String),
    ) -> Result<(), ActivityError> {
        self.hook().await;
        self.store
            .set_namespace_state(input.0, &input.1)
            .await
            .map_err(store_err)
    }

    /// Records an update's new values on the namespace.
    #[activity]
    pub async fn apply_namespace_update(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: ApplyUpdate,
    ) -> Result<(), ActivityError> {
        self.hook().await;
        self.store
            .update_namespace(
                input.namespace_id,
                input.retention_days.map(|d| d as i32),
                input.accepted_ca_pem,
            )
            .await
            .map_err(store_err)
    }

    /// Takes the runtime, route and server certificate out of the cell's desired state.
    /// Returns the generation to wait for (`None` when it was never placed).
    #[activity]
    pub async fn unconfigure_namespace(
        self: Arc<Self>,
        _ctx: ActivityContext,
        namespace_id: Uuid,
    ) -> Result<Option<i64>, ActivityError> {
        self.hook().await;
        let ns = self
            .store
            .namespace_by_id(namespace_id)
            .await
            .map_err(store_err)?;
        let Some(cell) = ns.cell_id else {
            return Ok(None);
        };
        let runtime = runtime_id(namespace_id);
        let server_cert = namespace_server_cert_id(namespace_id);
        let generation = self
            .store
            .update_desired(&cell, None, |d| {
                // Named as removed: the agent moves its store to the cell's trash.
                d.runtimes.remove(&runtime);
                d.removed
                    .entry(runtime.clone())
                    .or_insert_with(|| RemovedRuntime {
                        temporal_namespace: ns.temporal_namespace.clone(),
                        removed_at: Utc::now(),
                    });
                d.restore.remove(&runtime);
                if d.routes.get(&ns.host).is_some_and(
                |r| matches!(&r.target, RouteTargetSpec::Local { runtime: rt } if *rt == runtime),
            ) {
                d.routes.remove(&ns.host);
            }
                d.server_cert_ids.retain(|id| *id != server_cert);
                d.cert_fingerprints.remove(&server_cert);
            })
            .await;
        match generation {
            Ok(g) => Ok(Some(g as i64)),
            // The cell is gone: nothing runs there any more.
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(store_err(e)),
        }
    }

    /// Waits until the agent has applied `generation` and runs no runtime of the namespace;
    /// `false` after `timeout_secs` (an unreachable cell does not block a delete).
    #[activity]
    pub async fn await_runtime_removed(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: AwaitRuntime,
    ) -> Result<bool, ActivityError> {
        self.hook().await;
        let ns = self
            .store
            .namespace_by_id(input.namespace_id)
            .await
            .map_err(store_err)?;
        let Some(cell) = ns.cell_id else {
            return Ok(true);
        };
        let runtime = runtime_id(input.namespace_id);
        self.await_cell(&ctx, &cell, &input, |o| {
            Ok(o.is_none_or(|o| !o.runtimes.contains_key(&runtime)))
        })
        .await
    }

    /// Deletes the namespace's certificates and keys and marks it deleted (the row stays for
    /// the audit trail; the name is free again).
    #[activity]
    pub async fn forget_namespace(
        self: Arc<Self>,
        _ctx: ActivityContext,
        namespace_id: Uuid,
    ) -> Result<(), ActivityError> {
        self.hook().await;
        self.store
            .delete_pki_objects_with_prefix(&namespace_pki_prefix(namespace_id))
            .await
            .map_err(store_err)?;
        self.store
            .mark_namespace_deleted(namespace_id, Utc::now())
            .await
            .map_err(store_err)
    }
}
