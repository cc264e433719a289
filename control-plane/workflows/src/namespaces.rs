//! The namespace entity workflow: one per namespace, it serialises everything done to it.
//!
//! Create: place → certificates → runtime and route in the cell's desired state → the agent
//! runs it → retention applied and the endpoint verified with a real mTLS call through the
//! ingress → `active`. Then it waits for requests (updates, delete), handled one at a time in
//! arrival order, and continues as new after a number of them to bound its history. Delete
//! ends the workflow.

use std::collections::VecDeque;
use std::time::Duration;

use futures::FutureExt;
use serde::{Deserialize, Serialize};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ChildWorkflowOptions, ContinueAsNewOptions, SyncWorkflowContext, WorkflowContext,
    WorkflowIdReusePolicy, WorkflowResult,
};
use uuid::Uuid;

use crate::migrations::{self, Controlled, MigrationControl, MigrationInput, MigrationWorkflow};
use crate::namespace_activities::{ApplyUpdate, AwaitRuntime, NamespaceActivities};
use crate::replicas::ReplicaActivities;
use crate::steps::{finish, options, report, settled, short, waiting};
use tessera_api::MigrationState;

/// How long the runtime may take to serve after the agent got its desired state.
const RUNTIME_TIMEOUT_SECS: u64 = 180;
/// How long the end-to-end check keeps trying.
pub(crate) const VERIFY_TIMEOUT_SECS: u64 = 120;
/// How long a delete waits for the agent to stop the runtime before going on.
const REMOVE_TIMEOUT_SECS: u64 = 60;
/// How often, and how far apart, placement is tried before a create fails.
const PLACEMENT_ATTEMPTS: u32 = 12;
const PLACEMENT_RETRY: Duration = Duration::from_secs(5);
/// Patch: a migration runs as the namespace's child workflow `migration-<id>` (it ran inline).
const MIGRATION_WORKFLOW: &str = "migration-workflow";
/// Patch: a delete removes the namespace's replicas first.
const DELETE_REPLICAS: &str = "delete-replicas";
/// How long an added replica may take to be in sync before the operation fails.
const REPLICA_SYNC_TIMEOUT_SECS: u64 = 600;
/// An activity that stops a standby waits for two cells to confirm, up to a minute each.
const REPLICA_STOP_TIMEOUT: Duration = Duration::from_secs(180);
/// Requests handled per run before continuing as new.
const REQUESTS_PER_RUN: u32 = 50;

pub fn workflow_id(namespace_id: Uuid) -> String {
    format!("namespace-{namespace_id}")
}

/// A change asked of a namespace after it was created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NamespaceRequest {
    Update {
        operation_id: Uuid,
        retention_days: Option<u32>,
        accepted_ca_pem: Option<String>,
    },
    Delete {
        operation_id: Uuid,
    },
    /// Move the namespace to another cell (the migration's record says which).
    Migrate {
        operation_id: Uuid,
        migration_id: Uuid,
    },
    /// A standby in another cell (the replica's record says which).
    AddReplica {
        operation_id: Uuid,
        replica_id: Uuid,
    },
    RemoveReplica {
        operation_id: Uuid,
        replica_id: Uuid,
    },
}

