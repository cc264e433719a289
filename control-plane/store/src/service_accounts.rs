//! Service accounts: non-human principals that own API keys.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use uuid::Uuid;

use crate::entity::{api_key, service_account};
use crate::{Paged, Result, Store, StoreError, page_size, paged};

impl Store {
    /// A duplicate name within the account is a conflict.
    pub async fn create_service_account(
        &self,
        id: Uuid,
        account_id: Uuid,
        name: String,
        role: String,
        namespace_access: serde_json::Value,
    ) -> Result<service_account::Model> {
        service_account::Entity::insert(service_account::ActiveModel {
            id: Set(id),
            account_id: Set(account_id),
            name: Set(name),
            role: Set(role),
            namespace_access: Set(namespace_access),
            created_at: Set(Utc::now()),
        })
        .exec_with_returning(&self.db)
        .await
        .map_err(StoreError::from_write)
    }

    pub async fn service_account(
        &self,
        account_id: Uuid,
        id: Uuid,
    ) -> Result<service_account::Model> {
        service_account::Entity::find_by_id(id)
            .filter(service_account::Column::AccountId.eq(account_id))
            .one(&self.db)
            .await?
            .ok_or(StoreError::NotFound("service account"))
    }

    pub async fn service_account_by_id(&self, id: Uuid) -> Result<Option<service_account::Model>> {
        Ok(service_account::Entity::find_by_id(id)
            .one(&self.db)
            .await?)
    }

    pub async fn list_service_accounts(
        &self,
        account_id: Uuid,
        after: Option<Uuid>,
        size: Option<u64>,
    ) -> Result<Paged<service_account::Model>> {
        let size = page_size(size);
        let mut q = service_account::Entity::find()
            .filter(service_account::Column::AccountId.eq(account_id))
            .order_by_asc(service_account::Column::Id);
        if let Some(a) = after {
            q = q.filter(service_account::Column::Id.gt(a));
        }
        Ok(paged(q.limit(size + 1).all(&self.db).await?, size, |s| {
            s.id
        }))
    }

    /// Deletes a service account and revokes its keys in one transaction.
    pub async fn delete_service_account(
        &self,
        account_id: Uuid,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<service_account::Model> {
        let txn = self.db.begin().await?;
        let sa = service_account::Entity::find_by_id(id)
            .filter(service_account::Column::AccountId.eq(account_id))
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound("service account"))?;
        api_key::Entity::update_many()
            .col_expr(
                api_key::Column::RevokedAt,
                sea_orm::sea_query::Expr::value(now),
            )
            .filter(api_key::Column::ServiceAccountId.eq(id))
            .filter(api_key::Column::RevokedAt.is_null())
            .exec(&txn)
            .await?;
        service_account::Entity::delete_by_id(id).exec(&txn).await?;
        txn.commit().await?;
        Ok(sa)
    }
}
