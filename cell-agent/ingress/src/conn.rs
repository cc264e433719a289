//! One client connection, from its first byte to its last: read the ClientHello, pick the route
//! by SNI (waiting while it is on hold), then pass the TLS stream through or terminate it and
//! relay to the upstream. Every refusal is counted here, once.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio::sync::watch;
use tokio::time::{Instant, timeout, timeout_at};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tracing::debug;

use crate::hello::{HelloError, read_client_hello};
use crate::metrics::{FailureReason, IngressMetrics};
use crate::relay::{Counters, Prefixed, pump};
use crate::routes::{Compiled, CompiledRoute, Target};
use crate::tls::classify;

/// A client gets this long to send its ClientHello, and again to finish the handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// An upstream gets this long to accept a TCP connection (and its TLS handshake, if any).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// After refusing, read (and discard) what the client still sends for at most this long, so that
/// it receives the alert or close_notify rather than a TCP reset.
const LINGER: Duration = Duration::from_secs(1);

/// TLS alert records sent in clear before any handshake: fatal `unrecognized_name` (no route)
/// and fatal `internal_error` (the next cell's ingress is unreachable).
const ALERT_UNRECOGNIZED_NAME: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 112];
const ALERT_INTERNAL_ERROR: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 80];

/// Serves one accepted connection to the end.
pub(crate) async fn serve(
    mut tcp: TcpStream,
    mut routes: watch::Receiver<Arc<Compiled>>,
    metrics: IngressMetrics,
) {
    let _ = tcp.set_nodelay(true);
    let hello = match timeout(HANDSHAKE_TIMEOUT, read_client_hello(&mut tcp)).await {
        Ok(Ok(hello)) => hello,
        Ok(Err(HelloError::Silent)) => return,
        Ok(Err(e)) => return refuse(&metrics, FailureReason::TlsError, &e),
        Err(_) => return refuse(&metrics, FailureReason::TlsError, &"no ClientHello in time"),
    };
    let Some(host) = hello.sni else {
        refuse(&metrics, FailureReason::NoSni, &"ClientHello without SNI");
        return alert_and_close(tcp, &ALERT_UNRECOGNIZED_NAME).await;
    };
    tracing::Span::current().record("host", host.as_str());
    let route = match route_for(&host, &mut routes, &metrics).await {
        Routing::Go(route) => route,
        Routing::Unknown => {
            refuse(&metrics, FailureReason::UnknownSni, &"no route");
            return alert_and_close(tcp, &ALERT_UNRECOGNIZED_NAME).await;
        }
        Routing::HoldTimeout(route) => {
            refuse(&metrics, FailureReason::HoldTimeout, &"route still on hold");
            return match &route.server_tls {
                Some(tls) => close_cleanly(tcp, hello.bytes, tls.clone()).await,
                // The edge has no certificate to finish a handshake with.
                None => alert_and_close(tcp, &ALERT_INTERNAL_ERROR).await,
            };
        }
    };
    match &route.target {
        Target::Forward { addr } => forward(tcp, hello.bytes, *addr, &metrics).await,
        Target::Local { .. } | Target::External { .. } => {
            terminate(tcp, hello.bytes, &route, &metrics).await
        }
        // `route_for` never returns a held route; refuse rather than panic should that change.
        Target::Hold { .. } => refuse(&metrics, FailureReason::HoldTimeout, &"hold"),
    }
}

fn refuse(metrics: &IngressMetrics, reason: FailureReason, why: &dyn std::fmt::Display) {
    debug!(%reason, %why, "connection refused");
    metrics.refused(reason);
}

enum Routing {
    Go(Arc<CompiledRoute>),
    Unknown,
    HoldTimeout(Arc<CompiledRoute>),
}

/// The host's route, once it is not on hold. A held connection re-checks on every route update
/// until its first hold's `max_wait` has passed.
async fn route_for(
    host: &str,
    routes: &mut watch::Receiver<Arc<Compiled>>,
    metrics: &IngressMetrics,
) -> Routing {
    let mut hold: Option<(Instant, _)> = None;
    loop {
        let table = routes.borrow_and_update().clone();
        let Some(route) = table.routes.get(host) else {
            return Routing::Unknown;
        };
        let Target::Hold { max_wait } = route.target else {
            return Routing::Go(route.clone());
        };
        let deadline = match &hold {
            Some((deadline, _)) => *deadline,
            None => {
                let deadline = Instant::now() + max_wait;
                hold = Some((deadline, metrics.held_guard()));
                deadline
            }
        };
        match timeout_at(deadline, routes.changed()).await {
            Ok(Ok(())) => continue,
            // Timed out, or the ingress is gone.
            _ => return Routing::HoldTimeout(route.clone()),
        }
    }
}

