//! Platform-operator routes (platform-admin token).

use axum::extract::State;
use tessera_api::{Account, ErrorBody, Page, PageQuery};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::PlatformAdmin;
use crate::convert;
use crate::error::ApiResult;
use crate::json::{Json, Query};
use crate::routes::page_params;
use crate::state::SharedState;

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new().routes(routes!(list_accounts))
}

/// Every account on the platform.
#[utoipa::path(get, path = "/admin/accounts", tag = "admin", params(PageQuery), security(("api_key" = [])),
    responses((status = 200, body = Page<Account>), (status = 403, body = ErrorBody)))]
async fn list_accounts(
    State(st): State<SharedState>,
    _admin: PlatformAdmin,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<Account>>> {
    let (after, size) = page_params(&q)?;
    let p = st.store.list_accounts(after, size).await?;
    let mut items = Vec::with_capacity(p.items.len());
    for a in p.items {
        let usage = st.store.account_usage(a.id).await?;
        items.push(convert::account(a, usage));
    }
    Ok(Json(Page {
        items,
        next_page_token: p.next_after.map(|id| id.to_string()),
    }))
}
