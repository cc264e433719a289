//! The web console in a real browser: Playwright (`playwright-core`) drives Debian's headless
//! Chromium through `tests/console/console.test.mjs` against the real binaries. The browser
//! signs up, creates a namespace and watches it become active, downloads a client certificate,
//! and checks that the files it saved connect a Python `temporalio` client to the namespace
//! through the ingress, adds and removes an accepted CA, creates and revokes an API key,
//! invites a user and changes their role, sees the field error for a bad name,
//! and deletes the namespace behind its confirmation dialog.
//!
//! Screenshots of each main page land in `tests/artifacts/console/`.

use std::path::PathBuf;
use std::time::Duration;

use tessera_system_tests::{Api, CellProcesses, ControlPlane, tail, temporal_cli_version};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/console/console.test.mjs");
const WORKER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/python/tenant_worker.py");

fn artifacts() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("artifacts/console")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_uses_the_console_in_a_real_browser() {
    let data = tempfile::tempdir().unwrap();
    let _cells = CellProcesses(data.path().to_path_buf());
    // Short bakes, so the admin part of the test rolls a release out in seconds.
    let rings = data.path().join("rings.toml");
    std::fs::write(
        &rings,
        "[defaults]\nbake = \"10s\"\nbake_after_ring = \"1s\"\n\n\
         [[ring]]\nname = \"canary\"\ncells = { ring = 0 }\n\n\
         [[ring]]\nname = \"early\"\ncells = { ring = 1 }\n",
    )
    .unwrap();
    let cp = ControlPlane::start(
        data.path(),
        &[("TESSERA_RINGS_FILE", rings.to_str().unwrap())],
    )
    .await;
    let admin = Api::admin(&cp);
    admin.create_region("local-east").await;
    let _edge = tessera_system_tests::start_edge(&cp, &admin, "local-east").await;
    admin.provision("local-east", 1).await;
    let (s, v) = admin
        .post(
            "/admin/releases",
            serde_json::json!({"version": "r1", "runtime": {"version": temporal_cli_version()}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");

    let shots = artifacts();
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let downloads = data.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();

    // A CA of the tenant's own, to add beside the generated one and remove again (rotation).
    let extra_ca = tessera_pki::CertificateAuthority::generate_root(
        "acme-web rotation CA",
        chrono::Duration::days(30),
    )
    .unwrap();
    let extra_ca_file = data.path().join("rotation-ca.pem");
    std::fs::write(&extra_ca_file, &extra_ca.cert_pem).unwrap();

    let run = tokio::process::Command::new("node")
        .arg(SCRIPT)
        .env("CONSOLE_URL", &cp.url)
        .env("SCREENSHOT_DIR", &shots)
        .env("DOWNLOAD_DIR", &downloads)
        .env("TENANT_WORKER", WORKER)
        .env("EXTRA_CA_FILE", &extra_ca_file)
        .env("ADMIN_TOKEN", &admin.token)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(600), run)
        .await
        .expect("the browser test finishes within 10 minutes")
        .expect("node runs (./dev test installs it with the console test dependencies)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "browser test failed ({}):\n{stdout}\n{stderr}\ncontrol plane log tail:\n{}",
        out.status,
        tail(&cp.log(), 60)
    );

    for page in [
        "login",
        "signup",
        "welcome",
        "namespaces",
        "namespace-create-error",
        "namespace-create-progress",
        "namespace-detail",
        "namespace-replicas",
        "client-certificate",
        "api-keys",
        "users",
        "audit-log",
        "rollout",
        "rollouts",
    ] {
        let png = shots.join(format!("{page}.png"));
        let len = std::fs::metadata(&png)
            .unwrap_or_else(|_| panic!("screenshot {} missing", png.display()))
            .len();
        assert!(len > 5_000, "{} is {len} bytes", png.display());
    }

    // What the browser did is what the API says.
    let acme = Api::with_token(
        &cp,
        std::fs::read_to_string(downloads.join("api-key")).unwrap(),
    );
    let (status, _) = acme
        .call(reqwest::Method::GET, "/namespaces/orders", None)
        .await;
    assert_eq!(status, 404, "deleted in the console");
    let log = acme.get("/audit-log").await.to_string();
    for action in [
        "namespace.create",
        "namespace.delete",
        "api_key.create",
        "api_key.revoke",
        "user.invite",
    ] {
        assert!(
            log.contains(action),
            "{action} missing from the audit log: {log}"
        );
    }
}
