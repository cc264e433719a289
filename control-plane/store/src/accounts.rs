//! Accounts and their quotas.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use crate::entity::{account, api_key, service_account, user};
use crate::{Paged, Result, Store, StoreError, page_size, paged};

/// Default quotas of a new account.
pub const DEFAULT_MAX_NAMESPACES: i32 = 10;
pub const DEFAULT_MAX_USERS: i32 = 50;
pub const DEFAULT_MAX_SERVICE_ACCOUNTS: i32 = 50;
pub const DEFAULT_MAX_API_KEYS: i32 = 100;

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// Live counts compared against quotas.
#[derive(Debug, Clone, Copy, Default)]
pub struct AccountUsage {
    pub users: u64,
    pub service_accounts: u64,
    pub active_api_keys: u64,
    /// Namespaces that are not deleted.
    pub namespaces: u64,
}

impl Store {
    /// Creates the account unless one with this id exists (idempotent for retried activities).
    /// Another account holding the name is a [`StoreError::Conflict`].
    pub async fn create_account(&self, new: NewAccount) -> Result<account::Model> {
        if let Some(existing) = account::Entity::find_by_id(new.id).one(&self.db).await? {
            return Ok(existing);
        }
        let model = account::ActiveModel {
            id: Set(new.id),
            slug: Set(new.name.clone()),
            name: Set(new.name),
            max_namespaces: Set(DEFAULT_MAX_NAMESPACES),
            max_users: Set(DEFAULT_MAX_USERS),
            max_service_accounts: Set(DEFAULT_MAX_SERVICE_ACCOUNTS),
            max_api_keys: Set(DEFAULT_MAX_API_KEYS),
            created_at: Set(new.created_at),
        };
        account::Entity::insert(model)
            .exec_with_returning(&self.db)
            .await
            .map_err(StoreError::from_write)
    }

    pub async fn account(&self, id: Uuid) -> Result<account::Model> {
        account::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or(StoreError::NotFound("account"))
    }

    pub async fn account_by_name(&self, name: &str) -> Result<Option<account::Model>> {
        Ok(account::Entity::find()
            .filter(account::Column::Name.eq(name))
            .one(&self.db)
            .await?)
    }

    pub async fn list_accounts(
        &self,
        after: Option<Uuid>,
        size: Option<u64>,
    ) -> Result<Paged<account::Model>> {
        let size = page_size(size);
        let mut q = account::Entity::find().order_by_asc(account::Column::Id);
        if let Some(a) = after {
            q = q.filter(account::Column::Id.gt(a));
        }
        let rows = q.limit(size + 1).all(&self.db).await?;
        Ok(paged(rows, size, |r| r.id))
    }

    pub async fn account_usage(&self, id: Uuid) -> Result<AccountUsage> {
        let users = user::Entity::find()
            .filter(user::Column::AccountId.eq(id))
            .count(&self.db)
            .await?;
        let service_accounts = service_account::Entity::find()
            .filter(service_account::Column::AccountId.eq(id))
            .count(&self.db)
            .await?;
        let active_api_keys = api_key::Entity::find()
            .filter(api_key::Column::AccountId.eq(id))
            .filter(api_key::Column::RevokedAt.is_null())
            .filter(api_key::Column::ExpiresAt.gt(Utc::now()))
            .count(&self.db)
            .await?;
        let namespaces = self.count_namespaces(id).await?;
        Ok(AccountUsage {
            users,
            service_accounts,
            active_api_keys,
            namespaces,
        })
    }
}
