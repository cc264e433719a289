use sea_orm::entity::prelude::*;

/// A release: immutable once stored (a change is a new version).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "releases")]
pub struct Model {
    /// UUIDv7 chosen at creation: orders the list newest first and keys its pages.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub version: String,
    /// `tessera_api::RuntimeRelease`.
    pub runtime: Json,
    /// `tessera_api::AgentRelease`.
    pub agent: Json,
    pub notes: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
