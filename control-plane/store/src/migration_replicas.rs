//! Migration m0009: standby replicas of namespaces.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::migration::{index, ts, ts_null};

pub struct M0009Replicas;

impl MigrationName for M0009Replicas {
    fn name(&self) -> &str {
        "m0009_replicas"
    }
}

#[derive(DeriveIden)]
enum Replicas {
    Table,
    Id,
    NamespaceId,
    RegionId,
    CellId,
    State,
    ReplicaUrl,
    LagSeconds,
    LastAppliedAt,
    Error,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for M0009Replicas {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Replicas::Table)
                .col(uuid(Replicas::Id).primary_key())
                .col(uuid(Replicas::NamespaceId))
                .col(string_len(Replicas::RegionId, 64))
                .col(string_len(Replicas::CellId, 128))
                .col(string_len(Replicas::State, 16))
                .col(text(Replicas::ReplicaUrl))
                .col(double_null(Replicas::LagSeconds))
                .col(ts_null(Replicas::LastAppliedAt))
                .col(text_null(Replicas::Error))
                .col(ts(Replicas::CreatedAt))
                .col(ts(Replicas::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "uq_replicas_namespace_region",
            Replicas::Table,
            &["namespace_id", "region_id"],
            true,
        ))
        .await
    }
}
