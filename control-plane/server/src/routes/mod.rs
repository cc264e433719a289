//! The REST API router: one module per route group, OpenAPI generated from the handlers.

mod account;
mod admin;
mod admin_namespaces;
mod api_keys;
mod audit;
mod auth;
mod cells;
mod edges;
pub(crate) mod migrations;
mod namespaces;
mod operations;
mod releases;
mod replicas;
mod rollouts;
mod self_hosted;
mod service_accounts;
mod users;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::{Router, middleware};
use tessera_api::{Page, PageQuery};
use tessera_store::Paged;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::state::SharedState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Tessera API", version = "v1", description = "Managed Temporal namespaces: tenants, keys, operations."),
    components(schemas(tessera_api::ErrorBody)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The API routes and their OpenAPI document.
pub fn api() -> (Router<SharedState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest(
            tessera_api::API_PREFIX,
            OpenApiRouter::new()
                .merge(auth::routes())
                .merge(account::routes())
                .merge(users::routes())
                .merge(service_accounts::routes())
                .merge(api_keys::routes())
                .merge(operations::routes())
                .merge(audit::routes())
                .merge(admin::routes())
                .merge(admin_namespaces::routes())
                .merge(cells::routes())
                .merge(edges::routes())
                .merge(migrations::routes())
                .merge(releases::routes())
                .merge(rollouts::routes())
                .merge(self_hosted::routes())
                .merge(namespaces::routes())
                .merge(replicas::routes()),
        )
        .split_for_parts()
}

/// The whole HTTP service: API, OpenAPI document, metrics, health, and the web console.
pub fn router(state: SharedState) -> Router {
    let (api, doc) = api();
    let doc = std::sync::Arc::new(doc);
    let limit = state.config.max_body_bytes;
    Router::new()
        .merge(api)
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .route("/metrics", get(crate::metrics::serve))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async { ApiError::not_found("route") })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::idempotency::idempotency,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::authenticate,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::track,
        ))
        .layer(middleware::from_fn(move |req, next| {
            reject_oversize(limit, req, next)
        }))
        .layer(DefaultBodyLimit::max(limit))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .merge(crate::console::routes())
        .with_state(state)
}

/// Refuses a declared body over the limit before reading it.
async fn reject_oversize(
    limit: usize,
    req: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return ApiError::too_large(limit).into_response();
    }
    next.run(req).await
}

/// Validated paging parameters: `(cursor, page size)`.
pub fn page_params(q: &PageQuery) -> ApiResult<(Option<Uuid>, Option<u64>)> {
    let size = match q.page_size {
        None => None,
        Some(n @ 1..=200) => Some(u64::from(n)),
        Some(_) => return Err(ApiError::invalid("page_size", "must be between 1 and 200")),
    };
    let after = match q.page_token.as_deref() {
        None | Some("") => None,
        Some(t) => Some(
            Uuid::try_parse(t)
                .map_err(|_| ApiError::invalid("page_token", "is not a token this API issued"))?,
        ),
    };
    Ok((after, size))
}

pub fn page<M, T>(p: Paged<M>, f: impl FnMut(M) -> ApiResult<T>) -> ApiResult<Page<T>> {
    Ok(Page {
        items: p.items.into_iter().map(f).collect::<ApiResult<_>>()?,
        next_page_token: p.next_after.map(|id| id.to_string()),
    })
}
