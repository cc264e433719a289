//! Rollouts: the saved view of each rollout workflow, and which cells active rollouts hold.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use uuid::Uuid;

use crate::entity::rollout;
use crate::{Paged, Result, Store, StoreError, page_size, paged};

/// Statuses after which a rollout holds no cell.
/// Statuses of a rollout that has ended.
pub const FINISHED: [&str; 3] = ["done", "halted", "aborted"];

#[derive(Debug, Clone)]
pub struct NewRollout {
    pub id: Uuid,
    pub release_version: String,
    /// Cell ids of the plan: none may be in another active rollout.
    pub cells: Vec<String>,
    pub plan: serde_json::Value,
    pub progress: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

impl Store {
    /// Cells held by active rollouts: cell id → rollout id.
    pub async fn cells_in_active_rollouts(&self) -> Result<BTreeMap<String, String>> {
        Ok(rollout::cell::Entity::find()
            .all(&self.db)
            .await?
            .into_iter()
            .map(|c| (c.cell_id, c.rollout_id.to_string()))
            .collect())
    }

    /// Stores a new active rollout and takes its cells, in one transaction: a cell already in
    /// an active rollout (even one created at the same moment) makes it `Conflict`.
    pub async fn create_rollout(&self, new: NewRollout) -> Result<rollout::Model> {
        let txn = self.db.begin().await?;
        let row = rollout::Entity::insert(rollout::ActiveModel {
            id: Set(new.id),
            release_version: Set(new.release_version),
            status: Set("running".into()),
            plan: Set(new.plan),
            progress: Set(new.progress),
            active: Set(true),
            created_at: Set(new.created_at),
            updated_at: Set(new.created_at),
        })
        .exec_with_returning(&txn)
        .await
        .map_err(StoreError::from_write)?;
        for cell in &new.cells {
            rollout::cell::Entity::insert(rollout::cell::ActiveModel {
                cell_id: Set(cell.clone()),
                rollout_id: Set(new.id),
            })
            .exec(&txn)
            .await
            .map_err(|e| match StoreError::from_write(e) {
                StoreError::Conflict(_) => {
                    StoreError::Conflict(format!("cell {cell} is in another active rollout"))
                }
                other => other,
            })?;
        }
        txn.commit().await?;
        Ok(row)
    }

    pub async fn rollout(&self, id: Uuid) -> Result<Option<rollout::Model>> {
        Ok(rollout::Entity::find_by_id(id).one(&self.db).await?)
    }

    /// Newest first, after the rollout with id `before`.
    pub async fn list_rollouts(
        &self,
        before: Option<Uuid>,
        size: Option<u64>,
    ) -> Result<Paged<rollout::Model>> {
        let size = page_size(size);
        let mut q = rollout::Entity::find().order_by_desc(rollout::Column::Id);
        if let Some(b) = before {
            q = q.filter(rollout::Column::Id.lt(b));
        }
        Ok(paged(q.limit(size + 1).all(&self.db).await?, size, |r| {
            r.id
        }))
    }

    /// Saves what the workflow shows; a finished status releases the rollout's cells.
    pub async fn save_rollout_progress(
        &self,
        id: Uuid,
        status: &str,
        progress: serde_json::Value,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let finished = FINISHED.contains(&status);
        let txn = self.db.begin().await?;
        rollout::Entity::update_many()
            .col_expr(rollout::Column::Status, status.into())
            .col_expr(rollout::Column::Progress, progress.into())
            .col_expr(rollout::Column::Active, (!finished).into())
            .col_expr(rollout::Column::UpdatedAt, at.into())
            .filter(rollout::Column::Id.eq(id))
            .exec(&txn)
            .await?;
        if finished {
            rollout::cell::Entity::delete_many()
                .filter(rollout::cell::Column::RolloutId.eq(id))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(())
    }
}
