//! Regions and cells: platform operators add regions, provision and decommission cells, and
//! mint join tokens for self-hosted cells; tenants list regions.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{Duration, Utc};
use serde_json::json;
use tessera_api::{
    Cell, CellOperation, CellStatus, Cloud, CreateJoinToken, CreateRegion, DrainCell, ErrorBody,
    JoinToken, Page, PageQuery, ProvisionCell, Region,
};
use tessera_domain::validate;
use tessera_store::{NewCell, NewOperation};
use tessera_workflows::drain::DrainInput;
use tessera_workflows::namespace_activities::place_in;
use tessera_workflows::{CellInput, CellPhase};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::auth::{Caller, PlatformAdmin};
use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::json::{Json, Query};
use crate::state::SharedState;

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(list_regions))
        .routes(routes!(admin_list_regions, create_region))
        .routes(routes!(list_cells, provision_cell))
        .routes(routes!(get_cell, decommission_cell))
        .routes(routes!(drain_cell))
        .routes(routes!(create_join_token))
}

/// Highest ring number accepted.
const MAX_RING: u32 = 9;
/// How long a self-hosted cell's join token is valid.
const SELF_HOSTED_TOKEN_TTL_MINUTES: i64 = 60;

/// Regions with their availability: every region for platform admins (`account: None`), the
/// platform's and its own for an account.
pub(super) async fn regions(st: &SharedState, account: Option<Uuid>) -> ApiResult<Vec<Region>> {
    let rows = match account {
        Some(a) => st.store.regions_for(a).await?,
        None => st.store.list_regions().await?,
    };
    let mut out = Vec::new();
    for r in rows {
        let available = st
            .store
            .cells_in_region(&r.id)
            .await?
            .iter()
            .any(|c| c.status == CellStatus::Healthy.as_str());
        out.push(convert::region(r, available));
    }
    Ok(out)
}

/// Regions namespaces can be created in.
#[utoipa::path(get, path = "/regions", tag = "regions", security(("api_key" = [])),
    responses((status = 200, body = Vec<Region>), (status = 401, body = ErrorBody)))]
async fn list_regions(
    State(st): State<SharedState>,
    caller: Caller,
) -> ApiResult<Json<Vec<Region>>> {
    Ok(Json(regions(&st, caller.principal.account_id()).await?))
}

#[utoipa::path(get, path = "/admin/regions", tag = "admin", security(("api_key" = [])),
    responses((status = 200, body = Vec<Region>), (status = 403, body = ErrorBody)))]
async fn admin_list_regions(
    State(st): State<SharedState>,
    _admin: PlatformAdmin,
) -> ApiResult<Json<Vec<Region>>> {
    Ok(Json(regions(&st, None).await?))
}

/// Add a region.
#[utoipa::path(post, path = "/admin/regions", tag = "admin", request_body = CreateRegion, security(("api_key" = [])),
    responses((status = 201, body = Region), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn create_region(
    State(st): State<SharedState>,
    PlatformAdmin(caller): PlatformAdmin,
    Json(req): Json<CreateRegion>,
) -> ApiResult<(StatusCode, Json<Region>)> {
    let location = check_region(&req.id, &req.location)?;
    let r = st
        .store
        .create_region(&req.id, req.cloud.as_str(), location, Utc::now())
        .await
        .map_err(|e| match e {
            tessera_store::StoreError::Conflict(_) => {
                ApiError::already_exists(format!("region {} already exists", req.id))
            }
            e => e.into(),
        })?;
    st.audit(
        &caller,
        None,
        "region.create",
        format!("region/{}", r.id),
        json!({"cloud": r.cloud, "location": r.location}),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(convert::region(r, false))))
}

/// Every cell, ordered by id.
#[utoipa::path(get, path = "/admin/cells", tag = "admin", params(PageQuery), security(("api_key" = [])),
    responses((status = 200, body = Page<Cell>), (status = 403, body = ErrorBody)))]
