//! Live migrations of namespaces between cells: platform operators start, watch, cut over and
//! abort them. The namespace's own workflow runs each one (see
//! `tessera_workflows::namespaces`), so nothing else changes the namespace meanwhile.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use serde_json::json;
use tessera_api::{
    CellStatus, CutoverMode, ErrorBody, Migration, MigrationOperation, MigrationState,
    StartMigration,
};
use tessera_store::entity::migration;
use tessera_store::{NewMigration, NewOperation, StoreError};
use tessera_workflows::MigrationControl;
use tessera_workflows::NamespaceRequest;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::auth::PlatformAdmin;
use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::json::Json;
use crate::state::SharedState;

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(list_migrations, start_migration))
        .routes(routes!(get_migration))
        .routes(routes!(cutover_migration))
        .routes(routes!(abort_migration))
}

async fn view(st: &SharedState, m: migration::Model) -> ApiResult<Migration> {
    let ns = st.store.namespace_by_id(m.namespace_id).await?;
    Ok(Migration {
        id: m.id,
        namespace: ns.temporal_namespace,
        account_id: m.account_id,
        source_cell: m.source_cell,
        target_cell: m.target_cell,
        state: MigrationState::parse(&m.state).unwrap_or(MigrationState::Failed),
        cutover: match m.cutover.as_str() {
            "manual" => CutoverMode::Manual,
            _ => CutoverMode::Auto,
        },
        progress: serde_json::from_value(m.progress).unwrap_or_default(),
        error: m.error,
        operation_id: m.operation_id,
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}

fn not_found(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound(what) => ApiError::not_found(what),
        e => e.into(),
    }
}

/// Every migration, newest first.
#[utoipa::path(get, path = "/admin/migrations", tag = "admin", security(("api_key" = [])),
    responses((status = 200, body = Vec<Migration>), (status = 403, body = ErrorBody)))]
async fn list_migrations(
    State(st): State<SharedState>,
    _admin: PlatformAdmin,
) -> ApiResult<Json<Vec<Migration>>> {
    let mut out = Vec::new();
    for m in st.store.list_migrations().await? {
        out.push(view(&st, m).await?);
    }
    Ok(Json(out))
}

