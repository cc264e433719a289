//! rustls pieces: the server certificate chosen by SNI, the client certificate check of one
//! namespace (v3 only, its own CA bundle only, with the reason of every refusal kept), the client
//! configuration for external upstreams, and the mapping of handshake errors to reasons.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, CipherSuite, ClientConfig, DigitallySignedStruct, DistinguishedName,
    OtherError, ServerConfig, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tessera_pki::{certs_from_pem, key_from_pem, roots_from_pem};
use x509_parser::prelude::{FromDer, X509Certificate, X509Version};

use crate::metrics::FailureReason;
use crate::routes::{ServerCert, UpstreamTls};

/// The protocols offered to clients: Temporal SDKs speak gRPC (h2).
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// The ring provider, built once. Everything in the ingress uses it. AES-128-GCM comes first:
/// as safe as AES-256 here and a third cheaper per byte, which a relay of bulk traffic notices.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| {
            let mut provider = rustls::crypto::ring::default_provider();
            provider.cipher_suites.sort_by_key(|s| {
                !matches!(
                    s.suite(),
                    CipherSuite::TLS13_AES_128_GCM_SHA256
                        | CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                        | CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
                )
            });
            Arc::new(provider)
        })
        .clone()
}

/// Server certificates by the DNS names they carry.
#[derive(Debug, Default)]
pub(crate) struct SniCerts {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// `*.acct.example` is stored under `acct.example`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
}

impl SniCerts {
    /// Every certificate, or the first that does not load.
    #[cfg(any(test, feature = "bench"))]
    pub fn new(
        certs: &[ServerCert],
        provider: &CryptoProvider,
    ) -> Result<Self, crate::IngressError> {
        let (out, mut rejected) = Self::load(certs, provider);
        match rejected.pop_first() {
            Some((index, reason)) => Err(crate::IngressError::ServerCert { index, reason }),
            None => Ok(out),
        }
    }

    /// The certificates that load; the others are left out and returned by index with why.
    pub fn load(
        certs: &[ServerCert],
        provider: &CryptoProvider,
    ) -> (Self, BTreeMap<usize, String>) {
        let mut out = Self::default();
        let mut rejected = BTreeMap::new();
        for (index, cert) in certs.iter().enumerate() {
            match certified_key(cert, provider) {
                Ok((names, certified)) => {
                    for name in names {
                        match name.strip_prefix("*.") {
                            Some(parent) => {
                                out.wildcard.insert(parent.to_string(), certified.clone())
                            }
                            None => out.exact.insert(name, certified.clone()),
                        };
                    }
                }
                Err(reason) => {
                    rejected.insert(index, reason);
                }
            }
        }
        (out, rejected)
    }

    /// Whether a loaded certificate covers `host`.
    pub(crate) fn covers(&self, host: &str) -> bool {
        self.lookup(host).is_some()
    }

    fn lookup(&self, host: &str) -> Option<Arc<CertifiedKey>> {
        let host = host.to_ascii_lowercase();
        if let Some(c) = self.exact.get(&host) {
            return Some(c.clone());
        }
        let (_, parent) = host.split_once('.')?;
        self.wildcard.get(parent).cloned()
    }
}

impl ResolvesServerCert for SniCerts {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.lookup(hello.server_name()?)
    }
}

fn dns_names(der: &CertificateDer<'_>) -> Result<Vec<String>, String> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
    let Some(san) = cert.subject_alternative_name().map_err(|e| e.to_string())? else {
        return Ok(Vec::new());
    };
    Ok(san
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
            _ => None,
        })
        .collect())
}

/// The DNS names and the signing key of one server certificate.
fn certified_key(
    cert: &ServerCert,
    provider: &CryptoProvider,
) -> Result<(Vec<String>, Arc<CertifiedKey>), String> {
    let chain = certs_from_pem(&cert.chain_pem).map_err(|e| e.to_string())?;
    let leaf = chain.first().ok_or("no certificate")?;
    let names = dns_names(leaf)?;
    let key = key_from_pem(&cert.key_pem).map_err(|e| e.to_string())?;
    let certified =
        CertifiedKey::from_der(chain.clone(), key, provider).map_err(|e| e.to_string())?;
    if names.is_empty() {
        return Err("the certificate names no DNS host".into());
    }
    Ok((names, Arc::new(certified)))
}

