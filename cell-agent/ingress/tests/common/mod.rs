//! Shared fixtures for the ingress component tests: a PKI, echo upstreams that count their
//! connections, TLS clients, and polling with a deadline.
// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rustls::client::ResolvesClientCert;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, ServerConfig, SignatureScheme};
use rustls_pki_types::ServerName;
use tessera_ingress::{Ingress, IngressMetrics, Route, RouteTable, ServerCert, Target};
use tessera_pki::{
    CertificateAuthority, IssuedCert, Usage, certs_from_pem, key_from_pem, roots_from_pem,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub const DAY: chrono::TimeDelta = chrono::Duration::days(1);

pub fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The platform side: a root the clients trust, the cell's intermediate below it, and one
/// wildcard server certificate the intermediate issued.
pub struct Pki {
    pub root: CertificateAuthority,
    pub cell_ca: CertificateAuthority,
    pub server_cert: ServerCert,
}

impl Pki {
    pub fn new() -> Self {
        init();
        let root = CertificateAuthority::generate_root("test platform", DAY).unwrap();
        let cell_ca = root.issue_intermediate("test cell", DAY).unwrap();
        let server_cert = Self::issue_server_cert(&cell_ca);
        Self {
            root,
            cell_ca,
            server_cert,
        }
    }

    /// A fresh server certificate (new key) for the same names.
    pub fn issue_server_cert(ca: &CertificateAuthority) -> ServerCert {
        let cert = ca
            .issue(
                "ingress",
                &[
                    "*.acct.tessera.localhost".into(),
                    "ns.other.tessera.localhost".into(),
                ],
                Usage::Server,
                DAY,
            )
            .unwrap();
        ServerCert {
            chain_pem: cert.chain_pem,
            key_pem: cert.key_pem,
        }
    }

    /// The CA the clients trust.
    pub fn trust_pem(&self) -> String {
        self.root.cert_pem.clone()
    }
}

pub fn tenant_ca(name: &str) -> CertificateAuthority {
    CertificateAuthority::generate_root(name, DAY).unwrap()
}

pub fn client_cert(ca: &CertificateAuthority) -> IssuedCert {
    ca.issue("worker", &[], Usage::Client, DAY).unwrap()
}

pub fn route(ca: &CertificateAuthority, target: Target) -> Route {
    Route {
        accepted_ca_pem: ca.cert_pem.clone(),
        target,
    }
}

pub fn table(pki: &Pki, routes: impl IntoIterator<Item = (&'static str, Route)>) -> RouteTable {
    RouteTable {
        routes: routes
            .into_iter()
            .map(|(h, r)| (h.to_string(), r))
            .collect(),
        server_certs: vec![pki.server_cert.clone()],
    }
}

pub async fn start_ingress(routes: RouteTable) -> (Ingress, IngressMetrics, CancellationToken) {
    let metrics = IngressMetrics::new(&prometheus::Registry::new()).unwrap();
    let cancel = CancellationToken::new();
    let ingress = Ingress::bind(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        routes,
        metrics.clone(),
        cancel.clone(),
    )
    .await
    .unwrap();
    (ingress, metrics, cancel)
}

/// Presents a certificate whatever it is (rustls's own builder refuses to load an X.509 v1 one).
#[derive(Debug)]
struct Present(Arc<CertifiedKey>);

impl ResolvesClientCert for Present {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A TLS client trusting `trust_pem`, presenting `cert` if given.
pub fn client_config(trust_pem: &str, cert: Option<&IssuedCert>) -> Arc<ClientConfig> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots_from_pem(trust_pem).unwrap());
    let config = match cert {
        None => builder.with_no_client_auth(),
        Some(cert) => {
            let key = provider
                .key_provider
                .load_private_key(key_from_pem(&cert.key_pem).unwrap())
                .unwrap();
            let certified = CertifiedKey::new(certs_from_pem(&cert.chain_pem).unwrap(), key);
            builder.with_client_cert_resolver(Arc::new(Present(Arc::new(certified))))
        }
    };
    Arc::new(config)
}

pub async fn connect(
    addr: SocketAddr,
    host: &str,
    config: Arc<ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from(host.to_string()).unwrap();
    TlsConnector::from(config).connect(name, tcp).await
}

/// Connects, sends a message and expects it back.
pub async fn echo_once(
    addr: SocketAddr,
    host: &str,
    config: Arc<ClientConfig>,
) -> std::io::Result<()> {
    let mut tls = connect(addr, host, config).await?;
    round_trip(&mut tls, b"hello through the ingress").await
}

pub async fn round_trip<S>(stream: &mut S, msg: &[u8]) -> std::io::Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    stream.write_all(msg).await?;
    let mut back = vec![0u8; msg.len()];
    stream.read_exact(&mut back).await?;
    if back != msg {
        return Err(std::io::Error::other("echo differs"));
    }
    Ok(())
}

/// What a refused client sees: the attempt must fail (handshake error, alert, reset or EOF),
/// within a deadline.
pub async fn expect_refused(addr: SocketAddr, host: &str, config: Arc<ClientConfig>) {
    let attempt = tokio::time::timeout(Duration::from_secs(10), echo_once(addr, host, config))
        .await
        .expect("a refused client is answered, not left hanging");
    assert!(attempt.is_err(), "the connection should have been refused");
}

/// A TCP echo server that counts the connections it accepted.
pub struct Echo {
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

impl Echo {
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// With TLS: the server presents `tls`'s certificate (and checks clients if it says so).
    pub async fn start_with(tls: Option<Arc<ServerConfig>>) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let cancel = CancellationToken::new();
        let tasks = TaskTracker::new();
        let (count, stop, spawner) = (accepted.clone(), cancel.clone(), tasks.clone());
        tasks.spawn(async move {
            while let Some(Ok((tcp, _))) = stop.run_until_cancelled(listener.accept()).await {
                count.fetch_add(1, Ordering::SeqCst);
                let tls = tls.clone();
                let stop = stop.clone();
                spawner.spawn(async move {
                    let serve = async move {
                        tcp.set_nodelay(true)?;
                        match tls {
                            None => echo(tcp).await,
                            Some(config) => {
                                echo(TlsAcceptor::from(config).accept(tcp).await?).await
                            }
                        }
                    };
                    let _: Option<std::io::Result<()>> = stop.run_until_cancelled(serve).await;
                });
            }
        });
        Self {
            addr,
            accepted,
            cancel,
            tasks,
        }
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    pub async fn stop(self) {
        self.cancel.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

async fn echo<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: S,
) -> std::io::Result<()> {
    let (mut r, mut w) = tokio::io::split(stream);
    tokio::io::copy(&mut r, &mut w).await?;
    w.shutdown().await
}

/// Polls `cond` until it holds; fails the test after ten seconds.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A loopback address nothing listens on.
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    listener.local_addr().unwrap()
}
