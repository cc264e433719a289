use sea_orm::entity::prelude::*;

#[derive(Clone, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub account_id: Uuid,
    #[sea_orm(unique)]
    pub email: String,
    /// Argon2id PHC string; `None` until an invited user accepts.
    pub password_hash: Option<String>,
    pub role: String,
    pub state: String,
    /// SHA-256 digest of the pending invitation token.
    pub invite_token_digest: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

// The password hash stays out of logs.
tessera_api::debug_without_secrets!(Model {
    id,
    account_id,
    email,
    role,
    state,
    created_at
});
