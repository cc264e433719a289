use sea_orm::entity::prelude::*;

/// A standby copy of a namespace: a cell that keeps the namespace's store a follower of the
/// active store's replica.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "replicas")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub namespace_id: Uuid,
    pub region_id: String,
    pub cell_id: String,
    /// `adding | in_sync | lagging | failed | removing`.
    pub state: String,
    /// The replica the active store streams into and the standby follows (one per namespace:
    /// every replica of a namespace has the same).
    pub replica_url: String,
    pub lag_seconds: Option<f64>,
    pub last_applied_at: Option<DateTimeUtc>,
    pub error: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
