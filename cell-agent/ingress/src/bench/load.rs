//! The benchmark's upstreams (an h2c server, a TCP sink), its ingress, and its clients.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tessera_pki::{CertificateAuthority, Usage, certs_from_pem, key_from_pem, roots_from_pem};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{BenchConfig, bench_err};
use crate::{Ingress, IngressError, IngressMetrics, Route, RouteTable, ServerCert, Target};

const BODY: [u8; 64] = [b'x'; 64];
const H2_HOST: &str = "bench.acct.tessera.localhost";
const SINK_HOST: &str = "sink.acct.tessera.localhost";
/// Hosts whose routes forward the client's TLS untouched to the direct-TLS upstreams.
const H2_FORWARD_HOST: &str = "bench-fwd.acct.tessera.localhost";
const SINK_FORWARD_HOST: &str = "sink-fwd.acct.tessera.localhost";

/// Everything both paths talk to.
pub(super) struct Fixture {
    h2_upstream: SocketAddr,
    sink: SocketAddr,
    /// The same upstreams terminating the same mTLS themselves (the "direct TLS" baseline).
    h2_tls_upstream: SocketAddr,
    sink_tls: SocketAddr,
    ingress: Ingress,
    ingress_thread: std::thread::JoinHandle<()>,
    /// An edge in front of the ingress, as `tessera-edge` serves: pass-through routes only.
    edge: Ingress,
    client_tls: TlsConnector,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

impl Fixture {
    /// Upstreams on the caller's runtime; the ingress on a runtime of its own with
    /// `ingress_threads` workers, as it runs in a cell agent process.
    pub async fn start(ingress_threads: usize) -> Result<Self, IngressError> {
        let cancel = CancellationToken::new();
        let tasks = TaskTracker::new();
        let h2 = listen().await?;
        let sink = listen().await?;
        let (h2_upstream, sink_addr) = (local(&h2)?, local(&sink)?);
        tasks.spawn(serve_h2(h2, None, cancel.clone(), tasks.clone()));
        tasks.spawn(serve_sink(sink, None, cancel.clone(), tasks.clone()));

        let days = chrono::Duration::days(1);
        let pki = |e| bench_err("certificates", e);
        let server_ca = CertificateAuthority::generate_root("bench servers", days).map_err(pki)?;
        let server = server_ca
            .issue(
                "ingress",
                &["*.acct.tessera.localhost".into()],
                Usage::Server,
                days,
            )
            .map_err(pki)?;
        let tenant_ca = CertificateAuthority::generate_root("bench tenant", days).map_err(pki)?;
        let client = tenant_ca
            .issue("worker", &[], Usage::Client, days)
            .map_err(pki)?;

        let h2_tls = listen().await?;
        let sink_tls = listen().await?;
        let (h2_tls_upstream, sink_tls_addr) = (local(&h2_tls)?, local(&sink_tls)?);
        let route = |target| Route {
            accepted_ca_pem: tenant_ca.cert_pem.clone(),
            target,
        };
        let local = |addr| route(Target::Local { addr });
        let forward = |addr| route(Target::Forward { addr });
        let table = RouteTable {
            routes: [
                (H2_HOST.to_string(), local(h2_upstream)),
                (SINK_HOST.to_string(), local(sink_addr)),
                (H2_FORWARD_HOST.to_string(), forward(h2_tls_upstream)),
                (SINK_FORWARD_HOST.to_string(), forward(sink_tls_addr)),
            ]
            .into_iter()
            .collect(),
            server_certs: vec![ServerCert {
                chain_pem: server.chain_pem,
                key_pem: server.key_pem,
            }],
        };
        // The baseline servers speak the ingress's TLS: same certificate, same client-certificate
        // check, same ALPN and cipher preference.
        let upstream_tls = tokio_rustls::TlsAcceptor::from(crate::tls::baseline_server_config(
            &table.server_certs[0],
            &tenant_ca.cert_pem,
        )?);
        tasks.spawn(serve_h2(
            h2_tls,
            Some(upstream_tls.clone()),
            cancel.clone(),
            tasks.clone(),
        ));
        tasks.spawn(serve_sink(
            sink_tls,
            Some(upstream_tls),
            cancel.clone(),
            tasks.clone(),
        ));
        let metrics = IngressMetrics::new(&prometheus::Registry::new())
            .map_err(|e| bench_err("metrics", e))?;
        let (ingress, ingress_thread) =
            spawn_ingress(table, metrics, cancel.clone(), ingress_threads).await?;
        let edge_routes = RouteTable {
            routes: [(
                H2_HOST.to_string(),
                Route {
                    accepted_ca_pem: String::new(),
                    target: Target::Forward {
                        addr: ingress.local_addr(),
                    },
                },
            )]
            .into_iter()
            .collect(),
            server_certs: Vec::new(),
        };
        let edge = Ingress::bind(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            edge_routes,
            IngressMetrics::new(&prometheus::Registry::new())
                .map_err(|e| bench_err("metrics", e))?,
            cancel.clone(),
        )
        .await?;

        let mut client_tls = ClientConfig::builder_with_provider(crate::tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| bench_err("client TLS", e))?
            .with_root_certificates(roots_from_pem(&server_ca.cert_pem).map_err(pki)?)
            .with_client_auth_cert(
                certs_from_pem(&client.chain_pem).map_err(pki)?,
                key_from_pem(&client.key_pem).map_err(pki)?,
            )
            .map_err(|e| bench_err("client TLS", e))?;
        client_tls.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Self {
            h2_upstream,
            sink: sink_addr,
            h2_tls_upstream,
            sink_tls: sink_tls_addr,
            ingress,
            ingress_thread,
            edge,
            client_tls: TlsConnector::from(Arc::new(client_tls)),
            cancel,
            tasks,
        })
    }

