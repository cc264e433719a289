//! The caller's account, with quotas and usage.

use axum::extract::State;
use tessera_api::{Account, ErrorBody};
use tessera_domain::Action;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::Member;
use crate::convert;
use crate::error::ApiResult;
use crate::json::Json;
use crate::state::SharedState;

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new().routes(routes!(get_account))
}

/// The current account, its quotas and usage.
#[utoipa::path(get, path = "/account", tag = "account", security(("api_key" = [])),
    responses((status = 200, body = Account), (status = 401, body = ErrorBody)))]
async fn get_account(State(st): State<SharedState>, m: Member) -> ApiResult<Json<Account>> {
    m.authorize(Action::Read)?;
    let account = st.store.account(m.account_id).await?;
    let usage = st.store.account_usage(m.account_id).await?;
    Ok(Json(convert::account(account, usage)))
}
