//! Edges, and the routes they all serve.
//!
//! The routes are not written by anyone: they follow from the cells' desired documents (a host
//! goes to the cell whose ingress serves it, or is held while any cell holds it). What is stored
//! is their generation and a digest of them, so that every control plane agrees on one
//! generation per content and an edge's long poll knows when there is something new.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder,
};
use sha2::{Digest, Sha256};
use tessera_api::agent::RouteTargetSpec;
use tessera_api::edge::EdgeRoute;

use crate::entity::{cell, edge, edge_feed};
use crate::{Result, Store, StoreError, decode_desired};

/// The routes every edge serves, and their generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeFeed {
    pub generation: u64,
    pub routes: BTreeMap<String, EdgeRoute>,
}

/// How many times [`Store::edge_feed`] reads again after another control plane moved the
/// generation at the same time.
const FEED_RETRIES: usize = 10;

impl Store {
    /// A new edge of `region` waiting to join with the token whose SHA-256 is `token_digest`.
    pub async fn create_edge(
        &self,
        region_id: &str,
        token_digest: &str,
        token_expires_at: DateTime<Utc>,
    ) -> Result<edge::Model> {
        self.region(region_id).await?;
        let existing = edge::Entity::find()
            .filter(edge::Column::RegionId.eq(region_id))
            .all(&self.db)
            .await?;
        let prefix = format!("{region_id}-edge-");
        let mut n = existing
            .iter()
            .filter_map(|e| e.id.strip_prefix(&prefix)?.parse::<u32>().ok())
            .max()
            .unwrap_or(0);
        // Another control plane may take the same number: the primary key settles it.
        for _ in 0..FEED_RETRIES {
            n += 1;
            let row = edge::ActiveModel {
                id: Set(format!("{prefix}{n}")),
                region_id: Set(region_id.into()),
                token_digest: Set(Some(token_digest.into())),
                token_expires_at: Set(Some(token_expires_at)),
                identity_fingerprint: Set(None),
                identity_not_after: Set(None),
                observed: Set(None),
                observed_at: Set(None),
                created_at: Set(Utc::now()),
            };
            match row.insert(&self.db).await.map_err(StoreError::from_write) {
                Ok(e) => return Ok(e),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict("edge ids keep being taken".into()))
    }

    pub async fn edge(&self, id: &str) -> Result<edge::Model> {
        edge::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await?
            .ok_or(StoreError::NotFound("edge"))
    }

    pub async fn list_edges(&self) -> Result<Vec<edge::Model>> {
        Ok(edge::Entity::find()
            .order_by_asc(edge::Column::Id)
            .all(&self.db)
            .await?)
    }

    /// Forgets the edge: its identity is refused from now on.
    pub async fn delete_edge(&self, id: &str) -> Result<()> {
        let res = edge::Entity::delete_by_id(id.to_string())
            .exec(&self.db)
            .await?;
        if res.rows_affected == 0 {
            return Err(StoreError::NotFound("edge"));
        }
        Ok(())
    }

    /// Uses an edge's join token once: answers the edge, or `NotFound` when the token is
    /// unknown, used or expired.
    pub async fn consume_edge_token(
        &self,
        digest: &str,
        now: DateTime<Utc>,
    ) -> Result<edge::Model> {
        let e = edge::Entity::find()
            .filter(edge::Column::TokenDigest.eq(digest))
            .filter(edge::Column::TokenExpiresAt.gt(now))
            .one(&self.db)
            .await?
            .ok_or(StoreError::NotFound("join token"))?;
        let res = edge::Entity::update_many()
            .col_expr(
                edge::Column::TokenDigest,
                Expr::value(Option::<String>::None),
            )
            .filter(edge::Column::Id.eq(e.id.as_str()))
            .filter(edge::Column::TokenDigest.eq(digest))
            .exec(&self.db)
            .await?;
        if res.rows_affected != 1 {
            return Err(StoreError::NotFound("join token"));
        }
        Ok(e)
    }

    pub async fn set_edge_identity(
        &self,
        id: &str,
        fingerprint: &str,
        not_after: DateTime<Utc>,
    ) -> Result<()> {
        let mut am = self.edge(id).await?.into_active_model();
        am.identity_fingerprint = Set(Some(fingerprint.into()));
        am.identity_not_after = Set(Some(not_after));
        am.update(&self.db).await?;
        Ok(())
    }

    pub async fn record_edge_observed(
        &self,
        id: &str,
        observed: serde_json::Value,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let res = edge::Entity::update_many()
            .col_expr(edge::Column::Observed, Expr::value(observed))
            .col_expr(edge::Column::ObservedAt, Expr::value(at))
            .filter(edge::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        if res.rows_affected == 0 {
            return Err(StoreError::NotFound("edge"));
        }
        Ok(())
    }

    /// The routes every edge serves now, with their generation. A cell whose desired document
    /// does not decode fails the whole feed: edges keep the routes they have rather than lose
    /// that cell's hosts.
    pub async fn edge_feed(&self) -> Result<EdgeFeed> {
        let routes = self.edge_routes().await?;
        let digest = hex::encode(Sha256::digest(
            serde_json::to_vec(&routes).expect("routes serialize"),
        ));
        for _ in 0..FEED_RETRIES {
            let row = edge_feed::Entity::find_by_id(1).one(&self.db).await?;
            let Some(row) = row else {
                let first = edge_feed::ActiveModel {
                    id: Set(1),
                    generation: Set(1),
                    digest: Set(digest.clone()),
                    updated_at: Set(Utc::now()),
                };
                match first.insert(&self.db).await.map_err(StoreError::from_write) {
                    Ok(_) => {
                        return Ok(EdgeFeed {
                            generation: 1,
                            routes,
                        });
                    }
                    Err(StoreError::Conflict(_)) => continue,
                    Err(e) => return Err(e),
                }
            };
            if row.digest == digest {
                return Ok(EdgeFeed {
                    generation: row.generation.max(0) as u64,
                    routes,
                });
            }
            let res = edge_feed::Entity::update_many()
                .col_expr(
                    edge_feed::Column::Generation,
                    Expr::value(row.generation + 1),
                )
                .col_expr(edge_feed::Column::Digest, Expr::value(digest.clone()))
                .col_expr(edge_feed::Column::UpdatedAt, Expr::value(Utc::now()))
                .filter(edge_feed::Column::Id.eq(1))
                .filter(edge_feed::Column::Generation.eq(row.generation))
                .exec(&self.db)
                .await?;
            if res.rows_affected == 1 {
                return Ok(EdgeFeed {
                    generation: (row.generation + 1).max(0) as u64,
                    routes,
                });
            }
        }
        Err(StoreError::Conflict("the edge routes keep changing".into()))
    }

    /// Where each host goes, from every cell's desired routes: to the cell whose ingress serves
    /// it (a local runtime or an external cluster), or held while any cell holds it. A route
    /// that forwards to another cell says nothing the other cell does not say itself.
    async fn edge_routes(&self) -> Result<BTreeMap<String, EdgeRoute>> {
        let cells = cell::Entity::find()
            .order_by_asc(cell::Column::Id)
            .all(&self.db)
            .await?;
        let mut routes = BTreeMap::new();
        for c in cells {
            if c.status == "decommissioned" {
                continue;
            }
            let doc = decode_desired(&c.id, &c.desired)?;
            for (host, route) in doc.routes {
                match route.target {
                    RouteTargetSpec::Hold { max_wait_ms } => {
                        routes.insert(host, EdgeRoute::Hold { max_wait_ms });
                    }
                    RouteTargetSpec::Local { .. } | RouteTargetSpec::External { .. } => {
                        let Some(address) = c.ingress_address.clone() else {
                            continue;
                        };
                        let forward = EdgeRoute::Forward {
                            cell: c.id.clone(),
                            address,
                        };
                        match routes.get(&host) {
                            None => {
                                routes.insert(host, forward);
                            }
                            Some(EdgeRoute::Forward { cell, .. }) => tracing::warn!(
                                %host, first = %cell, also = %c.id,
                                "two cells serve one host; the edge keeps the first"
                            ),
                            Some(EdgeRoute::Hold { .. }) => {}
                        }
                    }
                    RouteTargetSpec::Forward { .. } => {}
                }
            }
        }
        Ok(routes)
    }
}
