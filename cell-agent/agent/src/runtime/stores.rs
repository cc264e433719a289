//! Runtime stores in global-namespace mode: switching a new store, and the spare stores a
//! cell keeps ready so that a new runtime starts once instead of twice.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::Context;
use chrono::Utc;

use super::{
    Proc, RuntimeCtx, RuntimeRecord, STARTUP_GRACE, health_check, runs_store, spawn, terminate,
};

/// Marks a store switched to global-namespace mode.
const GLOBAL_MARKER: &str = "global-namespace";
/// Ready stores in global-namespace mode, waiting for new runtimes (one folder each).
pub(super) const SPARES: &str = ".spares";
/// How many spares a cell keeps ready unless told otherwise.
pub(super) const SPARE_COUNT: usize = 3;
/// Where the next spare is prepared.
pub(super) const SPARE_BUILD: &str = ".spare-build";
/// The files of a store (SQLite keeps its write-ahead log next to it).
const STORE_FILES: [&str; 4] = ["store.db", "store.db-wal", "store.db-shm", GLOBAL_MARKER];

pub(super) fn global_marker(dir: &Path) -> bool {
    dir.join(GLOBAL_MARKER).exists()
}

/// Marks a store copied from a runtime that ran in global-namespace mode (the mode is in the
/// store itself; the marker only saves the bootstrap).
pub(crate) fn mark_global(dir: &Path) -> std::io::Result<()> {
    std::fs::write(dir.join(GLOBAL_MARKER), b"")
}

/// The spare stores ready to be claimed.
pub(super) fn ready_spares(root: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root.join(SPARES))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| global_marker(p))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Prepares a spare store in `.spare-build`, then moves it into `.spares/`.
pub(super) async fn make_spare(root: &Path, ctx: &RuntimeCtx) -> crate::Result<()> {
    let _permit = ctx.starts.background().await;
    // Start over; `bootstrap_global` first stops a server an earlier agent left running here.
    for f in STORE_FILES {
        let _ = std::fs::remove_file(ctx.dir.join(f));
    }
    std::fs::create_dir_all(&ctx.dir)?;
    let record = RuntimeRecord::fresh(ctx)?;
    bootstrap_global(ctx, &record).await?;
    let _ = std::fs::remove_file(ctx.dir.join("runtime.log"));
    std::fs::create_dir_all(root.join(SPARES))?;
    let name = format!("{}", Utc::now().timestamp_nanos_opt().unwrap_or_default());
    std::fs::rename(&ctx.dir, root.join(SPARES).join(name))?;
    tracing::debug!("a spare runtime store is ready");
    Ok(())
}

/// Moves a spare store of `root` (the cell's `ns/`) into a new runtime's folder; `false` when
/// there is none. A spare is first renamed away atomically, so two runtimes starting at once
/// never share one.
pub(super) fn claim_spare(root: &Path, dir: &Path) -> bool {
    let Some(name) = dir.file_name() else {
        return false;
    };
    let claimed = root.join(format!(".claimed-{}", name.to_string_lossy()));
    if !ready_spares(root)
        .iter()
        .any(|spare| std::fs::rename(spare, &claimed).is_ok())
    {
        return false;
    }
    let moved = STORE_FILES.iter().all(|f| {
        let from = claimed.join(f);
        !from.exists() || std::fs::rename(&from, dir.join(f)).is_ok()
    });
    let _ = std::fs::remove_dir_all(&claimed);
    if !moved {
        for f in STORE_FILES {
            let _ = std::fs::remove_file(dir.join(f));
        }
    }
    moved
}

/// A new store is created by a first start, stopped, switched to global-namespace mode, and
/// marked so the next start serves it.
pub(super) async fn bootstrap_global(ctx: &RuntimeCtx, r: &RuntimeRecord) -> crate::Result<()> {
    let db = ctx.dir.join("store.db");
    // A bootstrap cut short by an agent crash may have left its server running.
    let pid_file = ctx.dir.join("bootstrap.pid");
    if let Some(pid) = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
        && runs_store(pid, &ctx.dir)
    {
        terminate(&mut Proc::Adopted(pid), &ctx.dir).await;
    }
    if !db.exists() {
        let mut child = spawn(ctx, r)?;
        if let Some(pid) = child.id() {
            std::fs::write(&pid_file, pid.to_string())?;
        }
        let deadline = tokio::time::Instant::now() + STARTUP_GRACE;
        while !health_check(r.grpc_port).await {
            if tokio::time::Instant::now() > deadline || matches!(child.try_wait(), Ok(Some(_))) {
                let _ = child.kill().await;
                crate::error::bail!("the runtime did not become ready to create its store");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        terminate(&mut Proc::Child(child), &ctx.dir).await;
    }
    enable_global_namespace(&db).await?;
    std::fs::write(ctx.dir.join(GLOBAL_MARKER), b"enabled\n")?;
    let _ = std::fs::remove_file(&pid_file);
    Ok(())
}

/// Turns on `EnableGlobalNamespace` in a stopped runtime's store.
///
/// Temporal prefers the cluster metadata persisted in `cluster_metadata_info` over its config
/// file, and the dev server offers no flag for it. The row for cluster `active` holds a
/// `ClusterMetadata` protobuf; appending field 9 (`enable_global_namespace`, varint) = true,
/// bytes `0x48 0x01`, and bumping `version` makes the next start run in global-namespace mode
/// (a protobuf parser keeps the last occurrence of a field). Idempotent.
pub async fn enable_global_namespace(db: &Path) -> crate::Result<()> {
    use sqlx::{Connection, Row};
    let url = format!("sqlite://{}", db.display());
    let mut conn = sqlx::SqliteConnection::connect(&url)
        .await
        .with_context(|| format!("opening {}", db.display()))?;
    let row = sqlx::query(
        "SELECT data, version FROM cluster_metadata_info WHERE cluster_name = 'active'",
    )
    .fetch_one(&mut conn)
    .await
    .context("reading the cluster metadata")?;
    let mut data: Vec<u8> = row.try_get("data")?;
    let version: i64 = row.try_get("version")?;
    if data.ends_with(&[0x48, 0x01]) {
        return Ok(());
    }
    data.extend_from_slice(&[0x48, 0x01]);
    sqlx::query(
        "UPDATE cluster_metadata_info SET data = ?, version = ? WHERE cluster_name = 'active' AND version = ?",
    )
    .bind(data)
    .bind(version + 1)
    .bind(version)
    .execute(&mut conn)
    .await?;
    conn.close().await?;
    Ok(())
}
