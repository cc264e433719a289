//! The namespace entity workflow: one per namespace, it serialises everything done to it.
//!
//! Create: place → certificates → runtime and route in the cell's desired state → the agent
//! runs it → retention applied and the endpoint verified with a real mTLS call through the
//! ingress → `active`. Then it waits for requests (updates, delete), handled one at a time in
//! arrival order, and continues as new after a number of them to bound its history. Delete
//! ends the workflow.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ContinueAsNewOptions, SyncWorkflowContext, WorkflowContext, WorkflowResult};
use uuid::Uuid;

use crate::migration_activities::MigrationActivities;
use crate::namespace_activities::{ApplyUpdate, AwaitRuntime, NamespaceActivities};
use crate::steps::{finish, options, report, settled, short, waiting};
use tessera_api::MigrationState;

/// How long the runtime may take to serve after the agent got its desired state.
const RUNTIME_TIMEOUT_SECS: u64 = 180;
/// How long the end-to-end check keeps trying.
const VERIFY_TIMEOUT_SECS: u64 = 120;
/// How long a delete waits for the agent to stop the runtime before going on.
const REMOVE_TIMEOUT_SECS: u64 = 60;
/// How often, and how far apart, placement is tried before a create fails.
const PLACEMENT_ATTEMPTS: u32 = 12;
const PLACEMENT_RETRY: Duration = Duration::from_secs(5);
/// How long one wait for the migration target's copy lasts (an abort is seen between waits).
const FOLLOWER_POLL_SECS: u64 = 5;
/// Patch: the cutover fences and holds in one step and promotes the target in one step.
const ONE_STEP_CUTOVER: &str = "one-step-cutover";
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
}

impl NamespaceRequest {
    fn operation_id(&self) -> Uuid {
        match self {
            NamespaceRequest::Update { operation_id, .. }
            | NamespaceRequest::Delete { operation_id }
            | NamespaceRequest::Migrate { operation_id, .. } => *operation_id,
        }
    }
}

