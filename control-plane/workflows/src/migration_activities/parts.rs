//! What the migration's activities read and wait for: the migration with its namespace, its
//! progress, the cells' reports, and the namespace's route and certificate.

use std::time::Duration;

use chrono::Utc;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tessera_api::MigrationProgress;
use tessera_api::agent::{ObservedState, ReplicaSpec, RouteSpec, RouteTargetSpec};
use tessera_store::entity::{migration, namespace};
use uuid::Uuid;

use super::MigrationActivities;
use crate::cell_activities::wait_for_change;
use crate::certs::namespace_server_cert_id;
use crate::errors::{cert_err, final_error, store_err};
use crate::namespace_activities::runtime_id;

pub(super) struct Parts {
    pub(super) m: migration::Model,
    pub(super) ns: namespace::Model,
    pub(super) runtime: String,
    pub(super) replica: ReplicaSpec,
}

impl MigrationActivities {
    pub(super) async fn parts(&self, id: Uuid) -> Result<Parts, ActivityError> {
        if let Some(d) = self.step_delay {
            tokio::time::sleep(d).await;
        }
        let m = self.store.migration(id).await.map_err(store_err)?;
        let ns = self
            .store
            .namespace_by_id(m.namespace_id)
            .await
            .map_err(store_err)?;
        Ok(Parts {
            runtime: runtime_id(ns.id),
            replica: ReplicaSpec {
                url: m.replica_url.clone(),
                env: Default::default(),
            },
            m,
            ns,
        })
    }

    /// The migration's progress as stored now (an activity's own copy of the migration may
    /// be older than a step it wrote itself).
    pub(super) async fn progress(&self, id: Uuid) -> Result<MigrationProgress, ActivityError> {
        let m = self.store.migration(id).await.map_err(store_err)?;
        Ok(serde_json::from_value(m.progress).unwrap_or_default())
    }

    pub(super) async fn save_progress(
        &self,
        id: Uuid,
        p: &MigrationProgress,
    ) -> Result<(), ActivityError> {
        self.store
            .set_migration_progress(id, serde_json::to_value(p).expect("progress serializes"))
            .await
            .map_err(store_err)
    }

    /// Waits until `cell`'s agent applied `generation` and `until` holds for its report, or
    /// `timeout` passed (`None`).
    pub(super) async fn await_report<T>(
        &self,
        ctx: &ActivityContext,
        cell: &str,
        generation: u64,
        timeout: Duration,
        until: impl Fn(&ObservedState) -> Option<T>,
    ) -> Result<Option<T>, ActivityError> {
        self.await_fresh_report(ctx, cell, generation, None, timeout, until)
            .await
    }

    /// [`Self::await_report`], counting only reports made at or after `fresh_after`.
    pub(super) async fn await_fresh_report<T>(
        &self,
        ctx: &ActivityContext,
        cell: &str,
        generation: u64,
        fresh_after: Option<chrono::DateTime<Utc>>,
        timeout: Duration,
        until: impl Fn(&ObservedState) -> Option<T>,
    ) -> Result<Option<T>, ActivityError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut changes = self.store.cell_changes(cell);
        loop {
            let c = self.store.cell(cell).await.map_err(store_err)?;
            let applied = c
                .observed_generation
                .is_some_and(|g| g as u64 >= generation)
                && fresh_after.is_none_or(|t| c.observed_at.is_some_and(|o| o >= t));
            if applied
                && let Some(o) = tessera_store::decode_observed(&c).map_err(store_err)?
                && let Some(v) = until(&o)
            {
                return Ok(Some(v));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            let _ = ctx.record_heartbeat(()).await;
            wait_for_change(&mut changes, deadline).await;
        }
    }

    /// The namespace's route on a cell: its CA bundle plus the probe CA.
    pub(super) async fn route(
        &self,
        ns: &namespace::Model,
        target: RouteTargetSpec,
    ) -> Result<RouteSpec, ActivityError> {
        let probe = self.pki.probe_ca(ns.id).await.map_err(cert_err)?;
        Ok(RouteSpec {
            accepted_ca_pem: format!("{}\n{}", ns.accepted_ca_pem.trim_end(), probe.cert_pem),
            target,
        })
    }

    pub(super) async fn server_cert_fingerprint(
        &self,
        ns: &namespace::Model,
    ) -> Result<(String, String), ActivityError> {
        let id = namespace_server_cert_id(ns.id);
        let (_, fp) = self
            .pki
            .chain_and_fingerprint(&id)
            .await
            .map_err(cert_err)?
            .ok_or_else(|| {
                final_error(format!("namespace {} has no server certificate", ns.name))
            })?;
        Ok((id, fp))
    }
}
