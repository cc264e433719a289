//! System tests: the real `tessera-control-plane` binary with its own local Temporal server,
//! driven over HTTP and through the `tessera` CLI.

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use tessera_store::Store;
use tessera_system_tests::{ControlPlane, eventually, processes_mentioning};

const PASSWORD: &str = "correct horse battery";

async fn post(http: &reqwest::Client, url: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = http.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn get(http: &reqwest::Client, url: &str, token: &str) -> (u16, Value) {
    let r = http.get(url).bearer_auth(token).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn signup_api_keys_and_cli_against_the_real_binary() {
    let dir = tempfile::tempdir().unwrap();
    let cp = ControlPlane::start(dir.path(), &[]).await;
    let api = format!("{}/api/v1", cp.url);
    let http = reqwest::Client::new();

    let (status, body) = post(
        &http,
        &format!("{api}/signup"),
        None,
        json!({ "account_name": "acme", "email": "owner@acme.io", "password": PASSWORD }),
    )
    .await;
    assert_eq!(status, 201, "{body}\n{}", cp.log());
    let token = body["api_key"]["token"].as_str().unwrap().to_string();
    let op_id = body["operation"]["id"].as_str().unwrap().to_string();
    assert_eq!(body["operation"]["state"], "fulfilled");
    let (status, op) = get(&http, &format!("{api}/operations/{op_id}"), &token).await;
    assert_eq!(
        (status, op["state"].as_str(), op["progress"].as_f64()),
        (200, Some("fulfilled"), Some(1.0))
    );

    let (status, key) = post(
        &http,
        &format!("{api}/api-keys"),
        Some(&token),
        json!({ "name": "ci" }),
    )
    .await;
    assert_eq!(status, 201, "{key}");
    let ci_token = key["token"].as_str().unwrap().to_string();
    let ci_id = key["api_key"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        get(&http, &format!("{api}/account"), &ci_token).await.0,
        200
    );
    let r = http
        .delete(format!("{api}/api-keys/{ci_id}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let (status, err) = get(&http, &format!("{api}/account"), &ci_token).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (401, Some("unauthenticated")),
        "revoked key refused at once"
    );

    let (_, log) = get(&http, &format!("{api}/audit-log"), &token).await;
    let actions: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["api_key.revoke", "api_key.create", "account.signup"]
    );
    assert_eq!(log["items"][0]["source_ip"], "127.0.0.1");

    // The CLI, with its config in a scratch directory.
    let cli_home = tempfile::tempdir().unwrap();
    let cli = |args: &[&str]| {
        let out = Command::new(tessera_system_tests::bin("tessera"))
            .args(args)
            .env("TESSERA_CONFIG", cli_home.path().join("config.json"))
            .env_remove("TESSERA_API_KEY")
            .env_remove("TESSERA_URL")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, _, err) = cli(&["account"]);
    assert!(!ok && err.contains("not logged in"), "{err}");
    let (ok, _, err) = cli(&["login", "--url", &cp.url, "--api-key", &ci_token]);
    assert!(!ok, "a revoked key cannot log in: {err}");
    let (ok, out, err) = cli(&["login", "--url", &cp.url, "--api-key", &token]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("acme"));
    let (ok, out, _) = cli(&["account", "-o", "json"]);
    assert!(ok);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["name"], "acme");
    let (ok, out, err) = cli(&[
        "api-keys", "create", "from-cli", "--days", "7", "-o", "json",
    ]);
    assert!(ok, "{err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    assert!(created["token"].as_str().unwrap().starts_with("tsk_"));
    let (ok, out, _) = cli(&["api-keys", "list", "-o", "json"]);
    assert!(ok);
    let names: Vec<String> = serde_json::from_str::<Vec<Value>>(&out)
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        names.contains(&"from-cli".to_string()) && names.contains(&"ci".to_string()),
        "{names:?}"
    );
    let (ok, out, _) = cli(&["api-keys", "list"]);
    assert!(ok && out.contains("from-cli"), "table output: {out}");
    // `tessera … | head -0`: the reader is gone before the output is written.
    let mut piped = Command::new(tessera_system_tests::bin("tessera"))
        .args(["api-keys", "list"])
        .env("TESSERA_CONFIG", cli_home.path().join("config.json"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(piped.stdout.take());
    let closed = piped.wait_with_output().unwrap();
    assert!(
        closed.status.success() && closed.stderr.is_empty(),
        "a closed pipe ends the CLI quietly: {:?} {}",
        closed.status,
        String::from_utf8_lossy(&closed.stderr)
    );
    let (ok, out, err) = cli(&[
        "users",
        "invite",
        "dev@acme.io",
        "--role",
        "developer",
        "-o",
        "json",
    ]);
    assert!(ok, "{err}");
    assert!(serde_json::from_str::<Value>(&out).unwrap()["invite_token"].is_string());
    let (ok, out, _) = cli(&["users", "list", "-o", "json"]);
    assert!(ok);
    assert_eq!(serde_json::from_str::<Vec<Value>>(&out).unwrap().len(), 2);
    let (ok, out, err) = cli(&[
        "service-accounts",
        "create",
        "deployer",
        "--role",
        "developer",
        "-o",
        "json",
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["name"],
        "deployer"
    );
    let (ok, out, err) = cli(&["operations", "wait", &op_id, "-o", "json"]);
    assert!(ok, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["state"],
        "fulfilled"
    );
    let (ok, out, _) = cli(&["operations", "get", &op_id]);
    assert!(ok && out.contains("fulfilled"), "{out}");
    let (ok, _, err) = cli(&["users", "remove", &uuid::Uuid::now_v7().to_string()]);
    assert!(!ok && err.contains("not_found"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_signup_completes_once_and_a_dead_temporal_is_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    let mut cp = ControlPlane::start(&data, &[("TESSERA_TEST_SIGNUP_STEP_DELAY_MS", "1500")]).await;
    let api = format!("{}/api/v1", cp.url);

    // The sign-up request hangs on the slowed workflow; the process dies under it.
    let req = tokio::spawn({
        let api = api.clone();
        async move {
            reqwest::Client::new()
                .post(format!("{api}/signup"))
                .json(&json!({ "account_name": "crashco", "email": "owner@crashco.io", "password": PASSWORD }))
                .send()
                .await
        }
    });
    let store = Store::connect(&Store::sqlite_url(&data.join("tessera.db")))
        .await
        .unwrap();
    let account = eventually(
        "account created by the workflow",
        Duration::from_secs(60),
        || {
            let store = store.clone();
            async move { store.account_by_name("crashco").await.unwrap() }
        },
    )
    .await;
    let users_before = store
        .list_users(account.id, None, None)
        .await
        .unwrap()
        .items
        .len();
    assert_eq!(users_before, 0, "killed before the owner step finished");
    cp.kill9();
    assert!(
        req.await.unwrap().is_err(),
        "the client saw the connection die"
    );

    let cp = ControlPlane::start(&data, &[]).await;
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let api = format!("{}/api/v1", cp.url);
    eventually(
        "sign-up to finish after restart",
        Duration::from_secs(90),
        || {
            let http = http.clone();
            let api = api.clone();
            async move {
                let r = http
                    .post(format!("{api}/login"))
                    .json(&json!({ "email": "owner@crashco.io", "password": PASSWORD }))
                    .send()
                    .await
                    .ok()?;
                r.status().is_success().then_some(())
            }
        },
    )
    .await;
    let ops: Value = http
        .get(format!("{api}/operations"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let op = eventually("operation fulfilled", Duration::from_secs(30), || {
        let http = http.clone();
        let api = api.clone();
        let id = ops["items"][0]["id"].as_str().unwrap().to_string();
        async move {
            let op: Value = http
                .get(format!("{api}/operations/{id}"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (op["state"] == "fulfilled").then_some(op)
        }
    })
    .await;
    assert_eq!(op["kind"], "signup");
    assert_eq!(ops["items"].as_array().unwrap().len(), 1);

    // Exactly once: one account, one owner, one key, one sign-up audit entry.
    let accounts = store.list_accounts(None, None).await.unwrap().items;
    assert_eq!(accounts.iter().filter(|a| a.name == "crashco").count(), 1);
    let users = store
        .list_users(account.id, None, None)
        .await
        .unwrap()
        .items;
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].role, "owner");
    assert_eq!(
        store
            .list_api_keys(account.id, None, None, None)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let audit = store
        .list_audit(account.id, None, None)
        .await
        .unwrap()
        .items;
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.action == "account.signup")
            .count(),
        1
    );

    // The Temporal server orphaned by SIGKILL was replaced, not duplicated.
    let temporal_db = data.join("temporal").join("temporal.db");
    let servers = processes_mentioning(&temporal_db.to_string_lossy());
    assert_eq!(
        servers.len(),
        1,
        "one Temporal server for this data dir: {servers:?}"
    );
}
