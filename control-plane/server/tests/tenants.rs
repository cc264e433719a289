//! Users, service accounts, API keys, operations and the audit log: happy paths, RBAC (403),
//! isolation between accounts (404), duplicates (409).

mod common;

use axum::http::{Method, StatusCode};
use chrono::Utc;
use common::*;
use serde_json::json;
use tessera_store::NewOperation;
use uuid::Uuid;

#[tokio::test]
async fn account_shows_quotas_and_usage() {
    let h = harness().await;
    let m = h.account("acme").await;
    let r = h.get("/api/v1/account", &m.token).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["name"], "acme");
    assert_eq!(r.body["quotas"]["max_namespaces"], 10);
    assert_eq!(r.body["usage"]["users"], 1);
    assert_eq!(r.body["usage"]["api_keys"], 1);
}

#[tokio::test]
async fn users_invite_accept_change_role_remove() {
    let h = harness().await;
    let owner = h.account("acme").await;
    let r = h
        .post(
            "/api/v1/users",
            &owner.token,
            json!({ "email": "Dev@Acme.io", "role": "developer" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["user"]["email"], "dev@acme.io");
    assert_eq!(r.body["user"]["state"], "invited");
    let dev_id = r.body["user"]["id"].as_str().unwrap().to_string();
    let invite = r.body["invite_token"].as_str().unwrap().to_string();

    let dup = h
        .post(
            "/api/v1/users",
            &owner.token,
            json!({ "email": "dev@acme.io", "role": "admin" }),
        )
        .await;
    assert_eq!(
        (dup.status, dup.code()),
        (StatusCode::CONFLICT, "already_exists")
    );
    let bad = h
        .post(
            "/api/v1/users",
            &owner.token,
            json!({ "email": "nope", "role": "admin" }),
        )
        .await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::BAD_REQUEST, "invalid_argument")
    );
    let bad_role = h
        .post(
            "/api/v1/users",
            &owner.token,
            json!({ "email": "x@acme.io", "role": "superuser" }),
        )
        .await;
    assert_eq!(bad_role.status, StatusCode::BAD_REQUEST);

    let weak = h
        .call(
            Method::POST,
            "/api/v1/invitations/accept",
            None,
            Some(json!({ "token": invite, "password": "short" })),
        )
        .await;
    assert_eq!(weak.status, StatusCode::BAD_REQUEST);
    let ok = h
        .call(
            Method::POST,
            "/api/v1/invitations/accept",
            None,
            Some(json!({ "token": invite, "password": "another long secret" })),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    assert_eq!(ok.body["user"]["state"], "active");
    let reused = h
        .call(
            Method::POST,
            "/api/v1/invitations/accept",
            None,
            Some(json!({ "token": invite, "password": "another long secret" })),
        )
        .await;
    assert_eq!(
        reused.status,
        StatusCode::NOT_FOUND,
        "invitations are single use"
    );
    let login = h
        .call(
            Method::POST,
            "/api/v1/login",
            None,
            Some(json!({ "email": "dev@acme.io", "password": "another long secret" })),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK);

    let r = h
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{dev_id}"),
            Some(&owner.token),
            Some(json!({ "role": "admin" })),
        )
        .await;
    assert_eq!(
        (r.status, r.body["role"].as_str()),
        (StatusCode::OK, Some("admin"))
    );

    let last = h
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{}", owner.user_id),
            Some(&owner.token),
            Some(json!({ "role": "admin" })),
        )
        .await;
    assert_eq!(
        (last.status, last.code()),
        (StatusCode::CONFLICT, "failed_precondition")
    );

    let list = h.get("/api/v1/users", &owner.token).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 2);
    assert!(list.body["next_page_token"].is_null());
    let page = h.get("/api/v1/users?page_size=1", &owner.token).await;
    assert_eq!(page.body["items"].as_array().unwrap().len(), 1);
    let next = page.body["next_page_token"].as_str().unwrap();
    let page2 = h
        .get(
            &format!("/api/v1/users?page_size=1&page_token={next}"),
            &owner.token,
        )
        .await;
    assert_eq!(page2.body["items"][0]["id"], dev_id);
    assert_eq!(
        h.get("/api/v1/users?page_size=0", &owner.token)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        h.get("/api/v1/users?page_token=zzz", &owner.token)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    let r = h
        .call(
            Method::DELETE,
            &format!("/api/v1/users/{dev_id}"),
            Some(&owner.token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = h
        .call(
            Method::DELETE,
            &format!("/api/v1/users/{dev_id}"),
            Some(&owner.token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn removing_a_user_revokes_their_keys() {
    let h = harness().await;
    let owner = h.account("acme").await;
    let dev = h.member(owner.account_id, "dev@acme.io", "developer").await;
    assert_eq!(
        h.get("/api/v1/account", &dev.token).await.status,
        StatusCode::OK
    );
    let r = h
        .call(
            Method::DELETE,
            &format!("/api/v1/users/{}", dev.user_id),
            Some(&owner.token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        h.get("/api/v1/account", &dev.token).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn roles_are_enforced_on_every_mutation() {
    let h = harness().await;
    let owner = h.account("acme").await;
    let admin = h.member(owner.account_id, "admin@acme.io", "admin").await;
    let dev = h.member(owner.account_id, "dev@acme.io", "developer").await;
    let ro = h.member(owner.account_id, "ro@acme.io", "read_only").await;

    let forbidden = |r: &Resp, what: &str| {
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::FORBIDDEN, "permission_denied"),
            "{what}: {:?}",
            r.body
        );
    };
    // read_only can read but mutate nothing.
    assert_eq!(
        h.get("/api/v1/users", &ro.token).await.status,
        StatusCode::OK
    );
    assert_eq!(
        h.get("/api/v1/account", &ro.token).await.status,
        StatusCode::OK
    );
    forbidden(
        &h.post(
            "/api/v1/users",
            &ro.token,
            json!({ "email": "a@acme.io", "role": "read_only" }),
        )
        .await,
        "ro invite",
    );
    forbidden(
        &h.post("/api/v1/api-keys", &ro.token, json!({ "name": "k" }))
            .await,
        "ro create key",
    );
    forbidden(
        &h.call(
            Method::DELETE,
            &format!("/api/v1/api-keys/{}", ro.key_id),
            Some(&ro.token),
            None,
        )
        .await,
        "ro revoke own",
    );
    forbidden(
        &h.post(
            "/api/v1/service-accounts",
            &ro.token,
            json!({ "name": "ci", "role": "developer" }),
        )
        .await,
        "ro sa",
    );
    forbidden(
        &h.call(
            Method::PATCH,
            &format!("/api/v1/users/{}", dev.user_id),
            Some(&ro.token),
            Some(json!({ "role": "admin" })),
        )
        .await,
        "ro patch",
    );
    forbidden(
        &h.call(
            Method::DELETE,
            &format!("/api/v1/users/{}", dev.user_id),
            Some(&ro.token),
            None,
        )
        .await,
        "ro delete",
    );
    forbidden(&h.get("/api/v1/audit-log", &ro.token).await, "ro audit");

    // developers manage their own keys only.
    forbidden(
        &h.post(
            "/api/v1/users",
            &dev.token,
            json!({ "email": "a@acme.io", "role": "read_only" }),
        )
        .await,
        "dev invite",
    );
    assert_eq!(
        h.post("/api/v1/api-keys", &dev.token, json!({ "name": "mine" }))
            .await
            .status,
        StatusCode::CREATED
    );
    let keys = h.get("/api/v1/api-keys", &dev.token).await;
    assert!(
        keys.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["owner"]["user_id"] == dev.user_id.to_string())
    );
    let r = h
        .call(
            Method::DELETE,
            &format!("/api/v1/api-keys/{}", admin.key_id),
            Some(&dev.token),
            None,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "others' keys are invisible to developers"
    );

    // admins cannot touch owners.
    forbidden(
        &h.post(
            "/api/v1/users",
            &admin.token,
            json!({ "email": "o2@acme.io", "role": "owner" }),
        )
        .await,
        "admin invites owner",
    );
    forbidden(
        &h.call(
            Method::DELETE,
            &format!("/api/v1/users/{}", owner.user_id),
            Some(&admin.token),
            None,
        )
        .await,
        "admin removes owner",
    );
    assert_eq!(
        h.call(
            Method::PATCH,
            &format!("/api/v1/users/{}", dev.user_id),
            Some(&admin.token),
            Some(json!({ "role": "read_only" }))
        )
        .await
        .status,
        StatusCode::OK
    );
    // The change of role applies to the developer's existing key at once.
    forbidden(
        &h.post("/api/v1/api-keys", &dev.token, json!({ "name": "another" }))
            .await,
        "demoted dev",
    );
    assert_eq!(
        h.call(
            Method::DELETE,
            &format!("/api/v1/api-keys/{}", dev.key_id),
            Some(&admin.token),
            None
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn other_accounts_resources_answer_404() {
    let h = harness().await;
    let a = h.account("acme").await;
    let b = h.account("globex").await;
    let b_dev = h.member(b.account_id, "dev@globex.io", "developer").await;
    let sa = h
        .post(
            "/api/v1/service-accounts",
            &b.token,
            json!({ "name": "ci", "role": "developer" }),
        )
        .await;
    let sa_id = sa.body["id"].as_str().unwrap();
    let op_id = Uuid::now_v7();
    h.state
        .store
        .create_operation(NewOperation {
            id: op_id,
            account_id: Some(b.account_id),
            kind: "signup".into(),
            resource_kind: "account".into(),
            resource_id: b.account_id.to_string(),
            workflow_id: "wf".into(),
            created_at: Utc::now(),
        })
        .await
        .unwrap();
    let cases = [
        (
            Method::PATCH,
            format!("/api/v1/users/{}", b_dev.user_id),
            Some(json!({ "role": "admin" })),
        ),
        (
            Method::DELETE,
            format!("/api/v1/users/{}", b_dev.user_id),
            None,
        ),
        (
            Method::DELETE,
            format!("/api/v1/api-keys/{}", b.key_id),
            None,
        ),
        (
            Method::DELETE,
            format!("/api/v1/service-accounts/{sa_id}"),
            None,
        ),
        (Method::GET, format!("/api/v1/operations/{op_id}"), None),
        (
            Method::GET,
            "/api/v1/operations/not-a-uuid".to_string(),
            None,
        ),
    ];
    for (method, path, body) in cases {
        let r = h.call(method.clone(), &path, Some(&a.token), body).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::NOT_FOUND, "not_found"),
            "{method} {path}"
        );
    }
    assert_eq!(
        h.get("/api/v1/account", &b_dev.token).await.status,
        StatusCode::OK,
        "B's key still works"
    );
    assert_eq!(
        h.get(&format!("/api/v1/operations/{op_id}"), &b.token)
            .await
            .status,
        StatusCode::OK
    );
    let users = h.get("/api/v1/users", &a.token).await;
    assert_eq!(
        users.body["items"].as_array().unwrap().len(),
        1,
        "A sees only its own users"
    );
}

#[tokio::test]
async fn service_accounts_and_their_keys() {
    let h = harness().await;
    let owner = h.account("acme").await;
    let r = h
        .post("/api/v1/service-accounts", &owner.token,
            json!({ "name": "ci", "role": "developer", "namespace_access": { "payments": "write" } }))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["namespace_access"]["payments"], "write");
    let sa_id = r.body["id"].as_str().unwrap().to_string();
    let dup = h
        .post(
            "/api/v1/service-accounts",
            &owner.token,
            json!({ "name": "ci", "role": "admin" }),
        )
        .await;
    assert_eq!(
        (dup.status, dup.code()),
        (StatusCode::CONFLICT, "already_exists")
    );
    let bad = h
        .post(
            "/api/v1/service-accounts",
            &owner.token,
            json!({ "name": "", "role": "admin" }),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let bad_ns = h
        .post(
            "/api/v1/service-accounts",
            &owner.token,
            json!({ "name": "x", "role": "admin", "namespace_access": { "Bad NS": "read" } }),
        )
        .await;
    assert_eq!(bad_ns.status, StatusCode::BAD_REQUEST);

    let key = h
        .post(
            "/api/v1/api-keys",
            &owner.token,
            json!({ "name": "ci-key", "owner": { "service_account_id": sa_id } }),
        )
        .await;
    assert_eq!(key.status, StatusCode::CREATED, "{:?}", key.body);
    let sa_token = key.body["token"].as_str().unwrap().to_string();
    assert_eq!(
        h.get("/api/v1/account", &sa_token).await.status,
        StatusCode::OK
    );
    // A developer service account cannot manage users.
    let r = h
        .post(
            "/api/v1/users",
            &sa_token,
            json!({ "email": "x@acme.io", "role": "read_only" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let list = h.get("/api/v1/service-accounts", &owner.token).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    let r = h
        .call(
            Method::DELETE,
            &format!("/api/v1/service-accounts/{sa_id}"),
            Some(&owner.token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        h.get("/api/v1/account", &sa_token).await.status,
        StatusCode::UNAUTHORIZED,
        "its keys die with it"
    );
}

#[tokio::test]
async fn api_keys_create_list_revoke_and_validation() {
    let h = harness().await;
    let m = h.account("acme").await;
    let r = h
        .post(
            "/api/v1/api-keys",
            &m.token,
            json!({ "name": "deploy", "expires_at": Utc::now() + chrono::Duration::days(7) }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let token = r.body["token"].as_str().unwrap().to_string();
    let id = r.body["api_key"]["id"].as_str().unwrap().to_string();
    assert!(token.starts_with("tsk_"));
    assert_eq!(
        h.get("/api/v1/account", &token).await.status,
        StatusCode::OK
    );

    let stored = h
        .state
        .store
        .api_key_by_id(Uuid::parse_str(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(
        !token.contains(&stored.secret_digest),
        "only a digest is stored"
    );

    let dup = h
        .post("/api/v1/api-keys", &m.token, json!({ "name": "deploy" }))
        .await;
    assert_eq!(
        (dup.status, dup.code()),
        (StatusCode::CONFLICT, "already_exists")
    );
    let past = h
        .post(
            "/api/v1/api-keys",
            &m.token,
            json!({ "name": "p", "expires_at": "2020-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(
        (past.status, past.body["error"]["details"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("expires_at"))
    );
    let far = h
        .post(
            "/api/v1/api-keys",
            &m.token,
            json!({ "name": "f", "expires_at": Utc::now() + chrono::Duration::days(1000) }),
        )
        .await;
    assert_eq!(far.status, StatusCode::BAD_REQUEST);
    let bad_name = h
        .post("/api/v1/api-keys", &m.token, json!({ "name": "<script>" }))
        .await;
    assert_eq!(bad_name.status, StatusCode::BAD_REQUEST);
    let unknown_sa = h
        .post(
            "/api/v1/api-keys",
            &m.token,
            json!({ "name": "s", "owner": { "service_account_id": Uuid::now_v7() } }),
        )
        .await;
    assert_eq!(unknown_sa.status, StatusCode::NOT_FOUND);

    let list = h.get("/api/v1/api-keys", &m.token).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 2);
    assert!(
        list.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("token").is_none())
    );

    let r = h
        .call(
            Method::DELETE,
            &format!("/api/v1/api-keys/{id}"),
            Some(&m.token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        h.get("/api/v1/account", &token).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = h
        .call(
            Method::DELETE,
            "/api/v1/api-keys/nope",
            Some(&m.token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn operations_list_and_get() {
    let h = harness().await;
    let m = h.account("acme").await;
    let id = Uuid::now_v7();
    h.state
        .store
        .create_operation(NewOperation {
            id,
            account_id: Some(m.account_id),
            kind: "signup".into(),
            resource_kind: "account".into(),
            resource_id: m.account_id.to_string(),
            workflow_id: "wf".into(),
            created_at: Utc::now(),
        })
        .await
        .unwrap();
    let r = h.get(&format!("/api/v1/operations/{id}"), &m.token).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        (r.body["kind"].as_str(), r.body["state"].as_str()),
        (Some("signup"), Some("pending"))
    );
    assert_eq!(r.body["resource"]["kind"], "account");
    let list = h.get("/api/v1/operations", &m.token).await;
    assert_eq!(list.body["items"][0]["id"], id.to_string());
    assert_eq!(
        h.get(&format!("/api/v1/operations/{}", Uuid::now_v7()), &m.token)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn audit_log_records_who_what_when_from_where() {
    let h = harness().await;
    let m = h.account("acme").await;
    let r = h
        .post("/api/v1/api-keys", &m.token, json!({ "name": "audited" }))
        .await;
    let key_id = r.body["api_key"]["id"].as_str().unwrap().to_string();
    h.call(
        Method::DELETE,
        &format!("/api/v1/api-keys/{key_id}"),
        Some(&m.token),
        None,
    )
    .await;
    // A rejected request changes nothing, the audit log included.
    h.post("/api/v1/api-keys", &m.token, json!({ "name": "" }))
        .await;

    let log = h.get("/api/v1/audit-log", &m.token).await;
    assert_eq!(log.status, StatusCode::OK);
    let items = log.body["items"].as_array().unwrap();
    let actions: Vec<&str> = items
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["api_key.revoke", "api_key.create"],
        "newest first"
    );
    let e = &items[0];
    assert_eq!(e["actor"]["kind"], "user");
    assert_eq!(e["actor"]["name"], m.email.as_str());
    assert_eq!(e["actor"]["api_key_id"], m.key_id.to_string());
    assert_eq!(e["resource"], format!("api_key/{key_id}"));
    assert!(e["at"].as_str().is_some());
    let other = h.account("globex").await;
    let theirs = h.get("/api/v1/audit-log", &other.token).await;
    assert!(theirs.body["items"].as_array().unwrap().is_empty());
}
