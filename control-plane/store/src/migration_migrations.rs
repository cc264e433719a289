//! Migration m0008: live migrations of namespaces between cells.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::migration::ts;

pub struct M0008Migrations;

impl MigrationName for M0008Migrations {
    fn name(&self) -> &str {
        "m0008_migrations"
    }
}

#[derive(DeriveIden)]
enum Migrations {
    Table,
    Id,
    NamespaceId,
    AccountId,
    OperationId,
    SourceCell,
    TargetCell,
    State,
    Cutover,
    ReplicaUrl,
    Progress,
    Error,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for M0008Migrations {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Migrations::Table)
                .col(uuid(Migrations::Id).primary_key())
                .col(uuid(Migrations::NamespaceId))
                .col(uuid(Migrations::AccountId))
                .col(uuid(Migrations::OperationId))
                .col(string_len(Migrations::SourceCell, 128))
                .col(string_len(Migrations::TargetCell, 128))
                .col(string_len(Migrations::State, 32))
                .col(string_len(Migrations::Cutover, 16))
                .col(text(Migrations::ReplicaUrl))
                .col(json(Migrations::Progress))
                .col(text_null(Migrations::Error))
                .col(ts(Migrations::CreatedAt))
                .col(ts(Migrations::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("migrations_namespace")
                .table(Migrations::Table)
                .col(Migrations::NamespaceId)
                .to_owned(),
        )
        .await
    }
}
