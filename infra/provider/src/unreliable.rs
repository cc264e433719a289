//! A provider that fails on purpose, wrapped around a real one (neon's `UnreliableWrapper`).

use std::sync::atomic::{AtomicU32, Ordering};

use crate::{CellDescription, CellProvider, CellSpec, ProviderError};

/// Fails the first `failures` calls of each kind with a retryable error, then delegates.
pub struct Unreliable<P> {
    inner: P,
    failures: u32,
    provisions: AtomicU32,
    destroys: AtomicU32,
}

impl<P> Unreliable<P> {
    pub fn new(inner: P, failures: u32) -> Self {
        Self {
            inner,
            failures,
            provisions: AtomicU32::new(0),
            destroys: AtomicU32::new(0),
        }
    }

    fn fail(&self, counter: &AtomicU32, what: &str) -> Result<(), ProviderError> {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        if n < self.failures {
            return Err(ProviderError::Unavailable(format!(
                "injected failure {} of {} ({what})",
                n + 1,
                self.failures
            )));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl<P: CellProvider> CellProvider for Unreliable<P> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn provision(&self, spec: &CellSpec) -> Result<CellDescription, ProviderError> {
        self.fail(&self.provisions, "provision")?;
        self.inner.provision(spec).await
    }

    async fn describe(&self, cell_id: &str) -> Result<CellDescription, ProviderError> {
        self.inner.describe(cell_id).await
    }

    async fn destroy(&self, cell_id: &str) -> Result<(), ProviderError> {
        self.fail(&self.destroys, "destroy")?;
        self.inner.destroy(cell_id).await
    }
}
