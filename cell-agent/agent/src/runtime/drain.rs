//! Decommissioning: a cell that is being decommissioned runs nothing and keeps nothing. Its
//! runtimes go as any undesired runtime does (the desired state lists none); this stops the
//! warm runtimes and deletes the spare stores, including what an earlier agent left, and tells
//! when `ns/` is empty.

use std::sync::atomic::Ordering;

use super::{Supervisor, linked, remove_runtime_dir};

impl Supervisor {
    /// Begins the decommission: from now on no warm runtime or spare store is kept, and every
    /// [`Supervisor::apply`] sweeps what is left of them.
    pub fn decommission(&self) {
        if !self.retiring.swap(true, Ordering::SeqCst) {
            tracing::info!(
                "the cell is decommissioned: stopping its warm runtimes, deleting its spare stores"
            );
        }
    }

    pub(super) fn is_retiring(&self) -> bool {
        self.retiring.load(Ordering::SeqCst)
    }

    /// Whether the decommission has finished: no runtime is supervised, none is being started,
    /// and `ns/` is empty (every process stopped, every store deleted).
    pub fn drained(&self) -> bool {
        self.is_retiring()
            && self.runtimes.lock().expect("supervisor lock").is_empty()
            && self.factory.warm.ready() == 0
            && !self.factory.warm.building()
            && !self.preparing_spare.load(Ordering::SeqCst)
            && std::fs::read_dir(&self.root).map_or(true, |mut entries| entries.next().is_none())
    }

    /// Stops the warm runtimes and, once nothing is being started, removes every pool folder
    /// under `ns/` that no runtime links to: warm runtimes (stopping their servers), spare
    /// stores, a spare being built, an interrupted claim. Runtimes' own folders are left to
    /// their supervision, which removes them when they are no longer desired.
    pub(super) fn drain_pools(&self) {
        self.factory.warm.close();
        if self.factory.warm.building()
            || self.preparing_spare.load(Ordering::SeqCst)
            || self.sweeping.swap(true, Ordering::SeqCst)
        {
            return;
        }
        let (root, sweeping) = (self.root.clone(), self.sweeping.clone());
        tokio::spawn(async move {
            let entries: Vec<_> = std::fs::read_dir(&root)
                .map(|e| e.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            let owned: Vec<_> = entries.iter().filter_map(|p| linked(p)).collect();
            for dir in entries {
                let pool = dir
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'));
                if pool && !owned.contains(&dir) {
                    remove_runtime_dir(&dir).await;
                }
            }
            sweeping.store(false, Ordering::SeqCst);
        });
    }
}
