//! `cell-agent join`: a one-time token for the cell's identity certificate.
//!
//! The agent has no trust anchor yet, so it pins the platform root by the SHA-256 the token
//! carries: the agent endpoint sends its chain up to the root, the root must hash to the pin,
//! and the server certificate must verify against it. The key is generated here and never sent.

use std::path::Path;
use std::sync::Arc;

use crate::error::Context;
use rustls::DigitallySignedStruct;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tessera_api::agent::{AGENT_PREFIX, JoinRequest, JoinResponse};
use tessera_api::edge::EdgeJoinResponse;
use tessera_domain::JoinToken;

use crate::identity::{Identity, Membership};

/// Joins unless `dir` already holds an identity for the same control plane. Without
/// `control_plane`, the agent dials the endpoint the token names.
pub async fn join(dir: &Path, control_plane: Option<&str>, token: &str) -> crate::Result<Identity> {
    let Some(exchange) = Exchange::start(dir, control_plane, token)? else {
        return Identity::load(dir);
    };
    let joined: JoinResponse = exchange.post("join").await?;
    exchange.finish(
        dir,
        Membership {
            cell_id: joined.cell_id,
            region: joined.region,
            ring: joined.ring,
            control_plane: exchange.control_plane.clone(),
        },
        joined.certificate_chain_pem,
        joined.root_ca_pem,
    )
}

/// `tessera-edge join`: as [`join`], for an edge. Its membership names the edge in `cell_id`
/// (an edge belongs to no cell) and ring 0.
pub async fn join_edge(
    dir: &Path,
    control_plane: Option<&str>,
    token: &str,
) -> crate::Result<Identity> {
    let Some(exchange) = Exchange::start(dir, control_plane, token)? else {
        return Identity::load(dir);
    };
    let joined: EdgeJoinResponse = exchange.post("edge/join").await?;
    exchange.finish(
        dir,
        Membership {
            cell_id: joined.edge_id,
            region: joined.region,
            ring: 0,
            control_plane: exchange.control_plane.clone(),
        },
        joined.certificate_chain_pem,
        joined.root_ca_pem,
    )
}

/// One trade of a join token for an identity: a fresh key, a CSR, and a connection that trusts
/// only the root the token pins.
struct Exchange {
    control_plane: String,
    token: String,
    root_fingerprint: String,
    http: reqwest::Client,
    csr_pem: String,
    key_pem: String,
}

impl Exchange {
    /// `None` when `dir` already holds an identity for the same control plane.
    fn start(dir: &Path, control_plane: Option<&str>, token: &str) -> crate::Result<Option<Self>> {
        let parsed = JoinToken::parse(token).context("the join token is malformed")?;
        let control_plane = control_plane
            .or(parsed.control_plane.as_deref())
            .context("the join token names no control plane: give --control-plane")?
            .trim_end_matches('/')
            .to_string();
        if Identity::exists(dir) {
            let existing = Identity::load(dir)?;
            if existing.membership.control_plane == control_plane {
                tracing::info!(id = %existing.membership.cell_id, "already joined");
                return Ok(None);
            }
            crate::error::bail!(
                "{} already belongs to {} of {}; use another --dir",
                dir.display(),
                existing.membership.cell_id,
                existing.membership.control_plane
            );
        }
        let verifier = Arc::new(PinnedRoot::new(&parsed.root_fingerprint));
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(std::time::Duration::from_secs(30))
            .build()?;
        let (csr_pem, key_pem) = tessera_pki::generate_csr("cell-agent")?;
        Ok(Some(Self {
            control_plane,
            token: token.trim().to_string(),
            root_fingerprint: parsed.root_fingerprint,
            http,
            csr_pem,
            key_pem,
        }))
    }

    async fn post<R: serde::de::DeserializeOwned>(&self, path: &str) -> crate::Result<R> {
        let resp = self
            .http
            .post(format!("{}{AGENT_PREFIX}/{path}", self.control_plane))
            .json(&JoinRequest {
                token: self.token.clone(),
                csr_pem: self.csr_pem.clone(),
                agent_version: crate::AGENT_VERSION.into(),
            })
            .send()
            .await
            .with_context(|| format!("dialing the control plane at {}", self.control_plane))?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            crate::error::bail!("join refused ({status}): {body}");
        }
        Ok(resp.json().await?)
    }

    /// Checks the root the control plane sent against the pin, then saves the identity.
    fn finish(
        &self,
        dir: &Path,
        membership: Membership,
        chain_pem: String,
        root_ca_pem: String,
    ) -> crate::Result<Identity> {
        let root_der = tessera_pki::certs_from_pem(&root_ca_pem)?;
        crate::error::ensure!(
            root_der
                .first()
                .map(|d| tessera_pki::fingerprint_sha256(d) == self.root_fingerprint)
                .unwrap_or(false),
            "the control plane sent a root CA that does not match the token's pin"
        );
        let identity = Identity {
            membership,
            chain_pem,
            key_pem: self.key_pem.clone(),
            root_ca_pem,
        };
        identity.save(dir)?;
        tracing::info!(id = %identity.membership.cell_id, "joined");
        Ok(identity)
    }
}

/// Accepts a server whose chain includes a root with the pinned SHA-256 and verifies against it.
#[derive(Debug)]
struct PinnedRoot {
    pin: String,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl PinnedRoot {
    fn new(pin: &str) -> Self {
        Self {
            pin: pin.to_ascii_lowercase(),
            provider: Arc::new(rustls::crypto::ring::default_provider()),
        }
    }
}

impl ServerCertVerifier for PinnedRoot {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(root) = intermediates
            .iter()
            .find(|c| tessera_pki::fingerprint_sha256(c) == self.pin)
        else {
            return Err(rustls::Error::General(
                "the server did not present the pinned platform root".into(),
            ));
        };
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(root.clone().into_owned())
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        let others: Vec<CertificateDer<'_>> = intermediates
            .iter()
            .filter(|c| tessera_pki::fingerprint_sha256(c) != self.pin)
            .cloned()
            .collect();
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?
            .verify_server_cert(end_entity, &others, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