/// The webpki verifier of one CA bundle; client certificates are mandatory (the API validates
/// uploaded bundles with the same builder).
pub(crate) fn client_verifier(
    ca_pem: &str,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, String> {
    tessera_pki::client_verifier(ca_pem, provider.clone())
}

/// The server side of one route: its tenant's verifier and the ingress's certificates.
pub(crate) fn server_config(
    verifier: Arc<dyn ClientCertVerifier>,
    certs: Arc<SniCerts>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<ServerConfig>, String> {
    let mut config = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(certs);
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    config.ignore_client_order = true;
    Ok(Arc::new(config))
}

#[cfg(feature = "bench")]
/// What the benchmark's "direct TLS" baseline servers speak: exactly the ingress's TLS (same
/// provider and cipher preference, same certificate, same mandatory client-certificate check,
/// same ALPN), so that the baseline differs from the ingress path only by the extra hop.
pub(crate) fn baseline_server_config(
    cert: &ServerCert,
    accepted_ca_pem: &str,
) -> Result<Arc<ServerConfig>, crate::IngressError> {
    let provider = provider();
    let err = |reason: String| crate::IngressError::Bench(format!("baseline TLS: {reason}"));
    let verifier = client_verifier(accepted_ca_pem, &provider).map_err(err)?;
    let certs = SniCerts::new(std::slice::from_ref(cert), &provider)?;
    server_config(verifier, Arc::new(certs), &provider).map_err(err)
}

/// The client side towards an external cluster.
pub(crate) fn upstream_config(
    up: &UpstreamTls,
    provider: &Arc<CryptoProvider>,
) -> Result<(Arc<ClientConfig>, ServerName<'static>), String> {
    let name = ServerName::try_from(up.server_name.clone())
        .map_err(|e| format!("upstream server name {:?}: {e}", up.server_name))?;
    let roots = roots_from_pem(&up.root_ca_pem).map_err(|e| format!("upstream root CA: {e}"))?;
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let config = match (&up.client_cert_pem, &up.client_key_pem) {
        (Some(cert), Some(key)) => {
            let chain = certs_from_pem(cert).map_err(|e| format!("upstream client cert: {e}"))?;
            let key = key_from_pem(key).map_err(|e| format!("upstream client key: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("upstream client cert: {e}"))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err("upstream client certificate and key go together".into()),
    };
    Ok((Arc::new(config), name))
}

/// A refusal decided by [`TenantVerifier`] itself, carried inside the rustls error.
#[derive(Debug)]
struct Refused(FailureReason);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "client certificate refused: {}", self.0)
    }
}

impl std::error::Error for Refused {}

fn refused(reason: FailureReason) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(Refused(
        reason,
    )))))
}

/// Checks client certificates for one namespace. Only X.509 v3 end-entity certificates are
/// considered; the chain must reach the namespace's own CA bundle. A certificate that instead
/// chains to another namespace's bundle on this ingress is refused as "cross_tenant".
#[derive(Debug)]
pub(crate) struct TenantVerifier {
    /// One verifier per distinct CA bundle on the ingress.
    all: Arc<Vec<Arc<dyn ClientCertVerifier>>>,
    /// Ours, in `all`.
    own: usize,
}

impl TenantVerifier {
    pub fn new(all: Arc<Vec<Arc<dyn ClientCertVerifier>>>, own: usize) -> Self {
        Self { all, own }
    }

    fn inner(&self) -> &dyn ClientCertVerifier {
        self.all[self.own].as_ref()
    }

