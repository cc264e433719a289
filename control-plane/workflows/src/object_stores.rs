//! Each region's object store, where stores are shipped: a directory under the control plane's
//! data dir (the embedded default, for local regions), or an S3-compatible bucket for the
//! regions listed in the control plane's object-store file (`TESSERA_OBJECT_STORES`).
//!
//! The file maps a region to its bucket; credentials are not in it. The platform's own cells
//! reach the buckets with the platform's identity (the standard `AWS_*` environment, which a
//! local cell's agent inherits from the control plane, as an instance role would be in a
//! cloud). A self-hosted cell holds no such identity: a move into or out of a self-hosted
//! region through a bucket is refused until the control plane issues per-path credentials.
//!
//! ```json
//! { "local-west": { "bucket": "tessera-replicas", "region": "us-east-1",
//!                   "endpoint": "http://127.0.0.1:5000", "prefix": "west/" } }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A region's S3-compatible bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Store {
    pub bucket: String,
    /// The bucket's AWS region (any name an S3-compatible store accepts).
    pub region: String,
    /// `http(s)://host[:port]` of an S3-compatible store; AWS's own endpoint when absent.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Prepended to every key (`west/` keeps regions apart in one bucket).
    #[serde(default)]
    pub prefix: String,
}

/// Where each region's replicas live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectStores {
    /// Regions without a bucket: `<dir>/<region>/<migration>`.
    dir: PathBuf,
    buckets: BTreeMap<String, S3Store>,
}

impl ObjectStores {
    /// Every region in a directory under `dir`.
    pub fn local(dir: PathBuf) -> Self {
        Self {
            dir,
            buckets: BTreeMap::new(),
        }
    }

    /// Regions listed in `file` (JSON) use their bucket; the others a directory under `dir`.
    pub fn load(dir: PathBuf, file: Option<&Path>) -> Result<Self, String> {
        let Some(file) = file else {
            return Ok(Self::local(dir));
        };
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("reading the object-store file {}: {e}", file.display()))?;
        Self::parse(dir, &text).map_err(|e| format!("object-store file {}: {e}", file.display()))
    }

    fn parse(dir: PathBuf, text: &str) -> Result<Self, String> {
        let buckets: BTreeMap<String, S3Store> =
            serde_json::from_str(text).map_err(|e| e.to_string())?;
        for (region, s) in &buckets {
            check(region, s)?;
        }
        Ok(Self { dir, buckets })
    }

    /// The region's bucket, if it has one.
    pub fn bucket(&self, region: &str) -> Option<&S3Store> {
        self.buckets.get(region)
    }

    /// Where a migration's replica goes in `region`'s object store, as Litestream takes it.
    pub fn replica_url(&self, region: &str, migration: Uuid) -> String {
        match self.buckets.get(region) {
            Some(s) => {
                let mut url = format!(
                    "s3://{}/{}migrations/{migration}?region={}",
                    s.bucket, s.prefix, s.region
                );
                if let Some(endpoint) = &s.endpoint {
                    url.push_str("&endpoint=");
                    url.push_str(endpoint);
                }
                url
            }
            None => format!(
                "file://{}",
                self.dir.join(region).join(migration.to_string()).display()
            ),
        }
    }
}

fn check(region: &str, s: &S3Store) -> Result<(), String> {
    let plain = |what: &str, v: &str, extra: &str| {
        let ok = v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c) || extra.contains(c));
        if ok {
            Ok(())
        } else {
            Err(format!(
                "{region}: {what} {v:?} has a character URLs cannot carry"
            ))
        }
    };
    if s.bucket.is_empty() || s.region.is_empty() {
        return Err(format!("{region}: bucket and region must not be empty"));
    }
    plain("bucket", &s.bucket, "")?;
    plain("region", &s.region, "")?;
    plain("prefix", &s.prefix, "/")?;
    if !(s.prefix.is_empty() || s.prefix.ends_with('/')) || s.prefix.starts_with('/') {
        return Err(format!(
            "{region}: prefix {:?} must end with '/' and not start with one",
            s.prefix
        ));
    }
    if let Some(e) = &s.endpoint {
        let rest = e
            .strip_prefix("http://")
            .or_else(|| e.strip_prefix("https://"))
            .ok_or_else(|| format!("{region}: endpoint {e:?} must be http:// or https://"))?;
        plain("endpoint", rest, ":[]")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_without_a_bucket_use_a_directory() {
        let stores = ObjectStores::parse(
            "/data/object-store".into(),
            r#"{"west": {"bucket": "replicas", "region": "us-east-1",
                         "endpoint": "http://127.0.0.1:5000", "prefix": "w/"}}"#,
        )
        .unwrap();
        let id = Uuid::nil();
        assert_eq!(
            stores.replica_url("west", id),
            format!(
                "s3://replicas/w/migrations/{id}?region=us-east-1&endpoint=http://127.0.0.1:5000"
            )
        );
        assert_eq!(
            stores.replica_url("east", id),
            format!("file:///data/object-store/east/{id}")
        );
        assert!(stores.bucket("east").is_none());
    }

    #[test]
    fn a_bad_file_is_refused_with_the_reason() {
        for (text, why) in [
            (
                r#"{"w": {"bucket": "", "region": "r"}}"#,
                "must not be empty",
            ),
            (r#"{"w": {"bucket": "a&b", "region": "r"}}"#, "character"),
            (
                r#"{"w": {"bucket": "b", "region": "r", "prefix": "x"}}"#,
                "end with '/'",
            ),
            (
                r#"{"w": {"bucket": "b", "region": "r", "endpoint": "ftp://h"}}"#,
                "http://",
            ),
            (
                r#"{"w": {"bucket": "b", "region": "r", "secret": "s"}}"#,
                "unknown field",
            ),
            ("[1]", "invalid type"),
        ] {
            let e = ObjectStores::parse("/d".into(), text).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
        }
    }
}
