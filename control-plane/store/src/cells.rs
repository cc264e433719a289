//! Regions, cells and join tokens.
//!
//! A cell row holds both sides of the agent protocol: the desired document (with a generation
//! that grows by one per change) and the agent's last observed report.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, RuntimeErr,
};
use uuid::Uuid;

use crate::entity::{cell, join_token, region};
use crate::{Paged, Result, Store, StoreError, page_size};

#[derive(Debug, Clone)]
pub struct NewCell {
    pub id: String,
    pub region_id: String,
    pub ring: i32,
    pub provider: String,
    pub status: String,
    pub labels: serde_json::Value,
    pub provider_config: serde_json::Value,
    pub desired: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

impl Store {
    /// A platform region.
    pub async fn create_region(
        &self,
        id: &str,
        cloud: &str,
        location: &str,
        at: DateTime<Utc>,
    ) -> Result<region::Model> {
        self.insert_region(id, cloud, location, None, at).await
    }

    /// A self-hosted region that belongs to `account_id`.
    pub async fn create_account_region(
        &self,
        account_id: Uuid,
        id: &str,
        location: &str,
        at: DateTime<Utc>,
    ) -> Result<region::Model> {
        self.insert_region(id, "self_hosted", location, Some(account_id), at)
            .await
    }

    async fn insert_region(
        &self,
        id: &str,
        cloud: &str,
        location: &str,
        owner: Option<Uuid>,
        at: DateTime<Utc>,
    ) -> Result<region::Model> {
        region::Entity::insert(region::ActiveModel {
            id: Set(id.into()),
            cloud: Set(cloud.into()),
            location: Set(location.into()),
            owner_account_id: Set(owner),
            created_at: Set(at),
        })
        .exec_with_returning(&self.db)
        .await
        .map_err(StoreError::from_write)
    }

    /// Any region (platform admins, and code acting for the platform).
    pub async fn region(&self, id: &str) -> Result<region::Model> {
        region::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await?
            .ok_or(StoreError::NotFound("region"))
    }

    /// A region `account_id` may use: a platform region or one of its own. Another account's
    /// region is `NotFound`, exactly like a region that does not exist.
    pub async fn region_for(&self, account_id: Uuid, id: &str) -> Result<region::Model> {
        match self.region(id).await? {
            r if r.owner_account_id.is_none_or(|o| o == account_id) => Ok(r),
            _ => Err(StoreError::NotFound("region")),
        }
    }

    /// Every region (platform admins).
    pub async fn list_regions(&self) -> Result<Vec<region::Model>> {
        Ok(region::Entity::find()
            .order_by_asc(region::Column::Id)
            .all(&self.db)
            .await?)
    }

    /// The regions `account_id` may use: the platform's and its own.
    pub async fn regions_for(&self, account_id: Uuid) -> Result<Vec<region::Model>> {
        Ok(region::Entity::find()
            .filter(
                region::Column::OwnerAccountId
                    .is_null()
                    .or(region::Column::OwnerAccountId.eq(account_id)),
            )
            .order_by_asc(region::Column::Id)
            .all(&self.db)
            .await?)
    }

    /// The account's own regions.
    pub async fn account_regions(&self, account_id: Uuid) -> Result<Vec<region::Model>> {
        Ok(region::Entity::find()
            .filter(region::Column::OwnerAccountId.eq(account_id))
            .order_by_asc(region::Column::Id)
            .all(&self.db)
            .await?)
    }

    /// The first free `<region>-<n>` id.
    pub async fn next_cell_id(&self, region_id: &str) -> Result<String> {
        let taken: Vec<String> = cell::Entity::find()
            .filter(cell::Column::RegionId.eq(region_id))
            .select_only()
            .column(cell::Column::Id)
            .into_tuple()
            .all(&self.db)
            .await?;
        let n = (1..)
            .find(|n| !taken.contains(&format!("{region_id}-{n}")))
            .expect("a free number");
        Ok(format!("{region_id}-{n}"))
    }

