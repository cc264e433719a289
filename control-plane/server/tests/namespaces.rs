//! Namespace routes in process: every kind of bad input gets a clear 4xx and creates nothing;
//! the quota holds; other accounts see nothing. (The workflow engine is not running here:
//! what passes every check answers 503, which also proves the checks come first.)

mod common;

use axum::http::{Method, StatusCode};
use chrono::{Duration, Utc};
use common::*;
use serde_json::{Value, json};
use tessera_pki::{CertificateAuthority, Usage};
use tessera_store::{NewCell, NewNamespace, NewOperation};
use uuid::Uuid;

async fn cell(h: &Harness, region: &str, ring: i32, status: &str) {
    let s = &h.state.store;
    if s.region(region).await.is_err() {
        s.create_region(region, "local", "test", Utc::now())
            .await
            .unwrap();
    }
    let id = s.next_cell_id(region).await.unwrap();
    s.create_cell(NewCell {
        id,
        region_id: region.into(),
        ring,
        provider: "local".into(),
        status: status.into(),
        labels: json!({}),
        provider_config: json!({}),
        desired: json!({}),
        created_at: Utc::now(),
    })
    .await
    .unwrap();
}

/// Seeds a namespace as if it had been created (state `active`).
async fn seed(h: &Harness, account_id: Uuid, name: &str) {
    let id = Uuid::now_v7();
    h.state
        .store
        .create_namespace(
            NewNamespace {
                id,
                account_id,
                name: name.into(),
                region_id: "local-east".into(),
                retention_days: 1,
                accepted_ca_pem: String::new(),
                generated_ca: true,
                temporal_namespace: format!("{name}.acme"),
                host: format!("{name}.acme.tessera.localhost"),
                created_at: Utc::now(),
            },
            NewOperation {
                id: Uuid::now_v7(),
                account_id: Some(account_id),
                kind: "namespace.create".into(),
                resource_kind: "namespace".into(),
                resource_id: id.to_string(),
                workflow_id: format!("namespace-{id}"),
                created_at: Utc::now(),
            },
        )
        .await
        .unwrap();
    h.state
        .store
        .set_namespace_state(id, "active")
        .await
        .unwrap();
}

fn ca(name: &str) -> CertificateAuthority {
    CertificateAuthority::generate_root(name, Duration::days(30)).unwrap()
}

