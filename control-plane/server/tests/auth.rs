//! Authentication, sign-up validation, sessions, body limits, rate limits and idempotency.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use chrono::Utc;
use common::*;
use serde_json::json;
use tessera_domain::ApiKeyToken;
use tessera_store::NewApiKey;
use uuid::Uuid;

fn signup_body(name: &str, email: &str, pw: &str) -> serde_json::Value {
    json!({ "account_name": name, "email": email, "password": pw })
}

#[tokio::test]
async fn signup_rejects_bad_input_and_creates_nothing() {
    let h = harness().await;
    let cases = [
        (
            signup_body("A", "o@acme.io", "correct horse battery"),
            "account_name",
        ),
        (
            signup_body("acme_corp", "o@acme.io", "correct horse battery"),
            "account_name",
        ),
        (
            signup_body("acme", "not-an-email", "correct horse battery"),
            "email",
        ),
        (signup_body("acme", "o@acme.io", "short"), "password"),
        (json!({ "account_name": "acme" }), "body"),
        (
            json!({ "account_name": 5, "email": "o@acme.io", "password": "correct horse battery" }),
            "body",
        ),
    ];
    for (body, field) in cases {
        let r = h
            .call(Method::POST, "/api/v1/signup", None, Some(body.clone()))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {:?}", r.body);
        assert_eq!(r.code(), "invalid_argument");
        assert_eq!(r.body["error"]["details"]["field"], field, "{body}");
    }
    let malformed = Request::post("/api/v1/signup")
        .header("content-type", "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    let r = h.send(malformed).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_argument")
    );
    assert!(
        h.state
            .store
            .list_accounts(None, None)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn signup_refuses_taken_names_and_emails() {
    let h = harness().await;
    h.account("acme").await;
    let r = h
        .call(
            Method::POST,
            "/api/v1/signup",
            None,
            Some(signup_body("acme", "new@acme.io", "correct horse battery")),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "already_exists")
    );
    assert_eq!(r.body["error"]["details"]["field"], "account_name");
    let r = h
        .call(
            Method::POST,
            "/api/v1/signup",
            None,
            Some(signup_body(
                "other",
                "OWNER@acme.io",
                "correct horse battery",
            )),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "already_exists")
    );
    assert_eq!(r.body["error"]["details"]["field"], "email");
    assert_eq!(
        h.state
            .store
            .list_accounts(None, None)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

#[tokio::test]
async fn missing_malformed_unknown_expired_and_revoked_keys_get_401() {
    let h = harness().await;
    let m = h.account("acme").await;
    let r = h.call(Method::GET, "/api/v1/account", None, None).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "unauthenticated"),
        "missing"
    );

    let basic = Request::get("/api/v1/account")
        .header("authorization", "Basic abc")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        h.send(basic).await.status,
        StatusCode::UNAUTHORIZED,
        "not bearer"
    );
    assert_eq!(
        h.get("/api/v1/account", "garbage").await.status,
        StatusCode::UNAUTHORIZED,
        "malformed"
    );
    let unknown = ApiKeyToken::generate(Uuid::now_v7()).expose();
    assert_eq!(
        h.get("/api/v1/account", &unknown).await.status,
        StatusCode::UNAUTHORIZED,
        "unknown"
    );
    let forged = ApiKeyToken {
        key_id: m.key_id,
        secret: "0".repeat(48),
    }
    .expose();
    assert_eq!(
        h.get("/api/v1/account", &forged).await.status,
        StatusCode::UNAUTHORIZED,
        "wrong secret"
    );

    let expired = ApiKeyToken::generate(Uuid::now_v7());
    h.state
        .store
        .create_api_key(NewApiKey {
            id: expired.key_id,
            account_id: m.account_id,
            name: "old".into(),
            user_id: Some(m.user_id),
            service_account_id: None,
            secret_digest: expired.secret_digest(),
            expires_at: Utc::now() - chrono::Duration::seconds(1),
            created_at: Utc::now() - chrono::Duration::days(2),
        })
        .await
        .unwrap();
    let r = h.get("/api/v1/account", &expired.expose()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );

    assert_eq!(
        h.get("/api/v1/account", &m.token).await.status,
        StatusCode::OK
    );
    let r = h
        .call(
            Method::DELETE,
            &format!("/api/v1/api-keys/{}", m.key_id),
            Some(&m.token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = h.get("/api/v1/account", &m.token).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "revoked takes effect at once"
    );
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
}

