//! `/api/v1/admin/releases`: platform admins publish and read releases; tenants cannot; bad
//! input answers 400 naming the field and stores nothing.

mod common;

use axum::http::{Method, StatusCode};
use common::*;
use serde_json::{Value, json};

const RELEASES: &str = "/api/v1/admin/releases";

fn full_release() -> Value {
    json!({
        "version": "2026.11.1",
        "runtime": {
            "binary": "/opt/temporal/1.9.1/temporal",
            "version": "1.9.1",
            "flags": ["--log-level", "warn", "--log-format=json"],
            "dynamic_config": {
                "frontend.rps": 2400,
                "history.enableReplicationStream": true,
                "limit.blobSize.error": [{"value": 1048576, "constraints": {}}]
            }
        },
        "agent": {"report_interval_ms": 2000, "canary_interval_ms": 10000},
        "notes": "first release with replication streams"
    })
}

/// `full_release()` with `path` (a JSON pointer) set to `value`, or removed when it is null.
fn with(path: &str, value: Value) -> Value {
    let mut body = full_release();
    let (parent, key) = path.rsplit_once('/').unwrap();
    let obj = body.pointer_mut(parent).unwrap().as_object_mut().unwrap();
    if value.is_null() {
        obj.remove(key);
    } else {
        obj.insert(key.to_string(), value);
    }
    body
}

