//! The ingress handle: the listener, its accept loop, and the route table it swaps on update.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, info, info_span, warn};

use crate::IngressError;
use crate::conn;
use crate::metrics::IngressMetrics;
use crate::routes::{Compiled, Rejected, RouteTable};

/// A running ingress. Its tasks (the accept loop and one per connection) stop when the
/// cancellation token given to [`Ingress::bind`] is cancelled; [`Ingress::stopped`] waits for them.
#[derive(Clone, Debug)]
pub struct Ingress {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    local_addr: SocketAddr,
    /// The current table; connections waiting on a held route watch it for changes.
    routes: watch::Sender<Arc<Compiled>>,
    metrics: IngressMetrics,
    /// Open connections on this ingress (the gauge may be shared by several ingresses).
    active: Arc<AtomicI64>,
    tasks: TaskTracker,
}

impl Ingress {
    /// Checks the routes, binds `addr` and starts accepting connections.
    pub async fn bind(
        addr: SocketAddr,
        routes: RouteTable,
        metrics: IngressMetrics,
        cancel: CancellationToken,
    ) -> Result<Ingress, IngressError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| IngressError::Bind { addr, source })?;
        Self::serve(addr, listener, routes, metrics, cancel)
    }

    /// As [`Ingress::bind`], on a port that other processes may bind too (`SO_REUSEPORT`): the
    /// kernel spreads new connections over every listener, and one that stops leaves the others
    /// serving. The edge instances of one host share their address this way.
    pub async fn bind_shared(
        addr: SocketAddr,
        routes: RouteTable,
        metrics: IngressMetrics,
        cancel: CancellationToken,
    ) -> Result<Ingress, IngressError> {
        let bind = || {
            let socket = match addr {
                SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
                SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
            };
            socket.set_reuseaddr(true)?;
            socket.set_reuseport(true)?;
            socket.bind(addr)?;
            socket.listen(1024)
        };
        let listener = bind().map_err(|source| IngressError::Bind { addr, source })?;
        Self::serve(addr, listener, routes, metrics, cancel)
    }

    fn serve(
        addr: SocketAddr,
        listener: TcpListener,
        routes: RouteTable,
        metrics: IngressMetrics,
        cancel: CancellationToken,
    ) -> Result<Ingress, IngressError> {
        let local_addr = listener
            .local_addr()
            .map_err(|source| IngressError::Bind { addr, source })?;
        // Checked against the real port, to catch a route forwarding to this very ingress.
        let compiled = Compiled::new(routes, local_addr);
        log_rejected(&compiled.rejected);
        let (routes, _) = watch::channel(Arc::new(compiled));
        let tasks = TaskTracker::new();
        let inner = Arc::new(Inner {
            local_addr,
            routes,
            metrics,
            active: Arc::new(AtomicI64::new(0)),
            tasks: tasks.clone(),
        });
        let span = info_span!("ingress", addr = %local_addr);
        tasks.spawn(accept_loop(listener, inner.clone(), cancel).instrument(span));
        tasks.close();
        info!(addr = %local_addr, "ingress listening");
        Ok(Ingress { inner })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// Replaces the route table, one route at a time: a route (or server certificate) that does
    /// not load is left out and returned, and every other route takes effect. Established
    /// connections keep their upstream; connections waiting on a held route re-check theirs at
    /// once.
    pub fn update(&self, routes: RouteTable) -> Rejected {
        let compiled = Compiled::new(routes, self.inner.local_addr);
        log_rejected(&compiled.rejected);
        let rejected = compiled.rejected.clone();
        self.inner.routes.send_replace(Arc::new(compiled));
        self.inner.metrics.route_updated();
        rejected
    }

    /// What of the table in force is left out, and why.
    pub fn rejected(&self) -> Rejected {
        self.inner.routes.borrow().rejected.clone()
    }

    /// The table in force.
    pub fn routes(&self) -> Arc<RouteTable> {
        self.inner.routes.borrow().spec.clone()
    }

    /// TCP connections open on this ingress, from accept to close.
    pub fn active_connections(&self) -> i64 {
        self.inner.active.load(Ordering::Relaxed)
    }

    /// Waits until the accept loop and every connection task have ended (after cancellation).
    pub async fn stopped(&self) {
        self.inner.tasks.wait().await;
    }
}

fn log_rejected(rejected: &Rejected) {
    for (host, reason) in &rejected.routes {
        warn!(%host, %reason, "route left out: it does not load");
    }
    for (index, reason) in &rejected.server_certs {
        warn!(index, %reason, "server certificate left out: it does not load");
    }
}

async fn accept_loop(listener: TcpListener, inner: Arc<Inner>, cancel: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                warn!(error = %e, "accept failed");
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(50)) => continue,
                }
            }
        };
        let routes = inner.routes.subscribe();
        let metrics = inner.metrics.clone();
        let active = ActiveGuard::new(&inner);
        let cancel = cancel.clone();
        let span = info_span!("ingress_conn", %peer, host = tracing::field::Empty);
        inner.tasks.spawn(
            async move {
                let _active = active;
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = conn::serve(tcp, routes, metrics) => {}
                }
            }
            .instrument(span),
        );
    }
    info!("ingress stopped accepting");
}

/// Counts a connection as active on this ingress and in the shared gauge until dropped.
struct ActiveGuard {
    active: Arc<AtomicI64>,
    _gauge: crate::metrics::GaugeGuard,
}

impl ActiveGuard {
    fn new(inner: &Inner) -> Self {
        inner.active.fetch_add(1, Ordering::Relaxed);
        Self {
            active: inner.active.clone(),
            _gauge: inner.metrics.active_guard(),
        }
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.active.fetch_sub(1, Ordering::Relaxed);
    }
}
