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
        ("/api/v1/regions", "get"),
        ("/api/v1/admin/regions", "get"),
        ("/api/v1/admin/regions", "post"),
        ("/api/v1/admin/cells", "get"),
        ("/api/v1/admin/cells", "post"),
        ("/api/v1/admin/cells/{id}", "get"),
        ("/api/v1/admin/cells/{id}", "delete"),
        ("/api/v1/admin/cells/join-tokens", "post"),
        ("/api/v1/namespaces", "get"),
        ("/api/v1/namespaces", "post"),
        ("/api/v1/namespaces/{name}", "get"),
        ("/api/v1/namespaces/{name}", "patch"),
        ("/api/v1/namespaces/{name}", "delete"),
        ("/api/v1/namespaces/{name}/client-certs", "post"),
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
    // Tenants' traffic is not for tenants (nor anyone without a key) to read.
    let r = h.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = h.call(Method::GET, "/metrics", Some(&m.token), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .call(Method::GET, "/metrics", Some(&h.admin_token()), None)
        .await;
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

#[tokio::test]
async fn regions_and_cells_are_for_platform_admins_and_bad_input_changes_nothing() {
    let h = harness().await;
    let admin = h.admin_token();
    let m = h.account("acme").await;

    // Tenants list regions but cannot add them or see cells.
    for (method, path) in [
        (Method::POST, "/api/v1/admin/regions"),
        (Method::GET, "/api/v1/admin/cells"),
        (Method::POST, "/api/v1/admin/cells"),
        (Method::POST, "/api/v1/admin/cells/join-tokens"),
    ] {
        let body = serde_json::json!({"id": "x1", "cloud": "local", "location": "x", "region": "x1", "ring": 1});
        let r = h
            .call(method.clone(), path, Some(&m.token), Some(body))
            .await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "{method} {path}: {:?}",
            r.body
        );
    }

    for (body, field) in [
        (
            serde_json::json!({"id": "Bad_Id", "cloud": "local", "location": "x"}),
            "id",
        ),
        (
            serde_json::json!({"id": "ok-id", "cloud": "local", "location": ""}),
            "location",
        ),
    ] {
        let r = h.post("/api/v1/admin/regions", &admin, body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
        assert_eq!(r.body["error"]["details"]["field"], field, "{:?}", r.body);
    }
    let r = h
        .post(
            "/api/v1/admin/regions",
            &admin,
            serde_json::json!({"id": "x", "cloud": "moon", "location": "x"}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "unknown cloud: {:?}",
        r.body
    );

    let r = h
        .post(
            "/api/v1/admin/regions",
            &admin,
            serde_json::json!({"id": "local-east", "cloud": "local", "location": "rack 1"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = h
        .post(
            "/api/v1/admin/regions",
            &admin,
            serde_json::json!({"id": "local-east", "cloud": "local", "location": "rack 2"}),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "already_exists")
    );
    h.post(
        "/api/v1/admin/regions",
        &admin,
        serde_json::json!({"id": "aws-us-east-1", "cloud": "aws", "location": "us-east-1"}),
    )
    .await;

    let regions = h.get("/api/v1/regions", &m.token).await;
    assert_eq!(regions.status, StatusCode::OK);
    assert_eq!(regions.body[1]["id"], "local-east");
    assert_eq!(
        regions.body[1]["location"], "rack 1",
        "the duplicate changed nothing"
    );
    assert_eq!(
        regions.body[1]["status"], "unavailable",
        "no healthy cell yet"
    );

    for (body, status, field) in [
        (
            serde_json::json!({"region": "nowhere", "ring": 1}),
            StatusCode::BAD_REQUEST,
            Some("region"),
        ),
        (
            serde_json::json!({"region": "local-east", "ring": 10}),
            StatusCode::BAD_REQUEST,
            Some("ring"),
        ),
        (
            serde_json::json!({"region": "local-east", "ring": 1, "provider_config": [1]}),
            StatusCode::BAD_REQUEST,
            Some("provider_config"),
        ),
        (
            serde_json::json!({"region": "local-east", "ring": 1, "labels": {"Not Ok": "x"}}),
            StatusCode::BAD_REQUEST,
            Some("labels"),
        ),
        (
            serde_json::json!({"region": "aws-us-east-1", "ring": 1}),
            StatusCode::CONFLICT,
            None,
        ),
    ] {
        let r = h.post("/api/v1/admin/cells", &admin, body.clone()).await;
        assert_eq!(r.status, status, "{body}: {:?}", r.body);
        if let Some(f) = field {
            assert_eq!(r.body["error"]["details"]["field"], f, "{:?}", r.body);
        }
    }
    let r = h.get("/api/v1/admin/cells", &admin).await;
    assert_eq!(
        r.body["items"],
        serde_json::json!([]),
        "no cell was created"
    );
    let r = h.get("/api/v1/admin/cells/local-east-1", &admin).await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "not_found"));
}
