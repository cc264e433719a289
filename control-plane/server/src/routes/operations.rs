//! Operations: the progress of workflows started by API calls.

use axum::extract::{Path, State};
use tessera_api::{ErrorBody, Operation, Page, PageQuery};
use tessera_domain::Action;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::{Caller, Member, Principal};
use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::json::{Json, Query, path_id};
use crate::routes::{page, page_params};
use crate::state::SharedState;

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(list_operations))
        .routes(routes!(get_operation))
}

/// Operations of the account, newest first.
#[utoipa::path(get, path = "/operations", tag = "operations", params(PageQuery), security(("api_key" = [])),
    responses((status = 200, body = Page<Operation>), (status = 401, body = ErrorBody)))]
async fn list_operations(
    State(st): State<SharedState>,
    m: Member,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<Operation>>> {
    m.authorize(Action::Read)?;
    let (before, size) = page_params(&q)?;
    Ok(Json(page(
        st.store.list_operations(m.account_id, before, size).await?,
        |o| Ok(convert::operation(o)),
    )?))
}

#[utoipa::path(get, path = "/operations/{id}", tag = "operations", security(("api_key" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = Operation), (status = 404, body = ErrorBody)))]
async fn get_operation(
    State(st): State<SharedState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Operation>> {
    // The platform operator reads every operation (cells, rollouts…); members their account's.
    let account = if caller.principal == Principal::PlatformAdmin {
        None
    } else {
        let m = Member::try_from(caller)?;
        m.authorize(Action::Read)?;
        Some(m.account_id)
    };
    let id = path_id(&id, "operation")?;
    let op = st.store.operation(id).await?;
    if account.is_some() && op.account_id != account {
        return Err(ApiError::not_found("operation"));
    }
    Ok(Json(convert::operation(op)))
}
