//! Migration m0007: edges and the route feed they share.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::migration::{ts, ts_null};

pub struct M0007Edges;

impl MigrationName for M0007Edges {
    fn name(&self) -> &str {
        "m0007_edges"
    }
}

#[derive(DeriveIden)]
enum Edges {
    Table,
    Id,
    RegionId,
    TokenDigest,
    TokenExpiresAt,
    IdentityFingerprint,
    IdentityNotAfter,
    Observed,
    ObservedAt,
    CreatedAt,
}

/// One row (`id = 1`): the generation of the routes every edge serves, and a digest of them.
#[derive(DeriveIden)]
enum EdgeFeed {
    Table,
    Id,
    Generation,
    Digest,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for M0007Edges {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Edges::Table)
                .col(string_len(Edges::Id, 128).primary_key())
                .col(string_len(Edges::RegionId, 64))
                .col(string_len_null(Edges::TokenDigest, 128))
                .col(ts_null(Edges::TokenExpiresAt))
                .col(string_len_null(Edges::IdentityFingerprint, 128))
                .col(ts_null(Edges::IdentityNotAfter))
                .col(json_null(Edges::Observed))
                .col(ts_null(Edges::ObservedAt))
                .col(ts(Edges::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("edges_token_digest")
                .table(Edges::Table)
                .col(Edges::TokenDigest)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(EdgeFeed::Table)
                .col(integer(EdgeFeed::Id).primary_key())
                .col(big_integer(EdgeFeed::Generation))
                .col(string_len(EdgeFeed::Digest, 128))
                .col(ts(EdgeFeed::UpdatedAt))
                .to_owned(),
        )
        .await
    }
}