async fn names(h: &Harness, token: &str) -> Vec<String> {
    let r = h.get("/api/v1/namespaces", token).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn bad_namespace_requests_get_a_clear_error_and_create_nothing() {
    let h = harness().await;
    let m = h.account("acme").await;
    cell(&h, "local-east", 0, "healthy").await;
    cell(&h, "local-east", 1, "healthy").await;
    cell(&h, "local-west", 0, "healthy").await;
    cell(&h, "local-south", 1, "unhealthy").await;
    seed(&h, m.account_id, "orders").await;

    let good_ca = ca("acme CA").cert_pem;
    let leaf = ca("acme CA")
        .issue("not-a-ca", &[], Usage::Client, Duration::days(1))
        .unwrap()
        .cert_pem;
    // A CA certificate whose validity ended a minute ago.
    let expired = CertificateAuthority::generate_root("expired CA", Duration::seconds(-60))
        .unwrap()
        .cert_pem;
    let v1 = tessera_pki::testing::v1_certificate(
        &ca("v1 root"),
        "v1 CA",
        Utc::now() - Duration::hours(1),
        Utc::now() + Duration::days(1),
    )
    .unwrap()
    .cert_pem;
    let seventeen: String = (0..17).map(|i| ca(&format!("ca {i}")).cert_pem).collect();
    let oversized = format!("{good_ca}{}", "x".repeat(33 * 1024));
    let malformed =
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n";

    let base = |name: &str| json!({"name": name, "region": "local-east", "retention_days": 7, "generate_ca": true});
    let with = |patch: Value| {
        let mut b = base("payments");
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                b.as_object_mut().unwrap().remove(k);
            } else {
                b[k] = v.clone();
            }
        }
        b
    };
    let cases: Vec<(Value, StatusCode, &str, Option<&str>)> = vec![
        (
            with(json!({"name": "Payments"})),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            Some("name"),
        ),
        (
            with(json!({"name": "p"})),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            Some("name"),
        ),
        (
            with(json!({"name": "a".repeat(40)})),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            Some("name"),
        ),
        (
            with(json!({"name": "pay.ments"})),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            Some("name"),
        ),
        (
            with(json!({"region": "nowhere"})),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            Some("region"),
        ),
        (
            with(json!({"retention_days": 0})),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            Some("retention_days"),
        ),
        (
            with(json!({"retention_days": 91})),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            Some("retention_days"),
        ),
        (
            with(json!({"generate_ca": null})),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            Some("accepted_client_ca"),
        ),
        (
            with(json!({"accepted_client_ca": good_ca})),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            Some("accepted_client_ca"),
        ),
        (
            with(json!({"generate_ca": null, "accepted_client_ca": malformed})),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            Some("accepted_client_ca"),
        ),
        (
            with(json!({"generate_ca": null, "accepted_client_ca": "just text"})),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            Some("accepted_client_ca"),
        ),
        (
            with(json!({"generate_ca": null, "accepted_client_ca": oversized})),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            Some("accepted_client_ca"),
        ),
        (
            with(json!({"generate_ca": null, "accepted_client_ca": seventeen})),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            Some("accepted_client_ca"),
        ),
        (
            with(json!({"generate_ca": null, "accepted_client_ca": leaf})),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            Some("accepted_client_ca"),
        ),
        (
            with(json!({"generate_ca": null, "accepted_client_ca": v1})),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            Some("accepted_client_ca"),
        ),
        (
            with(json!({"generate_ca": null, "accepted_client_ca": expired})),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            Some("accepted_client_ca"),
        ),
        (base("orders"), StatusCode::CONFLICT, "already_exists", None),
        (
            with(json!({"region": "local-west"})),
            StatusCode::CONFLICT,
            "failed_precondition",
            None,
        ),
        (
            with(json!({"region": "local-south"})),
            StatusCode::CONFLICT,
            "failed_precondition",
            None,
        ),
        (
            json!({"name": "x1"}),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            None,
        ),
    ];
    for (body, status, code, field) in cases {
        let r = h.post("/api/v1/namespaces", &m.token, body.clone()).await;
        let shown: String = body.to_string().chars().take(160).collect();
        assert_eq!(
            (r.status, r.code()),
            (status, code),
            "{shown}: {:?}",
            r.body
        );
        assert!(
            !r.body["error"]["message"].as_str().unwrap_or("").is_empty(),
            "{:?}",
            r.body
        );
        if let Some(f) = field {
            assert_eq!(
                r.body["error"]["details"]["field"], f,
                "{shown}: {:?}",
                r.body
            );
        }
        if body.get("accepted_client_ca") == Some(&json!(expired)) {
            let msg = r.body["error"]["message"].as_str().unwrap();
            assert!(msg.contains("expired"), "{msg}");
        }
    }
    let r = h
        .post("/api/v1/namespaces", &m.token, base("payments"))
        .await;
    assert_eq!(
        r.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "good input reaches the engine (not running here): {:?}",
        r.body
    );
    assert_eq!(names(&h, &m.token).await, ["orders"], "nothing was created");

    // A read-only member may look but not create.
    let ro = h.member(m.account_id, "ro@acme.io", "read_only").await;
    let r = h
        .post("/api/v1/namespaces", &ro.token, base("payments"))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(names(&h, &ro.token).await, ["orders"]);

    // Updates, deletes and client certificates check their input too.
    for (method, path, body, status) in [
        (
            Method::PATCH,
            "/api/v1/namespaces/orders",
            json!({"retention_days": 0}),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PATCH,
            "/api/v1/namespaces/orders",
            json!({"retention_days": 100}),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PATCH,
            "/api/v1/namespaces/orders",
            json!({"accepted_client_ca": malformed}),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PATCH,
            "/api/v1/namespaces/orders",
            json!({}),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PATCH,
            "/api/v1/namespaces/nope",
            json!({"retention_days": 3}),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::DELETE,
            "/api/v1/namespaces/nope",
            Value::Null,
            StatusCode::NOT_FOUND,
        ),
        (
            Method::POST,
            "/api/v1/namespaces/orders/client-certs",
            json!({"common_name": "", "valid_days": 1}),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/v1/namespaces/orders/client-certs",
            json!({"common_name": "w", "valid_days": 0}),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/v1/namespaces/orders/client-certs",
            json!({"common_name": "w", "valid_days": 366}),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/v1/namespaces/nope/client-certs",
            json!({"common_name": "w", "valid_days": 1}),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let body = (!body.is_null()).then_some(body);
        let r = h.call(method.clone(), path, Some(&m.token), body).await;
        assert_eq!(r.status, status, "{method} {path}: {:?}", r.body);
    }
    let r = h.get("/api/v1/namespaces/orders", &m.token).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["retention_days"], 1, "no update went through");
    assert_eq!(r.body["state"], "active");
    assert_eq!(
        r.body["endpoint"]["tls_server_name"],
        "orders.acme.tessera.localhost"
    );

    // Other accounts never see it.
    let other = h.account("globex").await;
    for (method, path) in [
        (Method::GET, "/api/v1/namespaces/orders"),
        (Method::DELETE, "/api/v1/namespaces/orders"),
    ] {
        let r = h.call(method, path, Some(&other.token), None).await;
        assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "not_found"));
    }
    assert!(names(&h, &other.token).await.is_empty());
}

