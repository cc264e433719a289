//! `moto_server` (PyPI `moto[server]`) on a free loopback port: an S3-compatible bucket for
//! tests, or an STS that enforces IAM as AWS does.
//!
//! One moto cannot be both: with IAM enforced, its S3 refuses every request of Litestream's
//! Go SDK with `SignatureDoesNotMatch`, even one signed with a user's own keys (measured with
//! moto 5.2.1 and Litestream 0.5.17), while boto3's pass.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{eventually, free_port};

/// The set-up calls of [`Moto::start_sts`], unauthenticated: moto counts them
/// (`INITIAL_NO_AUTH_ACTION_COUNT`) and enforces IAM on every request after them.
const STS_SETUP_CALLS: u32 = 5;
const STS_SETUP: &str = r#"
import boto3, json, sys
kw = dict(endpoint_url=sys.argv[1], region_name="us-east-1",
          aws_access_key_id="setup", aws_secret_access_key="setup")
iam = boto3.client("iam", **kw)
doc = lambda *statements: json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
iam.create_user(UserName="tessera-control-plane")
iam.put_user_policy(UserName="tessera-control-plane", PolicyName="assume-roles", PolicyDocument=doc(
    {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}))
key = iam.create_access_key(UserName="tessera-control-plane")["AccessKey"]
role = iam.create_role(RoleName="tessera-replicas", AssumeRolePolicyDocument=doc(
    {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}))["Role"]
iam.put_role_policy(RoleName="tessera-replicas", PolicyName="replicas", PolicyDocument=doc(
    {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}))
print(json.dumps({"access_key_id": key["AccessKeyId"],
                  "secret_access_key": key["SecretAccessKey"], "role_arn": role["Arn"]}))
"#;

pub struct Moto {
    child: Child,
    pub endpoint: String,
}

/// The control plane's identity in an IAM-enforcing moto, and the role it may assume.
pub struct AwsIdentity {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub role_arn: String,
}

impl Moto {
    /// A moto without IAM (any signature passes), with `buckets`; its log in `dir/<name>.log`.
    pub async fn start(dir: &std::path::Path, name: &str, buckets: &[&str]) -> Self {
        let moto = Self::spawn(dir, name, None).await;
        let http = reqwest::Client::new();
        for bucket in buckets {
            let put = http.put(format!("{}/{bucket}", moto.endpoint)).send().await;
            assert!(
                put.is_ok_and(|r| r.status().is_success()),
                "create {bucket}"
            );
        }
        moto
    }

    /// A moto that enforces IAM, holding a user for the control plane that may only assume
    /// roles, and the role cells' credentials are issued for.
    pub async fn start_sts(dir: &std::path::Path, name: &str) -> (Self, AwsIdentity) {
        let moto = Self::spawn(dir, name, Some(STS_SETUP_CALLS)).await;
        let out = tokio::process::Command::new("python3")
            .args(["-c", STS_SETUP, &moto.endpoint])
            .env_remove("AWS_CA_BUNDLE")
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "moto set-up: {out:?}");
        let ids: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let field = |k: &str| ids[k].as_str().unwrap().to_string();
        let identity = AwsIdentity {
            access_key_id: field("access_key_id"),
            secret_access_key: field("secret_access_key"),
            role_arn: field("role_arn"),
        };
        (moto, identity)
    }

    async fn spawn(dir: &std::path::Path, name: &str, free_actions: Option<u32>) -> Self {
        let port = free_port();
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
        let mut cmd = Command::new("moto_server");
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if let Some(n) = free_actions {
            cmd.env("INITIAL_NO_AUTH_ACTION_COUNT", n.to_string());
        }
        let child = cmd
            .spawn()
            .expect("start moto_server (pip install 'moto[server]')");
        // A connection is not an action: the set-up calls still come first.
        eventually("moto_server listens", Duration::from_secs(60), || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
        })
        .await;
        Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    /// The keys under `prefix` in `bucket` (ListObjectsV2, first 1000).
    pub async fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let url = format!("{}/{bucket}?list-type=2&prefix={prefix}", self.endpoint);
        let body = reqwest::get(&url).await.unwrap().text().await.unwrap();
        body.split("<Key>")
            .skip(1)
            .filter_map(|k| k.split("</Key>").next())
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