/// What an admin asks of a running migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MigrationControl {
    Cutover,
    Abort,
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
                    Self::migrate(ctx, migration_id, operation_id).await?;
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

    /// Cuts a migration over now, or aborts it (before its cutover).
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

    /// A live migration to another cell: replicate → ready for cutover → cut over (hold,
    /// fence, catch up, start, flip) → verify → completed. Aborted on request before the
    /// cutover; nothing else changes the namespace meanwhile (requests wait in the queue).
    async fn migrate(
        ctx: &mut WorkflowContext<Self>,
        migration: Uuid,
        op: Uuid,
    ) -> WorkflowResult<()> {
        let op = Some(op);
        let reached = |state: MigrationState, error: Option<String>| (migration, state, error);
        let asked = |ctx: &WorkflowContext<Self>| {
            ctx.state(|s| s.control.filter(|(m, _)| *m == migration).map(|(_, c)| c))
        };
        report(ctx, op, 0.05, "replicating the store to the target cell").await?;
        ctx.execute_activity(
            MigrationActivities::migration_reached,
            reached(MigrationState::Replicating, None),
            short(),
        )
        .await?;
        let begun = ctx
            .execute_activity(MigrationActivities::begin_migration, migration, short())
            .await;
        if let Err(reason) = settled(begun)? {
            return Self::end_migration(ctx, migration, op, MigrationState::Failed, Some(reason))
                .await;
        }
        // Until the target's copy is less than a second behind, or an abort (asked, or the
        // target lost).
        if let Some(reason) = Self::await_ready(ctx, migration).await? {
            return Self::abort_migration(ctx, migration, op, reason).await;
        }
        ctx.execute_activity(
            MigrationActivities::migration_reached,
            reached(MigrationState::ReadyForCutover, None),
            short(),
        )
        .await?;
        report(ctx, op, 0.5, "ready for cutover").await?;
        let manual = ctx
            .execute_activity(MigrationActivities::cutover_mode, migration, short())
            .await?;
        if manual {
            ctx.wait_condition(|s: &Self| s.control.is_some_and(|(m, _)| m == migration))
                .await?;
        }
        if asked(ctx) == Some(MigrationControl::Abort) {
            return Self::abort_migration(ctx, migration, op, None).await;
        }
        // Since the one-step cutover: the target is checked again right before (a manual
        // cutover may come long after it was ready), fencing holds too, and no progress is
        // written in between.
        let one_step = ctx.patched(ONE_STEP_CUTOVER);
        if one_step && let Some(reason) = Self::await_ready(ctx, migration).await? {
            return Self::abort_migration(ctx, migration, op, reason).await;
        }

        ctx.execute_activity(
            MigrationActivities::migration_reached,
            reached(MigrationState::CuttingOver, None),
            short(),
        )
        .await?;
        report(ctx, op, 0.6, "cutting over: holding new connections").await?;
        if !one_step {
            ctx.execute_activity(
                MigrationActivities::hold_source,
                migration,
                waiting(Duration::from_secs(40)),
            )
            .await?;
            report(ctx, op, 0.7, "cutting over: fencing the source").await?;
        }
        let fenced = ctx
            .execute_activity(
                MigrationActivities::fence_source,
                migration,
                waiting(Duration::from_secs(60)),
            )
            .await?;
        let txid = match fenced {
            Ok(txid) => Some(txid),
            Err(reason) => {
                tracing::warn!(%migration, %reason, "the source did not fence; promoting what the replica holds");
                None
            }
        };
        if !one_step {
            report(
                ctx,
                op,
                0.8,
                "cutting over: starting the namespace on the target",
            )
            .await?;
        }
        let promoted = ctx
            .execute_activity(
                MigrationActivities::promote_target,
                (migration, txid),
                waiting(Duration::from_secs(240)),
            )
            .await?;
        if let Err(reason) = promoted {
            return Self::end_migration(ctx, migration, op, MigrationState::Failed, Some(reason))
                .await;
        }
        report(ctx, op, 0.9, "verifying the endpoint over mTLS").await?;
        let m = ctx
            .execute_activity(MigrationActivities::migration_namespace, migration, short())
            .await?;
        let verified = ctx
            .execute_activity(
                NamespaceActivities::verify_namespace,
                (m, VERIFY_TIMEOUT_SECS),
                waiting(Duration::from_secs(VERIFY_TIMEOUT_SECS + 30)),
            )
            .await?;
        if let Err(e) = verified {
            let reason = format!("the endpoint did not answer on the target: {e}");
            return Self::end_migration(ctx, migration, op, MigrationState::Failed, Some(reason))
                .await;
        }
        ctx.execute_activity(MigrationActivities::release_source, migration, short())
            .await?;
        Self::end_migration(ctx, migration, op, MigrationState::Completed, None).await
    }

    /// Waits until the target's copy is ready for the cutover: `Some(reason)` to abort
    /// instead (`None` inside: an admin asked).
    async fn await_ready(
        ctx: &mut WorkflowContext<Self>,
        migration: Uuid,
    ) -> WorkflowResult<Option<Option<String>>> {
        loop {
            let asked = ctx.state(|s| s.control.filter(|(m, _)| *m == migration).map(|(_, c)| c));
            if asked == Some(MigrationControl::Abort) {
                return Ok(Some(None));
            }
            let status = ctx
                .execute_activity(
                    MigrationActivities::await_follower,
                    (migration, FOLLOWER_POLL_SECS),
                    waiting(Duration::from_secs(FOLLOWER_POLL_SECS + 30)),
                )
                .await?;
            if status.ready {
                return Ok(None);
            }
            if let Some(lost) = status.lost {
                return Ok(Some(Some(lost)));
            }
        }
    }

    /// Before the cutover: nothing changed for clients. `reason`: why it aborted by itself.
    async fn abort_migration(
        ctx: &mut WorkflowContext<Self>,
        migration: Uuid,
        op: Option<Uuid>,
        reason: Option<String>,
    ) -> WorkflowResult<()> {
        ctx.execute_activity(
            MigrationActivities::migration_reached,
            (migration, MigrationState::Aborting, reason.clone()),
            short(),
        )
        .await?;
        ctx.execute_activity(MigrationActivities::abort_migration, migration, short())
            .await?;
        Self::end_migration(ctx, migration, op, MigrationState::Aborted, reason).await
    }

    async fn end_migration(
        ctx: &mut WorkflowContext<Self>,
        migration: Uuid,
        op: Option<Uuid>,
        state: MigrationState,
        error: Option<String>,
    ) -> WorkflowResult<()> {
        ctx.execute_activity(
            MigrationActivities::migration_reached,
            (migration, state, error.clone()),
            short(),
        )
        .await?;
        let error = match state {
            MigrationState::Aborted => Some(match error {
                Some(why) => format!("the migration was aborted: {why}"),
                None => "the migration was aborted".to_string(),
            }),
            _ => error,
        };
        finish(ctx, op, error).await
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

    async fn delete(ctx: &mut WorkflowContext<Self>, id: Uuid, op: Uuid) -> WorkflowResult<()> {
        let op = Some(op);
        ctx.execute_activity(
            NamespaceActivities::set_namespace_state,
            state(id, "deleting"),
            short(),
        )
        .await?;
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
