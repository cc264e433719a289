//! In-process harness: the real router over a real store in a temp dir.

#![allow(dead_code)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use chrono::Utc;
use http_body_util::BodyExt;
use serde_json::Value;
use tessera_control_plane::config::Config;
use tessera_control_plane::state::SharedState;
use tessera_control_plane::{build_state, passwords, routes};
use tessera_domain::ApiKeyToken;
use tessera_store::{NewAccount, NewApiKey, NewUser};
use tower::ServiceExt;
use uuid::Uuid;

pub struct Harness {
    pub app: Router,
    pub state: SharedState,
    pub dir: tempfile::TempDir,
}

pub struct Resp {
    pub status: StatusCode,
    pub body: Value,
    pub headers: HeaderMap,
}

impl Resp {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

pub async fn harness() -> Harness {
    harness_with(|_| {}).await
}

pub async fn harness_with(f: impl FnOnce(&mut Config)) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::for_tests(dir.path().to_path_buf());
    cfg.rate_limit_burst = 10_000;
    cfg.rate_limit_per_second = 10_000.0;
    // Router tests have no peer address: every request shares one failure budget.
    cfg.auth_failure_burst = 10_000;
    f(&mut cfg);
    let state = Arc::new(build_state(cfg).await.unwrap());
    Harness {
        app: routes::router(state.clone()),
        state,
        dir,
    }
}

/// A member of an account, seeded through the store.
pub struct Member {
    pub account_id: Uuid,
    pub user_id: Uuid,
    pub email: String,
    pub token: String,
    pub key_id: Uuid,
}

impl Harness {
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some(v) => b
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&v).unwrap()))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        };
        self.send(req).await
    }

    pub async fn send(&self, req: Request<Body>) -> Resp {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Resp {
            status,
            body,
            headers,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    /// Seeds an account with an owner holding an API key.
    pub async fn account(&self, name: &str) -> Member {
        let s = &self.state.store;
        let acc = s
            .create_account(NewAccount {
                id: Uuid::now_v7(),
                name: name.into(),
                created_at: Utc::now(),
            })
            .await
            .unwrap();
        self.member(acc.id, &format!("owner@{name}.io"), "owner")
            .await
    }

    /// Seeds a user with `role` (password "correct horse battery") and an API key.
    pub async fn member(&self, account_id: Uuid, email: &str, role: &str) -> Member {
        let s = &self.state.store;
        let user = s
            .create_user(NewUser {
                id: Uuid::now_v7(),
                account_id,
                email: email.into(),
                password_hash: Some(
                    passwords::hash("correct horse battery".into())
                        .await
                        .unwrap(),
                ),
                role: role.into(),
                state: "active".into(),
                invite_token_digest: None,
                created_at: Utc::now(),
            })
            .await
            .unwrap();
        let token = ApiKeyToken::generate(Uuid::now_v7());
        s.create_api_key(NewApiKey {
            id: token.key_id,
            account_id,
            name: format!("key-{}", token.key_id.simple()),
            user_id: Some(user.id),
            service_account_id: None,
            secret_digest: token.secret_digest(),
            expires_at: Utc::now() + chrono::Duration::days(1),
            created_at: Utc::now(),
        })
        .await
        .unwrap();
        Member {
            account_id,
            user_id: user.id,
            email: email.into(),
            token: token.expose(),
            key_id: token.key_id,
        }
    }

    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("admin-token"))
            .unwrap()
            .trim()
            .to_string()
    }
}
