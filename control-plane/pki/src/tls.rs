//! PEM to the types rustls wants.

use rustls::RootCertStore;
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
