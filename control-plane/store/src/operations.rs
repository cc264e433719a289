//! Operations: the user-visible face of a workflow.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::entity::operation;
use crate::{Paged, Result, Store, StoreError, page_size, paged};

#[derive(Debug, Clone)]
pub struct NewOperation {
    pub id: Uuid,
    pub account_id: Option<Uuid>,
    pub kind: String,
    pub resource_kind: String,
    pub resource_id: String,
    pub workflow_id: String,
    pub created_at: DateTime<Utc>,
}

/// A step reported by a workflow. Terminal states are final: a late or replayed update never
/// moves an operation out of `fulfilled`, `failed` or `cancelled`.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct OperationUpdate {
    pub state: String,
    pub progress: f64,
    pub step: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

impl NewOperation {
    /// The row of a new operation: `pending`, no progress yet.
    pub(crate) fn into_row(self) -> operation::ActiveModel {
        operation::ActiveModel {
            id: Set(self.id),
            account_id: Set(self.account_id),
            kind: Set(self.kind),
            state: Set("pending".into()),
            progress: Set(0.0),
            step: Set(None),
            resource_kind: Set(self.resource_kind),
            resource_id: Set(self.resource_id),
            workflow_id: Set(self.workflow_id),
            error_code: Set(None),
            error_message: Set(None),
            created_at: Set(self.created_at),
            updated_at: Set(self.created_at),
        }
    }
}

const TERMINAL: [&str; 3] = ["fulfilled", "failed", "cancelled"];

impl Store {
    /// Creates the operation unless it exists (the API may retry after a crash).
    pub async fn create_operation(&self, new: NewOperation) -> Result<operation::Model> {
        if let Some(existing) = operation::Entity::find_by_id(new.id).one(&self.db).await? {
            return Ok(existing);
        }
        operation::Entity::insert(new.into_row())
            .exec_with_returning(&self.db)
            .await
            .map_err(StoreError::from_write)
    }

    pub async fn operation(&self, id: Uuid) -> Result<operation::Model> {
        operation::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or(StoreError::NotFound("operation"))
    }

    pub async fn list_operations(
        &self,
        account_id: Uuid,
        before: Option<Uuid>,
        size: Option<u64>,
    ) -> Result<Paged<operation::Model>> {
        let size = page_size(size);
        let mut q = operation::Entity::find()
            .filter(operation::Column::AccountId.eq(account_id))
            .order_by_desc(operation::Column::Id);
        if let Some(b) = before {
            q = q.filter(operation::Column::Id.lt(b));
        }
        Ok(paged(q.limit(size + 1).all(&self.db).await?, size, |o| {
            o.id
        }))
    }

    /// Records a workflow step; progress never goes backwards and terminal states stick.
    pub async fn update_operation(
        &self,
        id: Uuid,
        update: OperationUpdate,
    ) -> Result<operation::Model> {
        let op = self.operation(id).await?;
        if TERMINAL.contains(&op.state.as_str()) {
            return Ok(op);
        }
        let progress = update.progress.clamp(0.0, 1.0).max(op.progress);
        let mut am = op.into_active_model();
        am.state = Set(update.state);
        am.progress = Set(progress);
        am.step = Set(update.step);
        am.error_code = Set(update.error_code);
        am.error_message = Set(update.error_message);
        am.updated_at = Set(Utc::now());
        Ok(am.update(&self.db).await?)
    }

    /// The newest operation of `kind` on a resource that has not ended, if any.
    pub async fn open_operation_of(&self, kind: &str, resource_id: &str) -> Result<Option<Uuid>> {
        Ok(operation::Entity::find()
            .filter(operation::Column::Kind.eq(kind))
            .filter(operation::Column::ResourceId.eq(resource_id))
            .filter(operation::Column::State.is_not_in(TERMINAL))
            .order_by_desc(operation::Column::Id)
            .one(&self.db)
            .await?
            .map(|o| o.id))
    }
}
