//! Migration m0004: releases.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::migration::ts;

pub struct M0004Releases;

impl MigrationName for M0004Releases {
    fn name(&self) -> &str {
        "m0004_releases"
    }
}

#[derive(DeriveIden)]
enum Releases {
    Table,
    Id,
    Version,
    Runtime,
    Agent,
    Notes,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for M0004Releases {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Releases::Table)
                .col(uuid(Releases::Id).primary_key())
                .col(string_len_uniq(Releases::Version, 64))
                .col(json(Releases::Runtime))
                .col(json(Releases::Agent))
                .col(text_null(Releases::Notes))
                .col(ts(Releases::CreatedAt))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Releases::Table).to_owned())
            .await
    }
}