    pub async fn create_cell(&self, new: NewCell) -> Result<cell::Model> {
        cell::Entity::insert(cell::ActiveModel {
            id: Set(new.id),
            region_id: Set(new.region_id),
            ring: Set(new.ring),
            provider: Set(new.provider),
            status: Set(new.status),
            labels: Set(new.labels),
            provider_config: Set(new.provider_config),
            desired: Set(new.desired),
            generation: Set(1),
            observed: Set(None),
            observed_generation: Set(None),
            observed_at: Set(None),
            ingress_address: Set(None),
            identity_fingerprint: Set(None),
            identity_not_after: Set(None),
            created_at: Set(new.created_at),
            updated_at: Set(new.created_at),
        })
        .exec_with_returning(&self.db)
        .await
        .map_err(StoreError::from_write)
    }

    /// The cell's row. A column that does not decode (SQLite keeps JSON as text, so a document
    /// can hold bytes that are no JSON at all) is an unreadable document of that cell.
    pub async fn cell(&self, id: &str) -> Result<cell::Model> {
        cell::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await
            .map_err(|e| undecodable_column(id, e))?
            .ok_or(StoreError::NotFound("cell"))
    }

    /// Cells ordered by id, after `after`.
    pub async fn list_cells(
        &self,
        after: Option<String>,
        size: Option<u64>,
    ) -> Result<Paged<cell::Model, String>> {
        let size = page_size(size);
        let mut q = cell::Entity::find().order_by_asc(cell::Column::Id);
        if let Some(a) = after {
            q = q.filter(cell::Column::Id.gt(a));
        }
        let mut rows = q.limit(size + 1).all(&self.db).await?;
        let next_after = if rows.len() as u64 > size {
            rows.truncate(size as usize);
            rows.last().map(|c| c.id.clone())
        } else {
            None
        };
        Ok(Paged {
            items: rows,
            next_after,
        })
    }

    pub async fn cells_in_region(&self, region_id: &str) -> Result<Vec<cell::Model>> {
        Ok(cell::Entity::find()
            .filter(cell::Column::RegionId.eq(region_id))
            .order_by_asc(cell::Column::Id)
            .all(&self.db)
            .await?)
    }

    pub async fn set_cell_status(&self, id: &str, status: &str) -> Result<cell::Model> {
        let mut am = self.cell(id).await?.into_active_model();
        am.status = Set(status.into());
        am.updated_at = Set(Utc::now());
        let c = am.update(&self.db).await?;
        self.cell_changed(id).await;
        Ok(c)
    }