async fn list_cells(
    State(st): State<SharedState>,
    _admin: PlatformAdmin,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<Cell>>> {
    let size = match q.page_size {
        None => None,
        Some(n @ 1..=200) => Some(u64::from(n)),
        Some(_) => return Err(ApiError::invalid("page_size", "must be between 1 and 200")),
    };
    let p = st
        .store
        .list_cells(q.page_token.filter(|t| !t.is_empty()), size)
        .await?;
    Ok(Json(Page {
        items: p
            .items
            .into_iter()
            .map(|c| convert::cell(c, false))
            .collect(),
        next_page_token: p.next_after,
    }))
}

/// A region's id and location as given; returns the location trimmed.
pub(super) fn check_region<'a>(id: &str, location: &'a str) -> ApiResult<&'a str> {
    validate::dns_label("id", id, 2)?;
    let location = location.trim();
    if location.is_empty() || location.len() > 128 {
        return Err(ApiError::invalid("location", "must be 1 to 128 characters"));
    }
    Ok(location)
}

pub(super) fn check_ring_and_labels(
    ring: u32,
    labels: &Option<BTreeMap<String, String>>,
) -> ApiResult<()> {
    if ring > MAX_RING {
        return Err(ApiError::invalid(
            "ring",
            format!("must be 0 to {MAX_RING}"),
        ));
    }
    if let Some(l) = labels {
        if l.len() > 32 {
            return Err(ApiError::invalid("labels", "at most 32 labels"));
        }
        for (k, v) in l {
            validate::dns_label("labels", k, 1)?;
            if v.len() > 63 {
                return Err(ApiError::invalid(
                    "labels",
                    format!("value of {k} is longer than 63"),
                ));
            }
        }
    }
    Ok(())
}

async fn known_region(
    st: &SharedState,
    id: &str,
) -> ApiResult<tessera_store::entity::region::Model> {
    st.store.region(id).await.map_err(|e| match e {
        tessera_store::StoreError::NotFound(_) => {
            ApiError::invalid("region", format!("unknown region {id:?}"))
        }
        e => e.into(),
    })
}

/// Provision a cell in a region; its workflow brings it up → 202 with the operation.
#[utoipa::path(post, path = "/admin/cells", tag = "admin", request_body = ProvisionCell, security(("api_key" = [])),
    responses((status = 202, body = CellOperation), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn provision_cell(
    State(st): State<SharedState>,
    PlatformAdmin(caller): PlatformAdmin,
    Json(req): Json<ProvisionCell>,
) -> ApiResult<(StatusCode, Json<CellOperation>)> {
    check_ring_and_labels(req.ring, &req.labels)?;
    let region = known_region(&st, &req.region).await?;
    let provider = match Cloud::parse(&region.cloud) {
        Some(Cloud::Local) => "local",
        Some(Cloud::SelfHosted) => {
            return Err(ApiError::invalid(
                "region",
                "cells of a self-hosted region join with a token: POST /api/v1/admin/cells/join-tokens",
            ));
        }
        _ => {
            return Err(ApiError::precondition(format!(
                "this control plane has no {} provider configured",
                region.cloud
            )));
        }
    };
    if let Some(cfg) = &req.provider_config
        && !cfg.is_object()
    {
        return Err(ApiError::invalid(
            "provider_config",
            "must be a JSON object",
        ));
    }
    let engine = st.engine()?;
    let (cell, op) = create_cell(
        &st,
        &caller,
        NewCellRecord {
            region: &region.id,
            ring: req.ring,
            provider,
            labels: &req.labels,
            provider_config: req.provider_config.clone(),
            status: "provisioning",
        },
    )
    .await?;
    start_workflow(&st, engine, &caller, &cell, op.id, None, "cell.provision").await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(CellOperation {
            operation: convert::operation(op),
            cell: convert::cell(cell, false),
        }),
    ))
}

/// What a new cell record is made of.
struct NewCellRecord<'a> {
    region: &'a str,
    ring: u32,
    provider: &'a str,
    labels: &'a Option<BTreeMap<String, String>>,
    provider_config: Option<serde_json::Value>,
    status: &'a str,
}