    fn foreign(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> bool {
        self.all.iter().enumerate().any(|(i, v)| {
            i != self.own && v.verify_client_cert(end_entity, intermediates, now).is_ok()
        })
    }
}

fn is_v3(der: &CertificateDer<'_>) -> bool {
    match X509Certificate::from_der(der) {
        Ok((_, cert)) => cert.version() == X509Version::V3,
        // Unparseable: webpki refuses it as a bad encoding.
        Err(_) => true,
    }
}

impl ClientCertVerifier for TenantVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner().root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if !is_v3(end_entity) {
            return Err(refused(FailureReason::NotV3));
        }
        match self
            .inner()
            .verify_client_cert(end_entity, intermediates, now)
        {
            Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer))
                if self.foreign(end_entity, intermediates, now) =>
            {
                Err(refused(FailureReason::CrossTenant))
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner().supported_verify_schemes()
    }
}

/// The reason a server-side handshake failed.
pub(crate) fn classify(err: &std::io::Error) -> FailureReason {
    let Some(err) = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    else {
        return FailureReason::TlsError;
    };
    match err {
        rustls::Error::NoCertificatesPresented => FailureReason::NoClientCert,
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                FailureReason::Expired
            }
            CertificateError::UnknownIssuer => FailureReason::UnknownCa,
            CertificateError::Other(OtherError(inner)) => inner
                .downcast_ref::<Refused>()
                .map_or(FailureReason::BadCertificate, |r| r.0),
            _ => FailureReason::BadCertificate,
        },
        _ => FailureReason::TlsError,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_survive_the_trip_through_io_errors() {
        for reason in [FailureReason::NotV3, FailureReason::CrossTenant] {
            let io = std::io::Error::new(std::io::ErrorKind::InvalidData, refused(reason));
            assert_eq!(classify(&io), reason);
        }
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::NoCertificatesPresented,
        );
        assert_eq!(classify(&io), FailureReason::NoClientCert);
        let eof = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
        assert_eq!(classify(&eof), FailureReason::TlsError);
    }

    fn server_cert(ca: &tessera_pki::CertificateAuthority, names: &[&str]) -> ServerCert {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let cert = ca
            .issue(
                "ingress",
                &names,
                tessera_pki::Usage::Server,
                chrono::Duration::days(1),
            )
            .unwrap();
        ServerCert {
            chain_pem: cert.chain_pem,
            key_pem: cert.key_pem,
        }
    }

    #[test]
    fn server_certificates_match_exact_names_and_one_wildcard_label() {
        let ca = tessera_pki::CertificateAuthority::generate_root("ca", chrono::Duration::days(1))
            .unwrap();
        let wildcard = server_cert(&ca, &["*.acct.example"]);
        let exact = server_cert(&ca, &["ns.acct.example"]);
        let certs = SniCerts::new(&[wildcard.clone(), exact.clone()], &provider()).unwrap();
        let leaf = |c: &ServerCert| certs_from_pem(&c.chain_pem).unwrap()[0].clone();
        let pick = |host: &str| certs.lookup(host).map(|k| k.cert[0].clone());

        assert_eq!(pick("ns.acct.example"), Some(leaf(&exact)));
        assert_eq!(pick("NS.Acct.Example"), Some(leaf(&exact)));
        assert_eq!(pick("other.acct.example"), Some(leaf(&wildcard)));
        assert_eq!(
            pick("a.b.acct.example"),
            None,
            "a wildcard covers one label only"
        );
        assert_eq!(pick("acct.example"), None);
    }

    #[test]
    fn the_last_certificate_for_a_name_wins() {
        let ca = tessera_pki::CertificateAuthority::generate_root("ca", chrono::Duration::days(1))
            .unwrap();
        let old = server_cert(&ca, &["ns.acct.example"]);
        let new = server_cert(&ca, &["ns.acct.example"]);
        let certs = SniCerts::new(&[old, new.clone()], &provider()).unwrap();
        let picked = certs.lookup("ns.acct.example").unwrap();
        assert_eq!(picked.cert[0], certs_from_pem(&new.chain_pem).unwrap()[0]);
    }

    #[test]
    fn a_key_that_is_not_the_certificates_is_refused() {
        let ca = tessera_pki::CertificateAuthority::generate_root("ca", chrono::Duration::days(1))
            .unwrap();
        let mut cert = server_cert(&ca, &["ns.acct.example"]);
        cert.key_pem = server_cert(&ca, &["ns.acct.example"]).key_pem;
        assert!(SniCerts::new(&[cert], &provider()).is_err());
    }
}
