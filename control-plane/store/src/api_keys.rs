//! API keys: only the digest of each token's secret is stored.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::entity::api_key;
use crate::{Paged, Result, Store, StoreError, page_size, paged};

pub type ApiKeyRecord = api_key::Model;

#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub id: Uuid,
    pub account_id: Uuid,
    pub name: String,
    pub user_id: Option<Uuid>,
    pub service_account_id: Option<Uuid>,
    pub secret_digest: String,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl Store {
    /// Creates the key unless one with this id exists (idempotent for retried activities).
    pub async fn create_api_key(&self, new: NewApiKey) -> Result<ApiKeyRecord> {
        if let Some(existing) = api_key::Entity::find_by_id(new.id).one(&self.db).await? {
            return Ok(existing);
        }
        api_key::Entity::insert(api_key::ActiveModel {
            id: Set(new.id),
            account_id: Set(new.account_id),
            name: Set(new.name),
            user_id: Set(new.user_id),
            service_account_id: Set(new.service_account_id),
            secret_digest: Set(new.secret_digest),
            expires_at: Set(new.expires_at),
            created_at: Set(new.created_at),
            revoked_at: Set(None),
        })
        .exec_with_returning(&self.db)
        .await
        .map_err(StoreError::from_write)
    }

    /// Looks a key up by id across accounts: the authentication path.
    pub async fn api_key_by_id(&self, id: Uuid) -> Result<Option<ApiKeyRecord>> {
        Ok(api_key::Entity::find_by_id(id).one(&self.db).await?)
    }

    pub async fn api_key(&self, account_id: Uuid, id: Uuid) -> Result<ApiKeyRecord> {
        api_key::Entity::find_by_id(id)
            .filter(api_key::Column::AccountId.eq(account_id))
            .one(&self.db)
            .await?
            .ok_or(StoreError::NotFound("api key"))
    }

    /// Keys of an account, optionally only those owned by one user or service account.
    pub async fn list_api_keys(
        &self,
        account_id: Uuid,
        owner: Option<Uuid>,
        after: Option<Uuid>,
        size: Option<u64>,
    ) -> Result<Paged<ApiKeyRecord>> {
        let size = page_size(size);
        let mut q = api_key::Entity::find()
            .filter(api_key::Column::AccountId.eq(account_id))
            .order_by_asc(api_key::Column::Id);
        if let Some(o) = owner {
            q = q.filter(
                Condition::any()
                    .add(api_key::Column::UserId.eq(o))
                    .add(api_key::Column::ServiceAccountId.eq(o)),
            );
        }
        if let Some(a) = after {
            q = q.filter(api_key::Column::Id.gt(a));
        }
        Ok(paged(q.limit(size + 1).all(&self.db).await?, size, |k| {
            k.id
        }))
    }

    /// Active (unrevoked, unexpired) keys with this name in the account.
    pub async fn active_api_key_named(
        &self,
        account_id: Uuid,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        Ok(api_key::Entity::find()
            .filter(api_key::Column::AccountId.eq(account_id))
            .filter(api_key::Column::Name.eq(name))
            .filter(api_key::Column::RevokedAt.is_null())
            .filter(api_key::Column::ExpiresAt.gt(now))
            .one(&self.db)
            .await?
            .is_some())
    }

    /// Revokes a key; revoking a revoked key keeps its first revocation time.
    pub async fn revoke_api_key(
        &self,
        account_id: Uuid,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<ApiKeyRecord> {
        let key = self.api_key(account_id, id).await?;
        if key.revoked_at.is_some() {
            return Ok(key);
        }
        api_key::Entity::update_many()
            .col_expr(
                api_key::Column::RevokedAt,
                sea_orm::sea_query::Expr::value(now),
            )
            .filter(api_key::Column::Id.eq(id))
            .filter(api_key::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        self.api_key(account_id, id).await
    }
}
