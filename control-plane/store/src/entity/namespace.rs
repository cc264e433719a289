use sea_orm::entity::prelude::*;

/// A tenant namespace. Deleted namespaces keep their row (state `deleted`, `live_key` cleared)
/// for the audit trail; the name can then be used again.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "namespaces")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub account_id: Uuid,
    pub name: String,
    /// `<account id>/<name>` while the namespace exists, `NULL` once deleted: unique, so a
    /// name is taken at most once per account at a time.
    #[sea_orm(unique)]
    pub live_key: Option<String>,
    pub region_id: String,
    /// The cell it runs on, once placed.
    pub cell_id: Option<String>,
    /// `provisioning | active | updating | deleting | failed | deleted`.
    pub state: String,
    pub retention_days: i32,
    /// The PEM bundle of CAs whose client certificates the namespace accepts.
    pub accepted_ca_pem: String,
    /// Whether the control plane generated a CA for it (and can issue client certificates).
    pub generated_ca: bool,
    /// `<name>.<account-slug>`.
    pub temporal_namespace: String,
    /// `<name>.<account-slug>.<base-domain>`: the SNI host of its endpoint.
    pub host: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub deleted_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
