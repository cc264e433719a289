//! Standby replicas of a namespace: one in a cell of a region (another region, or the active
//! region's other cell), kept a warm follower of the active store; at most two.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::json;
use tessera_api::{AddReplica, ErrorBody, NamespaceOperation};
use tessera_domain::NamespaceAction;
use tessera_store::{NewReplica, StoreError};
use tessera_workflows::NamespaceRequest;
use tessera_workflows::namespace_activities::place_in;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::auth::Member;
use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::json::Json;
use crate::routes::namespaces::{accepted, region_of, submit};
use crate::state::SharedState;

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(add_replica))
        .routes(routes!(remove_replica))
}

/// Add a standby in a cell of `region` (placement picks it, never the active cell) → 202. The
/// operation ends once the standby is in sync; `replicas[]` on the namespace shows its state
/// and lag.
#[utoipa::path(post, path = "/namespaces/{name}/replicas", tag = "namespaces", params(("name" = String, Path)),
    request_body = AddReplica, security(("api_key" = [])),
    responses((status = 202, body = NamespaceOperation), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn add_replica(
    State(st): State<SharedState>,
    m: Member,
    Path(name): Path<String>,
    Json(req): Json<AddReplica>,
) -> ApiResult<(StatusCode, Json<NamespaceOperation>)> {
    m.authorize_namespace(&name, NamespaceAction::Manage)?;
    let ns = st.store.namespace(m.account_id, &name).await?;
    let region = region_of(&st, m.account_id, &req.region).await?;
    if ns.state != "active" {
        return Err(ApiError::precondition(format!(
            "namespace {name} is {}: replicas are added to an active namespace",
            ns.state
        )));
    }
    let cell = place_in(&st.store, &region.id, ns.cell_id.as_deref())
        .await?
        .map_err(|e| {
            ApiError::precondition(format!(
                "a replica needs a cell of {} other than the namespace's own: {e}",
                region.id
            ))
        })?;
    let id = Uuid::now_v7();
    let r = st
        .store
        .create_replica(NewReplica {
            id,
            namespace_id: ns.id,
            region_id: region.id.clone(),
            cell_id: cell.clone(),
            replica_url: st.object_stores.standby_url(&region.id, id),
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict(m) => ApiError::precondition(m),
            e => e.into(),
        })?;
    let op = match submit(&st, &m, &ns, "namespace.replica.add", |operation_id| {
        NamespaceRequest::AddReplica {
            operation_id,
            replica_id: r.id,
        }
    })
    .await
    {
        Ok(op) => op,
        Err(e) => {
            // Nothing started: the request can simply be made again.
            st.store.delete_replica_record(r.id).await?;
            return Err(e);
        }
    };
    st.audit(
        &m.caller,
        Some(m.account_id),
        "namespace.replica.add",
        format!("namespace/{}", ns.name),
        json!({"region": region.id, "cell": cell, "replica": r.id}),
    )
    .await?;
    let ns = st.store.namespace_by_id(ns.id).await?;
    accepted(&st, ns, convert::operation(op)).await
}

/// Remove the standby in `region`: its copy goes to its cell's trash, and the active cell
/// stops streaming once no standby is left → 202.
#[utoipa::path(delete, path = "/namespaces/{name}/replicas/{region}", tag = "namespaces",
    params(("name" = String, Path), ("region" = String, Path)), security(("api_key" = [])),
    responses((status = 202, body = NamespaceOperation), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn remove_replica(
    State(st): State<SharedState>,
    m: Member,
    Path((name, region)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<NamespaceOperation>)> {
    m.authorize_namespace(&name, NamespaceAction::Manage)?;
    let ns = st.store.namespace(m.account_id, &name).await?;
    let r = st
        .store
        .replicas_of(ns.id)
        .await?
        .into_iter()
        .find(|r| r.region_id == region)
        .ok_or_else(|| ApiError::not_found(&format!("a replica of {name} in region {region}")))?;
    if r.state == "removing" {
        return Err(ApiError::precondition(format!(
            "the replica of {name} in {region} is being removed already"
        )));
    }
    let op = submit(&st, &m, &ns, "namespace.replica.remove", |operation_id| {
        NamespaceRequest::RemoveReplica {
            operation_id,
            replica_id: r.id,
        }
    })
    .await?;
    st.audit(
        &m.caller,
        Some(m.account_id),
        "namespace.replica.remove",
        format!("namespace/{}", ns.name),
        json!({"region": region, "cell": r.cell_id, "replica": r.id}),
    )
    .await?;
    let ns = st.store.namespace_by_id(ns.id).await?;
    accepted(&st, ns, convert::operation(op)).await
}
