//! How runtimes start: how many at once, and [`start`], which gives a runtime a warm server,
//! a spare store or a new store in global-namespace mode.
//!
//! Starting a Temporal server costs about 0.75 s of CPU. When ten namespaces are created
//! together on a two-core host, ten servers started side by side share the cores and all
//! become ready at the end, after about four seconds; started two at a time they become ready
//! in pairs, so the first tenants wait about one second instead of four and the last no
//! longer. Tenants' runtimes go first: the warm pool and the spare stores (background work)
//! only start a server while no tenant's runtime is waiting to start.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::Utc;
use tessera_infra::process::free_port;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::process::{Proc, check_version, port_free, spawn_recorded};
use super::stores::{bootstrap_global, claim_spare, global_marker};
use super::{RuntimeCtx, RuntimeRecord};
use crate::error::Context;

pub(crate) struct Starts {
    permits: Arc<Semaphore>,
    /// Tenants' runtimes waiting for a permit or holding one.
    tenants: AtomicUsize,
}

/// The right to start one server; give it back once the server serves (or failed to).
pub(crate) struct StartPermit {
    _permit: OwnedSemaphorePermit,
    tenant: Option<Arc<Starts>>,
}

impl Drop for StartPermit {
    fn drop(&mut self) {
        if let Some(s) = &self.tenant {
            s.tenants.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Starts {
    /// One start per core at a time.
    pub(crate) fn per_core() -> Arc<Self> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::new(cores)
    }

    pub(crate) fn new(at_once: usize) -> Arc<Self> {
        Arc::new(Self {
            permits: Arc::new(Semaphore::new(at_once.max(1))),
            tenants: AtomicUsize::new(0),
        })
    }

    /// A permit for a tenant's runtime (first come, first served).
    pub(crate) async fn tenant(self: &Arc<Self>) -> StartPermit {
        self.tenants.fetch_add(1, Ordering::SeqCst);
        // Counted from here on: the drop guard below undoes the count if this future is dropped.
        struct Waiting<'a>(&'a Starts, bool);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                if !self.1 {
                    self.0.tenants.fetch_sub(1, Ordering::SeqCst);
                }
            }
        }
        let mut waiting = Waiting(self, false);
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("the start semaphore is never closed");
        waiting.1 = true;
        StartPermit {
            _permit: permit,
            tenant: Some(self.clone()),
        }
    }

    /// A permit for background work, granted only while no tenant's runtime waits to start.
    pub(crate) async fn background(&self) -> StartPermit {
        loop {
            if self.tenants.load(Ordering::SeqCst) == 0
                && let Ok(permit) = self.permits.clone().try_acquire_owned()
            {
                if self.tenants.load(Ordering::SeqCst) == 0 {
                    return StartPermit {
                        _permit: permit,
                        tenant: None,
                    };
                }
                drop(permit);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Tenants' runtimes waiting to start or starting now.
    #[cfg(test)]
    pub(crate) fn tenants(&self) -> usize {
        self.tenants.load(Ordering::SeqCst)
    }
}

/// Starts the runtime: claims a warm one for a new runtime when it can, else starts a server
/// (bootstrapping a new store into global-namespace mode first) once a start permit is free;
/// the permit is returned to be held until the server serves.
pub(super) async fn start(
    ctx: &RuntimeCtx,
    previous: Option<&RuntimeRecord>,
) -> crate::Result<(Proc, RuntimeRecord, Option<StartPermit>)> {
    if previous.is_none()
        && let Some((proc, record)) = ctx.warm.claim(ctx).await
    {
        return Ok((proc, record, None));
    }
    let permit = tokio::select! {
        permit = ctx.starts.tenant() => permit,
        _ = ctx.remove.cancelled() => crate::error::bail!("removed before it started"),
        _ = ctx.restart.cancelled() => crate::error::bail!("replaced before it started"),
    };
    std::fs::create_dir_all(&ctx.dir).with_context(|| format!("creating {}", ctx.dir.display()))?;
    let keep = |p: Option<u16>| -> crate::Result<u16> {
        match p {
            Some(p) if port_free(p) => Ok(p),
            _ => Ok(free_port()?),
        }
    };
    let mut record = RuntimeRecord {
        pid: 0,
        grpc_port: keep(previous.map(|r| r.grpc_port))?,
        http_port: keep(previous.map(|r| r.http_port))?,
        metrics_port: keep(previous.map(|r| r.metrics_port))?,
        started_at: Utc::now(),
        spec: ctx.spec.clone(),
        // Counted per release: restarts on an earlier release say nothing about this one.
        restarts: previous
            .filter(|r| r.release == ctx.release_version())
            .map_or(0, |r| r.restarts),
        release: ctx.release_version(),
    };
    if let Some(release) = &ctx.release {
        check_version(&ctx.binary(), &release.runtime.version).await?;
    }
    if ctx.spec.global_namespace
        && !global_marker(&ctx.dir)
        && !ctx.dir.join("store.db").exists()
        && ctx
            .dir
            .parent()
            .is_some_and(|root| claim_spare(root, &ctx.dir))
    {
        tracing::info!(runtime = %ctx.id, "using the spare store (already in global-namespace mode)");
    }
    if ctx.spec.global_namespace && !global_marker(&ctx.dir) {
        bootstrap_global(ctx, &record).await?;
    }
    let child = spawn_recorded(ctx, &mut record)?;
    Ok((Proc::Child(child), record, Some(permit)))
}

impl RuntimeRecord {
    /// A record for a new server of `ctx`: free ports, not started yet.
    pub(super) fn fresh(ctx: &RuntimeCtx) -> std::io::Result<Self> {
        Ok(Self {
            pid: 0,
            grpc_port: free_port()?,
            http_port: free_port()?,
            metrics_port: free_port()?,
            started_at: Utc::now(),
            spec: ctx.spec.clone(),
            restarts: 0,
            release: ctx.release_version(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn at_most_n_start_at_once_and_tenants_go_first() {
        let starts = Starts::new(2);
        let a = starts.tenant().await;
        let _b = starts.tenant().await;
        assert_eq!(starts.tenants(), 2);
        // A third tenant waits for a permit…
        let third = tokio::spawn({
            let s = starts.clone();
            async move { s.tenant().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!third.is_finished());
        // …and background work waits while any tenant waits or starts.
        let bg = tokio::spawn({
            let s = starts.clone();
            async move { s.background().await }
        });
        drop(a);
        let c = third.await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !bg.is_finished(),
            "background started while tenants were starting"
        );
        drop(c);
        drop(_b);
        let _bg = tokio::time::timeout(Duration::from_secs(2), bg)
            .await
            .expect("background work starts once no tenant waits")
            .unwrap();
        assert_eq!(starts.tenants(), 0);
    }

    #[tokio::test]
    async fn a_tenant_that_gives_up_waiting_is_no_longer_counted() {
        let starts = Starts::new(1);
        let held = starts.tenant().await;
        let waiting = tokio::time::timeout(Duration::from_millis(50), starts.tenant()).await;
        assert!(waiting.is_err());
        drop(held);
        assert_eq!(starts.tenants(), 0);
    }
}
