//! Short-lived credentials for one replica path, issued through STS `AssumeRole` with a session
//! policy that narrows the bucket's role to that path: a replicating source may read, write
//! and delete under it, a follower only read; both may list it. The call is signed with the
//! control plane's own identity (the standard `AWS_*` environment) by the AWS SDK's signer.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use serde_json::json;
use tessera_api::agent::ReplicaCredentials;

use crate::S3Store;

/// What a cell may do under its replica path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A source: writes the replica (and Litestream's retention deletes from it).
    ReadWrite,
    /// A follower: restores from it.
    Read,
}

/// The session policy for `key` (a replica's prefix, no trailing `/`) in `bucket`.
pub fn session_policy(bucket: &str, key: &str, access: Access) -> serde_json::Value {
    let objects = match access {
        Access::ReadWrite => json!(["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]),
        Access::Read => json!(["s3:GetObject"]),
    };
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": objects,
                "Resource": format!("arn:aws:s3:::{bucket}/{key}/*"),
            },
            {
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": format!("arn:aws:s3:::{bucket}"),
                "Condition": {"StringLike": {"s3:prefix": [key, format!("{key}/*")]}},
            },
        ],
    })
}

/// Issues credentials with the control plane's identity.
#[derive(Clone)]
pub struct Issuer {
    http: reqwest::Client,
    /// How long issued credentials last (STS allows 15 min to the role's maximum).
    lifetime: Duration,
}

impl Issuer {
    pub fn new(lifetime: Duration) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("an HTTP client"),
            lifetime,
        }
    }

    /// Credentials for `access` to `key` in `store`'s bucket; `session` names the holder in
    /// the bucket's logs (a cell id).
    pub async fn issue(
        &self,
        store: &S3Store,
        key: &str,
        access: Access,
        session: &str,
    ) -> Result<ReplicaCredentials, String> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let (Some(id), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"))
        else {
            return Err("the control plane has no AWS identity (AWS_ACCESS_KEY_ID)".into());
        };
        let policy = session_policy(&store.bucket, key, access).to_string();
        let seconds = self.lifetime.as_secs().to_string();
        let body = form(&[
            ("Action", "AssumeRole"),
            ("Version", "2011-06-15"),
            ("RoleArn", &store.role_arn),
            ("RoleSessionName", session),
            ("DurationSeconds", &seconds),
            ("Policy", &policy),
        ]);
        let url = format!("{}/", store.sts_endpoint().trim_end_matches('/'));
        let content_type = "application/x-www-form-urlencoded; charset=utf-8";
        let identity =
            Credentials::new(id, secret, env("AWS_SESSION_TOKEN"), None, "tessera").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&store.region)
            .name("sts")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| format!("signing STS AssumeRole: {e}"))?
            .into();
        let signable = SignableRequest::new(
            "POST",
            &url,
            [("content-type", content_type)].into_iter(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| format!("signing STS AssumeRole: {e}"))?;
        let (signed, _) = sign(signable, &params)
            .map_err(|e| format!("signing STS AssumeRole: {e}"))?
            .into_parts();
        let mut request = self
            .http
            .post(&url)
            .header("content-type", content_type)
            .body(body);
        for (name, value) in signed.headers() {
            request = request.header(name, value);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("STS at {url}: {e}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            let code = tag(&text, "Code").unwrap_or_default();
            let message = tag(&text, "Message").unwrap_or_default();
            return Err(format!(
                "STS AssumeRole refused ({status}): {code} {message}"
            ));
        }
        let field = |name: &str| {
            tag(&text, name).ok_or_else(|| format!("STS AssumeRole answered without {name}"))
        };
        Ok(ReplicaCredentials {
            version: 1,
            access_key_id: field("AccessKeyId")?,
            secret_access_key: field("SecretAccessKey")?,
            session_token: field("SessionToken")?,
            expiration: field("Expiration")?,
        })
    }
}

/// `application/x-www-form-urlencoded` (RFC 3986 unreserved characters kept).
fn form(pairs: &[(&str, &str)]) -> String {
    let encode = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The text of the first `<name>…</name>` in an XML answer (STS's values hold no markup).
fn tag(xml: &str, name: &str) -> Option<String> {
    let start = xml.find(&format!("<{name}>"))? + name.len() + 2;
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(xml[start..end].trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_follower_may_only_read_and_list_its_own_path() {
        let p = session_policy("replicas", "w/migrations/m1", Access::Read);
        assert_eq!(p["Statement"][0]["Action"], json!(["s3:GetObject"]));
        assert_eq!(
            p["Statement"][0]["Resource"],
            "arn:aws:s3:::replicas/w/migrations/m1/*"
        );
        assert_eq!(
            p["Statement"][1]["Condition"]["StringLike"]["s3:prefix"],
            json!(["w/migrations/m1", "w/migrations/m1/*"])
        );
        let w = session_policy("replicas", "w/migrations/m1", Access::ReadWrite);
        assert!(
            w["Statement"][0]["Action"]
                .as_array()
                .unwrap()
                .contains(&json!("s3:PutObject"))
        );
    }

    #[test]
    fn forms_and_answers_are_read_as_sts_writes_them() {
        assert_eq!(
            form(&[("Policy", "{\"a\": [1]}"), ("RoleSessionName", "cell-1")]),
            "Policy=%7B%22a%22%3A%20%5B1%5D%7D&RoleSessionName=cell-1"
        );
        let xml = "<AssumeRoleResponse><Credentials><AccessKeyId>ASIA1</AccessKeyId>\
                   <Expiration>2026-12-07T10:00:00Z</Expiration></Credentials></AssumeRoleResponse>";
        assert_eq!(tag(xml, "AccessKeyId").as_deref(), Some("ASIA1"));
        assert_eq!(tag(xml, "SessionToken"), None);
    }
}