    pub async fn stop(self) {
        self.cancel.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        self.ingress.stopped().await;
        self.edge.stopped().await;
        let thread = self.ingress_thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }

    pub async fn h2_direct(&self) -> Result<SendRequest<Full<Bytes>>, IngressError> {
        h2_handshake(tcp(self.h2_upstream).await?, &self.tasks).await
    }

    pub async fn h2_via_ingress(&self) -> Result<SendRequest<Full<Bytes>>, IngressError> {
        h2_handshake(
            self.tls(self.ingress.local_addr(), H2_HOST).await?,
            &self.tasks,
        )
        .await
    }

    /// Through an edge to the ingress, as namespace endpoints are reached.
    pub async fn h2_via_edge(&self) -> Result<SendRequest<Full<Bytes>>, IngressError> {
        h2_handshake(
            self.tls(self.edge.local_addr(), H2_HOST).await?,
            &self.tasks,
        )
        .await
    }

    /// Through the ingress's forward route: TLS passed through to the direct-TLS upstream.
    pub async fn h2_via_forward(&self) -> Result<SendRequest<Full<Bytes>>, IngressError> {
        h2_handshake(
            self.tls(self.ingress.local_addr(), H2_FORWARD_HOST).await?,
            &self.tasks,
        )
        .await
    }

    pub async fn sink_via_forward(
        &self,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, IngressError> {
        self.tls(self.ingress.local_addr(), SINK_FORWARD_HOST).await
    }

    pub async fn h2_direct_tls(&self) -> Result<SendRequest<Full<Bytes>>, IngressError> {
        h2_handshake(self.tls(self.h2_tls_upstream, H2_HOST).await?, &self.tasks).await
    }

    pub async fn sink_direct_tls(
        &self,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, IngressError> {
        self.tls(self.sink_tls, SINK_HOST).await
    }

    pub async fn sink_direct(&self) -> Result<TcpStream, IngressError> {
        tcp(self.sink).await
    }

    pub async fn sink_via_ingress(
        &self,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, IngressError> {
        self.tls(self.ingress.local_addr(), SINK_HOST).await
    }

    /// The client's mTLS connection to `addr` (the ingress, or a baseline server).
    async fn tls(
        &self,
        addr: SocketAddr,
        host: &'static str,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, IngressError> {
        let tcp = tcp(addr).await?;
        let name = ServerName::try_from(host).map_err(|e| bench_err("server name", e))?;
        self.client_tls
            .connect(name, tcp)
            .await
            .map_err(|e| bench_err("TLS handshake", e))
    }
}

/// Thread names of the ingress's runtime, for [`ingress_cpu`].
const INGRESS_THREADS: &str = "ingress-";

/// Runs the ingress on a runtime of its own until `cancel`.
async fn spawn_ingress(
    table: RouteTable,
    metrics: IngressMetrics,
    cancel: CancellationToken,
    threads: usize,
) -> Result<(Ingress, std::thread::JoinHandle<()>), IngressError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let thread = std::thread::Builder::new()
        .name(format!("{INGRESS_THREADS}main"))
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads.max(1))
                .thread_name(format!("{INGRESS_THREADS}worker"))
                .enable_all()
                .build();
            let runtime = match runtime {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = tx.send(Err(bench_err("ingress runtime", e)));
                    return;
                }
            };
            runtime.block_on(async move {
                let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
                match Ingress::bind(loopback, table, metrics, cancel.clone()).await {
                    Ok(ingress) => {
                        let _ = tx.send(Ok(ingress.clone()));
                        cancel.cancelled().await;
                        ingress.stopped().await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            });
        })
        .map_err(|e| bench_err("ingress thread", e))?;
    let ingress = rx.await.map_err(|e| bench_err("ingress thread", e))??;
    Ok((ingress, thread))
}

