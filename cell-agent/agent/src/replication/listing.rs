//! What a replica holds, as `litestream ltx` lists it, and how far a follower is behind.

use chrono::{DateTime, Utc};
use tokio::process::Command;

use super::parse_txid;

/// One transaction file of a replica (`litestream ltx`).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct LtxFile {
    level: u32,
    min: u64,
    pub(super) max: u64,
    size: u64,
    created: DateTime<Utc>,
}

pub(super) async fn list_replica(mut cmd: Command, url: &str) -> Result<Vec<LtxFile>, String> {
    let out = cmd
        .args(["ltx", url])
        .output()
        .await
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Ok(parse_ltx_listing(&String::from_utf8_lossy(&out.stdout)))
}

/// Parses `litestream ltx` output: `level min max size created` per line (a header and
/// anything else is skipped).
fn parse_ltx_listing(text: &str) -> Vec<LtxFile> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let [level, min, max, size, created] = f.as_slice() else {
                return None;
            };
            Some(LtxFile {
                level: level.parse().ok()?,
                min: parse_txid(min)?,
                max: parse_txid(max)?,
                size: size.parse().ok()?,
                created: created.parse().ok()?,
            })
        })
        .collect()
}

pub(super) struct Lag {
    pub(super) seconds: f64,
    pub(super) bytes: u64,
}

impl Lag {
    /// How far a follower at `applied` is behind the replica: the age of the oldest
    /// transaction file it has not applied, and the bytes of those files (level 0, the
    /// files transactions first land in).
    pub(super) fn of(files: &[LtxFile], applied: u64) -> Self {
        let pending: Vec<&LtxFile> = files
            .iter()
            .filter(|f| f.level == 0 && f.max > applied)
            .collect();
        Lag {
            seconds: pending
                .iter()
                .map(|f| f.created)
                .min()
                .map(|t| (Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0)
                .unwrap_or(0.0),
            bytes: pending.iter().map(|f| f.size).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_listing_gives_the_lag_of_a_follower() {
        let text = "\
level  min               max               size  created
0      0000000000000002  0000000000000002  336   2026-12-07T02:37:31Z
0      0000000000000003  0000000000000003  398   2026-12-07T02:37:32Z
0      0000000000000004  0000000000000004  453   2026-12-07T02:37:33Z
9      0000000000000001  0000000000000002  712   2026-12-07T02:37:31Z
";
        let files = parse_ltx_listing(text);
        assert_eq!(files.len(), 4);
        assert_eq!(files.iter().map(|f| f.max).max(), Some(4));
        let behind = Lag::of(&files, 2);
        assert_eq!(behind.bytes, 398 + 453);
        assert!(behind.seconds > 0.0);
        let current = Lag::of(&files, 4);
        assert_eq!((current.bytes, current.seconds), (0, 0.0));
    }
}
