use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "cells")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub region_id: String,
    pub ring: i32,
    pub provider: String,
    pub status: String,
    pub labels: Json,
    pub provider_config: Json,
    /// The desired-state document without secrets (`crate::DesiredDoc`): certificates are
    /// referenced by PKI object id and resolved when the agent fetches the document.
    pub desired: Json,
    /// Grows by one with every change of `desired`.
    pub generation: i64,
    /// The agent's last report (`tessera_api::agent::ObservedState`).
    pub observed: Option<Json>,
    pub observed_generation: Option<i64>,
    pub observed_at: Option<DateTimeUtc>,
    pub ingress_address: Option<String>,
    /// SHA-256 of the agent identity certificate the control plane accepts for this cell.
    pub identity_fingerprint: Option<String>,
    pub identity_not_after: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
