use sea_orm::entity::prelude::*;

/// A rollout of a release through the rings. The workflow is the source of truth; this row
/// is what it last saved, for lists, for the API after the workflow ended, and for the rule
/// that a cell is in at most one active rollout.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "rollouts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub release_version: String,
    /// `tessera_rings::RolloutStatus` (snake_case).
    pub status: String,
    /// `tessera_rings::Plan`.
    pub plan: Json,
    /// `tessera_rings::Progress`, as last saved.
    pub progress: Json,
    /// Not finished (done, halted or aborted): its cells belong to it.
    pub active: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// A cell held by an active rollout.
pub mod cell {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "rollout_cells")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub cell_id: String,
        pub rollout_id: Uuid,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
