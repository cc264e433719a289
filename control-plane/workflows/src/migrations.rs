//! The migration workflow (`migration-<id>`): one live migration of a namespace to another
//! cell. The namespace's own workflow starts it as its child and waits for it, so nothing else
//! changes the namespace meanwhile (its other requests wait in the parent's queue); an SRE
//! finds the migration's history under its own id. Cutover and abort are signalled to the
//! namespace's workflow, which forwards them here.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{SyncWorkflowContext, WorkflowContext, WorkflowResult};
use uuid::Uuid;

use crate::migration_activities::MigrationActivities;
use crate::namespace_activities::NamespaceActivities;
use crate::namespaces::VERIFY_TIMEOUT_SECS;
use crate::steps::{finish, report, settled, short, waiting};
use tessera_api::MigrationState;

/// How long one wait for the migration target's copy lasts (an abort is seen between waits).
const FOLLOWER_POLL_SECS: u64 = 5;
/// Patch: the cutover fences and holds in one step and promotes the target in one step.
const ONE_STEP_CUTOVER: &str = "one-step-cutover";
/// Patch: a migration that ends (completed or aborted) removes its replica.
const REMOVE_REPLICA: &str = "remove-replica";

pub fn workflow_id(migration_id: Uuid) -> String {
    format!("migration-{migration_id}")
}

/// What an admin asks of a running migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MigrationControl {
    Cutover,
    Abort,
}

/// A workflow that runs migration steps: what was asked of the migration `id`, if anything.
pub(crate) trait Controlled: 'static {
    fn control_of(&self, id: Uuid) -> Option<MigrationControl>;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationInput {
    pub migration_id: Uuid,
    pub operation_id: Uuid,
}

#[workflow]
#[derive(Default)]
pub struct MigrationWorkflow {
    /// The last control asked of this migration.
    control: Option<MigrationControl>,
}

impl Controlled for MigrationWorkflow {
    fn control_of(&self, _id: Uuid) -> Option<MigrationControl> {
        self.control
    }
}

#[workflow_methods]
impl MigrationWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: MigrationInput) -> WorkflowResult<()> {
        migrate(ctx, input.migration_id, input.operation_id).await
    }

    /// Cuts the migration over now, or aborts it (before its cutover).
    #[signal]
    pub fn control(&mut self, _ctx: &mut SyncWorkflowContext<Self>, control: MigrationControl) {
        self.control = Some(control);
    }
}

/// A live migration to another cell: replicate → ready for cutover → cut over (hold,
/// fence, catch up, start, flip) → verify → completed. Aborted on request before the
/// cutover; nothing else changes the namespace meanwhile (requests wait in the queue).
pub(crate) async fn migrate<W: Controlled>(
    ctx: &mut WorkflowContext<W>,
    migration: Uuid,
    op: Uuid,
) -> WorkflowResult<()> {
    let op = Some(op);
    let reached = |state: MigrationState, error: Option<String>| (migration, state, error);
    let asked = |ctx: &WorkflowContext<W>| ctx.state(|s| s.control_of(migration));
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
        return end_migration(ctx, migration, op, MigrationState::Failed, Some(reason)).await;
    }
    // Until the target's copy is less than a second behind, or an abort (asked, or the
    // target lost).
    if let Some(reason) = await_ready(ctx, migration).await? {
        return abort_migration(ctx, migration, op, reason).await;
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
        ctx.wait_condition(|s: &W| s.control_of(migration).is_some())
            .await?;
    }
    if asked(ctx) == Some(MigrationControl::Abort) {
        return abort_migration(ctx, migration, op, None).await;
    }
    // Since the one-step cutover: the target is checked again right before (a manual
    // cutover may come long after it was ready), fencing holds too, and no progress is
    // written in between.
    let one_step = ctx.patched(ONE_STEP_CUTOVER);
    if one_step && let Some(reason) = await_ready(ctx, migration).await? {
        return abort_migration(ctx, migration, op, reason).await;
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
        return end_migration(ctx, migration, op, MigrationState::Failed, Some(reason)).await;
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
        return end_migration(ctx, migration, op, MigrationState::Failed, Some(reason)).await;
    }
    ctx.execute_activity(MigrationActivities::release_source, migration, short())
        .await?;
    remove_replica(ctx, migration).await?;
    end_migration(ctx, migration, op, MigrationState::Completed, None).await
}

/// Waits until the target's copy is ready for the cutover: `Some(reason)` to abort
/// instead (`None` inside: an admin asked).
async fn await_ready<W: Controlled>(
    ctx: &mut WorkflowContext<W>,
    migration: Uuid,
) -> WorkflowResult<Option<Option<String>>> {
    loop {
        let asked = ctx.state(|s| s.control_of(migration));
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
async fn abort_migration<W: Controlled>(
    ctx: &mut WorkflowContext<W>,
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
    remove_replica(ctx, migration).await?;
    end_migration(ctx, migration, op, MigrationState::Aborted, reason).await
}

pub(crate) async fn end_migration<W: Controlled>(
    ctx: &mut WorkflowContext<W>,
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

/// Deletes the migration's replica from its object store (histories from before this step
/// keep theirs).
async fn remove_replica<W: Controlled>(
    ctx: &mut WorkflowContext<W>,
    migration: Uuid,
) -> WorkflowResult<()> {
    if ctx.patched(REMOVE_REPLICA) {
        ctx.execute_activity(
            MigrationActivities::remove_replica,
            migration,
            waiting(Duration::from_secs(180)),
        )
        .await?;
    }
    Ok(())
}
