//! PEM to the types rustls wants.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::PkiError;

/// Every certificate in a PEM text, in order.
pub fn certs_from_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PkiError::Pem(e.to_string()))
}

/// The first private key in a PEM text.
pub fn key_from_pem(pem: &str) -> Result<PrivateKeyDer<'static>, PkiError> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| PkiError::Pem(e.to_string()))
}

/// A root store holding every certificate of a PEM bundle.
pub fn roots_from_pem(pem: &str) -> Result<RootCertStore, PkiError> {
    let mut roots = RootCertStore::empty();
    for c in certs_from_pem(pem)? {
        roots
            .add(c)
            .map_err(|e| PkiError::Certificate(e.to_string()))?;
    }
    Ok(roots)
}

/// The client-certificate verifier of one accepted CA bundle (client certificates mandatory),
/// exactly as the ingress builds it: the API checks an uploaded bundle with this too, so that a
/// bundle the API accepts is one the ingress loads.
pub fn client_verifier(
    ca_pem: &str,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let roots = roots_from_pem(ca_pem).map_err(|e| format!("accepted CA bundle: {e}"))?;
    if roots.is_empty() {
        return Err("the accepted CA bundle holds no certificate".into());
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| format!("accepted CA bundle: {e}"))
}
