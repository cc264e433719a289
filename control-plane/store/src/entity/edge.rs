use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "edges")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub region_id: String,
    /// SHA-256 of the one-time join token, until the edge joins.
    pub token_digest: Option<String>,
    pub token_expires_at: Option<DateTimeUtc>,
    /// SHA-256 of the identity certificate the control plane accepts for this edge.
    pub identity_fingerprint: Option<String>,
    pub identity_not_after: Option<DateTimeUtc>,
    /// The edge's last report (`tessera_api::edge::EdgeObserved`).
    pub observed: Option<Json>,
    pub observed_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