/// Records a cell and its provisioning operation (in the caller's account, if any).
async fn create_cell(
    st: &SharedState,
    caller: &Caller,
    new: NewCellRecord<'_>,
) -> ApiResult<(
    tessera_store::entity::cell::Model,
    tessera_store::entity::operation::Model,
)> {
    let now = Utc::now();
    // Two provisions racing for the same id: the loser picks the next one.
    let mut cell = None;
    for _ in 0..5 {
        let id = st.store.next_cell_id(new.region).await?;
        match st
            .store
            .create_cell(NewCell {
                id,
                region_id: new.region.into(),
                ring: new.ring as i32,
                provider: new.provider.into(),
                status: new.status.into(),
                labels: serde_json::to_value(new.labels.clone().unwrap_or_default())
                    .expect("labels"),
                provider_config: new.provider_config.clone().unwrap_or_else(|| json!({})),
                desired: json!({}),
                created_at: now,
            })
            .await
        {
            Ok(c) => {
                cell = Some(c);
                break;
            }
            Err(tessera_store::StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    let cell = cell.ok_or_else(|| ApiError::unavailable("could not pick a cell id; retry"))?;
    let op = st
        .store
        .create_operation(NewOperation {
            id: Uuid::now_v7(),
            account_id: caller.principal.account_id(),
            kind: "cell.provision".into(),
            resource_kind: "cell".into(),
            resource_id: cell.id.clone(),
            workflow_id: tessera_workflows::cells::workflow_id(&cell.id),
            created_at: now,
        })
        .await?;
    Ok((cell, op))
}

/// Starts the cell's entity workflow on its provisioning operation and records who asked.
async fn start_workflow(
    st: &SharedState,
    engine: &tessera_workflows::Engine,
    caller: &Caller,
    cell: &tessera_store::entity::cell::Model,
    operation_id: Uuid,
    join_timeout_secs: Option<u64>,
    action: &str,
) -> ApiResult<()> {
    engine
        .start_cell(CellInput {
            cell_id: cell.id.clone(),
            phase: CellPhase::Provision,
            operation_id: Some(operation_id),
            join_timeout_secs,
            pending_release: None,
        })
        .await
        .map_err(ApiError::internal)?;
    st.audit(
        caller,
        caller.principal.account_id(),
        action,
        format!("cell/{}", cell.id),
        json!({"region": cell.region_id, "ring": cell.ring}),
    )
    .await
}

/// A cell with its agent's last report (runtimes, ingress, versions).
#[utoipa::path(get, path = "/admin/cells/{id}", tag = "admin", params(("id" = String, Path)), security(("api_key" = [])),
    responses((status = 200, body = Cell), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_cell(
    State(st): State<SharedState>,
    _admin: PlatformAdmin,
    Path(id): Path<String>,
) -> ApiResult<Json<Cell>> {
    Ok(Json(convert::cell(st.store.cell(&id).await?, true)))
}

/// Decommission a cell: drain, destroy its infrastructure, revoke its identity → 202.
#[utoipa::path(delete, path = "/admin/cells/{id}", tag = "admin", params(("id" = String, Path)), security(("api_key" = [])),
    responses((status = 202, body = CellOperation), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn decommission_cell(
    State(st): State<SharedState>,
    PlatformAdmin(caller): PlatformAdmin,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<CellOperation>)> {
    // Claim the transition first: of two racing requests exactly one starts the workflow.
    let live: Vec<&str> = CellStatus::ALL
        .iter()
        .filter(|s| !matches!(s, CellStatus::Decommissioning | CellStatus::Decommissioned))
        .map(|s| s.as_str())
        .collect();
    let previous = st.store.cell(&id).await?.status;
    // A cell that still runs namespaces is drained first, when its region can take them.
    let drain_first = !st.store.namespaces_on_cell(&id).await?.is_empty();
    if drain_first {
        refuse_unless_region_can_take(&st, &id).await?;
    }
    let engine = st.engine()?;
    if !st
        .store
        .transition_cell_status(&id, &live, CellStatus::Decommissioning.as_str())
        .await?
    {
        return Err(ApiError::precondition(format!(
            "cell {id} is already decommissioned or being decommissioned"
        )));
    }
    let op = st
        .store
        .create_operation(NewOperation {
            id: Uuid::now_v7(),
            account_id: None,
            kind: "cell.decommission".into(),
            resource_kind: "cell".into(),
            resource_id: id.clone(),
            workflow_id: tessera_workflows::cells::workflow_id(&id),
            created_at: Utc::now(),
        })
        .await?;
    let cell = st.store.cell(&id).await?;
    // A namespace placed between the check and the claim is drained too: no placement chooses
    // the cell from now on.
    let drain_first = drain_first || !st.store.namespaces_on_cell(&id).await?.is_empty();
    let started = match drain_first {
        true => {
            engine
                .start_drain(DrainInput {
                    cell_id: id.clone(),
                    operation_id: op.id,
                    max_parallel: DEFAULT_DRAIN_PARALLEL,
                    then_decommission: true,
                })
                .await
        }
        false => engine.decommission_cell(&id, op.id).await,
    };
    if let Err(e) = started {
        // Nothing will drive it: give the cell back its status so the request can be retried.
        let decommissioning = [CellStatus::Decommissioning.as_str()];
        st.store
            .transition_cell_status(&id, &decommissioning, &previous)
            .await?;
        return Err(ApiError::internal(e));
    }
    st.audit(
        &caller,
        None,
        "cell.decommission",
        format!("cell/{id}"),
        json!({}),
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(CellOperation {
            operation: convert::operation(op),
            cell: convert::cell(cell, false),
        }),
    ))
}

/// Migrations at a time when a cell is drained, unless asked otherwise.
const DEFAULT_DRAIN_PARALLEL: u32 = 2;
const MAX_DRAIN_PARALLEL: u32 = 16;

/// A cell's namespaces can leave it only for another cell of its region that takes them;
/// otherwise draining (or decommissioning) it would fail, or destroy them and their history.
/// Replicated namespaces do not move yet, and a standby does not move either: their replicas
/// must be removed first.
async fn refuse_unless_region_can_take(st: &SharedState, id: &str) -> ApiResult<()> {
    let on_cell = st.store.namespaces_on_cell(id).await?;
    let mut replicated = Vec::new();
    for ns in &on_cell {
        if !st.store.replicas_of(ns.id).await?.is_empty() {
            replicated.push(ns.temporal_namespace.clone());
        }
    }
    for r in st.store.replicas_on_cell(id).await? {
        let ns = st.store.namespace_by_id(r.namespace_id).await?;
        replicated.push(ns.temporal_namespace);
    }
    if !replicated.is_empty() {
        replicated.sort();
        replicated.dedup();
        return Err(ApiError::precondition(format!(
            "cell {id} runs or keeps a standby of replicated namespaces ({}): remove their replicas first",
            replicated.join(", ")
        ))
        .with_details(json!({ "replicated": replicated })));
    }
    if on_cell.is_empty() {
        return Ok(());
    }
    let cell = st.store.cell(id).await?;
    if place_in(&st.store, &cell.region_id, Some(id))
        .await?
        .is_ok()
    {
        return Ok(());
    }
    let names: Vec<&str> = on_cell
        .iter()
        .map(|n| n.temporal_namespace.as_str())
        .collect();
    Err(ApiError::precondition(format!(
        "cell {id} still runs {} namespace{} ({}) and no other cell of region {} can take them: add a cell to move them to, or delete them first",
        names.len(),
        if names.len() == 1 { "" } else { "s" },
        names.join(", "),
        cell.region_id
    ))
    .with_details(json!({ "namespaces": names })))
}

/// Move every namespace of the cell to other cells of its region, live (no new namespace is
/// placed on it meanwhile); the cell can then be decommissioned with nothing to destroy → 202.
#[utoipa::path(post, path = "/admin/cells/{id}/drain", tag = "admin", params(("id" = String, Path)),
    request_body = DrainCell, security(("api_key" = [])),
    responses((status = 202, body = CellOperation), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn drain_cell(
    State(st): State<SharedState>,
    PlatformAdmin(caller): PlatformAdmin,
    Path(id): Path<String>,
    Json(req): Json<DrainCell>,
) -> ApiResult<(StatusCode, Json<CellOperation>)> {
    let max_parallel = req.max_parallel.unwrap_or(DEFAULT_DRAIN_PARALLEL);
    if !(1..=MAX_DRAIN_PARALLEL).contains(&max_parallel) {
        return Err(ApiError::invalid(
            "max_parallel",
            format!("must be 1 to {MAX_DRAIN_PARALLEL}"),
        ));
    }
    let previous = st.store.cell(&id).await?.status;
    refuse_unless_region_can_take(&st, &id).await?;
    let engine = st.engine()?;
    let from = [CellStatus::Healthy.as_str(), CellStatus::Unhealthy.as_str()];
    if !st
        .store
        .transition_cell_status(&id, &from, CellStatus::Draining.as_str())
        .await?
    {
        return Err(ApiError::precondition(format!(
            "cell {id} is {previous}: only a healthy or unhealthy cell is drained"
        )));
    }
    let op_id = Uuid::now_v7();
    let op = st
        .store
        .create_operation(NewOperation {
            id: op_id,
            account_id: None,
            kind: "cell.drain".into(),
            resource_kind: "cell".into(),
            resource_id: id.clone(),
            workflow_id: tessera_workflows::drain::workflow_id(op_id),
            created_at: Utc::now(),
        })
        .await?;
    let started = engine
        .start_drain(DrainInput {
            cell_id: id.clone(),
            operation_id: op.id,
            max_parallel,
            then_decommission: false,
        })
        .await;
    if let Err(e) = started {
        let draining = [CellStatus::Draining.as_str()];
        st.store
            .transition_cell_status(&id, &draining, &previous)
            .await?;
        return Err(ApiError::internal(e));
    }
    st.audit(
        &caller,
        None,
        "cell.drain",
        format!("cell/{id}"),
        json!({ "max_parallel": max_parallel }),
    )
    .await?;
    let cell = st.store.cell(&id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(CellOperation {
            operation: convert::operation(op),
            cell: convert::cell(cell, false),
        }),
    ))
}

/// A one-time token with which a customer's host joins as a self-hosted cell (shown once).
#[utoipa::path(post, path = "/admin/cells/join-tokens", tag = "admin", request_body = CreateJoinToken, security(("api_key" = [])),
    responses((status = 201, body = JoinToken), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn create_join_token(
    State(st): State<SharedState>,
    PlatformAdmin(caller): PlatformAdmin,
    Json(req): Json<CreateJoinToken>,
) -> ApiResult<(StatusCode, Json<JoinToken>)> {
    check_ring_and_labels(req.ring, &req.labels)?;
    let region = known_region(&st, &req.region).await?;
    let token = issue_join_token(&st, &caller, &region.id, req.ring, &req.labels).await?;
    Ok((StatusCode::CREATED, Json(token)))
}

/// Records a self-hosted cell of `region` waiting for its agent, and a one-time token for it
/// that names the agent endpoint to dial. A tenant's cell is recorded in its account.
pub(super) async fn issue_join_token(
    st: &SharedState,
    caller: &Caller,
    region: &str,
    ring: u32,
    labels: &Option<BTreeMap<String, String>>,
) -> ApiResult<JoinToken> {
    let engine = st.engine()?;
    let root = st.pki.root().await.map_err(ApiError::internal)?;
    let der = tessera_pki::certs_from_pem(&root.cert_pem).map_err(ApiError::internal)?;
    let token = tessera_domain::JoinToken::generate(
        &tessera_pki::fingerprint_sha256(&der[0]),
        Some(&st.agent_url()),
    );
    let (cell, op) = create_cell(
        st,
        caller,
        NewCellRecord {
            region,
            ring,
            provider: "self_hosted",
            labels,
            provider_config: None,
            status: "joining",
        },
    )
    .await?;
    let expires_at = Utc::now() + Duration::minutes(SELF_HOSTED_TOKEN_TTL_MINUTES);
    st.store
        .create_join_token(&cell.id, &token.digest(), expires_at)
        .await?;
    let join_timeout = Some(SELF_HOSTED_TOKEN_TTL_MINUTES as u64 * 60);
    start_workflow(
        st,
        engine,
        caller,
        &cell,
        op.id,
        join_timeout,
        "cell.join_token.create",
    )
    .await?;
    Ok(JoinToken {
        token: token.expose(),
        cell_id: cell.id,
        expires_at,
        control_plane: st.agent_url(),
    })
}
