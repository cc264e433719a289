//! Standby replicas of namespaces: one row each, written by the namespace's workflow (added,
//! removed) and by the control plane as the standby cells report (state, lag).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
    TransactionTrait,
};
use uuid::Uuid;

use crate::entity::{namespace, replica};
use crate::{Result, Store, StoreError};

/// At most this many replicas per namespace.
pub const MAX_REPLICAS: usize = 2;

#[derive(Debug, Clone)]
pub struct NewReplica {
    pub id: Uuid,
    pub namespace_id: Uuid,
    pub region_id: String,
    pub cell_id: String,
    /// Used when the namespace has no replica yet; otherwise the one its replicas share.
    pub replica_url: String,
}

/// How a standby stands, from its cell's report.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaStatus {
    pub state: String,
    pub lag_seconds: Option<f64>,
    pub last_applied_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

impl Store {
    /// Records a replica (`adding`) of an `active` namespace, in one transaction with the
    /// checks: at most [`MAX_REPLICAS`], one per region.
    pub async fn create_replica(&self, new: NewReplica) -> Result<replica::Model> {
        let txn = self.db.begin().await?;
        // A write first, to the namespace's row: it serialises replica changes of one namespace
        // (PostgreSQL's row lock; SQLite's write lock, taken up front so no reader upgrades).
        let now = Utc::now();
        let claimed = namespace::Entity::update_many()
            .col_expr(namespace::Column::UpdatedAt, Expr::value(now))
            .filter(namespace::Column::Id.eq(new.namespace_id))
            .filter(namespace::Column::State.eq("active"))
            .filter(namespace::Column::DeletedAt.is_null())
            .exec(&txn)
            .await?;
        if claimed.rows_affected != 1 {
            let ns = namespace::Entity::find_by_id(new.namespace_id)
                .one(&txn)
                .await?
                .filter(|n| n.deleted_at.is_none())
                .ok_or(StoreError::NotFound("namespace"))?;
            return Err(StoreError::Conflict(format!(
                "the namespace is {} (another change is under way)",
                ns.state
            )));
        }
        let existing = replica::Entity::find()
            .filter(replica::Column::NamespaceId.eq(new.namespace_id))
            .order_by_asc(replica::Column::CreatedAt)
            .all(&txn)
            .await?;
        if existing.iter().any(|r| r.region_id == new.region_id) {
            return Err(StoreError::Conflict(format!(
                "the namespace already has a replica in region {}",
                new.region_id
            )));
        }
        if existing.len() >= MAX_REPLICAS {
            return Err(StoreError::Conflict(format!(
                "the namespace has {MAX_REPLICAS} replicas, the most it may have"
            )));
        }
        let row = replica::ActiveModel {
            id: Set(new.id),
            namespace_id: Set(new.namespace_id),
            region_id: Set(new.region_id),
            cell_id: Set(new.cell_id),
            state: Set("adding".into()),
            replica_url: Set(existing
                .first()
                .map_or(new.replica_url, |r| r.replica_url.clone())),
            lag_seconds: Set(None),
            last_applied_at: Set(None),
            error: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        Ok(row)
    }

    pub async fn replica(&self, id: Uuid) -> Result<replica::Model> {
        replica::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or(StoreError::NotFound("replica"))
    }

    /// A namespace's replicas, oldest first.
    pub async fn replicas_of(&self, namespace_id: Uuid) -> Result<Vec<replica::Model>> {
        Ok(replica::Entity::find()
            .filter(replica::Column::NamespaceId.eq(namespace_id))
            .order_by_asc(replica::Column::CreatedAt)
            .all(&self.db)
            .await?)
    }

    /// The replicas a cell keeps.
    pub async fn replicas_on_cell(&self, cell: &str) -> Result<Vec<replica::Model>> {
        Ok(replica::Entity::find()
            .filter(replica::Column::CellId.eq(cell))
            .all(&self.db)
            .await?)
    }

    pub async fn set_replica_state(&self, id: Uuid, state: &str) -> Result<()> {
        replica::Entity::update_many()
            .col_expr(replica::Column::State, Expr::value(state))
            .col_expr(replica::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(replica::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Records what the standby's cell reported, unless the replica is being removed.
    pub async fn set_replica_status(&self, id: Uuid, s: ReplicaStatus) -> Result<()> {
        replica::Entity::update_many()
            .col_expr(replica::Column::State, Expr::value(s.state))
            .col_expr(replica::Column::LagSeconds, Expr::value(s.lag_seconds))
            .col_expr(
                replica::Column::LastAppliedAt,
                Expr::value(s.last_applied_at),
            )
            .col_expr(replica::Column::Error, Expr::value(s.error))
            .col_expr(replica::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(replica::Column::Id.eq(id))
            .filter(replica::Column::State.ne("removing"))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    pub async fn delete_replica_record(&self, id: Uuid) -> Result<()> {
        replica::Entity::delete_by_id(id).exec(&self.db).await?;
        Ok(())
    }
}
