//! Migration m0006: a region may belong to an account (a tenant's own self-hosted region).

use sea_orm_migration::prelude::*;

pub struct M0006RegionOwners;

impl MigrationName for M0006RegionOwners {
    fn name(&self) -> &str {
        "m0006_region_owners"
    }
}

#[derive(DeriveIden)]
enum Regions {
    Table,
    OwnerAccountId,
}

#[async_trait::async_trait]
impl MigrationTrait for M0006RegionOwners {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Regions::Table)
                .add_column(ColumnDef::new(Regions::OwnerAccountId).uuid().null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("regions_owner")
                .table(Regions::Table)
                .col(Regions::OwnerAccountId)
                .to_owned(),
        )
        .await
    }
}