impl NamespaceRequest {
    fn operation_id(&self) -> Uuid {
        match self {
            NamespaceRequest::Update { operation_id, .. }
            | NamespaceRequest::Delete { operation_id }
            | NamespaceRequest::Migrate { operation_id, .. }
            | NamespaceRequest::AddReplica { operation_id, .. }
            | NamespaceRequest::RemoveReplica { operation_id, .. } => *operation_id,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceInput {
    pub namespace_id: Uuid,
    /// The create operation, on the first run only.
    pub create_operation: Option<Uuid>,
    /// Requests not yet handled when the previous run continued as new.
    #[serde(default)]
    pub pending: Vec<NamespaceRequest>,
    /// `create_operation` restores a deleted namespace: its store comes back from the trash of
    /// the cell it ran on instead of starting empty.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restore: bool,
}

#[workflow]
#[derive(Default)]
pub struct NamespaceWorkflow {
    queue: VecDeque<NamespaceRequest>,
    /// The last control asked of a migration, by migration id.
    control: Option<(Uuid, MigrationControl)>,
}

impl Controlled for NamespaceWorkflow {
    fn control_of(&self, id: Uuid) -> Option<MigrationControl> {
        self.control.filter(|(m, _)| *m == id).map(|(_, c)| c)
    }
}

fn state(id: Uuid, s: &str) -> (Uuid, String) {
    (id, s.to_string())
}

#[workflow_methods]
impl NamespaceWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: NamespaceInput) -> WorkflowResult<()> {
        let id = input.namespace_id;
        ctx.state_mut(|s| {
            // Requests carried over go first, ahead of signals that arrived since.
            for r in input.pending.iter().rev() {
                s.queue.push_front(r.clone());
            }
        });
        if let Some(op) = input.create_operation {
            let outcome = if input.restore {
                Self::restore(ctx, id, op).await?
            } else {
                Self::create(ctx, id, op).await?
            };
            Self::conclude(ctx, id, op, outcome).await?;
        }
        for _ in 0..REQUESTS_PER_RUN {
            ctx.wait_condition(|s: &Self| !s.queue.is_empty()).await?;
            let Some(request) = ctx.state_mut(|s| s.queue.pop_front()) else {
                continue;
            };
            match request {
                NamespaceRequest::Update {
                    operation_id,
                    retention_days,
                    accepted_ca_pem,
                } => {
                    let outcome = Self::update(
                        ctx,
                        ApplyUpdate {
                            namespace_id: id,
                            retention_days,
                            accepted_ca_pem,
                        },
                        operation_id,
                    )
                    .await?;
                    Self::conclude(ctx, id, operation_id, outcome).await?;
                }
                NamespaceRequest::Delete { operation_id } => {
                    Self::delete(ctx, id, operation_id).await?;
                    // Whatever else was asked of it no longer applies.
                    let rest: Vec<NamespaceRequest> =
                        ctx.state_mut(|s| s.queue.drain(..).collect());
                    for r in rest {
                        let op = r.operation_id();
                        finish(ctx, Some(op), Some("the namespace was deleted".into())).await?;
                    }
                    return Ok(());
                }
                NamespaceRequest::Migrate {
                    operation_id,
                    migration_id,
                } => {
                    if ctx.patched(MIGRATION_WORKFLOW) {
                        Self::migrate_in_child(ctx, migration_id, operation_id).await?;
                    } else {
                        migrations::migrate(ctx, migration_id, operation_id).await?;
                    }
                }
                NamespaceRequest::AddReplica {
                    operation_id,
                    replica_id,
                } => Self::add_replica(ctx, replica_id, operation_id).await?,
                NamespaceRequest::RemoveReplica {
                    operation_id,
                    replica_id,
                } => {
                    let op = Some(operation_id);
                    report(ctx, op, 0.2, "stopping the standby and removing its copy").await?;
                    ctx.execute_activity(
                        ReplicaActivities::end_replica,
                        replica_id,
                        waiting(REPLICA_STOP_TIMEOUT),
                    )
                    .await?;
                    finish(ctx, op, None).await?;
                }
            }
        }
        let pending: Vec<NamespaceRequest> = ctx.state(|s| s.queue.iter().cloned().collect());
        ctx.continue_as_new(
            NamespaceInput {
                namespace_id: id,
                create_operation: None,
                pending,
                restore: false,
            },
            ContinueAsNewOptions::default(),
        )?;
        Ok(())
    }

    /// Cuts a migration over now, or aborts it (before its cutover); forwarded to the
    /// migration's own workflow.
    #[signal]
    pub fn migration_control(
        &mut self,
        _ctx: &mut SyncWorkflowContext<Self>,
        control: (Uuid, MigrationControl),
    ) {
        self.control = Some(control);
    }

    /// Queues an update or a delete.
    #[signal]
    pub fn request(&mut self, _ctx: &mut SyncWorkflowContext<Self>, request: NamespaceRequest) {
        // A redelivered request (same operation) is queued once.
        if !self.queue.contains(&request) {
            self.queue.push_back(request);
        }
    }
}

impl NamespaceWorkflow {
    /// Records how a create or an update ended: the namespace `active` or `failed`, and the
    /// operation fulfilled or failed with the reason.
    async fn conclude(
        ctx: &mut WorkflowContext<Self>,
        id: Uuid,
        op: Uuid,
        outcome: Result<(), String>,
    ) -> WorkflowResult<()> {
        let end = if outcome.is_ok() { "active" } else { "failed" };
        ctx.execute_activity(
            NamespaceActivities::set_namespace_state,
            state(id, end),
            short(),
        )
        .await?;
        finish(ctx, Some(op), outcome.err()).await
    }

    /// `Ok(Err(reason))` when the namespace could not be created; the workflow records it.
    async fn create(
        ctx: &mut WorkflowContext<Self>,
        id: Uuid,
        op: Uuid,
    ) -> WorkflowResult<Result<(), String>> {
        let op = Some(op);
        report(ctx, op, 0.05, "placing the namespace on a cell").await?;
        // The API checked that the region can take it; a cell that flaps meanwhile gets a
        // little time to come back before the create fails.
        let mut attempt = 1;
        loop {
            match ctx
                .execute_activity(NamespaceActivities::place_namespace, id, short())
                .await?
            {
                Ok(_) => break,
                Err(reason) if attempt >= PLACEMENT_ATTEMPTS => return Ok(Err(reason)),
                Err(_) => {
                    attempt += 1;
                    ctx.timer(PLACEMENT_RETRY).await;
                }
            }
        }
        Self::certify_configure_and_verify(ctx, id, op).await
    }

