//! The append-only audit log.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::OnConflict,
};
use uuid::Uuid;

use crate::entity::audit_entry;
use crate::{Paged, Result, Store, page_size, paged};

#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    /// Chosen by the writer so a retried write lands once.
    pub id: Uuid,
    pub account_id: Option<Uuid>,
    pub at: DateTime<Utc>,
    pub actor_kind: String,
    pub actor_id: Option<Uuid>,
    pub actor_name: Option<String>,
    pub api_key_id: Option<Uuid>,
    pub action: String,
    pub resource: String,
    pub source_ip: Option<String>,
    pub details: serde_json::Value,
}

impl Store {
    /// Appends an entry; appending the same id twice keeps the first.
    pub async fn append_audit(&self, e: NewAuditEntry) -> Result<()> {
        let res = audit_entry::Entity::insert(audit_entry::ActiveModel {
            id: Set(e.id),
            account_id: Set(e.account_id),
            at: Set(e.at),
            actor_kind: Set(e.actor_kind),
            actor_id: Set(e.actor_id),
            actor_name: Set(e.actor_name),
            api_key_id: Set(e.api_key_id),
            action: Set(e.action),
            resource: Set(e.resource),
            source_ip: Set(e.source_ip),
            details: Set(e.details),
        })
        .on_conflict(
            OnConflict::column(audit_entry::Column::Id)
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

    /// An account's entries, newest first.
    pub async fn list_audit(
        &self,
        account_id: Uuid,
        before: Option<Uuid>,
        size: Option<u64>,
    ) -> Result<Paged<audit_entry::Model>> {
        self.audit_page(Some(account_id), before, size).await
    }

    /// Platform-level entries (no account: regions, cells, releases), newest first.
    pub async fn list_platform_audit(
        &self,
        before: Option<Uuid>,
        size: Option<u64>,
    ) -> Result<Paged<audit_entry::Model>> {
        self.audit_page(None, before, size).await
    }

    async fn audit_page(
        &self,
        account_id: Option<Uuid>,
        before: Option<Uuid>,
        size: Option<u64>,
    ) -> Result<Paged<audit_entry::Model>> {
        let size = page_size(size);
        let mut q = audit_entry::Entity::find()
            .filter(match account_id {
                Some(id) => audit_entry::Column::AccountId.eq(id),
                None => audit_entry::Column::AccountId.is_null(),
            })
            .order_by_desc(audit_entry::Column::Id);
        if let Some(b) = before {
            q = q.filter(audit_entry::Column::Id.lt(b));
        }
        Ok(paged(q.limit(size + 1).all(&self.db).await?, size, |e| {
            e.id
        }))
    }
}