/// CPU time (user + system) the ingress's threads have used so far, from /proc (Linux; zero
/// elsewhere). Resolution: one clock tick (10 ms).
pub(super) fn ingress_cpu() -> Duration {
    const TICK: Duration = Duration::from_millis(10);
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    let mut ticks = 0u32;
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // "tid (name) state ..." where the name may hold spaces; utime and stime are the 14th
        // and 15th fields, the 12th and 13th after the name.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        if !head.contains(&format!("({INGRESS_THREADS}")) {
            continue;
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        for i in [11, 12] {
            ticks += fields
                .get(i)
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(0);
        }
    }
    TICK * ticks
}

async fn listen() -> Result<TcpListener, IngressError> {
    TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| bench_err("listen", e))
}

fn local(listener: &TcpListener) -> Result<SocketAddr, IngressError> {
    listener.local_addr().map_err(|e| bench_err("listen", e))
}

async fn tcp(addr: SocketAddr) -> Result<TcpStream, IngressError> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| bench_err("connect", e))?;
    tcp.set_nodelay(true).map_err(|e| bench_err("connect", e))?;
    Ok(tcp)
}

/// The stand-in for a Temporal frontend: HTTP/2 (h2c, or h2 over TLS when `tls` is given),
/// 64 bytes back for every request.
async fn serve_h2(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    cancel: CancellationToken,
    tasks: TaskTracker,
) {
    while let Some(Ok((tcp, _))) = cancel.run_until_cancelled(listener.accept()).await {
        let _ = tcp.set_nodelay(true);
        let cancel = cancel.clone();
        let tls = tls.clone();
        tasks.spawn(async move {
            match tls {
                None => serve_h2_conn(tcp, cancel).await,
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(tcp).await {
                        serve_h2_conn(stream, cancel).await;
                    }
                }
            }
        });
    }
}

async fn serve_h2_conn<S>(io: S, cancel: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
        let _ = req.into_body().collect().await;
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(&BODY))))
    });
    let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(io), service);
    cancel.run_until_cancelled(conn).await;
}

/// Reads until EOF, then answers with the number of bytes it read (8 bytes, big endian);
/// over TLS when `tls` is given.
async fn serve_sink(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    cancel: CancellationToken,
    tasks: TaskTracker,
) {
    while let Some(Ok((tcp, _))) = cancel.run_until_cancelled(listener.accept()).await {
        let cancel = cancel.clone();
        let tls = tls.clone();
        tasks.spawn(async move {
            let _: Option<std::io::Result<()>> = match tls {
                None => cancel.run_until_cancelled(drain(tcp)).await,
                Some(acceptor) => match acceptor.accept(tcp).await {
                    Ok(stream) => cancel.run_until_cancelled(drain(stream)).await,
                    Err(_) => None,
                },
            };
        });
    }
}

async fn drain<S: AsyncRead + AsyncWrite + Unpin>(mut io: S) -> std::io::Result<()> {
    let mut buf = vec![0u8; 256 << 10];
    let mut total = 0u64;
    loop {
        let n = io.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    io.write_all(&total.to_be_bytes()).await?;
    io.shutdown().await
}

async fn h2_handshake<S>(
    io: S,
    tasks: &TaskTracker,
) -> Result<SendRequest<Full<Bytes>>, IngressError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
            .await
            .map_err(|e| bench_err("HTTP/2 handshake", e))?;
    // Ends when the last SendRequest is dropped.
    tasks.spawn(conn);
    Ok(send)
}

