//! Live migrations: one row each, written by the namespace's workflow as it goes.

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder,
};
use uuid::Uuid;

use crate::entity::{migration, namespace, replica};
use crate::{Result, Store, StoreError};

/// States in which a migration still runs.
pub const MIGRATION_RUNNING: [&str; 5] = [
    "started",
    "replicating",
    "ready_for_cutover",
    "cutting_over",
    "aborting",
];

#[derive(Debug, Clone)]
pub struct NewMigration {
    pub id: Uuid,
    pub namespace_id: Uuid,
    pub account_id: Uuid,
    pub operation_id: Uuid,
    pub source_cell: String,
    pub target_cell: String,
    pub cutover: String,
    pub replica_url: String,
}

impl Store {
    /// Records a migration and marks its namespace `migrating`, in one transaction, as long as
    /// the namespace is `active` (so two migrations, or a migration and a delete, never race).
    pub async fn create_migration(&self, new: NewMigration) -> Result<migration::Model> {
        use sea_orm::TransactionTrait;
        let txn = self.db.begin().await?;
        // The write first: SQLite's write lock taken up front, so no reader has to upgrade.
        let moved = namespace::Entity::update_many()
            .col_expr(namespace::Column::State, Expr::value("migrating"))
            .col_expr(namespace::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(namespace::Column::Id.eq(new.namespace_id))
            .filter(namespace::Column::State.eq("active"))
            .filter(namespace::Column::DeletedAt.is_null())
            .exec(&txn)
            .await?;
        if moved.rows_affected != 1 {
            return Err(StoreError::Conflict(
                "the namespace is not active (another change is under way)".into(),
            ));
        }
        // Dropping the transaction undoes the claim.
        let replicas = replica::Entity::find()
            .filter(replica::Column::NamespaceId.eq(new.namespace_id))
            .count(&txn)
            .await?;
        if replicas > 0 {
            return Err(StoreError::Conflict(
                "the namespace has replicas: remove them before moving it".into(),
            ));
        }
        let now = Utc::now();
        let row = migration::ActiveModel {
            id: Set(new.id),
            namespace_id: Set(new.namespace_id),
            account_id: Set(new.account_id),
            operation_id: Set(new.operation_id),
            source_cell: Set(new.source_cell),
            target_cell: Set(new.target_cell),
            state: Set("started".into()),
            cutover: Set(new.cutover),
            replica_url: Set(new.replica_url),
            progress: Set(serde_json::json!({})),
            error: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        Ok(row)
    }

    pub async fn migration(&self, id: Uuid) -> Result<migration::Model> {
        migration::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or(StoreError::NotFound("migration"))
    }

    /// Newest first.
    pub async fn list_migrations(&self) -> Result<Vec<migration::Model>> {
        Ok(migration::Entity::find()
            .order_by_desc(migration::Column::CreatedAt)
            .all(&self.db)
            .await?)
    }

    /// The namespace's migration that still runs, if any.
    pub async fn running_migration(&self, namespace_id: Uuid) -> Result<Option<migration::Model>> {
        Ok(migration::Entity::find()
            .filter(migration::Column::NamespaceId.eq(namespace_id))
            .filter(migration::Column::State.is_in(MIGRATION_RUNNING))
            .one(&self.db)
            .await?)
    }

    /// Sets the state (and the error, when given).
    pub async fn set_migration_state(
        &self,
        id: Uuid,
        state: &str,
        error: Option<String>,
    ) -> Result<()> {
        let mut q = migration::Entity::update_many()
            .col_expr(migration::Column::State, Expr::value(state))
            .col_expr(migration::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(migration::Column::Id.eq(id));
        if error.is_some() {
            q = q.col_expr(migration::Column::Error, Expr::value(error));
        }
        q.exec(&self.db).await?;
        Ok(())
    }

    /// Replaces the progress document.
    pub async fn set_migration_progress(
        &self,
        id: Uuid,
        progress: serde_json::Value,
    ) -> Result<()> {
        migration::Entity::update_many()
            .col_expr(migration::Column::Progress, Expr::value(progress))
            .col_expr(migration::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(migration::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Points the namespace at the cell that serves it now (and that cell's region).
    pub async fn move_namespace(&self, id: Uuid, cell_id: &str) -> Result<()> {
        let cell = self.cell(cell_id).await?;
        namespace::Entity::update_many()
            .col_expr(namespace::Column::CellId, Expr::value(cell_id))
            .col_expr(namespace::Column::RegionId, Expr::value(cell.region_id))
            .col_expr(namespace::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(namespace::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}
