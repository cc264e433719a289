//! The cell's trash: a runtime that leaves the desired state is stopped and its folder (store,
//! record, log) is moved to `<cell-dir>/trash/<runtime>@<unix-milliseconds>`, never deleted at once.
//! A restored namespace takes its newest folder back; folders older than the retention are
//! purged. Nothing in a cell is deleted because it is missing from a document.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::process::{linked, stop_runtime_processes};

/// The trash folder of the cell whose runtimes live in `ns_root` (`<cell-dir>/ns`).
pub(super) fn trash_root(ns_root: &Path) -> PathBuf {
    ns_root
        .parent()
        .map_or_else(|| PathBuf::from("trash"), |cell| cell.join("trash"))
}

/// One runtime folder in the trash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trashed {
    pub runtime: String,
    pub trashed_at: DateTime<Utc>,
    pub path: PathBuf,
}

/// Stops whatever still runs from the runtime folder `dir` and moves it to the trash (for a
/// claimed warm runtime: the folder the link points to; the link goes). Returns where it went,
/// or `None` when there was nothing to move.
pub(super) async fn trash_runtime_dir(ns_root: &Path, id: &str, dir: &Path) -> Option<PathBuf> {
    stop_runtime_processes(dir).await;
    let target = linked(dir);
    let folder = target.clone().unwrap_or_else(|| dir.to_path_buf());
    if !folder.exists() {
        if target.is_some() {
            let _ = std::fs::remove_file(dir);
        }
        return None;
    }
    let root = trash_root(ns_root);
    let now = Utc::now();
    let dest = root.join(format!("{id}@{}", now.timestamp_millis()));
    let moved = std::fs::create_dir_all(&root).and_then(|_| std::fs::rename(&folder, &dest));
    if let Err(e) = moved {
        // Left where it is: a later pass tries again; nothing is lost.
        tracing::error!(runtime = %id, dir = %folder.display(), error = %e, "moving a runtime folder to the trash failed");
        return None;
    }
    if target.is_some() {
        let _ = std::fs::remove_file(dir);
    }
    tracing::info!(runtime = %id, to = %dest.display(), "runtime folder moved to the trash");
    Some(dest)
}

/// Every runtime folder in the trash, newest first.
pub fn list(ns_root: &Path) -> Vec<Trashed> {
    let mut out: Vec<Trashed> = std::fs::read_dir(trash_root(ns_root))
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().to_string();
                    let (runtime, millis) = name.rsplit_once('@')?;
                    Some(Trashed {
                        runtime: runtime.to_string(),
                        trashed_at: DateTime::from_timestamp_millis(millis.parse().ok()?)?,
                        path: e.path(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by_key(|t| std::cmp::Reverse(t.trashed_at));
    out
}

/// Moves the newest trashed folder of runtime `id` back to `dir`. False when the trash holds
/// none (or `dir` already exists: a live folder is never replaced).
pub(super) fn restore(ns_root: &Path, id: &str, dir: &Path) -> bool {
    if dir.exists() {
        return false;
    }
    let Some(t) = list(ns_root).into_iter().find(|t| t.runtime == id) else {
        return false;
    };
    match std::fs::rename(&t.path, dir) {
        Ok(()) => {
            tracing::info!(runtime = %id, from = %t.path.display(), "runtime folder restored from the trash");
            true
        }
        Err(e) => {
            tracing::error!(runtime = %id, error = %e, "restoring a runtime folder from the trash failed");
            false
        }
    }
}

/// Deletes the trashed folders older than `retention`.
pub(super) fn purge(ns_root: &Path, retention: Duration, now: DateTime<Utc>) {
    let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    for t in list(ns_root) {
        if now - t.trashed_at > retention {
            match std::fs::remove_dir_all(&t.path) {
                Ok(()) => {
                    tracing::info!(runtime = %t.runtime, trashed_at = %t.trashed_at, "purged a runtime folder from the trash")
                }
                Err(e) => {
                    tracing::warn!(dir = %t.path.display(), error = %e, "purging the trash failed")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_trashed_folder_comes_back_and_is_purged_only_after_the_retention() {
        let cell = tempfile::tempdir().unwrap();
        let ns = cell.path().join("ns");
        let dir = ns.join("rt-1");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("store.db"), b"rows").unwrap();

        let dest = trash_runtime_dir(&ns, "rt-1", &dir).await.unwrap();
        assert!(!dir.exists());
        assert_eq!(std::fs::read(dest.join("store.db")).unwrap(), b"rows");
        assert_eq!(list(&ns).len(), 1);

        // Within the retention nothing goes; past it, the folder does.
        purge(&ns, Duration::from_secs(3600), Utc::now());
        assert!(dest.exists());
        assert!(restore(&ns, "rt-1", &dir));
        assert_eq!(std::fs::read(dir.join("store.db")).unwrap(), b"rows");
        assert!(list(&ns).is_empty());

        trash_runtime_dir(&ns, "rt-1", &dir).await.unwrap();
        purge(
            &ns,
            Duration::from_secs(3600),
            Utc::now() + chrono::Duration::hours(2),
        );
        assert!(list(&ns).is_empty());
        assert!(!restore(&ns, "rt-1", &dir));
    }

    #[tokio::test]
    async fn a_claimed_warm_runtime_goes_to_the_trash_through_its_link() {
        let cell = tempfile::tempdir().unwrap();
        let ns = cell.path().join("ns");
        let warm = ns.join(".warm-1");
        std::fs::create_dir_all(&warm).unwrap();
        std::fs::write(warm.join("store.db"), b"rows").unwrap();
        let link = ns.join("rt-2");
        std::os::unix::fs::symlink(&warm, &link).unwrap();

        let dest = trash_runtime_dir(&ns, "rt-2", &link).await.unwrap();
        assert!(!warm.exists() && std::fs::symlink_metadata(&link).is_err());
        assert_eq!(std::fs::read(dest.join("store.db")).unwrap(), b"rows");
    }
}
