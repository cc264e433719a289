//! Certificates whose keys the control plane keeps (sealed by the caller with the master key).

use chrono::Utc;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, IntoActiveModel};

use crate::entity::pki_object;
use crate::{Result, Store, StoreError};

impl Store {
    pub async fn pki_object(&self, id: &str) -> Result<Option<pki_object::Model>> {
        Ok(pki_object::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await?)
    }

    /// Inserts `obj` unless an object with its id exists; returns whichever is stored, so two
    /// processes creating the same CA at once end up using the same one.
    pub async fn insert_pki_object_if_absent(
        &self,
        obj: pki_object::Model,
    ) -> Result<pki_object::Model> {
        if let Some(existing) = self.pki_object(&obj.id).await? {
            return Ok(existing);
        }
        let id = obj.id.clone();
        match pki_object::Entity::insert(obj.into_active_model())
            .exec(&self.db)
            .await
            .map_err(StoreError::from_write)
        {
            Ok(_) | Err(StoreError::Conflict(_)) => self
                .pki_object(&id)
                .await?
                .ok_or(StoreError::NotFound("pki object")),
            Err(e) => Err(e),
        }
    }

    /// Replaces a certificate (renewal).
    pub async fn replace_pki_object(&self, obj: pki_object::Model) -> Result<()> {
        match self.pki_object(&obj.id).await? {
            None => {
                pki_object::Entity::insert(obj.into_active_model())
                    .exec(&self.db)
                    .await
                    .map_err(StoreError::from_write)?;
            }
            Some(existing) => {
                let mut am = existing.into_active_model();
                am.chain_pem = Set(obj.chain_pem);
                am.sealed_key = Set(obj.sealed_key);
                am.not_before = Set(obj.not_before);
                am.not_after = Set(obj.not_after);
                am.updated_at = Set(Utc::now());
                am.update(&self.db).await?;
            }
        }
        Ok(())
    }

    pub async fn list_pki_objects(&self) -> Result<Vec<pki_object::Model>> {
        Ok(pki_object::Entity::find().all(&self.db).await?)
    }

    pub async fn delete_pki_objects_of_cell(&self, cell_id: &str) -> Result<()> {
        use sea_orm::{ColumnTrait, QueryFilter};
        pki_object::Entity::delete_many()
            .filter(pki_object::Column::CellId.eq(cell_id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Deletes every PKI object whose id starts with `prefix` (e.g. `ns/<id>/`).
    pub async fn delete_pki_objects_with_prefix(&self, prefix: &str) -> Result<()> {
        use sea_orm::{ColumnTrait, QueryFilter};
        pki_object::Entity::delete_many()
            .filter(pki_object::Column::Id.starts_with(prefix))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}
