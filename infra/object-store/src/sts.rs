//! Short-lived credentials for one replica path, issued through STS `AssumeRole` with a session
//! policy that narrows the bucket's role to that path: a replicating source may read, write
//! and delete under it, a follower only read; both may list it. And the removal of a replica
//! no one follows any more. Calls are signed with the control plane's own identity (the
//! standard `AWS_*` environment) by the AWS SDK's signer.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
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
        let text = self
            .send(&store.region, "sts", "POST", &url, body)
            .await
            .map_err(|e| format!("STS AssumeRole: {e}"))?;
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

    /// Deletes every object under `key/` in `store`'s bucket (a replica no one follows any
    /// more); how many there were.
    pub async fn delete_replica(&self, store: &S3Store, key: &str) -> Result<usize, String> {
        let base = match &store.endpoint {
            Some(e) => format!("{}/{}", e.trim_end_matches('/'), store.bucket),
            None => format!("https://{}.s3.{}.amazonaws.com", store.bucket, store.region),
        };
        let mut deleted = 0;
        loop {
            let list = format!(
                "{base}?list-type=2&prefix={}",
                form_value(&format!("{key}/"))
            );
            let text = self
                .send(&store.region, "s3", "GET", &list, String::new())
                .await?;
            let keys = tags(&text, "Key");
            if keys.is_empty() {
                return Ok(deleted);
            }
            for k in keys {
                // Litestream's own keys, under ours: nothing in them needs escaping.
                self.send(
                    &store.region,
                    "s3",
                    "DELETE",
                    &format!("{base}/{k}"),
                    String::new(),
                )
                .await?;
                deleted += 1;
            }
        }
    }

    /// Sends a request signed (SigV4) with the control plane's identity; the answer's body.
    async fn send(
        &self,
        region: &str,
        service: &str,
        method: &str,
        url: &str,
        body: String,
    ) -> Result<String, String> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let (Some(id), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"))
        else {
            return Err("the control plane has no AWS identity (AWS_ACCESS_KEY_ID)".into());
        };
        let content_type = "application/x-www-form-urlencoded; charset=utf-8";
        let mut settings = SigningSettings::default();
        if service == "s3" {
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
            settings.percent_encoding_mode = PercentEncodingMode::Single;
            settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        }
        let identity =
            Credentials::new(id, secret, env("AWS_SESSION_TOKEN"), None, "tessera").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name(service)
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| format!("signing: {e}"))?
            .into();
        let headers: &[(&str, &str)] = match body.is_empty() {
            true => &[],
            false => &[("content-type", content_type)],
        };
        let signable = SignableRequest::new(
            method,
            url,
            headers.iter().copied(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| format!("signing: {e}"))?;
        let (signed, _) = sign(signable, &params)
            .map_err(|e| format!("signing: {e}"))?
            .into_parts();
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        let mut request = self.http.request(method, url);
        for (name, value) in headers.iter().copied().chain(signed.headers()) {
            request = request.header(name, value);
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            let code = tag(&text, "Code").unwrap_or_default();
            let message = tag(&text, "Message").unwrap_or_default();
            return Err(format!("refused ({status}): {code} {message}"));
        }
        Ok(text)
    }
}

/// `application/x-www-form-urlencoded` (RFC 3986 unreserved characters kept).
fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", form_value(k), form_value(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// One percent-encoded value (RFC 3986 unreserved characters kept).
fn form_value(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The text of the first `<name>…</name>` in an XML answer (the values read here hold no
/// markup).
fn tag(xml: &str, name: &str) -> Option<String> {
    tags(xml, name).into_iter().next()
}

/// The texts of every `<name>…</name>`.
fn tags(xml: &str, name: &str) -> Vec<String> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    xml.split(&open)
        .skip(1)
        .filter_map(|rest| rest.split_once(&close).map(|(v, _)| v.trim().to_string()))
        .collect()
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
        let list = "<ListBucketResult><Contents><Key>a/1.ltx</Key></Contents>\
                    <Contents><Key>a/2.ltx</Key></Contents></ListBucketResult>";
        assert_eq!(tags(list, "Key"), ["a/1.ltx", "a/2.ltx"]);
    }
}