#[tokio::test]
async fn login_sets_a_session_cookie_and_logout_ends_it() {
    let h = harness().await;
    let m = h.account("acme").await;
    let r = h
        .call(
            Method::POST,
            "/api/v1/login",
            None,
            Some(json!({ "email": m.email, "password": "wrong password!" })),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );
    let r = h
        .call(
            Method::POST,
            "/api/v1/login",
            None,
            Some(json!({ "email": "nobody", "password": "x" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let r = h
        .call(
            Method::POST,
            "/api/v1/login",
            None,
            Some(json!({ "email": m.email, "password": "correct horse battery" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["user"]["role"], "owner");
    let set_cookie = r.headers["set-cookie"].to_str().unwrap().to_string();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"));
    let cookie = set_cookie.split(';').next().unwrap().to_string();

    let with_cookie = |method: Method, path: &str| {
        Request::builder()
            .method(method)
            .uri(path)
            .header("cookie", cookie.clone())
            .body(Body::empty())
            .unwrap()
    };
    let r = h.send(with_cookie(Method::GET, "/api/v1/account")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["name"], "acme");
    let r = h.send(with_cookie(Method::GET, "/api/v1/session")).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["user"]["email"], m.email);
    assert_eq!(r.body["account"]["name"], "acme");
    let csrf = r.body["csrf_token"].as_str().unwrap().to_string();
    let mut logout = with_cookie(Method::POST, "/api/v1/logout");
    logout
        .headers_mut()
        .insert("x-csrf-token", csrf.parse().unwrap());
    let r = h.send(logout).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = h.send(with_cookie(Method::GET, "/api/v1/account")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "session ended");
}

#[tokio::test]
async fn oversize_bodies_get_413_and_change_nothing() {
    let h = harness_with(|c| c.max_body_bytes = 4096).await;
    let m = h.account("acme").await;
    let big = json!({ "name": "x".repeat(10_000) });
    let r = h.post("/api/v1/api-keys", &m.token, big.clone()).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    // Without a Content-Length the extractor's limit catches it.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
        Ok(serde_json::to_vec(&big).unwrap()[..3000].to_vec()),
        Ok(vec![b' '; 3000]),
    ];
    let req = Request::post("/api/v1/api-keys")
        .header("authorization", format!("Bearer {}", m.token))
        .header("content-type", "application/json")
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .unwrap();
    let r = h.send(req).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    let keys = h.get("/api/v1/api-keys", &m.token).await;
    assert_eq!(keys.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn over_the_rate_gets_429_with_retry_after_per_key() {
    let h = harness_with(|c| {
        c.rate_limit_per_second = 0.5;
        c.rate_limit_burst = 3;
    })
    .await;
    let a = h.account("acme").await;
    let b = h.account("other").await;
    for _ in 0..3 {
        assert_eq!(
            h.get("/api/v1/account", &a.token).await.status,
            StatusCode::OK
        );
    }
    let r = h.get("/api/v1/account", &a.token).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert_eq!(
        h.get("/api/v1/account", &b.token).await.status,
        StatusCode::OK,
        "other keys unaffected"
    );
}

#[tokio::test]
async fn idempotency_key_replays_the_first_answer() {
    let h = harness().await;
    let m = h.account("acme").await;
    let send = |body: serde_json::Value| {
        Request::post("/api/v1/api-keys")
            .header("authorization", format!("Bearer {}", m.token))
            .header("content-type", "application/json")
            .header("idempotency-key", "create-ci-key-1")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let first = h.send(send(json!({ "name": "ci" }))).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let again = h.send(send(json!({ "name": "ci" }))).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.body, first.body, "same token, same key");
    assert_eq!(again.headers["idempotent-replayed"], "true");
    let other = h.send(send(json!({ "name": "other" }))).await;
    assert_eq!(
        (other.status, other.code()),
        (StatusCode::CONFLICT, "failed_precondition")
    );
    let keys = h.get("/api/v1/api-keys", &m.token).await;
    assert_eq!(
        keys.body["items"].as_array().unwrap().len(),
        2,
        "seeded key + one created"
    );
    // The remembered answer holds a shown-once token: it is sealed, not stored in clear.
    let token = first.body["token"].as_str().unwrap();
    let rows = h
        .state
        .store
        .idempotent_response("key:".to_string().as_str(), "x", Utc::now())
        .await
        .unwrap();
    assert!(rows.is_none());
    let scope = format!("key:{}", m.key_id);
    let stored = h
        .state
        .store
        .idempotent_response(&scope, "create-ci-key-1", Utc::now())
        .await
        .unwrap()
        .unwrap();
    assert!(!String::from_utf8_lossy(&stored.sealed_body).contains(token));
}

/// Logs `m` in as the console does: its session cookie (`name=value`) and CSRF token.
async fn login(h: &Harness, m: &Member) -> (String, String) {
    let r = h
        .call(
            Method::POST,
            "/api/v1/login",
            None,
            Some(json!({ "email": m.email, "password": "correct horse battery" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let cookie = r.headers["set-cookie"].to_str().unwrap();
    (
        cookie.split(';').next().unwrap().to_string(),
        r.body["csrf_token"].as_str().unwrap().to_string(),
    )
}

/// The console's session cookie alone cannot change anything: a state-changing request also
/// needs the session's CSRF token, and a browser request from another origin is refused.
#[tokio::test]
async fn console_writes_need_the_csrf_token_and_this_origin() {
    let h = harness().await;
    let m = h.account("acme").await;
    let (cookie, csrf) = login(&h, &m).await;
    let create_key = |headers: &[(&str, &str)]| {
        let mut b = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/api-keys")
            .header("content-type", "application/json")
            .header("host", "console.test:8080")
            .header("cookie", cookie.clone());
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Body::from(json!({ "name": "ci" }).to_string()))
            .unwrap()
    };
    let keys = async || {
        h.get("/api/v1/api-keys", &m.token).await.body["items"]
            .as_array()
            .unwrap()
            .len()
    };
    let before = keys().await;

    for (headers, why) in [
        (vec![], "no CSRF token"),
        (vec![("x-csrf-token", "0000")], "a wrong CSRF token"),
        (
            vec![
                ("x-csrf-token", csrf.as_str()),
                ("origin", "https://evil.test"),
            ],
            "another origin",
        ),
        (
            vec![("x-csrf-token", csrf.as_str()), ("origin", "null")],
            "an opaque origin",
        ),
    ] {
        let r = h.send(create_key(&headers)).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::FORBIDDEN, "permission_denied"),
            "{why}: {:?}",
            r.body
        );
    }
    assert_eq!(keys().await, before, "a refused request changes nothing");

    let r = h
        .send(create_key(&[
            ("x-csrf-token", csrf.as_str()),
            ("origin", "http://console.test:8080"),
        ]))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(keys().await, before + 1);

    // The token belongs to its session: another session's token does not fit.
    let (_, other_csrf) = login(&h, &m).await;
    assert_ne!(other_csrf, csrf);
    let r = h
        .send(create_key(&[("x-csrf-token", other_csrf.as_str())]))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // API keys need neither: automation has no cookie and no Origin.
    let r = h
        .post(
            "/api/v1/api-keys",
            &m.token,
            json!({ "name": "automation" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
}

#[tokio::test]
async fn the_console_is_served_with_a_strict_content_security_policy() {
    let h = harness().await;
    let get = |path: &str| Request::builder().uri(path).body(Body::empty()).unwrap();
    let r = h.send(get("/")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers["location"], "/console/");
    for page in [
        "/console",
        "/console/",
        "/console/namespaces/orders",
        "/console/login",
    ] {
        let r = h.send(get(page)).await;
        assert_eq!(r.status, StatusCode::OK, "{page}");
        assert!(
            r.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let csp = r.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    }
    let r = h.send(get("/console/assets/js/app.js")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
    let r = h.send(get("/console/assets/js/../../../Cargo.toml")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h.send(get("/console/assets/nope.js")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