    /// A deleted namespace back on the cell it ran on: the agent takes its store back from
    /// the cell's trash, then it is configured and verified like a new one.
    async fn restore(
        ctx: &mut WorkflowContext<Self>,
        id: Uuid,
        op: Uuid,
    ) -> WorkflowResult<Result<(), String>> {
        let op = Some(op);
        report(ctx, op, 0.05, "taking the store back from the cell's trash").await?;
        let asked = ctx
            .execute_activity(NamespaceActivities::restore_runtime, id, short())
            .await;
        if let Err(reason) = settled(asked)? {
            return Ok(Err(reason));
        }
        Self::certify_configure_and_verify(ctx, id, op).await
    }

    /// Certificates, then [`Self::configure_and_verify`].
    async fn certify_configure_and_verify(
        ctx: &mut WorkflowContext<Self>,
        id: Uuid,
        op: Option<Uuid>,
    ) -> WorkflowResult<Result<(), String>> {
        report(ctx, op, 0.2, "issuing certificates").await?;
        let issued = ctx
            .execute_activity(NamespaceActivities::namespace_certificates, id, short())
            .await;
        if let Err(reason) = settled(issued)? {
            return Ok(Err(reason));
        }
        Self::configure_and_verify(ctx, id, op, 0.35).await
    }

    /// Desired state → runtime serving → end-to-end check (with the retention applied).
    async fn configure_and_verify(
        ctx: &mut WorkflowContext<Self>,
        id: Uuid,
        op: Option<Uuid>,
        from: f64,
    ) -> WorkflowResult<Result<(), String>> {
        let span = 1.0 - from;
        report(ctx, op, from, "configuring the ingress route and runtime").await?;
        let configured = ctx
            .execute_activity(NamespaceActivities::configure_namespace, id, short())
            .await;
        let generation = match settled(configured)? {
            Ok(g) => g,
            Err(reason) => return Ok(Err(reason)),
        };
        report(
            ctx,
            op,
            from + span * 0.25,
            "waiting for the cell to run the namespace",
        )
        .await?;
        let serving = ctx
            .execute_activity(
                NamespaceActivities::await_runtime,
                AwaitRuntime {
                    namespace_id: id,
                    generation,
                    timeout_secs: RUNTIME_TIMEOUT_SECS,
                },
                waiting(Duration::from_secs(RUNTIME_TIMEOUT_SECS + 30)),
            )
            .await;
        let serving = match settled(serving)? {
            Ok(serving) => serving,
            Err(reason) => return Ok(Err(reason)),
        };
        if !serving {
            return Ok(Err(format!(
                "the namespace's runtime did not start serving within {RUNTIME_TIMEOUT_SECS} s"
            )));
        }
        report(
            ctx,
            op,
            from + span * 0.6,
            "applying retention and verifying the endpoint over mTLS",
        )
        .await?;
        let verified = ctx
            .execute_activity(
                NamespaceActivities::verify_namespace,
                (id, VERIFY_TIMEOUT_SECS),
                waiting(Duration::from_secs(VERIFY_TIMEOUT_SECS + 30)),
            )
            .await?;
        Ok(verified
            .map(|_| ())
            .map_err(|e| format!("the endpoint did not answer through the ingress: {e}")))
    }

    /// Runs the migration as the child workflow `migration-<id>` and waits for it, forwarding
    /// every cutover or abort asked meanwhile. A child that fails ends the migration `failed`.
    async fn migrate_in_child(
        ctx: &mut WorkflowContext<Self>,
        migration: Uuid,
        op: Uuid,
    ) -> WorkflowResult<()> {
        let child = migrations::workflow_id(migration);
        let mut options = ChildWorkflowOptions::workflow_id(child.clone());
        // A migration runs once, even if its request were delivered again.
        options.id_reuse_policy = WorkflowIdReusePolicy::RejectDuplicate;
        let input = MigrationInput {
            migration_id: migration,
            operation_id: op,
        };
        let started = match ctx
            .start_child_workflow(MigrationWorkflow::run, input, options)
            .await
        {
            Ok(started) => started,
            Err(e) => {
                tracing::warn!(%migration, error = %e, "the migration's workflow did not start");
                return Ok(());
            }
        };
        let mut result = Box::pin(started.result().fuse());
        let mut forwarded = None;
        let outcome = loop {
            let asked = ctx.state(|s| s.control_of(migration));
            if let Some(control) = asked.filter(|_| asked != forwarded) {
                // A child that already ended needs nothing more.
                let _ = ctx
                    .external_workflow(child.clone(), None)
                    .signal(MigrationWorkflow::control, control, Default::default())
                    .await;
                forwarded = asked;
            }
            temporalio_workflow::select! {
                r = result => break r,
                _ = ctx.wait_condition(|s: &Self| s.control_of(migration) != forwarded) => {}
            };
        };
        if let Err(e) = outcome {
            let reason = format!("the migration's workflow failed: {e}");
            migrations::end_migration(
                ctx,
                migration,
                Some(op),
                MigrationState::Failed,
                Some(reason),
            )
            .await?;
        }
        Ok(())
    }