#[tokio::test]
async fn the_namespace_quota_holds() {
    let h = harness().await;
    let m = h.account("acme").await;
    cell(&h, "local-east", 1, "healthy").await;
    let limit = h.get("/api/v1/account", &m.token).await.body["quotas"]["max_namespaces"]
        .as_u64()
        .unwrap();
    assert_eq!(limit, 10, "the default quota");
    for i in 0..limit {
        seed(&h, m.account_id, &format!("ns{i}")).await;
    }
    let r = h
        .post(
            "/api/v1/namespaces",
            &m.token,
            json!({"name": "one-more", "region": "local-east", "retention_days": 1, "generate_ca": true}),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "failed_precondition"),
        "{:?}",
        r.body
    );
    assert_eq!(r.body["error"]["details"]["quota"], "max_namespaces");
    assert_eq!(r.body["error"]["details"]["limit"], 10);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("quota of 10 namespaces")
    );
    let usage = h.get("/api/v1/account", &m.token).await.body["usage"]["namespaces"].clone();
    assert_eq!(usage, 10);
    // The store refuses an eleventh too, whatever the API checked before.
    let id = Uuid::now_v7();
    let err = h
        .state
        .store
        .create_namespace(
            NewNamespace {
                id,
                account_id: m.account_id,
                name: "racer".into(),
                region_id: "local-east".into(),
                retention_days: 1,
                accepted_ca_pem: String::new(),
                generated_ca: true,
                temporal_namespace: "racer.acme".into(),
                host: "racer.acme.tessera.localhost".into(),
                created_at: Utc::now(),
            },
            NewOperation {
                id: Uuid::now_v7(),
                account_id: Some(m.account_id),
                kind: "namespace.create".into(),
                resource_kind: "namespace".into(),
                resource_id: id.to_string(),
                workflow_id: format!("namespace-{id}"),
                created_at: Utc::now(),
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, tessera_store::StoreError::Quota { .. }),
        "{err}"
    );
}

