//! Platform operators' actions on any account's namespaces: restoring a deleted one.
//!
//! A namespace is named here by its Temporal namespace (`<name>.<account-slug>`), which is
//! unique across accounts.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use serde_json::json;
use tessera_api::{ErrorBody, NamespaceOperation};
use tessera_store::{NewOperation, StoreError};
use tessera_workflows::namespace_activities::runtime_id;
use tessera_workflows::namespaces::workflow_id;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::auth::PlatformAdmin;
use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::json::Json;
use crate::routes::namespaces::{not_started, server_root, view};
use crate::state::SharedState;

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new().routes(routes!(restore_namespace))
}

/// Bring a deleted namespace back within the trash retention, with its workflows and history:
/// its store comes back from the trash of the cell it ran on → 202 with the operation.
#[utoipa::path(post, path = "/admin/namespaces/{name}/restore", tag = "admin",
    params(("name" = String, Path, description = "The Temporal namespace, `<name>.<account-slug>`")),
    security(("api_key" = [])),
    responses((status = 202, body = NamespaceOperation), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn restore_namespace(
    State(st): State<SharedState>,
    admin: PlatformAdmin,
    Path(name): Path<String>,
) -> ApiResult<(StatusCode, Json<NamespaceOperation>)> {
    let ns = st.store.deleted_namespace(&name).await?;
    let deleted_at = ns.deleted_at.unwrap_or_else(Utc::now);
    let retention = chrono::Duration::hours(st.config.trash_retention_hours.min(1 << 20) as i64);
    if Utc::now() - deleted_at > retention {
        return Err(ApiError::precondition(format!(
            "namespace {name} was deleted at {deleted_at}, longer ago than the trash retention of {} h: its store is purged",
            st.config.trash_retention_hours
        )));
    }
    let cell_id = ns.cell_id.clone().ok_or_else(|| {
        ApiError::precondition(format!(
            "namespace {name} never ran on a cell: nothing to restore"
        ))
    })?;
    let cell = match st.store.cell(&cell_id).await {
        Ok(c) => c,
        Err(StoreError::NotFound(_)) => {
            return Err(ApiError::precondition(format!(
                "the cell namespace {name} ran on ({cell_id}) is gone"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    // Only what the agent reports it still holds can come back.
    let runtime = runtime_id(ns.id);
    let in_trash = tessera_store::decode_observed(&cell)?
        .is_some_and(|o| o.trash.iter().any(|t| t.runtime == runtime));
    if !in_trash {
        return Err(ApiError::precondition(format!(
            "cell {cell_id} does not report the store of namespace {name} in its trash"
        ))
        .with_details(json!({ "cell": cell_id, "runtime": runtime })));
    }
    let engine = st.engine()?;
    let now = Utc::now();
    let (ns, op) = st
        .store
        .restore_namespace(
            ns.id,
            NewOperation {
                id: Uuid::now_v7(),
                account_id: Some(ns.account_id),
                kind: "namespace.restore".into(),
                resource_kind: "namespace".into(),
                resource_id: ns.id.to_string(),
                workflow_id: workflow_id(ns.id),
                created_at: now,
            },
        )
        .await?;
    if let Err(e) = engine.start_namespace_restore(ns.id, op.id).await {
        return Err(not_started(&st, ns.id, op.id, deleted_at, e).await);
    }
    st.audit(
        &admin.0,
        Some(ns.account_id),
        "namespace.restore",
        format!("namespace/{}", ns.name),
        json!({ "cell": cell_id, "deleted_at": deleted_at, "operation_id": op.id }),
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(NamespaceOperation {
            operation: convert::operation(op),
            namespace: view(&st, ns, &server_root(&st).await?).await?,
        }),
    ))
}
