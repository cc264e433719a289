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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::InfraState;

    /// Counts the calls that reach it.
    #[derive(Default)]
    struct Counting(AtomicU32);

    #[async_trait::async_trait]
    impl CellProvider for Counting {
        fn name(&self) -> &'static str {
            "counting"
        }
        async fn provision(&self, spec: &CellSpec) -> Result<CellDescription, ProviderError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            self.describe(&spec.cell_id).await
        }
        async fn describe(&self, cell_id: &str) -> Result<CellDescription, ProviderError> {
            Ok(CellDescription {
                cell_id: cell_id.into(),
                state: InfraState::Running,
                details: BTreeMap::new(),
            })
        }
        async fn destroy(&self, _: &str) -> Result<(), ProviderError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    fn spec() -> CellSpec {
        CellSpec {
            cell_id: "c1".into(),
            region: "r".into(),
            ring: 0,
            control_plane: "https://127.0.0.1:1".into(),
            join_token: None,
            config: serde_json::json!({}),
        }
    }

    #[tokio::test]
    async fn fails_the_first_calls_with_retryable_errors_then_delegates() {
        let p = Unreliable::new(Counting::default(), 2);
        for _ in 0..2 {
            let e = p.provision(&spec()).await.unwrap_err();
            assert!(e.is_retryable(), "{e}");
        }
        assert_eq!(
            p.inner.0.load(Ordering::SeqCst),
            0,
            "nothing reached the provider"
        );
        assert_eq!(
            p.provision(&spec()).await.unwrap().state,
            InfraState::Running
        );
        assert!(p.destroy("c1").await.is_err());
        assert!(p.destroy("c1").await.is_err());
        p.destroy("c1").await.unwrap();
        assert_eq!(p.inner.0.load(Ordering::SeqCst), 2);
        assert!(!ProviderError::InvalidConfig("x".into()).is_retryable());
    }
}
