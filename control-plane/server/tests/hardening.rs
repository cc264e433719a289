//! Authentication under attack: failed authentications are limited per address before any
//! look-up, logins answer alike for unknown emails and wrong passwords, and session cookies are
//! `Secure` when users reach the control plane over https.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use common::*;
use serde_json::json;
use tessera_domain::ApiKeyToken;
use uuid::Uuid;

fn from(ip: [u8; 4], mut req: Request<Body>) -> Request<Body> {
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((ip, 40_000))));
    req
}

fn get_account(token: &str) -> Request<Body> {
    Request::get("/api/v1/account")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

fn login(email: &str, password: &str) -> Request<Body> {
    Request::post("/api/v1/login")
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"email": email, "password": password}).to_string(),
        ))
        .unwrap()
}

const FLOODER: [u8; 4] = [203, 0, 113, 7];
const NEIGHBOUR: [u8; 4] = [203, 0, 113, 8];

#[tokio::test]
async fn a_flood_of_random_api_keys_is_refused_without_reading_the_store() {
    let h = harness_with(|c| {
        c.auth_failure_burst = 20;
        c.auth_failures_per_minute = 0.001;
    })
    .await;
    let m = h.account("acme").await;
    let lookups = || h.state.metrics.auth_lookups.get();
    let before = lookups();
    let mut statuses = BTreeMap::new();
    let mut retry_after = None;
    for _ in 0..10_000 {
        let random = ApiKeyToken::generate(Uuid::now_v7()).expose();
        let r = h.send(from(FLOODER, get_account(&random))).await;
        *statuses.entry(r.status.as_u16()).or_insert(0) += 1;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(r.code(), "rate_limited");
            retry_after = r.headers.get("retry-after").cloned();
        }
    }
    assert_eq!(statuses, BTreeMap::from([(401, 20), (429, 9_980)]));
    assert!(retry_after.is_some(), "429 says when to retry");
    assert_eq!(
        lookups() - before,
        20,
        "past the limit, a request costs no look-up"
    );

    // Malformed keys and stale session cookies count too, and are refused as early.
    let r = h.send(from(FLOODER, get_account("garbage"))).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let stale = Request::get("/api/v1/account")
        .header("cookie", "tessera_session=tss_stale")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        h.send(from(FLOODER, stale)).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(lookups() - before, 20);
    // The neighbour's address is not affected.
    let r = h.send(from(NEIGHBOUR, get_account(&m.token))).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn wrong_passwords_and_unknown_emails_answer_alike_and_count_against_the_address() {
    let h = harness_with(|c| {
        c.auth_failure_burst = 3;
        c.auth_failures_per_minute = 0.001;
    })
    .await;
    let m = h.account("acme").await;
    let wrong = h
        .send(from(NEIGHBOUR, login(&m.email, "not the password")))
        .await;
    let unknown = h
        .send(from(NEIGHBOUR, login("nobody@acme.io", "not the password")))
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!((unknown.status, &unknown.body), (wrong.status, &wrong.body));
    let ok = h
        .send(from(NEIGHBOUR, login(&m.email, "correct horse battery")))
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    let cookie = ok.headers.get("set-cookie").unwrap().to_str().unwrap();
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    // The third failure spends the budget: even the right password waits now.
    h.send(from(NEIGHBOUR, login(&m.email, "again wrong")))
        .await;
    let r = h
        .send(from(NEIGHBOUR, login(&m.email, "correct horse battery")))
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn session_cookies_are_secure_when_users_come_over_https() {
    let h = harness_with(|c| c.public_url = Some("https://tessera.example.com".into())).await;
    let m = h.account("acme").await;
    let ok = h
        .send(from(NEIGHBOUR, login(&m.email, "correct horse battery")))
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    let cookie = ok.headers.get("set-cookie").unwrap().to_str().unwrap();
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
}
