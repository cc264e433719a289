//! Namespaces. A namespace is created together with its first operation, inside the account's
//! quota, in one transaction; the namespace workflow then moves it through its states.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use uuid::Uuid;

use crate::entity::{account, namespace, operation};
use crate::{NewOperation, Paged, Result, Store, StoreError, page_size, paged};

#[derive(Debug, Clone)]
pub struct NewNamespace {
    pub id: Uuid,
    pub account_id: Uuid,
    pub name: String,
    pub region_id: String,
    pub retention_days: i32,
    pub accepted_ca_pem: String,
    pub generated_ca: bool,
    pub temporal_namespace: String,
    pub host: String,
    pub created_at: DateTime<Utc>,
}

pub const DELETED: &str = "deleted";
pub const DELETING: &str = "deleting";

fn live_key(account_id: Uuid, name: &str) -> String {
    format!("{account_id}/{name}")
}

impl Store {
    /// Creates the namespace (state `provisioning`) and its operation, unless the account has
    /// reached its namespace quota or already has a namespace of that name.
    pub async fn create_namespace(
        &self,
        new: NewNamespace,
        op: NewOperation,
    ) -> Result<(namespace::Model, operation::Model)> {
        let txn = self.db.begin().await?;
        room_for_a_namespace(&txn, new.account_id).await?;
        let ns = namespace::Entity::insert(namespace::ActiveModel {
            id: Set(new.id),
            account_id: Set(new.account_id),
            live_key: Set(Some(live_key(new.account_id, &new.name))),
            name: Set(new.name),
            region_id: Set(new.region_id),
            cell_id: Set(None),
            state: Set("provisioning".into()),
            retention_days: Set(new.retention_days),
            accepted_ca_pem: Set(new.accepted_ca_pem),
            generated_ca: Set(new.generated_ca),
            temporal_namespace: Set(new.temporal_namespace),
            host: Set(new.host),
            created_at: Set(new.created_at),
            updated_at: Set(new.created_at),
            deleted_at: Set(None),
        })
        .exec_with_returning(&txn)
        .await
        .map_err(StoreError::from_write)?;
        let op = operation::Entity::insert(op.into_row())
            .exec_with_returning(&txn)
            .await
            .map_err(StoreError::from_write)?;
        txn.commit().await?;
        Ok((ns, op))
    }

    /// The most recently deleted namespace that served `temporal_namespace`
    /// (`<name>.<account-slug>`).
    pub async fn deleted_namespace(&self, temporal_namespace: &str) -> Result<namespace::Model> {
        namespace::Entity::find()
            .filter(namespace::Column::TemporalNamespace.eq(temporal_namespace))
            .filter(namespace::Column::DeletedAt.is_not_null())
            .order_by_desc(namespace::Column::DeletedAt)
            .one(&self.db)
            .await?
            .ok_or(StoreError::NotFound("deleted namespace"))
    }

