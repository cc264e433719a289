//! Migration m0002: regions, cells, join tokens and PKI objects.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::migration::{index, ts, ts_null};

pub struct M0002Cells;

impl MigrationName for M0002Cells {
    fn name(&self) -> &str {
        "m0002_cells"
    }
}

#[derive(DeriveIden)]
enum Regions {
    Table,
    Id,
    Cloud,
    Location,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Cells {
    Table,
    Id,
    RegionId,
    Ring,
    Provider,
    Status,
    Labels,
    ProviderConfig,
    Desired,
    Generation,
    Observed,
    ObservedGeneration,
    ObservedAt,
    IngressAddress,
    IdentityFingerprint,
    IdentityNotAfter,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum JoinTokens {
    Table,
    Id,
    CellId,
    Digest,
    ExpiresAt,
    UsedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum PkiObjects {
    Table,
    Id,
    Kind,
    CellId,
    ChainPem,
    SealedKey,
    NotBefore,
    NotAfter,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for M0002Cells {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Regions::Table)
                .col(string_len(Regions::Id, 63).primary_key())
                .col(string_len(Regions::Cloud, 16))
                .col(string_len(Regions::Location, 128))
                .col(ts(Regions::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Cells::Table)
                .col(string_len(Cells::Id, 80).primary_key())
                .col(string_len(Cells::RegionId, 63))
                .col(integer(Cells::Ring))
                .col(string_len(Cells::Provider, 16))
                .col(string_len(Cells::Status, 16))
                .col(json(Cells::Labels))
                .col(json(Cells::ProviderConfig))
                .col(json(Cells::Desired))
                .col(big_integer(Cells::Generation))
                .col(json_null(Cells::Observed))
                .col(big_integer_null(Cells::ObservedGeneration))
                .col(ts_null(Cells::ObservedAt))
                .col(string_len_null(Cells::IngressAddress, 255))
                .col(string_len_null(Cells::IdentityFingerprint, 64))
                .col(ts_null(Cells::IdentityNotAfter))
                .col(ts(Cells::CreatedAt))
                .col(ts(Cells::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Cells::Table, Cells::RegionId)
                        .to(Regions::Table, Regions::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "idx_cells_region",
            Cells::Table,
            &["region_id"],
            false,
        ))
        .await?;
        m.create_table(
            Table::create()
                .table(JoinTokens::Table)
                .col(uuid(JoinTokens::Id).primary_key())
                .col(string_len(JoinTokens::CellId, 80))
                .col(string_len_uniq(JoinTokens::Digest, 64))
                .col(ts(JoinTokens::ExpiresAt))
                .col(ts_null(JoinTokens::UsedAt))
                .col(ts(JoinTokens::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "idx_join_tokens_cell",
            JoinTokens::Table,
            &["cell_id"],
            false,
        ))
        .await?;
        m.create_table(
            Table::create()
                .table(PkiObjects::Table)
                .col(string_len(PkiObjects::Id, 160).primary_key())
                .col(string_len(PkiObjects::Kind, 32))
                .col(string_len_null(PkiObjects::CellId, 80))
                .col(text(PkiObjects::ChainPem))
                .col(blob(PkiObjects::SealedKey))
                .col(ts(PkiObjects::NotBefore))
                .col(ts(PkiObjects::NotAfter))
                .col(ts(PkiObjects::CreatedAt))
                .col(ts(PkiObjects::UpdatedAt))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            PkiObjects::Table.into_iden(),
            JoinTokens::Table.into_iden(),
            Cells::Table.into_iden(),
            Regions::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}
