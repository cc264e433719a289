//! Certificates no Tessera CA would issue, for tests that check they are refused.

use chrono::{DateTime, Utc};
use rcgen::{KeyPair, PublicKeyData, SigningKey};
use yasna::models::{ObjectIdentifier, UTCTime};

use crate::{CertificateAuthority, IssuedCert, PkiError};

const ECDSA_WITH_SHA256: &[u64] = &[1, 2, 840, 10045, 4, 3, 2];
const COMMON_NAME: &[u64] = &[2, 5, 4, 3];

/// An X.509 **v1** client certificate (no version field, no extensions) signed by `ca`.
/// Everything else about it is valid, so a verifier that refuses it does so for the version.
pub fn v1_certificate(
    ca: &CertificateAuthority,
    common_name: &str,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
) -> Result<IssuedCert, PkiError> {
    let ca_key = KeyPair::from_pem(&ca.key_pem)?;
    let ca_der = crate::tls::certs_from_pem(&ca.cert_pem)?
        .into_iter()
        .next()
        .ok_or_else(|| PkiError::Pem("empty CA".into()))?;
    let (_, ca_cert) = <x509_parser::prelude::X509Certificate as x509_parser::prelude::FromDer<
        '_,
        x509_parser::error::X509Error,
    >>::from_der(&ca_der)
    .map_err(|e| PkiError::Certificate(e.to_string()))?;
    let issuer_raw = ca_cert.subject().as_raw().to_vec();
    let key = KeyPair::generate()?;
    let spki = key.subject_public_key_info();
    let to_time = |t: DateTime<Utc>| {
        UTCTime::from_datetime(
            time::OffsetDateTime::from_unix_timestamp(t.timestamp()).expect("in range"),
        )
    };
    let alg = |w: yasna::DERWriter| {
        w.write_sequence(|w| {
            w.next()
                .write_oid(&ObjectIdentifier::from_slice(ECDSA_WITH_SHA256))
        })
    };
    let tbs = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            // No [0] version: that is what makes it v1.
            w.next().write_u64(rand::random::<u32>() as u64 + 1);
            alg(w.next());
            w.next().write_der(&issuer_raw);
            w.next().write_sequence(|w| {
                w.next().write_utctime(&to_time(not_before));
                w.next().write_utctime(&to_time(not_after));
            });
            w.next().write_sequence(|w| {
                w.next().write_set(|w| {
                    w.next().write_sequence(|w| {
                        w.next()
                            .write_oid(&ObjectIdentifier::from_slice(COMMON_NAME));
                        w.next().write_utf8_string(common_name);
                    })
                })
            });
            w.next().write_der(&spki);
        })
    });
    let sig = ca_key.sign(&tbs)?;
    let der = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_der(&tbs);
            alg(w.next());
            w.next().write_bitvec_bytes(&sig, sig.len() * 8);
        })
    });
    let cert_pem = crate::authority::pem_of(&der);
    Ok(IssuedCert {
        chain_pem: cert_pem.clone(),
        cert_pem,
        key_pem: key.serialize_pem(),
        not_after,
    })
}