    async fn update(
        ctx: &mut WorkflowContext<Self>,
        update: ApplyUpdate,
        op: Uuid,
    ) -> WorkflowResult<Result<(), String>> {
        let id = update.namespace_id;
        let op = Some(op);
        ctx.execute_activity(
            NamespaceActivities::set_namespace_state,
            state(id, "updating"),
            short(),
        )
        .await?;
        report(ctx, op, 0.1, "recording the new settings").await?;
        ctx.execute_activity(NamespaceActivities::apply_namespace_update, update, short())
            .await?;
        Self::configure_and_verify(ctx, id, op, 0.2).await
    }

    /// The standby follows the active store; the operation ends once it is in sync (or fails
    /// after [`REPLICA_SYNC_TIMEOUT_SECS`], the replica then `failed` until removed).
    async fn add_replica(
        ctx: &mut WorkflowContext<Self>,
        replica: Uuid,
        op: Uuid,
    ) -> WorkflowResult<()> {
        let op = Some(op);
        report(ctx, op, 0.1, "streaming the store to the standby").await?;
        let begun = ctx
            .execute_activity(ReplicaActivities::begin_replica, replica, short())
            .await;
        let outcome = match settled(begun)? {
            Ok(Ok(())) => {
                report(ctx, op, 0.4, "waiting for the standby to be in sync").await?;
                let state = ctx
                    .execute_activity(
                        ReplicaActivities::await_replica,
                        (replica, REPLICA_SYNC_TIMEOUT_SECS),
                        waiting(Duration::from_secs(REPLICA_SYNC_TIMEOUT_SECS + 30)),
                    )
                    .await?;
                match state.as_str() {
                    "in_sync" => Ok(()),
                    other => Err(format!(
                        "the standby was not in sync within {REPLICA_SYNC_TIMEOUT_SECS} s ({other})"
                    )),
                }
            }
            Ok(Err(reason)) | Err(reason) => Err(reason),
        };
        if let Err(why) = &outcome {
            ctx.execute_activity(
                ReplicaActivities::replica_failed,
                (replica, why.clone()),
                short(),
            )
            .await?;
        }
        finish(ctx, op, outcome.err()).await
    }

    async fn delete(ctx: &mut WorkflowContext<Self>, id: Uuid, op: Uuid) -> WorkflowResult<()> {
        let op = Some(op);
        ctx.execute_activity(
            NamespaceActivities::set_namespace_state,
            state(id, "deleting"),
            short(),
        )
        .await?;
        if ctx.patched(DELETE_REPLICAS) {
            let replicas = ctx
                .execute_activity(ReplicaActivities::replicas_of, id, short())
                .await?;
            if !replicas.is_empty() {
                report(ctx, op, 0.05, "removing the namespace's replicas").await?;
            }
            for replica in replicas {
                ctx.execute_activity(
                    ReplicaActivities::end_replica,
                    replica,
                    waiting(REPLICA_STOP_TIMEOUT),
                )
                .await?;
            }
        }
        report(ctx, op, 0.1, "removing the route and stopping the runtime").await?;
        let generation = ctx
            .execute_activity(NamespaceActivities::unconfigure_namespace, id, short())
            .await?;
        if let Some(generation) = generation {
            report(ctx, op, 0.4, "waiting for the cell to remove the runtime").await?;
            ctx.execute_activity(
                NamespaceActivities::await_runtime_removed,
                AwaitRuntime {
                    namespace_id: id,
                    generation,
                    timeout_secs: REMOVE_TIMEOUT_SECS,
                },
                waiting(Duration::from_secs(REMOVE_TIMEOUT_SECS + 30)),
            )
            .await?;
        }
        report(ctx, op, 0.8, "deleting certificates and keys").await?;
        ctx.execute_activity(
            NamespaceActivities::forget_namespace,
            id,
            options(Duration::from_secs(30)),
        )
        .await?;
        finish(ctx, op, None).await
    }
}