    /// Moves a cell to `to` only if its status is one of `from`; answers whether it moved. Two
    /// callers racing for the same transition: exactly one wins.
    pub async fn transition_cell_status(&self, id: &str, from: &[&str], to: &str) -> Result<bool> {
        let res = cell::Entity::update_many()
            .col_expr(cell::Column::Status, Expr::value(to))
            .col_expr(cell::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(cell::Column::Id.eq(id))
            .filter(cell::Column::Status.is_in(from.iter().copied()))
            .exec(&self.db)
            .await?;
        if res.rows_affected == 0 {
            self.cell(id).await?;
        } else {
            self.cell_changed(id).await;
        }
        Ok(res.rows_affected == 1)
    }

    /// Replaces the desired document if the generation is still `expected` and returns the new
    /// generation; a concurrent writer makes it answer `Conflict` (read again and retry). Callers
    /// other than [`Store::update_desired`] are tests that write documents by hand.
    pub async fn replace_desired(
        &self,
        id: &str,
        expected: i64,
        desired: serde_json::Value,
    ) -> Result<i64> {
        let res = cell::Entity::update_many()
            .col_expr(cell::Column::Desired, Expr::value(desired))
            .col_expr(cell::Column::Generation, Expr::value(expected + 1))
            .col_expr(cell::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(cell::Column::Id.eq(id))
            .filter(cell::Column::Generation.eq(expected))
            .exec(&self.db)
            .await?;
        if res.rows_affected == 1 {
            self.cell_changed(id).await;
            Ok(expected + 1)
        } else {
            self.cell(id).await?;
            Err(StoreError::Conflict(format!(
                "desired state of cell {id} changed concurrently"
            )))
        }
    }

    /// Stores an agent report. A report about an older generation than one already stored is
    /// kept as the latest report (the agent is alive) but never lowers `observed_generation`.
    pub async fn record_observed(
        &self,
        id: &str,
        observed: serde_json::Value,
        generation: i64,
        ingress_address: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let c = self.cell(id).await?;
        let mut am = c.clone().into_active_model();
        am.observed = Set(Some(observed));
        am.observed_generation = Set(Some(c.observed_generation.unwrap_or(0).max(generation)));
        am.observed_at = Set(Some(at));
        if ingress_address.is_some() {
            am.ingress_address = Set(ingress_address);
        }
        am.updated_at = Set(at);
        am.update(&self.db).await?;
        self.cell_changed(id).await;
        Ok(())
    }

    pub async fn set_cell_identity(
        &self,
        id: &str,
        fingerprint: &str,
        not_after: DateTime<Utc>,
    ) -> Result<()> {
        let mut am = self.cell(id).await?.into_active_model();
        am.identity_fingerprint = Set(Some(fingerprint.into()));
        am.identity_not_after = Set(Some(not_after));
        am.updated_at = Set(Utc::now());
        am.update(&self.db).await?;
        self.cell_changed(id).await;
        Ok(())
    }

    /// Forgets the cell's identity: its agent can no longer reach the agent endpoint.
    pub async fn revoke_cell_identity(&self, id: &str) -> Result<()> {
        let mut am = self.cell(id).await?.into_active_model();
        am.identity_fingerprint = Set(None);
        am.updated_at = Set(Utc::now());
        am.update(&self.db).await?;
        join_token::Entity::delete_many()
            .filter(join_token::Column::CellId.eq(id))
            .exec(&self.db)
            .await?;
        self.cell_changed(id).await;
        Ok(())
    }

    pub async fn create_join_token(
        &self,
        cell_id: &str,
        digest: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        join_token::Entity::insert(join_token::ActiveModel {
            id: Set(Uuid::now_v7()),
            cell_id: Set(cell_id.into()),
            digest: Set(digest.into()),
            expires_at: Set(expires_at),
            used_at: Set(None),
            created_at: Set(Utc::now()),
        })
        .exec(&self.db)
        .await
        .map_err(StoreError::from_write)?;
        Ok(())
    }

    /// Uses a join token once: answers the cell it was made for, or `NotFound` when the token
    /// is unknown, used or expired (the caller cannot tell which).
    pub async fn consume_join_token(&self, digest: &str, now: DateTime<Utc>) -> Result<String> {
        let res = join_token::Entity::update_many()
            .col_expr(join_token::Column::UsedAt, Expr::value(now))
            .filter(join_token::Column::Digest.eq(digest))
            .filter(join_token::Column::UsedAt.is_null())
            .filter(join_token::Column::ExpiresAt.gt(now))
            .exec(&self.db)
            .await?;
        if res.rows_affected != 1 {
            return Err(StoreError::NotFound("join token"));
        }
        let t = join_token::Entity::find()
            .filter(join_token::Column::Digest.eq(digest))
            .one(&self.db)
            .await?
            .ok_or(StoreError::NotFound("join token"))?;
        Ok(t.cell_id)
    }
}

fn undecodable_column(cell_id: &str, e: DbErr) -> StoreError {
    if let DbErr::Query(RuntimeErr::SqlxError(sqlx::Error::ColumnDecode { index, source })) = &e {
        let what = match index.trim_matches('"') {
            "desired" => "desired state",
            "observed" => "observed state",
            _ => "stored row",
        };
        return StoreError::Unreadable {
            cell: cell_id.into(),
            what,
            reason: format!("column {index}: {source}"),
        };
    }
    StoreError::Db(e)
}