async fn request(send: &mut SendRequest<Full<Bytes>>) -> Result<(), IngressError> {
    let req = Request::post(format!("http://{H2_HOST}/echo"))
        .body(Full::new(Bytes::from_static(&BODY)))
        .map_err(|e| bench_err("request", e))?;
    let resp = send
        .send_request(req)
        .await
        .map_err(|e| bench_err("request", e))?;
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| bench_err("response", e))?
        .to_bytes();
    if body.len() != BODY.len() {
        return Err(bench_err(
            "response",
            format!("{} bytes instead of 64", body.len()),
        ));
    }
    Ok(())
}

/// Requests per second with many concurrent streams, the number of requests timed, and the CPU
/// time the ingress used meanwhile.
pub(super) async fn h2_throughput<F, Fut>(
    config: &BenchConfig,
    connect: F,
) -> Result<(f64, u64, Duration), IngressError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<SendRequest<Full<Bytes>>, IngressError>>,
{
    let mut conns = Vec::with_capacity(config.connections);
    for _ in 0..config.connections.max(1) {
        let mut send = connect().await?;
        for _ in 0..config.warmup_requests {
            request(&mut send).await?;
        }
        conns.push(send);
    }
    let done = Arc::new(AtomicU64::new(0));
    let cpu = ingress_cpu();
    let start = Instant::now();
    let deadline = start + config.duration;
    let mut workers = tokio::task::JoinSet::new();
    for i in 0..config.streams.max(1) {
        let mut send = conns[i % conns.len()].clone();
        let done = done.clone();
        workers.spawn(async move {
            while Instant::now() < deadline {
                request(&mut send).await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, IngressError>(())
        });
    }
    while let Some(joined) = workers.join_next().await {
        joined.map_err(|e| bench_err("load task", e))??;
    }
    let elapsed = start.elapsed();
    let cpu = ingress_cpu().saturating_sub(cpu);
    let requests = done.load(Ordering::Relaxed);
    Ok((requests as f64 / elapsed.as_secs_f64(), requests, cpu))
}

/// Median and 99th percentile of sequential requests on each path, the paths taking turns
/// request by request so that all see the same machine at the same moments.
pub(super) async fn h2_latency<const N: usize>(
    config: &BenchConfig,
    mut paths: [SendRequest<Full<Bytes>>; N],
) -> Result<[(Duration, Duration); N], IngressError> {
    for _ in 0..config.warmup_requests {
        for p in paths.iter_mut() {
            request(p).await?;
        }
    }
    let n = config.latency_requests.max(1);
    let mut samples: [Vec<Duration>; N] = std::array::from_fn(|_| Vec::with_capacity(n));
    for _ in 0..n {
        for (p, s) in paths.iter_mut().zip(samples.iter_mut()) {
            let t = Instant::now();
            request(p).await?;
            s.push(t.elapsed());
        }
    }
    Ok(samples.map(percentiles))
}

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    (at(0.50), at(0.99))
}

/// Writes `stream_bytes` and waits for the sink's count: MB/s (10^6 bytes) end to end.
pub(super) async fn stream<S>(
    config: &BenchConfig,
    mut io: S,
) -> Result<(f64, Duration), IngressError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let chunk = vec![0xa5u8; config.chunk_bytes.max(1)];
    let cpu = ingress_cpu();
    let start = Instant::now();
    let mut sent = 0u64;
    let io_err = |e| bench_err("stream", e);
    while sent < config.stream_bytes {
        let n = (config.stream_bytes - sent).min(chunk.len() as u64) as usize;
        io.write_all(&chunk[..n]).await.map_err(io_err)?;
        sent += n as u64;
    }
    io.shutdown().await.map_err(io_err)?;
    let mut ack = [0u8; 8];
    io.read_exact(&mut ack).await.map_err(io_err)?;
    let elapsed = start.elapsed().max(Duration::from_micros(1));
    let cpu = ingress_cpu().saturating_sub(cpu);
    let received = u64::from_be_bytes(ack);
    if received != sent {
        return Err(bench_err(
            "stream",
            format!("sink got {received} of {sent} bytes"),
        ));
    }
    Ok((sent as f64 / 1e6 / elapsed.as_secs_f64(), cpu))
}
