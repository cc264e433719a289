//! Releases: what the runtimes and the agent of a cell run. Rows are written once and never
//! changed, so a rollout that names a version always gets the same release.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use crate::entity::release;
use crate::{Paged, Result, Store, StoreError, page_size, paged};

#[derive(Debug, Clone)]
pub struct NewRelease {
    pub id: Uuid,
    pub version: String,
    pub runtime: serde_json::Value,
    pub agent: serde_json::Value,
    pub notes: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl Store {
    /// Stores a release; a version that exists already answers `Conflict`.
    pub async fn create_release(&self, new: NewRelease) -> Result<release::Model> {
        release::Entity::insert(release::ActiveModel {
            id: Set(new.id),
            version: Set(new.version),
            runtime: Set(new.runtime),
            agent: Set(new.agent),
            notes: Set(new.notes),
            created_at: Set(new.created_at),
        })
        .exec_with_returning(&self.db)
        .await
        .map_err(StoreError::from_write)
    }

    pub async fn release(&self, version: &str) -> Result<Option<release::Model>> {
        Ok(release::Entity::find()
            .filter(release::Column::Version.eq(version))
            .one(&self.db)
            .await?)
    }

    /// Newest first, after the release with id `before`.
    pub async fn list_releases(
        &self,
        before: Option<Uuid>,
        size: Option<u64>,
    ) -> Result<Paged<release::Model>> {
        let size = page_size(size);
        let mut q = release::Entity::find().order_by_desc(release::Column::Id);
        if let Some(b) = before {
            q = q.filter(release::Column::Id.lt(b));
        }
        Ok(paged(q.limit(size + 1).all(&self.db).await?, size, |r| {
            r.id
        }))
    }
}