async fn versions(h: &Harness, admin: &str) -> Vec<String> {
    let r = h.get(RELEASES, admin).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["version"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn admins_create_get_and_list_releases_newest_first() {
    let h = harness().await;
    let admin = h.admin_token();
    assert!(versions(&h, &admin).await.is_empty());

    let r = h.post(RELEASES, &admin, full_release()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let created = r.body.clone();
    for key in ["version", "runtime", "agent", "notes"] {
        assert_eq!(created[key], full_release()[key], "{key}");
    }
    assert!(created["created_at"].is_string());

    let r = h.get(&format!("{RELEASES}/2026.11.1"), &admin).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body, created, "GET answers what POST did");

    // The least a release needs: its version and the runtime version; the rest defaults.
    let r = h
        .post(
            RELEASES,
            &admin,
            json!({"version": "2026.11.2+hotfix.1", "runtime": {"version": "1.9.2"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(
        r.body["runtime"],
        json!({"version": "1.9.2", "flags": [], "dynamic_config": {}})
    );
    assert_eq!(r.body["agent"], json!({}));
    assert!(r.body.get("notes").is_none(), "{:?}", r.body);
    // `+` reaches the route as itself, written plainly or percent-encoded (as the client does).
    for path in ["2026.11.2+hotfix.1", "2026.11.2%2Bhotfix.1"] {
        let g = h.get(&format!("{RELEASES}/{path}"), &admin).await;
        assert_eq!(g.status, StatusCode::OK, "{path}: {:?}", g.body);
        assert_eq!(g.body["version"], "2026.11.2+hotfix.1");
    }

    let r = h
        .post(RELEASES, &admin, with("/version", json!("2026.12.0")))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(
        versions(&h, &admin).await,
        ["2026.12.0", "2026.11.2+hotfix.1", "2026.11.1"]
    );

    // Pages of two, then of one.
    let p1 = h.get(&format!("{RELEASES}?page_size=2"), &admin).await;
    assert_eq!(p1.body["items"].as_array().unwrap().len(), 2);
    let token = p1.body["next_page_token"].as_str().unwrap();
    let p2 = h
        .get(
            &format!("{RELEASES}?page_size=2&page_token={token}"),
            &admin,
        )
        .await;
    assert_eq!(p2.body["items"][0]["version"], "2026.11.1");
    assert_eq!(p2.body["next_page_token"], Value::Null);
    for bad in ["page_size=0", "page_size=201", "page_token=nonsense"] {
        let r = h.get(&format!("{RELEASES}?{bad}"), &admin).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "invalid_argument"),
            "{bad}"
        );
    }

    let r = h.get(&format!("{RELEASES}/9.9.9"), &admin).await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "not_found"));

    // Each creation is in the platform audit log, by the platform admin.
    let log = h.state.store.list_platform_audit(None, None).await.unwrap();
    let entries: Vec<_> = log
        .items
        .iter()
        .map(|e| {
            (
                e.action.as_str(),
                e.resource.as_str(),
                e.actor_kind.as_str(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("release.create", "release/2026.12.0", "platform_admin"),
            (
                "release.create",
                "release/2026.11.2+hotfix.1",
                "platform_admin"
            ),
            ("release.create", "release/2026.11.1", "platform_admin"),
        ]
    );
    assert_eq!(log.items[2].details["runtime_version"], "1.9.1");
}

#[tokio::test]
async fn a_version_is_published_once() {
    let h = harness().await;
    let admin = h.admin_token();
    let first = h.post(RELEASES, &admin, full_release()).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let r = h
        .post(RELEASES, &admin, with("/runtime/version", json!("1.10.0")))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "already_exists"),
        "{:?}",
        r.body
    );
    assert_eq!(r.body["error"]["details"]["field"], "version");
    let r = h.get(&format!("{RELEASES}/2026.11.1"), &admin).await;
    assert_eq!(r.body, first.body, "the first release is unchanged");
    assert_eq!(
        h.state
            .store
            .list_platform_audit(None, None)
            .await
            .unwrap()
            .items
            .len(),
        1,
        "the refused duplicate is not audited"
    );
}

#[tokio::test]
async fn invalid_releases_answer_400_with_the_field_and_store_nothing() {
    let h = harness().await;
    let admin = h.admin_token();
    let long_flag = format!("--log-level={}", "a".repeat(256));
    let many_flags: Vec<String> = (0..33).map(|i| format!("--f{i}")).collect();
    let many_keys: serde_json::Map<String, Value> =
        (0..65).map(|i| (format!("k{i}"), json!(i))).collect();
    let cases = [
        (with("/version", json!("")), "version"),
        (with("/version", json!("-1.0")), "version"),
        (with("/version", json!("1.0/2")), "version"),
        (with("/version", json!("a".repeat(65))), "version"),
        (with("/runtime/version", json!("")), "runtime.version"),
        (with("/runtime/version", json!("1.9 1")), "runtime.version"),
        (
            with("/runtime/version", json!("1".repeat(33))),
            "runtime.version",
        ),
        (with("/runtime/binary", json!("temporal")), "runtime.binary"),
        (
            with("/runtime/binary", json!("/opt/../temporal")),
            "runtime.binary",
        ),
        (
            with("/runtime/binary", json!("/opt/tem\u{0}poral")),
            "runtime.binary",
        ),
        (
            with("/runtime/binary", json!(format!("/{}", "a".repeat(512)))),
            "runtime.binary",
        ),
        (with("/runtime/flags", json!(many_flags)), "runtime.flags"),
        (with("/runtime/flags", json!(["-v"])), "runtime.flags[0]"),
        (with("/runtime/flags", json!(["warn"])), "runtime.flags[0]"),
        (
            with("/runtime/flags", json!([long_flag])),
            "runtime.flags[0]",
        ),
        (
            with(
                "/runtime/flags",
                json!(["--log-level", "warn", "--port", "1"]),
            ),
            "runtime.flags[2]",
        ),
        (
            with(
                "/runtime/flags",
                json!(["--log-level", "warn", "--db-filename=/tmp/x"]),
            ),
            "runtime.flags[2]",
        ),
        (
            with("/runtime/flags", json!(["--headless=false"])),
            "runtime.flags[0]",
        ),
        (
            with("/runtime/dynamic_config", json!({"1bad": 1})),
            "runtime.dynamic_config",
        ),
        (
            with("/runtime/dynamic_config", json!({"a-b": 1})),
            "runtime.dynamic_config",
        ),
        (
            with("/runtime/dynamic_config", Value::Object(many_keys)),
            "runtime.dynamic_config",
        ),
        (
            with("/agent/report_interval_ms", json!(499)),
            "agent.report_interval_ms",
        ),
        (
            with("/agent/report_interval_ms", json!(60_001)),
            "agent.report_interval_ms",
        ),
        (
            with("/agent/canary_interval_ms", json!(999)),
            "agent.canary_interval_ms",
        ),
        (
            with("/agent/canary_interval_ms", json!(600_001)),
            "agent.canary_interval_ms",
        ),
        (with("/notes", json!("n".repeat(2001))), "notes"),
        // Shapes serde refuses: unknown fields anywhere, missing or mistyped required ones.
        (with("/colour", json!("blue")), "body"),
        (with("/runtime/image", json!("temporal:1.9")), "body"),
        (with("/agent/poll_ms", json!(1)), "body"),
        (with("/runtime", Value::Null), "body"),
        (with("/runtime/version", Value::Null), "body"),
        (with("/runtime/flags", json!("--log-level warn")), "body"),
        (with("/agent/report_interval_ms", json!(-1)), "body"),
    ];
    for (body, field) in cases {
        let r = h.post(RELEASES, &admin, body.clone()).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "invalid_argument"),
            "{field}: {:?}",
            r.body
        );
        assert_eq!(
            r.body["error"]["details"]["field"], field,
            "{body}: {:?}",
            r.body
        );
    }
    let r = h
        .send(
            axum::http::Request::post(RELEASES)
                .header("authorization", format!("Bearer {admin}"))
                .header("content-type", "application/json")
                .body(axum::body::Body::from("{\"version\": "))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "malformed JSON");

    assert!(versions(&h, &admin).await.is_empty(), "nothing was stored");
    assert!(
        h.state
            .store
            .list_platform_audit(None, None)
            .await
            .unwrap()
            .items
            .is_empty(),
        "nothing was audited"
    );
    // The same release, valid, is then accepted: the refusals were about the field alone.
    let r = h.post(RELEASES, &admin, full_release()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
}

#[tokio::test]
async fn tenants_cannot_see_or_publish_releases() {
    let h = harness().await;
    let admin = h.admin_token();
    let m = h.account("acme").await;
    h.post(RELEASES, &admin, with("/version", json!("1.0.0")))
        .await;
    for (method, path, body) in [
        (Method::GET, RELEASES.to_string(), None),
        (Method::POST, RELEASES.to_string(), Some(full_release())),
        (Method::GET, format!("{RELEASES}/1.0.0"), None),
        (Method::GET, format!("{RELEASES}/9.9.9"), None),
    ] {
        let r = h
            .call(method.clone(), &path, Some(&m.token), body.clone())
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::FORBIDDEN, "permission_denied"),
            "{method} {path}: {:?}",
            r.body
        );
        let r = h.call(method.clone(), &path, None, body).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    assert_eq!(
        versions(&h, &admin).await,
        ["1.0.0"],
        "the tenant's POST stored nothing"
    );
}

#[tokio::test]
async fn the_openapi_document_has_the_release_routes() {
    let h = harness().await;
    let r = h
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    let paths = &r.body["paths"];
    for (path, verb) in [
        ("/api/v1/admin/releases", "get"),
        ("/api/v1/admin/releases", "post"),
        ("/api/v1/admin/releases/{version}", "get"),
    ] {
        assert!(paths[path][verb].is_object(), "{verb} {path} missing");
    }
    for schema in ["Release", "CreateRelease", "RuntimeRelease", "AgentRelease"] {
        assert!(
            r.body["components"]["schemas"][schema].is_object(),
            "{schema} missing"
        );
    }
}