/// One migration: its state, the target's lag and the time of each step.
#[utoipa::path(get, path = "/admin/migrations/{id}", tag = "admin", params(("id" = Uuid, Path)),
    security(("api_key" = [])),
    responses((status = 200, body = Migration), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_migration(
    State(st): State<SharedState>,
    _admin: PlatformAdmin,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Migration>> {
    let m = st.store.migration(id).await.map_err(not_found)?;
    Ok(Json(view(&st, m).await?))
}

/// Move a namespace to another cell, live: its store streams to the target, then the
/// cutover moves it with a stall of about a second and no client reconfigured → 202.
#[utoipa::path(post, path = "/admin/migrations", tag = "admin", request_body = StartMigration,
    security(("api_key" = [])),
    responses((status = 202, body = MigrationOperation), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn start_migration(
    State(st): State<SharedState>,
    PlatformAdmin(caller): PlatformAdmin,
    Json(req): Json<StartMigration>,
) -> ApiResult<(StatusCode, Json<MigrationOperation>)> {
    st.engine()?;
    let ns = st
        .store
        .live_namespace_by_temporal(&req.namespace)
        .await
        .map_err(not_found)?;
    let target = match st.store.cell(&req.target_cell).await {
        Ok(c) => c,
        Err(StoreError::NotFound(_)) => {
            return Err(ApiError::invalid(
                "target_cell",
                format!("there is no cell {}", req.target_cell),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let source = ns.cell_id.clone().unwrap_or_default();
    if target.id == source {
        return Err(ApiError::invalid(
            "target_cell",
            format!("namespace {} already runs on {source}", req.namespace),
        ));
    }
    if target.status != CellStatus::Healthy.as_str() {
        return Err(ApiError::precondition(format!(
            "cell {} is {}, not healthy",
            target.id, target.status
        )));
    }
    let region = st.store.region(&target.region_id).await?;
    if region
        .owner_account_id
        .is_some_and(|owner| owner != ns.account_id)
    {
        return Err(ApiError::invalid(
            "target_cell",
            format!("cell {} is in another account's own region", target.id),
        ));
    }
    let (op, m) = begin(&st, &caller, &ns, &target, req.cutover).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(MigrationOperation {
            operation: convert::operation(op),
            migration: view(&st, m).await?,
        }),
    ))
}

/// Records a migration of `ns` to `target` and asks the namespace's workflow to run it:
/// the operation and the migration. Admins and tenants (`move`) start migrations here.
pub(super) async fn begin(
    st: &SharedState,
    caller: &crate::auth::Caller,
    ns: &tessera_store::entity::namespace::Model,
    target: &tessera_store::entity::cell::Model,
    cutover: CutoverMode,
) -> ApiResult<(tessera_store::entity::operation::Model, migration::Model)> {
    let engine = st.engine()?;
    let source = ns.cell_id.clone().ok_or_else(|| {
        ApiError::precondition(format!(
            "namespace {} is not placed yet",
            ns.temporal_namespace
        ))
    })?;
    if ns.state != "active" {
        return Err(ApiError::precondition(format!(
            "namespace {} is {}: only an active namespace moves",
            ns.temporal_namespace, ns.state
        )));
    }
    let id = Uuid::now_v7();
    let op_id = Uuid::now_v7();
    let m = st
        .store
        .create_migration(NewMigration {
            id,
            namespace_id: ns.id,
            account_id: ns.account_id,
            operation_id: op_id,
            source_cell: source.clone(),
            target_cell: target.id.clone(),
            cutover: cutover.as_str().into(),
            replica_url: st.object_stores.replica_url(&target.region_id, id),
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict(m) => ApiError::precondition(m),
            e => e.into(),
        })?;
    let op = st
        .store
        .create_operation(NewOperation {
            id: op_id,
            account_id: Some(ns.account_id),
            kind: "namespace.migrate".into(),
            resource_kind: "namespace".into(),
            resource_id: ns.id.to_string(),
            workflow_id: tessera_workflows::migrations::workflow_id(id),
            created_at: Utc::now(),
        })
        .await?;
    if let Err(e) = engine
        .namespace_request(
            ns.id,
            NamespaceRequest::Migrate {
                operation_id: op.id,
                migration_id: id,
            },
        )
        .await
    {
        // Nothing started: the namespace is active again, the migration failed.
        st.store
            .set_migration_state(id, "failed", Some(e.to_string()))
            .await?;
        st.store.set_namespace_state(ns.id, "active").await?;
        return Err(ApiError::internal(e));
    }
    st.audit(
        caller,
        Some(ns.account_id),
        "migration.start",
        format!("namespace/{}", ns.temporal_namespace),
        json!({"migration": id, "from": source, "to": target.id, "cutover": cutover.as_str()}),
    )
    .await?;
    Ok((op, m))
}

/// Cut a migration over now (one with `"cutover": "manual"` waits for this) → 202.
#[utoipa::path(post, path = "/admin/migrations/{id}/cutover", tag = "admin", params(("id" = Uuid, Path)),
    security(("api_key" = [])),
    responses((status = 202, body = MigrationOperation), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn cutover_migration(
    State(st): State<SharedState>,
    PlatformAdmin(caller): PlatformAdmin,
    Path(id): Path<Uuid>,
) -> ApiResult<(StatusCode, Json<MigrationOperation>)> {
    control(&st, &caller, id, MigrationControl::Cutover).await
}

/// Abort a migration before its cutover: the target's copy goes, nothing changes for
/// clients → 202.
#[utoipa::path(post, path = "/admin/migrations/{id}/abort", tag = "admin", params(("id" = Uuid, Path)),
    security(("api_key" = [])),
    responses((status = 202, body = MigrationOperation), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn abort_migration(
    State(st): State<SharedState>,
    PlatformAdmin(caller): PlatformAdmin,
    Path(id): Path<Uuid>,
) -> ApiResult<(StatusCode, Json<MigrationOperation>)> {
    control(&st, &caller, id, MigrationControl::Abort).await
}

pub(super) async fn control(
    st: &SharedState,
    caller: &crate::auth::Caller,
    id: Uuid,
    what: MigrationControl,
) -> ApiResult<(StatusCode, Json<MigrationOperation>)> {
    let engine = st.engine()?;
    let m = st.store.migration(id).await.map_err(not_found)?;
    let state = MigrationState::parse(&m.state).unwrap_or(MigrationState::Failed);
    let allowed = match what {
        MigrationControl::Abort => state.abortable(),
        MigrationControl::Cutover => matches!(
            state,
            MigrationState::Started | MigrationState::Replicating | MigrationState::ReadyForCutover
        ),
    };
    if !allowed {
        return Err(ApiError::precondition(format!(
            "migration {id} is {}: it can no longer be {}",
            state.as_str(),
            match what {
                MigrationControl::Abort => "aborted",
                MigrationControl::Cutover => "cut over",
            }
        ))
        .with_details(json!({"state": state.as_str()})));
    }
    engine
        .migration_control(m.namespace_id, id, what)
        .await
        .map_err(ApiError::internal)?;
    let action = match what {
        MigrationControl::Abort => "migration.abort",
        MigrationControl::Cutover => "migration.cutover",
    };
    st.audit(
        caller,
        Some(m.account_id),
        action,
        format!("migration/{id}"),
        json!({}),
    )
    .await?;
    let op = st.store.operation(m.operation_id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(MigrationOperation {
            operation: convert::operation(op),
            migration: view(st, m).await?,
        }),
    ))
}
