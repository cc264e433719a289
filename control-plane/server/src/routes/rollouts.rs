//! Rollouts: a release moving through the deployment rings, run by a rollout workflow.
//!
//! Starting one checks everything before anything is written: the release exists, the ring
//! definitions parse, the plan has cells, and none of them is in another active rollout. The
//! plan is made here, once, and travels with the workflow.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use serde_json::json;
use tessera_api::{
    ApproveRollout, CellStatus, ErrorBody, Page, PageQuery, ReleaseSpec, Rollout, RolloutOperation,
    StartRollout,
};
use tessera_rings::{CellRef, PlanError, RingsFile};
use tessera_store::entity::rollout;
use tessera_store::{NewOperation, NewRollout, StoreError};
use tessera_workflows::{RolloutControl, RolloutInput};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::auth::{Caller, PlatformAdmin};
use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::json::{Json, Query};
use crate::routes::{page, page_params};
use crate::state::SharedState;

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(list_rollouts, start_rollout))
        .routes(routes!(get_rollout))
        .routes(routes!(pause_rollout))
        .routes(routes!(resume_rollout))
        .routes(routes!(abort_rollout))
        .routes(routes!(approve_rollout))
}

/// Default time a batch may take to run a release.
const APPLY_TIMEOUT_SECS: u64 = 300;

/// Start rolling a release out, ring by ring.
#[utoipa::path(post, path = "/admin/rollouts", tag = "admin", request_body = StartRollout, security(("api_key" = [])),
    responses((status = 202, body = RolloutOperation), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn start_rollout(
    State(st): State<SharedState>,
    PlatformAdmin(caller): PlatformAdmin,
    Json(req): Json<StartRollout>,
) -> ApiResult<(StatusCode, Json<RolloutOperation>)> {
    let release = st
        .store
        .release(&req.release)
        .await?
        .ok_or_else(|| ApiError::invalid("release", format!("no release {:?}", req.release)))?;
    let release = convert::release(release)?;
    let apply_timeout_secs = req.apply_timeout_secs.unwrap_or(APPLY_TIMEOUT_SECS);
    if !(10..=86_400).contains(&apply_timeout_secs) {
        return Err(ApiError::invalid(
            "apply_timeout_secs",
            "must be between 10 and 86400",
        ));
    }
    let rings = match &req.rings {
        Some(text) => RingsFile::parse(text),
        None => match &st.config.rings_file {
            Some(path) => RingsFile::from_path(path),
            None => RingsFile::parse(tessera_rings::DEV_RINGS_TOML),
        },
    }
    .map_err(|e| ApiError::invalid("rings", e.to_string()))?;

    let cells = rollout_cells(&st).await?;
    let busy = st.store.cells_in_active_rollouts().await?;
    let plan = tessera_rings::plan(&rings, &cells, &busy).map_err(|e| match e {
        PlanError::CellBusy { .. } => ApiError::precondition(e.to_string()),
        e => ApiError::invalid("rings", e.to_string()),
    })?;
    if plan.cell_count() == 0 {
        return Err(ApiError::precondition(
            "the rings select no running cell: there is nothing to roll out to",
        ));
    }

    let id = Uuid::now_v7();
    let now = Utc::now();
    let progress =
        tessera_workflows::rollouts::view(&plan, &tessera_rings::RolloutState::new(), now);
    let row = st
        .store
        .create_rollout(NewRollout {
            id,
            release_version: release.version.clone(),
            cells: plan.cell_ids().into_iter().map(str::to_string).collect(),
            plan: serde_json::to_value(&plan).map_err(ApiError::internal)?,
            progress,
            created_at: now,
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict(m) => ApiError::precondition(m),
            e => e.into(),
        })?;
    let op = st
        .store
        .create_operation(NewOperation {
            id,
            account_id: None,
            kind: "rollout".into(),
            resource_kind: "rollout".into(),
            resource_id: id.to_string(),
            workflow_id: tessera_workflows::rollouts::workflow_id(id),
            created_at: now,
        })
        .await?;
    st.engine()?
        .start_rollout(RolloutInput {
            rollout_id: id,
            release: ReleaseSpec {
                version: release.version.clone(),
                runtime: release.runtime.clone(),
                agent: release.agent.clone(),
            },
            plan,
            apply_timeout_secs,
            state: None,
            previous: Default::default(),
            baseline: Vec::new(),
            pending: Vec::new(),
        })
        .await
        .map_err(ApiError::internal)?;
    st.audit(
        &caller,
        None,
        "rollout.start",
        format!("rollout/{id}"),
        json!({ "release": release.version }),
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(RolloutOperation {
            operation: convert::operation(op),
            rollout: rollout_view(row, None),
        }),
    ))
}

