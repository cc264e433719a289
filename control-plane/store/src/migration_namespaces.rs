//! Migration m0003: namespaces.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::migration::{index, ts, ts_null};

pub struct M0003Namespaces;

impl MigrationName for M0003Namespaces {
    fn name(&self) -> &str {
        "m0003_namespaces"
    }
}

#[derive(DeriveIden)]
enum Namespaces {
    Table,
    Id,
    AccountId,
    Name,
    LiveKey,
    RegionId,
    CellId,
    State,
    RetentionDays,
    AcceptedCaPem,
    GeneratedCa,
    TemporalNamespace,
    Host,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for M0003Namespaces {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Namespaces::Table)
                .col(uuid(Namespaces::Id).primary_key())
                .col(uuid(Namespaces::AccountId))
                .col(string_len(Namespaces::Name, 63))
                // Several NULLs (deleted namespaces) are allowed by both SQLite and PostgreSQL.
                .col(string_len_null(Namespaces::LiveKey, 120).unique_key())
                .col(string_len(Namespaces::RegionId, 63))
                .col(string_len_null(Namespaces::CellId, 80))
                .col(string_len(Namespaces::State, 16))
                .col(integer(Namespaces::RetentionDays))
                .col(text(Namespaces::AcceptedCaPem))
                .col(boolean(Namespaces::GeneratedCa))
                .col(string_len(Namespaces::TemporalNamespace, 160))
                .col(string_len(Namespaces::Host, 255))
                .col(ts(Namespaces::CreatedAt))
                .col(ts(Namespaces::UpdatedAt))
                .col(ts_null(Namespaces::DeletedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "idx_namespaces_account",
            Namespaces::Table,
            &["account_id"],
            false,
        ))
        .await?;
        m.create_index(index(
            "idx_namespaces_cell",
            Namespaces::Table,
            &["cell_id"],
            false,
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Namespaces::Table).to_owned())
            .await
    }
}
