//! Console sessions behind the session cookie.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::entity::session;
use crate::{Result, Store};

impl Store {
    pub async fn create_session(
        &self,
        token_digest: String,
        user_id: Uuid,
        account_id: Uuid,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        session::Entity::insert(session::ActiveModel {
            token_digest: Set(token_digest),
            user_id: Set(user_id),
            account_id: Set(account_id),
            expires_at: Set(expires_at),
            created_at: Set(Utc::now()),
        })
        .exec(&self.db)
        .await?;
        Ok(())
    }

    /// The unexpired session with this digest.
    pub async fn session(
        &self,
        token_digest: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<session::Model>> {
        Ok(session::Entity::find_by_id(token_digest.to_string())
            .filter(session::Column::ExpiresAt.gt(now))
            .one(&self.db)
            .await?)
    }

    pub async fn delete_session(&self, token_digest: &str) -> Result<()> {
        session::Entity::delete_by_id(token_digest.to_string())
            .exec(&self.db)
            .await?;
        Ok(())
    }
}