/// The cells a release can go to: running ones (healthy or not), with their ring and labels.
/// Cells of tenants' own regions are left out: what their agents report is the tenant's word
/// and must never count toward the gates of the platform's cells.
async fn rollout_cells(st: &SharedState) -> ApiResult<Vec<CellRef>> {
    let tenants_regions: Vec<String> = st
        .store
        .list_regions()
        .await?
        .into_iter()
        .filter(|r| r.owner_account_id.is_some())
        .map(|r| r.id)
        .collect();
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let p = st.store.list_cells(after, Some(200)).await?;
        for c in &p.items {
            if tenants_regions.contains(&c.region_id) {
                continue;
            }
            if matches!(
                CellStatus::parse(&c.status),
                Some(CellStatus::Healthy | CellStatus::Unhealthy)
            ) {
                out.push(CellRef {
                    id: c.id.clone(),
                    region: c.region_id.clone(),
                    ring: c.ring.max(0) as u32,
                    labels: serde_json::from_value(c.labels.clone()).unwrap_or_default(),
                });
            }
        }
        match p.next_after {
            Some(a) => after = Some(a),
            None => return Ok(out),
        }
    }
}

/// A rollout as the API shows it. It counts as ended only once its cells are released: the
/// workflow saves that a moment after it reaches its end, and until then the live status is
/// shown as the last saved one, so that whoever starts the next rollout on seeing the end of
/// this one is never refused with "cell already in rollout".
fn rollout_view(r: rollout::Model, live: Option<serde_json::Value>) -> Rollout {
    let mut progress = live.unwrap_or(r.progress);
    let mut status = progress["status"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| r.status.clone());
    if r.active && tessera_store::FINISHED_ROLLOUT.contains(&status.as_str()) {
        status = r.status;
        progress["status"] = serde_json::Value::String(status.clone());
    }
    Rollout {
        id: r.id,
        release: r.release_version,
        status,
        progress,
        operation_id: r.id,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

/// A rollout with its progress asked of the workflow (the saved copy once it has ended).
async fn load(st: &SharedState, id: Uuid) -> ApiResult<Rollout> {
    let row = st
        .store
        .rollout(id)
        .await?
        .ok_or_else(|| ApiError::not_found("rollout"))?;
    let live = match (row.active, st.engine()) {
        (true, Ok(engine)) => engine.rollout_progress(id).await.ok().flatten(),
        _ => None,
    };
    Ok(rollout_view(row, live))
}

/// Rollouts, newest first.
#[utoipa::path(get, path = "/admin/rollouts", tag = "admin", params(PageQuery), security(("api_key" = [])),
    responses((status = 200, body = Page<Rollout>), (status = 403, body = ErrorBody)))]
