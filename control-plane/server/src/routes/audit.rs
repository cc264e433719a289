//! The account's audit log.

use axum::extract::State;
use tessera_api::{AuditEntry, ErrorBody, Page, PageQuery};
use tessera_domain::Action;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::Member;
use crate::convert;
use crate::error::ApiResult;
use crate::json::{Json, Query};
use crate::routes::{page, page_params};
use crate::state::SharedState;

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new().routes(routes!(list_audit_log))
}

/// Who did what, when, from where; newest first.
#[utoipa::path(get, path = "/audit-log", tag = "audit", params(PageQuery), security(("api_key" = [])),
    responses((status = 200, body = Page<AuditEntry>), (status = 403, body = ErrorBody)))]
async fn list_audit_log(
    State(st): State<SharedState>,
    m: Member,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<AuditEntry>>> {
    m.authorize(Action::ReadAuditLog)?;
    let (before, size) = page_params(&q)?;
    Ok(Json(page(
        st.store.list_audit(m.account_id, before, size).await?,
        |e| Ok(convert::audit_entry(e)),
    )?))
}
