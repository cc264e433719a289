//! Schema migrations, run at every start (already applied ones are skipped).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(M0001Tenants),
            Box::new(crate::migration_cells::M0002Cells),
            Box::new(crate::migration_namespaces::M0003Namespaces),
            Box::new(crate::migration_releases::M0004Releases),
            Box::new(crate::migration_rollouts::M0005Rollouts),
            Box::new(crate::migration_regions::M0006RegionOwners),
            Box::new(crate::migration_edges::M0007Edges),
            Box::new(crate::migration_migrations::M0008Migrations),
            Box::new(crate::migration_replicas::M0009Replicas),
        ]
    }
}

/// Accounts, users, sessions, service accounts, API keys, operations, audit log, idempotency.
struct M0001Tenants;

impl MigrationName for M0001Tenants {
    fn name(&self) -> &str {
        "m0001_tenants"
    }
}

/// Column names mirror the entity; `max_service_accounts` ends like the table, by design.
#[allow(clippy::enum_variant_names)]
#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
    Name,
    Slug,
    MaxNamespaces,
    MaxUsers,
    MaxServiceAccounts,
    MaxApiKeys,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    AccountId,
    Email,
    PasswordHash,
    Role,
    State,
    InviteTokenDigest,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    TokenDigest,
    UserId,
    AccountId,
    ExpiresAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ServiceAccounts {
    Table,
    Id,
    AccountId,
    Name,
    Role,
    NamespaceAccess,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
    AccountId,
    Name,
    UserId,
    ServiceAccountId,
    SecretDigest,
    ExpiresAt,
    CreatedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Operations {
    Table,
    Id,
    AccountId,
    Kind,
    State,
    Progress,
    Step,
    ResourceKind,
    ResourceId,
    WorkflowId,
    ErrorCode,
    ErrorMessage,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    AccountId,
    At,
    ActorKind,
    ActorId,
    ActorName,
    ApiKeyId,
    Action,
    Resource,
    SourceIp,
    Details,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    Scope,
    Key,
    RequestDigest,
    Status,
    SealedBody,
    CreatedAt,
}

pub(crate) fn ts(col: impl IntoIden) -> ColumnDef {
    timestamp_with_time_zone(col)
}

pub(crate) fn ts_null(col: impl IntoIden) -> ColumnDef {
    timestamp_with_time_zone_null(col)
}

pub(crate) fn index(
    name: &str,
    table: impl IntoIden + 'static,
    cols: &[&'static str],
    unique: bool,
) -> IndexCreateStatement {
    let mut i = Index::create();
    i.name(name).table(table);
    for c in cols {
        i.col(Alias::new(*c));
    }
    if unique {
        i.unique();
    }
    i.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for M0001Tenants {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Accounts::Table)
                .col(uuid(Accounts::Id).primary_key())
                .col(string_len_uniq(Accounts::Name, 63))
                .col(string_len_uniq(Accounts::Slug, 63))
                .col(integer(Accounts::MaxNamespaces))
                .col(integer(Accounts::MaxUsers))
                .col(integer(Accounts::MaxServiceAccounts))
                .col(integer(Accounts::MaxApiKeys))
                .col(ts(Accounts::CreatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Users::Table)
                .col(uuid(Users::Id).primary_key())
                .col(uuid(Users::AccountId))
                .col(string_len_uniq(Users::Email, 254))
                .col(text_null(Users::PasswordHash))
                .col(string_len(Users::Role, 16))
                .col(string_len(Users::State, 16))
                .col(string_len_null(Users::InviteTokenDigest, 64))
                .col(ts(Users::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Users::Table, Users::AccountId)
                        .to(Accounts::Table, Accounts::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "idx_users_account",
            Users::Table,
            &["account_id"],
            false,
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(Sessions::Table)
                .col(string_len(Sessions::TokenDigest, 64).primary_key())
                .col(uuid(Sessions::UserId))
                .col(uuid(Sessions::AccountId))
                .col(ts(Sessions::ExpiresAt))
                .col(ts(Sessions::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "idx_sessions_user",
            Sessions::Table,
            &["user_id"],
            false,
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(ServiceAccounts::Table)
                .col(uuid(ServiceAccounts::Id).primary_key())
                .col(uuid(ServiceAccounts::AccountId))
                .col(string_len(ServiceAccounts::Name, 64))
                .col(string_len(ServiceAccounts::Role, 16))
                .col(json(ServiceAccounts::NamespaceAccess))
                .col(ts(ServiceAccounts::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(ServiceAccounts::Table, ServiceAccounts::AccountId)
                        .to(Accounts::Table, Accounts::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "uq_service_accounts_name",
            ServiceAccounts::Table,
            &["account_id", "name"],
            true,
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(ApiKeys::Table)
                .col(uuid(ApiKeys::Id).primary_key())
                .col(uuid(ApiKeys::AccountId))
                .col(string_len(ApiKeys::Name, 64))
                .col(uuid_null(ApiKeys::UserId))
                .col(uuid_null(ApiKeys::ServiceAccountId))
                .col(string_len(ApiKeys::SecretDigest, 64))
                .col(ts(ApiKeys::ExpiresAt))
                .col(ts(ApiKeys::CreatedAt))
                .col(ts_null(ApiKeys::RevokedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(ApiKeys::Table, ApiKeys::AccountId)
                        .to(Accounts::Table, Accounts::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "idx_api_keys_account",
            ApiKeys::Table,
            &["account_id"],
            false,
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(Operations::Table)
                .col(uuid(Operations::Id).primary_key())
                .col(uuid_null(Operations::AccountId))
                .col(string_len(Operations::Kind, 64))
                .col(string_len(Operations::State, 16))
                .col(double(Operations::Progress))
                .col(text_null(Operations::Step))
                .col(string_len(Operations::ResourceKind, 64))
                .col(string_len(Operations::ResourceId, 255))
                .col(string_len(Operations::WorkflowId, 255))
                .col(string_len_null(Operations::ErrorCode, 64))
                .col(text_null(Operations::ErrorMessage))
                .col(ts(Operations::CreatedAt))
                .col(ts(Operations::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "idx_operations_account",
            Operations::Table,
            &["account_id"],
            false,
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(AuditLog::Table)
                .col(uuid(AuditLog::Id).primary_key())
                .col(uuid_null(AuditLog::AccountId))
                .col(ts(AuditLog::At))
                .col(string_len(AuditLog::ActorKind, 32))
                .col(uuid_null(AuditLog::ActorId))
                .col(string_len_null(AuditLog::ActorName, 254))
                .col(uuid_null(AuditLog::ApiKeyId))
                .col(string_len(AuditLog::Action, 64))
                .col(string_len(AuditLog::Resource, 255))
                .col(string_len_null(AuditLog::SourceIp, 64))
                .col(json(AuditLog::Details))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "idx_audit_account",
            AuditLog::Table,
            &["account_id", "id"],
            false,
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(IdempotencyKeys::Table)
                .col(string_len(IdempotencyKeys::Scope, 128))
                .col(string_len(IdempotencyKeys::Key, 255))
                .col(string_len(IdempotencyKeys::RequestDigest, 64))
                .col(integer(IdempotencyKeys::Status))
                .col(blob(IdempotencyKeys::SealedBody))
                .col(ts(IdempotencyKeys::CreatedAt))
                .primary_key(
                    Index::create()
                        .col(IdempotencyKeys::Scope)
                        .col(IdempotencyKeys::Key),
                )
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
