//! Users of an account: owners from sign-up, invited members.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use uuid::Uuid;

use crate::entity::{api_key, session, user};
use crate::{Paged, Result, Store, StoreError, page_size, paged};

#[derive(Clone)]
pub struct NewUser {
    pub id: Uuid,
    pub account_id: Uuid,
    pub email: String,
    pub password_hash: Option<String>,
    pub role: String,
    pub state: String,
    pub invite_token_digest: Option<String>,
    pub created_at: DateTime<Utc>,
}

tessera_api::debug_without_secrets!(NewUser {
    id,
    account_id,
    email,
    role,
    state
});

/// How long an invitation can be accepted.
pub const INVITATION_TTL: chrono::Duration = chrono::Duration::days(7);

impl Store {
    /// Creates the user unless one with this id exists; a taken email is a conflict.
    pub async fn create_user(&self, new: NewUser) -> Result<user::Model> {
        if let Some(existing) = user::Entity::find_by_id(new.id).one(&self.db).await? {
            return Ok(existing);
        }
        let model = user::ActiveModel {
            id: Set(new.id),
            account_id: Set(new.account_id),
            email: Set(new.email),
            password_hash: Set(new.password_hash),
            role: Set(new.role),
            state: Set(new.state),
            invite_token_digest: Set(new.invite_token_digest),
            created_at: Set(new.created_at),
        };
        user::Entity::insert(model)
            .exec_with_returning(&self.db)
            .await
            .map_err(StoreError::from_write)
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<user::Model>> {
        Ok(user::Entity::find()
            .filter(user::Column::Email.eq(email))
            .one(&self.db)
            .await?)
    }

    pub async fn user_by_id(&self, id: Uuid) -> Result<Option<user::Model>> {
        Ok(user::Entity::find_by_id(id).one(&self.db).await?)
    }

    /// A user of `account_id`; users of other accounts are `NotFound`.
    pub async fn user(&self, account_id: Uuid, id: Uuid) -> Result<user::Model> {
        user::Entity::find_by_id(id)
            .filter(user::Column::AccountId.eq(account_id))
            .one(&self.db)
            .await?
            .ok_or(StoreError::NotFound("user"))
    }

    pub async fn list_users(
        &self,
        account_id: Uuid,
        after: Option<Uuid>,
        size: Option<u64>,
    ) -> Result<Paged<user::Model>> {
        let size = page_size(size);
        let mut q = user::Entity::find()
            .filter(user::Column::AccountId.eq(account_id))
            .order_by_asc(user::Column::Id);
        if let Some(a) = after {
            q = q.filter(user::Column::Id.gt(a));
        }
        Ok(paged(q.limit(size + 1).all(&self.db).await?, size, |u| {
            u.id
        }))
    }

    pub async fn count_owners(&self, account_id: Uuid) -> Result<u64> {
        Ok(user::Entity::find()
            .filter(user::Column::AccountId.eq(account_id))
            .filter(user::Column::Role.eq("owner"))
            .count(&self.db)
            .await?)
    }

    /// Changes a role; refuses (`Conflict`) to demote the account's last owner.
    pub async fn set_user_role(
        &self,
        account_id: Uuid,
        id: Uuid,
        role: &str,
    ) -> Result<user::Model> {
        let txn = self.db.begin().await?;
        let u = user::Entity::find_by_id(id)
            .filter(user::Column::AccountId.eq(account_id))
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound("user"))?;
        if u.role == "owner" && role != "owner" {
            ensure_another_owner(&txn, account_id).await?;
        }
        let mut am = u.into_active_model();
        am.role = Set(role.to_string());
        let updated = am.update(&txn).await?;
        txn.commit().await?;
        Ok(updated)
    }

    /// Removes a user, ends their sessions and revokes their API keys in one transaction.
    /// Refuses (`Conflict`) to remove the last owner.
    pub async fn remove_user(
        &self,
        account_id: Uuid,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<user::Model> {
        let txn = self.db.begin().await?;
        let u = user::Entity::find_by_id(id)
            .filter(user::Column::AccountId.eq(account_id))
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound("user"))?;
        if u.role == "owner" {
            ensure_another_owner(&txn, account_id).await?;
        }
        session::Entity::delete_many()
            .filter(session::Column::UserId.eq(id))
            .exec(&txn)
            .await?;
        api_key::Entity::update_many()
            .col_expr(
                api_key::Column::RevokedAt,
                sea_orm::sea_query::Expr::value(now),
            )
            .filter(api_key::Column::UserId.eq(id))
            .filter(api_key::Column::RevokedAt.is_null())
            .exec(&txn)
            .await?;
        user::Entity::delete_by_id(id).exec(&txn).await?;
        txn.commit().await?;
        Ok(u)
    }

    /// Finds the invited user holding this invitation digest, unless the invitation is older
    /// than [`INVITATION_TTL`] at `now`.
    pub async fn user_by_invite(
        &self,
        digest: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<user::Model>> {
        Ok(user::Entity::find()
            .filter(user::Column::InviteTokenDigest.eq(digest))
            .filter(user::Column::State.eq("invited"))
            .filter(user::Column::CreatedAt.gt(now - INVITATION_TTL))
            .one(&self.db)
            .await?)
    }

    /// Sets the password of an invited user and activates them; the invitation is used up.
    pub async fn activate_user(&self, id: Uuid, password_hash: String) -> Result<user::Model> {
        let u = user::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or(StoreError::NotFound("user"))?;
        let mut am = u.into_active_model();
        am.password_hash = Set(Some(password_hash));
        am.state = Set("active".into());
        am.invite_token_digest = Set(None);
        Ok(am.update(&self.db).await?)
    }
}

/// Refuses (`Conflict`) a change that would leave the account without an owner.
async fn ensure_another_owner(txn: &sea_orm::DatabaseTransaction, account_id: Uuid) -> Result<()> {
    let owners = user::Entity::find()
        .filter(user::Column::AccountId.eq(account_id))
        .filter(user::Column::Role.eq("owner"))
        .count(txn)
        .await?;
    if owners <= 1 {
        return Err(StoreError::Conflict("last owner".into()));
    }
    Ok(())
}
