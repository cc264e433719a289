//! OpenAPI document, metrics, health and the platform-admin token.

mod common;

use axum::http::{Method, StatusCode};
use common::*;

#[tokio::test]
async fn openapi_document_covers_every_route() {
    let h = harness().await;
    let r = h
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let paths = r.body["paths"].as_object().unwrap();
    let expected = [
        ("/api/v1/signup", "post"),
        ("/api/v1/login", "post"),
        ("/api/v1/logout", "post"),
        ("/api/v1/account", "get"),
        ("/api/v1/users", "get"),
        ("/api/v1/users", "post"),
        ("/api/v1/users/{id}", "patch"),
        ("/api/v1/users/{id}", "delete"),
        ("/api/v1/service-accounts", "get"),
        ("/api/v1/service-accounts", "post"),
        ("/api/v1/service-accounts/{id}", "delete"),
        ("/api/v1/api-keys", "get"),
        ("/api/v1/api-keys", "post"),
        ("/api/v1/api-keys/{id}", "delete"),
        ("/api/v1/operations/{id}", "get"),
        ("/api/v1/audit-log", "get"),
    ];
    for (path, verb) in expected {
        assert!(
            paths.get(path).and_then(|p| p.get(verb)).is_some(),
            "{verb} {path} missing"
        );
    }
    assert!(r.body["components"]["schemas"]["ErrorBody"].is_object());
}

#[tokio::test]
async fn metrics_count_requests_by_route() {
    let h = harness().await;
    let m = h.account("acme").await;
    h.get("/api/v1/account", &m.token).await;
    let r = h.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let text = r.body.as_str().unwrap();
    assert!(
        text.contains(
            r#"tessera_http_requests_total{method="GET",route="/api/v1/account",status="200"} 1"#
        ),
        "{text}"
    );
}

#[tokio::test]
async fn unknown_routes_answer_json_404() {
    let h = harness().await;
    let r = h
        .call(Method::GET, "/api/v1/nothing-here", None, None)
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "not_found"));
}

#[tokio::test]
async fn platform_admin_token_is_0600_and_only_for_admin_routes() {
    use std::os::unix::fs::PermissionsExt;
    let h = harness().await;
    let mode = std::fs::metadata(h.dir.path().join("admin-token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let m = h.account("acme").await;
    let admin = h.admin_token();
    let r = h.get("/api/v1/admin/accounts", &admin).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["items"][0]["name"], "acme");
    let r = h.get("/api/v1/admin/accounts", &m.token).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::FORBIDDEN, "permission_denied")
    );
    let r = h.get("/api/v1/account", &admin).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}
