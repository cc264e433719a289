//! Certificate authorities and what they issue.

use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};

use crate::PkiError;
use crate::inspect::inspect_pem;

/// What a leaf certificate may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// A TLS server (ingress, agent endpoint).
    Server,
    /// A TLS client (tenant SDK workers).
    Client,
    /// Both: a cell agent dials the control plane and, later, other agents dial it.
    Peer,
}

/// A certificate with its private key, both PEM. `chain_pem` is the certificate followed by the
/// intermediates a peer needs to reach the root (empty for certificates issued by a root).
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedCert {
    pub cert_pem: String,
    pub chain_pem: String,
    pub key_pem: String,
    pub not_after: DateTime<Utc>,
}

impl std::fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCert")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// A CA: its certificate (PEM), the chain up to (not including) the root, and its key (PEM).
#[derive(Clone)]
pub struct CertificateAuthority {
    pub cert_pem: String,
    /// This CA's certificate followed by the intermediates above it; appended to what it issues.
    pub chain_pem: String,
    pub key_pem: String,
    pub not_after: DateTime<Utc>,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

fn to_offset(t: DateTime<Utc>) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(t.timestamp()).expect("timestamp in range")
}

fn random_serial() -> SerialNumber {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b[0] &= 0x7f; // positive INTEGER
    b[0] |= 0x01; // no leading zero byte to strip
    SerialNumber::from_slice(&b)
}

fn dn(common_name: &str, org: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, org);
    dn.push(DnType::CommonName, common_name);
    dn
}

fn base_params(
    common_name: &str,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(common_name, "Tessera");
    p.not_before = to_offset(not_before);
    p.not_after = to_offset(not_after);
    p.serial_number = Some(random_serial());
    p.use_authority_key_identifier_extension = true;
    p
}

fn ca_params(common_name: &str, path_len: Option<u8>, validity: Duration) -> CertificateParams {
    // Backdated a little so that clocks slightly behind still accept a fresh certificate.
    let now = Utc::now();
    let mut p = base_params(common_name, now - Duration::minutes(5), now + validity);
    p.is_ca = match path_len {
        Some(n) => IsCa::Ca(BasicConstraints::Constrained(n)),
        None => IsCa::Ca(BasicConstraints::Unconstrained),
    };
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p
}

fn leaf_params(
    common_name: &str,
    sans: &[String],
    usage: Usage,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
) -> Result<CertificateParams, PkiError> {
    let mut p = base_params(common_name, not_before, not_after);
    p.subject_alt_names = sans.iter().map(|s| san(s)).collect::<Result<Vec<_>, _>>()?;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = match usage {
        Usage::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
        Usage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
        Usage::Peer => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
    };
    Ok(p)
}

fn san(s: &str) -> Result<SanType, PkiError> {
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let ia5 = |v: &str| v.to_string().try_into().map_err(PkiError::Generate);
    if s.contains("://") {
        Ok(SanType::URI(ia5(s)?))
    } else {
        Ok(SanType::DnsName(ia5(s)?))
    }
}

fn finish(
    cert: rcgen::Certificate,
    key: &KeyPair,
    chain_above: &str,
) -> Result<IssuedCert, PkiError> {
    let cert_pem = cert.pem();
    let not_after = inspect_pem(&cert_pem)?.not_after;
    Ok(IssuedCert {
        chain_pem: format!("{cert_pem}{chain_above}"),
        cert_pem,
        key_pem: key.serialize_pem(),
        not_after,
    })
}

/// The SAN URI that names a cell in its agent identity certificate.
pub(crate) fn cell_uri(cell_id: &str) -> String {
    format!("spiffe://tessera/cell/{cell_id}")
}

/// The URI SAN that names an edge in its identity certificate.
pub(crate) fn edge_uri(edge_id: &str) -> String {
    format!("spiffe://tessera/edge/{edge_id}")
}

impl CertificateAuthority {
    /// A new self-signed root (`path_len` unconstrained).
    pub fn generate_root(common_name: &str, validity: Duration) -> Result<Self, PkiError> {
        let key = KeyPair::generate()?;
        let cert = ca_params(common_name, None, validity).self_signed(&key)?;
        let cert_pem = cert.pem();
        Ok(Self {
            not_after: inspect_pem(&cert_pem)?.not_after,
            chain_pem: cert_pem.clone(),
            cert_pem,
            key_pem: key.serialize_pem(),
        })
    }

    /// Rebuilds a CA from its stored certificate chain and key.
    pub fn from_pem(chain_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let certs = crate::tls::certs_from_pem(chain_pem)?;
        let first = certs
            .first()
            .ok_or_else(|| PkiError::Pem("no certificate in the CA chain".into()))?;
        let cert_pem = pem_of(first);
        KeyPair::from_pem(key_pem)?;
        Ok(Self {
            not_after: inspect_pem(&cert_pem)?.not_after,
            cert_pem,
            chain_pem: chain_pem.to_string(),
            key_pem: key_pem.to_string(),
        })
    }

