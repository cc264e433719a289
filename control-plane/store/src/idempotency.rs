//! Answers remembered for `Idempotency-Key` replays (24 hours).

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, sea_query::OnConflict};

use crate::entity::idempotency_key;
use crate::{Result, Store};

/// How long a key is remembered.
pub const IDEMPOTENCY_TTL_HOURS: i64 = 24;

#[derive(Debug, Clone, PartialEq)]
pub struct StoredResponse {
    pub request_digest: String,
    pub status: u16,
    pub sealed_body: Vec<u8>,
}

impl Store {
    pub async fn idempotent_response(
        &self,
        scope: &str,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<StoredResponse>> {
        let row = idempotency_key::Entity::find_by_id((scope.to_string(), key.to_string()))
            .filter(
                idempotency_key::Column::CreatedAt.gt(now - Duration::hours(IDEMPOTENCY_TTL_HOURS)),
            )
            .one(&self.db)
            .await?;
        Ok(row.map(|r| StoredResponse {
            request_digest: r.request_digest,
            status: r.status as u16,
            sealed_body: r.sealed_body,
        }))
    }

    /// Remembers the first answer for a key; an expired entry is replaced, a live one kept.
    pub async fn remember_response(
        &self,
        scope: &str,
        key: &str,
        resp: StoredResponse,
        now: DateTime<Utc>,
    ) -> Result<()> {
        idempotency_key::Entity::delete_many()
            .filter(idempotency_key::Column::Scope.eq(scope))
            .filter(idempotency_key::Column::Key.eq(key))
            .filter(
                idempotency_key::Column::CreatedAt
                    .lte(now - Duration::hours(IDEMPOTENCY_TTL_HOURS)),
            )
            .exec(&self.db)
            .await?;
        let res = idempotency_key::Entity::insert(idempotency_key::ActiveModel {
            scope: Set(scope.to_string()),
            key: Set(key.to_string()),
            request_digest: Set(resp.request_digest),
            status: Set(resp.status as i32),
            sealed_body: Set(resp.sealed_body),
            created_at: Set(now),
        })
        .on_conflict(
            OnConflict::columns([idempotency_key::Column::Scope, idempotency_key::Column::Key])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await;
        match res {
            Ok(_) | Err(sea_orm::DbErr::RecordNotInserted) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
