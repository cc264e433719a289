//! Each region's object store, where stores are shipped: a directory under the control plane's
//! data dir (the embedded default, for local regions), or an S3-compatible bucket for the
//! regions listed in the control plane's object-store file (`TESSERA_OBJECT_STORES`).
//!
//! The file maps a region to its bucket and to the role whose short-lived credentials the
//! control plane issues to cells; it holds no secret. The control plane's own identity is the
//! standard `AWS_*` environment; cells never get it.
//!
//! ```json
//! { "local-west": { "bucket": "tessera-replicas", "region": "us-east-1",
//!                   "role_arn": "arn:aws:iam::123456789012:role/tessera-replicas",
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
    /// The role cells' credentials are issued for (STS `AssumeRole`, narrowed to one path).
    pub role_arn: String,
    /// STS's endpoint: `endpoint` when that is set (S3-compatible stores serve both), else
    /// AWS's regional one.
    #[serde(default)]
    pub sts_endpoint: Option<String>,
}

impl S3Store {
    pub fn sts_endpoint(&self) -> String {
        self.sts_endpoint
            .clone()
            .or_else(|| self.endpoint.clone())
            .unwrap_or_else(|| format!("https://sts.{}.amazonaws.com", self.region))
    }
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

    /// Where a migration's replica goes in `region`'s object store, as Litestream takes it.
    pub fn replica_url(&self, region: &str, migration: Uuid) -> String {
        self.url(region, "migrations", migration)
    }

    /// Where the replica a namespace's standbys follow goes in `region`'s object store (`id`:
    /// one per set of standbys).
    pub fn standby_url(&self, region: &str, id: Uuid) -> String {
        self.url(region, "standbys", id)
    }

    fn url(&self, region: &str, kind: &str, id: Uuid) -> String {
        match self.buckets.get(region) {
            Some(s) => {
                let mut url = format!(
                    "s3://{}/{}{kind}/{id}?region={}",
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
                self.dir.join(region).join(id.to_string()).display()
            ),
        }
    }

    /// The directory of a replica URL of ours in a local region's object store.
    pub fn local_dir(&self, url: &str) -> Option<PathBuf> {
        let path = Path::new(url.strip_prefix("file://")?);
        let ours = path.starts_with(&self.dir)
            && path.components().count() == self.dir.components().count() + 2
            && path.components().all(|c| {
                matches!(
                    c,
                    std::path::Component::Normal(_) | std::path::Component::RootDir
                )
            });
        ours.then(|| path.to_path_buf())
    }

    /// The bucket a replica URL of ours is in, and the replica's key prefix (no trailing `/`).
    pub fn locate(&self, url: &str) -> Option<(&S3Store, String)> {
        let rest = url.strip_prefix("s3://")?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, key) = path.split_once('/')?;
        let endpoint = query.split('&').find_map(|kv| kv.strip_prefix("endpoint="));
        let store = self
            .buckets
            .values()
            .find(|s| s.bucket == bucket && s.endpoint.as_deref() == endpoint)?;
        let ours = ["migrations/", "standbys/"]
            .iter()
            .any(|kind| key.starts_with(&format!("{}{kind}", store.prefix)));
        let plain = !key.contains("..") && !key.ends_with('/') && !key.contains("//");
        (ours && plain).then(|| (store, key.to_string()))
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
    if !s.role_arn.starts_with("arn:") {
        return Err(format!("{region}: role_arn {:?} is not an ARN", s.role_arn));
    }
    if !(s.prefix.is_empty() || s.prefix.ends_with('/')) || s.prefix.starts_with('/') {
        return Err(format!(
            "{region}: prefix {:?} must end with '/' and not start with one",
            s.prefix
        ));
    }
    for e in s.endpoint.iter().chain(&s.sts_endpoint) {
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
            r#"{"west": {"bucket": "replicas", "region": "us-east-1", "role_arn": "arn:aws:iam::1:role/r",
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
        // Back from a URL to its bucket and key; nothing else is located.
        let url = stores.replica_url("west", id);
        let (bucket, key) = stores.locate(&url).unwrap();
        assert_eq!(
            (bucket.bucket.as_str(), key),
            ("replicas", format!("w/migrations/{id}"))
        );
        assert_eq!(bucket.sts_endpoint(), "http://127.0.0.1:5000");
        // Standbys' replicas live beside migrations'.
        let standby = stores.standby_url("west", id);
        assert_eq!(
            stores.locate(&standby).unwrap().1,
            format!("w/standbys/{id}")
        );
        assert!(stores.local_dir(&url).is_none());
        let local = stores.replica_url("east", id);
        assert_eq!(
            stores.local_dir(&local).unwrap(),
            Path::new("/data/object-store/east").join(id.to_string())
        );
        for other in [
            "file:///data/object-store/east",
            "file:///data/object-store/../x/y",
            "file:///etc/a/b",
        ] {
            assert!(stores.local_dir(other).is_none(), "{other}");
        }
        for other in [
            "s3://replicas/w/other/x?region=us-east-1&endpoint=http://127.0.0.1:5000",
            "s3://replicas/w/migrations/../x?region=us-east-1&endpoint=http://127.0.0.1:5000",
            "s3://replicas/w/migrations/x?region=us-east-1&endpoint=http://elsewhere:1",
            "s3://nope/w/migrations/x?region=us-east-1&endpoint=http://127.0.0.1:5000",
            "file:///data/x",
        ] {
            assert!(stores.locate(other).is_none(), "{other}");
        }
    }

    #[test]
    fn a_bad_file_is_refused_with_the_reason() {
        let r = r#""region": "r", "role_arn": "arn:aws:iam::1:role/r""#;
        for (text, why) in [
            (
                format!(r#"{{"w": {{"bucket": "", {r}}}}}"#),
                "must not be empty",
            ),
            (format!(r#"{{"w": {{"bucket": "a&b", {r}}}}}"#), "character"),
            (
                format!(r#"{{"w": {{"bucket": "b", "prefix": "x", {r}}}}}"#),
                "end with '/'",
            ),
            (
                format!(r#"{{"w": {{"bucket": "b", "endpoint": "ftp://h", {r}}}}}"#),
                "http://",
            ),
            (
                format!(r#"{{"w": {{"bucket": "b", "secret": "s", {r}}}}}"#),
                "unknown field",
            ),
            (
                r#"{"w": {"bucket": "b", "region": "r", "role_arn": "role"}}"#.into(),
                "not an ARN",
            ),
            (
                r#"{"w": {"bucket": "b", "region": "r"}}"#.into(),
                "missing field `role_arn`",
            ),
            ("[1]".into(), "invalid type"),
        ] {
            let e = ObjectStores::parse("/d".into(), &text).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
        }
    }
}