    fn issuer(&self) -> Result<Issuer<'static, KeyPair>, PkiError> {
        let key = KeyPair::from_pem(&self.key_pem)?;
        Ok(Issuer::from_ca_cert_pem(&self.cert_pem, key)?)
    }

    /// The chain a leaf issued here carries above itself. A root is left out (peers hold it).
    fn chain_above_leaf(&self) -> String {
        if self.is_root() {
            String::new()
        } else {
            // Drop the root at the end of our own chain, if it is there.
            let certs = crate::tls::certs_from_pem(&self.chain_pem).unwrap_or_default();
            certs
                .iter()
                .filter(|c| {
                    crate::inspect::inspect_der(c)
                        .map(|i| !i.self_signed)
                        .unwrap_or(false)
                })
                .map(|c| pem_of(c))
                .collect()
        }
    }

    pub fn is_root(&self) -> bool {
        inspect_pem(&self.cert_pem)
            .map(|i| i.self_signed)
            .unwrap_or(false)
    }

    /// An intermediate CA below this one that may issue leaves only (path length 0).
    pub fn issue_intermediate(
        &self,
        common_name: &str,
        validity: Duration,
    ) -> Result<Self, PkiError> {
        let key = KeyPair::generate()?;
        let cert = ca_params(common_name, Some(0), validity).signed_by(&key, &self.issuer()?)?;
        let cert_pem = cert.pem();
        Ok(Self {
            not_after: inspect_pem(&cert_pem)?.not_after,
            chain_pem: format!("{cert_pem}{}", self.chain_above_leaf()),
            cert_pem,
            key_pem: key.serialize_pem(),
        })
    }

    /// A leaf with a fresh key, valid from now for `validity`.
    pub fn issue(
        &self,
        common_name: &str,
        sans: &[String],
        usage: Usage,
        validity: Duration,
    ) -> Result<IssuedCert, PkiError> {
        let now = Utc::now();
        self.issue_between(
            common_name,
            sans,
            usage,
            now - Duration::minutes(5),
            now + validity,
        )
    }

    /// A leaf valid exactly between the two instants (tests issue expired certificates with it).
    pub fn issue_between(
        &self,
        common_name: &str,
        sans: &[String],
        usage: Usage,
        not_before: DateTime<Utc>,
        not_after: DateTime<Utc>,
    ) -> Result<IssuedCert, PkiError> {
        let key = KeyPair::generate()?;
        let cert = leaf_params(common_name, sans, usage, not_before, not_after)?
            .signed_by(&key, &self.issuer()?)?;
        finish(cert, &key, &self.chain_above_leaf())
    }

    /// Signs a cell agent's CSR. Only the CSR's public key is used: the name and usages are ours.
    pub fn sign_agent_csr(
        &self,
        csr_pem: &str,
        cell_id: &str,
        validity: Duration,
    ) -> Result<IssuedCert, PkiError> {
        self.sign_peer_csr(
            csr_pem,
            &format!("cell-agent {cell_id}"),
            &cell_uri(cell_id),
            validity,
        )
    }

    /// Signs an edge's CSR, naming the edge (`spiffe://tessera/edge/<id>`).
    pub fn sign_edge_csr(
        &self,
        csr_pem: &str,
        edge_id: &str,
        validity: Duration,
    ) -> Result<IssuedCert, PkiError> {
        self.sign_peer_csr(
            csr_pem,
            &format!("edge {edge_id}"),
            &edge_uri(edge_id),
            validity,
        )
    }

    fn sign_peer_csr(
        &self,
        csr_pem: &str,
        common_name: &str,
        uri: &str,
        validity: Duration,
    ) -> Result<IssuedCert, PkiError> {
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)?;
        let now = Utc::now();
        let params = leaf_params(
            common_name,
            &[uri.to_string()],
            Usage::Peer,
            now - Duration::minutes(5),
            now + validity,
        )?;
        let cert = params.signed_by(&csr.public_key, &self.issuer()?)?;
        let cert_pem = cert.pem();
        Ok(IssuedCert {
            not_after: inspect_pem(&cert_pem)?.not_after,
            chain_pem: format!("{cert_pem}{}", self.chain_above_leaf()),
            cert_pem,
            key_pem: String::new(),
        })
    }
}

/// A key and a CSR for it (the agent keeps the key; the control plane signs the CSR).
pub fn generate_csr(common_name: &str) -> Result<(String, String), PkiError> {
    let key = KeyPair::generate()?;
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(common_name, "Tessera");
    let csr = p.serialize_request(&key)?;
    Ok((csr.pem()?, key.serialize_pem()))
}

/// Renew once two thirds of the lifetime have passed, so that a certificate is replaced well
/// before it expires even if one renewal attempt fails.
pub fn renewal_due(
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    let lifetime = not_after - not_before;
    now >= not_before + lifetime * 2 / 3
}

pub(crate) fn pem_of(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}
