use sea_orm::entity::prelude::*;

/// A live migration of a namespace from one cell to another.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "migrations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub namespace_id: Uuid,
    pub account_id: Uuid,
    pub operation_id: Uuid,
    pub source_cell: String,
    pub target_cell: String,
    /// `started | replicating | ready_for_cutover | cutting_over | completed | aborting |
    /// aborted | failed`.
    pub state: String,
    /// `auto` or `manual`.
    pub cutover: String,
    /// Where the source's store streams and the target follows from.
    pub replica_url: String,
    /// `tessera_api::MigrationProgress`: lag, step timings, the final transaction.
    pub progress: Json,
    pub error: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
