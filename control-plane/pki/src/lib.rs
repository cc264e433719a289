//! Tessera's certificates.
//!
//! One platform root signs a per-cell intermediate; the intermediate signs the cell's agent
//! identity and its ingress server certificates. Tenants get a CA of their own (or upload one)
//! and client certificates from it. Everything is X.509 v3 with ECDSA P-256. Private keys that
//! the control plane keeps are sealed with the master key ([`MasterKey`]).

mod authority;
mod inspect;
mod seal;
#[cfg(feature = "testing")]
pub mod testing;
mod tls;

pub use authority::{CertificateAuthority, IssuedCert, Usage, generate_csr, renewal_due};
pub use inspect::{
    CaBundleError, CertInfo, MAX_BUNDLE_BYTES, MAX_BUNDLE_CERTS, cell_id_of, edge_id_of,
    fingerprint_sha256, inspect_bundle, inspect_pem, parse_ca_bundle, pem_encode,
};
pub use seal::MasterKey;
pub use tls::{certs_from_pem, client_verifier, key_from_pem, roots_from_pem};

/// Errors of certificate issuance and parsing.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("malformed PEM: {0}")]
    Pem(String),
    #[error("malformed certificate: {0}")]
    Certificate(String),
    #[error("sealed key cannot be opened with this master key")]
    Unseal,
}