async fn list_rollouts(
    State(st): State<SharedState>,
    _admin: PlatformAdmin,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<Rollout>>> {
    let (before, size) = page_params(&q)?;
    let p = st.store.list_rollouts(before, size).await?;
    Ok(Json(page(p, |r| Ok(rollout_view(r, None)))?))
}

/// One rollout: rings, batches, gate results; live while it runs.
#[utoipa::path(get, path = "/admin/rollouts/{id}", tag = "admin", security(("api_key" = [])),
    responses((status = 200, body = Rollout), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_rollout(
    State(st): State<SharedState>,
    _admin: PlatformAdmin,
    Path(id): Path<String>,
) -> ApiResult<Json<Rollout>> {
    Ok(Json(load(&st, rollout_id(&id)?).await?))
}

fn rollout_id(s: &str) -> ApiResult<Uuid> {
    Uuid::try_parse(s).map_err(|_| ApiError::not_found("rollout"))
}

/// Sends a control to a running rollout; a finished one answers 409.
async fn control(
    st: &SharedState,
    caller: &Caller,
    id: &str,
    what: &str,
    control: RolloutControl,
) -> ApiResult<(StatusCode, Json<Rollout>)> {
    let id = rollout_id(id)?;
    let row = st
        .store
        .rollout(id)
        .await?
        .ok_or_else(|| ApiError::not_found("rollout"))?;
    if !row.active {
        return Err(ApiError::precondition(format!(
            "the rollout has ended ({})",
            row.status
        )));
    }
    if !st
        .engine()?
        .rollout_control(id, control)
        .await
        .map_err(ApiError::internal)?
    {
        return Err(ApiError::precondition("the rollout has ended"));
    }
    st.audit(
        caller,
        None,
        &format!("rollout.{what}"),
        format!("rollout/{id}"),
        json!({}),
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(load(st, id).await?)))
}

/// Hold the rollout where it stands (a bake that ends meanwhile waits for `resume`).
#[utoipa::path(post, path = "/admin/rollouts/{id}/pause", tag = "admin", security(("api_key" = [])),
    responses((status = 202, body = Rollout), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn pause_rollout(
    State(st): State<SharedState>,
    PlatformAdmin(caller): PlatformAdmin,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Rollout>)> {
    control(&st, &caller, &id, "pause", RolloutControl::Pause).await
}

/// Continue a paused rollout.
#[utoipa::path(post, path = "/admin/rollouts/{id}/resume", tag = "admin", security(("api_key" = [])),
    responses((status = 202, body = Rollout), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn resume_rollout(
    State(st): State<SharedState>,
    PlatformAdmin(caller): PlatformAdmin,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Rollout>)> {
    control(&st, &caller, &id, "resume", RolloutControl::Resume).await
}

/// Stop the rollout for good; batches that passed keep the release.
#[utoipa::path(post, path = "/admin/rollouts/{id}/abort", tag = "admin", security(("api_key" = [])),
    responses((status = 202, body = Rollout), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn abort_rollout(
    State(st): State<SharedState>,
    PlatformAdmin(caller): PlatformAdmin,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Rollout>)> {
    control(&st, &caller, &id, "abort", RolloutControl::Abort).await
}

/// Let the rollout start a ring that needs approval.
#[utoipa::path(post, path = "/admin/rollouts/{id}/approve", tag = "admin", request_body = ApproveRollout, security(("api_key" = [])),
    responses((status = 202, body = Rollout), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn approve_rollout(
    State(st): State<SharedState>,
    PlatformAdmin(caller): PlatformAdmin,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Rollout>)> {
    // The body is optional: `{}` or nothing approves the ring that waits.
    let ring = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice::<ApproveRollout>(&body)
            .map_err(|e| ApiError::invalid("body", e.to_string()))?
            .ring
    };
    control(
        &st,
        &caller,
        &id,
        "approve",
        RolloutControl::Approve { ring },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: &str, active: bool) -> rollout::Model {
        rollout::Model {
            id: Uuid::now_v7(),
            release_version: "r1".into(),
            status: status.into(),
            plan: json!({}),
            progress: json!({"status": status}),
            active,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn a_rollout_is_shown_ended_only_once_its_cells_are_released() {
        let live = json!({"status": "halted", "events": [{"kind": "batch_failed"}]});
        // The workflow has halted, its cells are not released yet: still running.
        let v = rollout_view(row("running", true), Some(live.clone()));
        assert_eq!(v.status, "running");
        assert_eq!(v.progress["status"], "running");
        assert_eq!(v.progress["events"][0]["kind"], "batch_failed");
        // Saved and released: ended.
        let v = rollout_view(row("halted", false), None);
        assert_eq!(v.status, "halted");
        // A live status that has not ended is shown as it is.
        let v = rollout_view(row("running", true), Some(json!({"status": "paused"})));
        assert_eq!(v.status, "paused");
    }
}