/// Layer-4 pass-through: the next ingress sees the very bytes the client sent.
async fn forward(
    tcp: TcpStream,
    hello: Vec<u8>,
    addr: std::net::SocketAddr,
    metrics: &IngressMetrics,
) {
    let mut upstream = match connect(addr).await {
        Ok(upstream) => upstream,
        Err(e) => {
            refuse(metrics, FailureReason::UpstreamUnavailable, &e);
            return alert_and_close(tcp, &ALERT_INTERNAL_ERROR).await;
        }
    };
    if let Err(e) = upstream.write_all(&hello).await {
        refuse(metrics, FailureReason::UpstreamUnavailable, &e);
        return alert_and_close(tcp, &ALERT_INTERNAL_ERROR).await;
    }
    metrics.client_to_upstream.inc_by(hello.len() as u64);
    metrics.routed("forward");
    relay(Prefixed::new(Vec::new(), tcp), upstream, metrics).await;
}

/// Terminates the client's mTLS with the route's configuration, then relays to the upstream.
async fn terminate(
    tcp: TcpStream,
    hello: Vec<u8>,
    route: &CompiledRoute,
    metrics: &IngressMetrics,
) {
    let Some(server_tls) = route.server_tls.clone() else {
        return refuse(metrics, FailureReason::TlsError, &"pass-through route");
    };
    let io = Prefixed::new(hello, tcp);
    let acceptor = TlsAcceptor::from(server_tls);
    let mut client = match timeout(HANDSHAKE_TIMEOUT, acceptor.accept(io).into_fallible()).await {
        Ok(Ok(client)) => client,
        Ok(Err((e, io))) => {
            refuse(metrics, classify(&e), &e);
            return linger(io).await;
        }
        Err(_) => {
            return refuse(
                metrics,
                FailureReason::TlsError,
                &"handshake not finished in time",
            );
        }
    };
    let kind = route.target.kind();
    let upstream = match &route.target {
        Target::Local { addr } => connect(*addr).await.map(Upstream::Plain),
        Target::External { addr, .. } => match &route.upstream_tls {
            None => connect(addr.as_str()).await.map(Upstream::Plain),
            Some((config, name)) => {
                // Offer upstream the protocol the client settled on (h2 for Temporal SDKs).
                let mut config = config.clone();
                if let Some(alpn) = client.get_ref().1.alpn_protocol() {
                    Arc::make_mut(&mut config).alpn_protocols = vec![alpn.to_vec()];
                }
                connect_tls(addr, TlsConnector::from(config), name.clone())
                    .await
                    .map(|s| Upstream::Tls(Box::new(s)))
            }
        },
        _ => Err(io::Error::other("not a terminating target")),
    };
    let upstream = match upstream {
        Ok(upstream) => upstream,
        Err(e) => {
            refuse(metrics, FailureReason::UpstreamUnavailable, &e);
            let _ = timeout(LINGER, client.shutdown()).await;
            return;
        }
    };
    metrics.routed(kind);
    match upstream {
        Upstream::Plain(up) => relay(client, up, metrics).await,
        Upstream::Tls(up) => relay(client, *up, metrics).await,
    }
}

enum Upstream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

async fn relay<C, U>(mut client: C, mut upstream: U, metrics: &IngressMetrics)
where
    C: AsyncBufRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let counters = Counters {
        client_to_upstream: &metrics.client_to_upstream,
        upstream_to_client: &metrics.upstream_to_client,
    };
    match pump(&mut client, &mut upstream, counters).await {
        Ok((up, down)) => debug!(up, down, "connection closed"),
        Err(e) => debug!(error = %e, "connection ended with an error"),
    }
}

async fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
    let tcp = timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

async fn connect_tls(
    addr: &str,
    connector: TlsConnector,
    name: rustls_pki_types::ServerName<'static>,
) -> io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = connect(addr).await?;
    timeout(CONNECT_TIMEOUT, connector.connect(name, tcp))
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?
}

/// Refuses before any handshake with one plaintext alert record.
async fn alert_and_close(mut tcp: TcpStream, alert: &[u8]) {
    if tcp.write_all(alert).await.is_ok() {
        linger(tcp).await;
    }
}

/// Refuses a held connection without an error on the client's side: complete the handshake,
/// then close_notify.
async fn close_cleanly(tcp: TcpStream, hello: Vec<u8>, server_tls: Arc<rustls::ServerConfig>) {
    let acceptor = TlsAcceptor::from(server_tls);
    let io = Prefixed::new(hello, tcp);
    match timeout(HANDSHAKE_TIMEOUT, acceptor.accept(io).into_fallible()).await {
        Ok(Ok(tls)) => linger(tls).await,
        Ok(Err((_, io))) => linger(io).await,
        Err(_) => {}
    }
}

/// Half-closes (for TLS: close_notify), then discards what the client still sends until it closes too (or `LINGER`).
async fn linger<S: AsyncRead + AsyncWrite + Unpin>(mut io: S) {
    let _ = timeout(LINGER, async {
        io.shutdown().await?;
        let mut sink = [0u8; 1024];
        while io.read(&mut sink).await? > 0 {}
        Ok::<_, io::Error>(())
    })
    .await;
}