    /// Brings a deleted namespace back (state `provisioning`, on the cell it ran on) together
    /// with its restore operation, unless the account has reached its quota (`Quota`) or a live
    /// namespace took its name meanwhile (`Conflict`).
    pub async fn restore_namespace(
        &self,
        id: Uuid,
        op: NewOperation,
    ) -> Result<(namespace::Model, operation::Model)> {
        let txn = self.db.begin().await?;
        let ns = namespace::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound("namespace"))?;
        if ns.deleted_at.is_none() {
            return Err(StoreError::Conflict(format!(
                "namespace {} is not deleted",
                ns.name
            )));
        }
        room_for_a_namespace(&txn, ns.account_id).await?;
        let now = Utc::now();
        let restored = namespace::Entity::update_many()
            .col_expr(
                namespace::Column::LiveKey,
                Expr::value(live_key(ns.account_id, &ns.name)),
            )
            .col_expr(namespace::Column::State, Expr::value("provisioning"))
            .col_expr(
                namespace::Column::DeletedAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(namespace::Column::UpdatedAt, Expr::value(now))
            .filter(namespace::Column::Id.eq(id))
            .filter(namespace::Column::DeletedAt.is_not_null())
            .exec(&txn)
            .await
            .map_err(|e| match StoreError::from_write(e) {
                StoreError::Conflict(_) => StoreError::Conflict(format!(
                    "a namespace named {} exists again; delete or rename it first",
                    ns.name
                )),
                e => e,
            })?;
        if restored.rows_affected != 1 {
            return Err(StoreError::Conflict(format!(
                "namespace {} is being restored already",
                ns.name
            )));
        }
        let op = operation::Entity::insert(op.into_row())
            .exec_with_returning(&txn)
            .await
            .map_err(StoreError::from_write)?;
        let ns = namespace::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound("namespace"))?;
        txn.commit().await?;
        Ok((ns, op))
    }

    /// A namespace of the account that is not deleted.
    pub async fn namespace(&self, account_id: Uuid, name: &str) -> Result<namespace::Model> {
        namespace::Entity::find()
            .filter(namespace::Column::LiveKey.eq(live_key(account_id, name)))
            .one(&self.db)
            .await?
            .ok_or(StoreError::NotFound("namespace"))
    }

    /// The namespace (not deleted) serving Temporal namespace `<name>.<account-slug>`.
    pub async fn live_namespace_by_temporal(
        &self,
        temporal_namespace: &str,
    ) -> Result<namespace::Model> {
        namespace::Entity::find()
            .filter(namespace::Column::TemporalNamespace.eq(temporal_namespace))
            .filter(namespace::Column::DeletedAt.is_null())
            .one(&self.db)
            .await?
            .ok_or(StoreError::NotFound("namespace"))
    }

    /// Any namespace, deleted ones included.
    pub async fn namespace_by_id(&self, id: Uuid) -> Result<namespace::Model> {
        namespace::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or(StoreError::NotFound("namespace"))
    }

    /// The account's namespaces that are not deleted, oldest first.
    pub async fn list_namespaces(
        &self,
        account_id: Uuid,
        after: Option<Uuid>,
        size: Option<u64>,
    ) -> Result<Paged<namespace::Model>> {
        let size = page_size(size);
        let mut q = namespace::Entity::find()
            .filter(namespace::Column::AccountId.eq(account_id))
            .filter(namespace::Column::DeletedAt.is_null())
            .order_by_asc(namespace::Column::Id);
        if let Some(a) = after {
            q = q.filter(namespace::Column::Id.gt(a));
        }
        Ok(paged(q.limit(size + 1).all(&self.db).await?, size, |n| {
            n.id
        }))
    }

    /// Every namespace that is not deleted (for the control plane's own sweeps).
    pub async fn live_namespaces(&self) -> Result<Vec<namespace::Model>> {
        Ok(namespace::Entity::find()
            .filter(namespace::Column::DeletedAt.is_null())
            .order_by_asc(namespace::Column::Id)
            .all(&self.db)
            .await?)
    }

    pub async fn count_namespaces(&self, account_id: Uuid) -> Result<u64> {
        Ok(namespace::Entity::find()
            .filter(namespace::Column::AccountId.eq(account_id))
            .filter(namespace::Column::DeletedAt.is_null())
            .count(&self.db)
            .await?)
    }

    /// Namespaces placed on each cell (not deleted), as `(cell id, count)`.
    pub async fn namespaces_per_cell(&self) -> Result<Vec<(String, i64)>> {
        let rows: Vec<(Option<String>, i64)> = namespace::Entity::find()
            .select_only()
            .column(namespace::Column::CellId)
            .column_as(namespace::Column::Id.count(), "n")
            .filter(namespace::Column::DeletedAt.is_null())
            .filter(namespace::Column::CellId.is_not_null())
            .group_by(namespace::Column::CellId)
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(c, n)| c.map(|c| (c, n)))
            .collect())
    }

    /// The namespaces placed on `cell_id` and not deleted, oldest first.
    pub async fn namespaces_on_cell(&self, cell_id: &str) -> Result<Vec<namespace::Model>> {
        Ok(namespace::Entity::find()
            .filter(namespace::Column::CellId.eq(cell_id))
            .filter(namespace::Column::DeletedAt.is_null())
            .order_by_asc(namespace::Column::CreatedAt)
            .all(&self.db)
            .await?)
    }

    /// Records the cell a namespace was placed on; a namespace placed earlier keeps its cell
    /// (so a retried placement never moves it). Returns the namespace as stored.
    pub async fn place_namespace(&self, id: Uuid, cell_id: &str) -> Result<namespace::Model> {
        namespace::Entity::update_many()
            .col_expr(namespace::Column::CellId, Expr::value(cell_id))
            .col_expr(namespace::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(namespace::Column::Id.eq(id))
            .filter(namespace::Column::CellId.is_null())
            .exec(&self.db)
            .await?;
        self.namespace_by_id(id).await
    }

    /// Sets the state of a namespace that is not deleted (deleted is final). A namespace
    /// claimed for deletion stays `deleting` whatever else finishes meanwhile.
    pub async fn set_namespace_state(&self, id: Uuid, state: &str) -> Result<()> {
        let mut q = namespace::Entity::update_many()
            .col_expr(namespace::Column::State, Expr::value(state))
            .col_expr(namespace::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(namespace::Column::Id.eq(id))
            .filter(namespace::Column::DeletedAt.is_null());
        if state != DELETING {
            q = q.filter(namespace::Column::State.ne(DELETING));
        }
        q.exec(&self.db).await?;
        Ok(())
    }

    /// Applies an update's new values (each only when given).
    pub async fn update_namespace(
        &self,
        id: Uuid,
        retention_days: Option<i32>,
        accepted_ca_pem: Option<String>,
    ) -> Result<()> {
        let mut q = namespace::Entity::update_many()
            .col_expr(namespace::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(namespace::Column::Id.eq(id))
            .filter(namespace::Column::DeletedAt.is_null());
        if let Some(r) = retention_days {
            q = q.col_expr(namespace::Column::RetentionDays, Expr::value(r));
        }
        if let Some(pem) = accepted_ca_pem {
            q = q.col_expr(namespace::Column::AcceptedCaPem, Expr::value(pem));
        }
        q.exec(&self.db).await?;
        Ok(())
    }

    /// Marks the namespace deleted: it keeps its row, and its name is free again.
    pub async fn mark_namespace_deleted(&self, id: Uuid, at: DateTime<Utc>) -> Result<()> {
        namespace::Entity::update_many()
            .col_expr(namespace::Column::State, Expr::value(DELETED))
            .col_expr(
                namespace::Column::LiveKey,
                Expr::value(Option::<String>::None),
            )
            .col_expr(namespace::Column::DeletedAt, Expr::value(at))
            .col_expr(namespace::Column::UpdatedAt, Expr::value(at))
            .filter(namespace::Column::Id.eq(id))
            .filter(namespace::Column::DeletedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Moves a namespace from one of `from` to `to`; `false` when it was in another state.
    pub async fn transition_namespace_state(
        &self,
        id: Uuid,
        from: &[&str],
        to: &str,
    ) -> Result<bool> {
        let res = namespace::Entity::update_many()
            .col_expr(namespace::Column::State, Expr::value(to))
            .col_expr(namespace::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(namespace::Column::Id.eq(id))
            .filter(namespace::Column::State.is_in(from.iter().copied()))
            .filter(namespace::Column::DeletedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(res.rows_affected == 1)
    }
}

/// Checks, inside `txn`, that the account may have one more live namespace. Creations and
/// restores of one account are serialised so that two racing requests cannot both fit the
/// quota: a no-op write to the account row takes its lock first (PostgreSQL's row lock;
/// SQLite's write lock, taken up front so no reader has to upgrade and deadlock).
async fn room_for_a_namespace(txn: &sea_orm::DatabaseTransaction, account_id: Uuid) -> Result<()> {
    let locked = account::Entity::update_many()
        .col_expr(
            account::Column::MaxNamespaces,
            Expr::col(account::Column::MaxNamespaces).into(),
        )
        .filter(account::Column::Id.eq(account_id))
        .exec(txn)
        .await?;
    if locked.rows_affected == 0 {
        return Err(StoreError::NotFound("account"));
    }
    let acct = account::Entity::find_by_id(account_id)
        .one(txn)
        .await?
        .ok_or(StoreError::NotFound("account"))?;
    let live = namespace::Entity::find()
        .filter(namespace::Column::AccountId.eq(account_id))
        .filter(namespace::Column::DeletedAt.is_null())
        .count(txn)
        .await?;
    if live >= acct.max_namespaces.max(0) as u64 {
        return Err(StoreError::Quota {
            what: "namespaces",
            limit: i64::from(acct.max_namespaces),
        });
    }
    Ok(())
}
