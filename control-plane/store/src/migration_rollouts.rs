//! Migration m0005: rollouts.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::migration::ts;

pub struct M0005Rollouts;

impl MigrationName for M0005Rollouts {
    fn name(&self) -> &str {
        "m0005_rollouts"
    }
}

#[derive(DeriveIden)]
enum Rollouts {
    Table,
    Id,
    ReleaseVersion,
    Status,
    Plan,
    Progress,
    Active,
    CreatedAt,
    UpdatedAt,
}

/// One row per cell of an active rollout: the primary key is what makes "one active rollout
/// per cell" hold under concurrent creates, on SQLite and PostgreSQL alike.
#[derive(DeriveIden)]
enum RolloutCells {
    Table,
    CellId,
    RolloutId,
}

#[async_trait::async_trait]
impl MigrationTrait for M0005Rollouts {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Rollouts::Table)
                .col(uuid(Rollouts::Id).primary_key())
                .col(string_len(Rollouts::ReleaseVersion, 64))
                .col(string_len(Rollouts::Status, 32))
                .col(json(Rollouts::Plan))
                .col(json(Rollouts::Progress))
                .col(boolean(Rollouts::Active))
                .col(ts(Rollouts::CreatedAt))
                .col(ts(Rollouts::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("rollouts_active")
                .table(Rollouts::Table)
                .col(Rollouts::Active)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(RolloutCells::Table)
                .col(string_len(RolloutCells::CellId, 64).primary_key())
                .col(uuid(RolloutCells::RolloutId))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(RolloutCells::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(Rollouts::Table).to_owned())
            .await
    }
}
