//! Reading certificates: fingerprints, names, validity, and the rules for tenant CA bundles.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::PkiError;
use crate::authority::{cell_uri, edge_uri};

/// A tenant may trust at most this many CAs per namespace.
pub const MAX_BUNDLE_CERTS: usize = 16;
/// A tenant's CA bundle may be at most this large (PEM bytes).
pub const MAX_BUNDLE_BYTES: usize = 32 * 1024;

/// What the API and the agent need to know about a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub fingerprint_sha256: String,
    pub subject: String,
    pub issuer: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    /// 1 for X.509 v1, 3 for v3.
    pub version: u32,
    pub is_ca: bool,
    pub self_signed: bool,
    /// The certificate alone, PEM-encoded (lets a client rebuild a bundle without one entry).
    pub pem: String,
}

/// Why a CA bundle was refused; the message is shown to the tenant as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaBundleError {
    #[error("the CA bundle is {0} bytes; at most {MAX_BUNDLE_BYTES} are accepted")]
    TooLarge(usize),
    #[error("the CA bundle holds {0} certificates; at most {MAX_BUNDLE_CERTS} are accepted")]
    TooMany(usize),
    #[error("the CA bundle holds no PEM certificate")]
    Empty,
    #[error("certificate {index} of the CA bundle is not valid PEM/DER: {reason}")]
    Malformed { index: usize, reason: String },
    #[error(
        "certificate {index} of the CA bundle ({subject}) is X.509 v{version}; only v3 is accepted"
    )]
    NotV3 {
        index: usize,
        subject: String,
        version: u32,
    },
    #[error("certificate {index} of the CA bundle ({subject}) is not a CA certificate")]
    NotCa { index: usize, subject: String },
    #[error("certificate {index} of the CA bundle ({subject}) expired at {not_after}")]
    Expired {
        index: usize,
        subject: String,
        not_after: DateTime<Utc>,
    },
    /// The ingress's verifier builder refuses it (what x509 parsing alone lets through).
    #[error("the ingress cannot load the CA bundle: {0}")]
    Unusable(String),
}

pub fn fingerprint_sha256(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

fn ts(t: x509_parser::time::ASN1Time) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, String> {
    X509Certificate::from_der(der)
        .map(|(_, c)| c)
        .map_err(|e| e.to_string())
}

pub(crate) fn inspect_der(der: &[u8]) -> Result<CertInfo, PkiError> {
    let c = parse(der).map_err(PkiError::Certificate)?;
    Ok(CertInfo {
        fingerprint_sha256: fingerprint_sha256(der),
        subject: c.subject().to_string(),
        issuer: c.issuer().to_string(),
        not_before: ts(c.validity().not_before),
        not_after: ts(c.validity().not_after),
        version: c.version().0 + 1,
        is_ca: c.is_ca(),
        self_signed: c.subject().as_raw() == c.issuer().as_raw(),
        pem: pem_encode(der),
    })
}

/// One certificate as PEM: base64 in 64-character lines between the standard markers.
pub fn pem_encode(der: &[u8]) -> String {
    crate::authority::pem_of(der)
}

/// The first certificate of a PEM text.
pub fn inspect_pem(pem: &str) -> Result<CertInfo, PkiError> {
    let certs = crate::tls::certs_from_pem(pem)?;
    let first = certs
        .first()
        .ok_or_else(|| PkiError::Pem("no certificate found".into()))?;
    inspect_der(first)
}

/// Every certificate of a PEM text that parses (for showing a stored bundle).
pub fn inspect_bundle(pem: &str) -> Vec<CertInfo> {
    crate::tls::certs_from_pem(pem)
        .unwrap_or_default()
        .iter()
        .filter_map(|der| inspect_der(der).ok())
        .collect()
}

/// Checks a tenant's accepted-client-CA bundle: size, count, and that each entry is a current
/// X.509 v3 CA certificate. Returns what the API shows for each.
pub fn parse_ca_bundle(pem: &str, now: DateTime<Utc>) -> Result<Vec<CertInfo>, CaBundleError> {
    if pem.len() > MAX_BUNDLE_BYTES {
        return Err(CaBundleError::TooLarge(pem.len()));
    }
    let certs = crate::tls::certs_from_pem(pem).map_err(|e| CaBundleError::Malformed {
        index: 0,
        reason: e.to_string(),
    })?;
    if certs.is_empty() {
        return Err(CaBundleError::Empty);
    }
    if certs.len() > MAX_BUNDLE_CERTS {
        return Err(CaBundleError::TooMany(certs.len()));
    }
    let mut out = Vec::with_capacity(certs.len());
    for (index, der) in certs.iter().enumerate() {
        let info = inspect_der(der).map_err(|e| CaBundleError::Malformed {
            index,
            reason: e.to_string(),
        })?;
        if info.version != 3 {
            return Err(CaBundleError::NotV3 {
                index,
                subject: info.subject,
                version: info.version,
            });
        }
        if !info.is_ca {
            return Err(CaBundleError::NotCa {
                index,
                subject: info.subject,
            });
        }
        if info.not_after <= now {
            return Err(CaBundleError::Expired {
                index,
                subject: info.subject,
                not_after: info.not_after,
            });
        }
        out.push(info);
    }
    crate::tls::client_verifier(pem, Arc::new(rustls::crypto::ring::default_provider()))
        .map_err(CaBundleError::Unusable)?;
    Ok(out)
}

/// The cell an agent identity certificate names (its `spiffe://tessera/cell/<id>` SAN).
pub fn cell_id_of(der: &[u8]) -> Option<String> {
    uri_suffix(der, &cell_uri(""))
}

/// The edge an edge identity certificate names (its `spiffe://tessera/edge/<id>` SAN).
pub fn edge_id_of(der: &[u8]) -> Option<String> {
    uri_suffix(der, &edge_uri(""))
}

fn uri_suffix(der: &[u8], prefix: &str) -> Option<String> {
    let c = parse(der).ok()?;
    let san = c.subject_alternative_name().ok()??;
    san.value.general_names.iter().find_map(|n| match n {
        GeneralName::URI(u) => u.strip_prefix(prefix).map(str::to_string),
        _ => None,
    })
}
