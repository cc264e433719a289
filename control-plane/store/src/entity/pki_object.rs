use sea_orm::entity::prelude::*;

/// A certificate the control plane issued and keeps the key of (root, cell intermediates,
/// ingress server certificates). The key is sealed with the master key.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "pki_objects")]
pub struct Model {
    /// e.g. `root`, `cell/local-east-1/ca`, `cell/local-east-1/ingress`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// `root_ca`, `cell_ca`, `ingress`, `agent_endpoint`.
    pub kind: String,
    pub cell_id: Option<String>,
    /// The certificate followed by the intermediates above it.
    pub chain_pem: String,
    pub sealed_key: Vec<u8>,
    pub not_before: DateTimeUtc,
    pub not_after: DateTimeUtc,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