/// A service account's `namespace_access` grants a read-only account more on one namespace and
/// nothing on the others; developers and above administer every namespace anyway.
#[tokio::test]
async fn service_account_namespace_grants_are_enforced() {
    let h = harness().await;
    let owner = h.account("acme").await;
    seed(&h, owner.account_id, "payments").await;
    seed(&h, owner.account_id, "orders").await;
    let key_of = |role: &'static str, access: Value| {
        let (h, owner) = (&h, &owner);
        async move {
            let name = format!("sa-{role}-{}", Uuid::now_v7().simple());
            let sa = h
                .post(
                    "/api/v1/service-accounts",
                    &owner.token,
                    json!({ "name": name, "role": role, "namespace_access": access }),
                )
                .await;
            assert_eq!(sa.status, StatusCode::CREATED, "{:?}", sa.body);
            let key = h
                .post(
                    "/api/v1/api-keys",
                    &owner.token,
                    json!({ "name": name, "owner": { "service_account_id": sa.body["id"] } }),
                )
                .await;
            assert_eq!(key.status, StatusCode::CREATED, "{:?}", key.body);
            key.body["token"].as_str().unwrap().to_string()
        }
    };
    let cert = json!({"common_name": "worker", "valid_days": 1});
    let issue = |token: String, ns: &'static str| {
        let (h, cert) = (&h, cert.clone());
        async move {
            h.post(
                &format!("/api/v1/namespaces/{ns}/client-certs"),
                &token,
                cert,
            )
            .await
        }
    };
    let patch = |token: String, ns: &'static str| {
        let h = &h;
        async move {
            h.call(
                Method::PATCH,
                &format!("/api/v1/namespaces/{ns}"),
                Some(&token),
                Some(json!({"retention_days": 3})),
            )
            .await
        }
    };
    // Past the authorisation check, these requests stop at the next one: the seeded namespaces
    // have no generated CA yet (409), and no workflow engine runs here (503).
    let passed = |r: &Resp| r.status != StatusCode::FORBIDDEN;

    let writer = key_of("read_only", json!({"payments": "write"})).await;
    assert_eq!(
        names(&h, &writer).await.len(),
        2,
        "read-only still reads all"
    );
    let r = issue(writer.clone(), "payments").await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    let r = issue(writer.clone(), "orders").await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::FORBIDDEN, "permission_denied")
    );
    assert_eq!(
        r.body["error"]["message"],
        "role read_only may not issue client certificates for namespace orders"
    );
    let r = patch(writer.clone(), "payments").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert_eq!(r.body["error"]["details"]["namespace_access"], "write");
    let r = h
        .call(
            Method::DELETE,
            "/api/v1/namespaces/payments",
            Some(&writer),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .post("/api/v1/namespaces", &writer, json!({"name": "more", "region": "local-east", "retention_days": 1, "generate_ca": true}))
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "a grant does not create namespaces"
    );

    let ns_admin = key_of("read_only", json!({"orders": "admin"})).await;
    assert!(passed(&patch(ns_admin.clone(), "orders").await));
    assert!(passed(&issue(ns_admin.clone(), "orders").await));
    assert!(!passed(&patch(ns_admin.clone(), "payments").await));

    let reader = key_of("read_only", json!({"payments": "read"})).await;
    assert!(!passed(&issue(reader.clone(), "payments").await));
    let r = h.get("/api/v1/namespaces/payments", &reader).await;
    assert_eq!(r.status, StatusCode::OK);

    let developer = key_of("developer", json!({"payments": "read"})).await;
    assert!(
        passed(&patch(developer.clone(), "payments").await),
        "a grant never takes away"
    );
    assert!(passed(&issue(developer, "orders").await));

    let r = h.get("/api/v1/namespaces/payments", &owner.token).await;
    assert_eq!(r.body["retention_days"], 1, "nothing was changed");
}

/// Decommissioning drains a cell: while it runs tenants' namespaces it is refused, and nothing
/// changes.
#[tokio::test]
async fn a_cell_running_namespaces_is_not_decommissioned() {
    let h = harness().await;
    let owner = h.account("acme").await;
    cell(&h, "local-east", 1, "healthy").await;
    seed(&h, owner.account_id, "orders").await;
    let ns = h
        .state
        .store
        .namespace(owner.account_id, "orders")
        .await
        .unwrap();
    h.state
        .store
        .place_namespace(ns.id, "local-east-1")
        .await
        .unwrap();
    let admin = h.admin_token();
    let decommission = || {
        h.call(
            Method::DELETE,
            "/api/v1/admin/cells/local-east-1",
            Some(&admin),
            None,
        )
    };
    let r = decommission().await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "failed_precondition"),
        "{:?}",
        r.body
    );
    assert_eq!(
        r.body["error"]["details"]["namespaces"],
        json!(["orders.acme"])
    );
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no other cell of region local-east can take them"),
        "{:?}",
        r.body
    );
    let c = h.get("/api/v1/admin/cells/local-east-1", &admin).await;
    assert_eq!(c.body["status"], "healthy", "nothing changed");

    // Once the namespace is deleted, the refusal is gone (here the engine is not running: 503).
    h.state
        .store
        .mark_namespace_deleted(ns.id, Utc::now())
        .await
        .unwrap();
    let r = decommission().await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", r.body);
}
