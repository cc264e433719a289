//! The control plane's certificate authority, kept in the store with keys sealed.
//!
//! `root` signs one intermediate per cell (`cell/<id>/ca`); that intermediate signs the cell's
//! agent identity (from the agent's CSR) and its ingress server certificate
//! (`cell/<id>/ingress`). The agent endpoint's own server certificate is issued by the root at
//! every start and never stored.

use chrono::{Duration, Utc};
use tessera_pki::{CertificateAuthority, IssuedCert, MasterKey, PkiError, Usage, inspect_pem};
use tessera_store::entity::pki_object;
use tessera_store::{Store, StoreError};

/// Lifetimes. Renewal happens after two thirds of each (`tessera_pki::renewal_due`).
pub const ROOT_VALIDITY: Duration = Duration::days(3650);
pub const CELL_CA_VALIDITY: Duration = Duration::days(365);
pub const AGENT_IDENTITY_VALIDITY: Duration = Duration::days(30);
pub const INGRESS_CERT_VALIDITY: Duration = Duration::days(30);
/// A CA generated for a tenant's namespace.
pub const TENANT_CA_VALIDITY: Duration = Duration::days(3 * 365);
/// The CA of the control plane's own probe certificates for one namespace.
pub const PROBE_CA_VALIDITY: Duration = Duration::days(3650);
/// A probe client certificate: issued for one verification.
pub const PROBE_CERT_VALIDITY: Duration = Duration::hours(1);

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CertError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, CertError::Store(e) if e.is_retryable())
    }
}

pub fn cell_ca_id(cell_id: &str) -> String {
    format!("cell/{cell_id}/ca")
}

pub fn ingress_cert_id(cell_id: &str) -> String {
    format!("cell/{cell_id}/ingress")
}

/// A namespace's generated CA (kind `tenant_ca`).
pub fn namespace_ca_id(namespace_id: uuid::Uuid) -> String {
    format!("ns/{namespace_id}/ca")
}

/// The CA of the probe certificates with which the control plane verifies a namespace
/// end to end (kind `probe_ca`); its certificate is part of the route's accepted bundle.
pub fn namespace_probe_ca_id(namespace_id: uuid::Uuid) -> String {
    format!("ns/{namespace_id}/probe")
}

/// The namespace's ingress server certificate, signed by its cell's intermediate (kind
/// `namespace_server`).
pub fn namespace_server_cert_id(namespace_id: uuid::Uuid) -> String {
    format!("ns/{namespace_id}/server")
}

/// Prefix of every PKI object of a namespace.
pub fn namespace_pki_prefix(namespace_id: uuid::Uuid) -> String {
    format!("ns/{namespace_id}/")
}

/// The host naming a cell's ingress itself (used by forwards and health checks).
pub fn cell_host(cell_id: &str, base_domain: &str) -> String {
    format!("{cell_id}.cells.{base_domain}")
}

/// How long what the control plane issues is valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Lifetimes {
    pub cell_ca: Duration,
    pub agent_identity: Duration,
    pub ingress: Duration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            cell_ca: CELL_CA_VALIDITY,
            agent_identity: AGENT_IDENTITY_VALIDITY,
            ingress: INGRESS_CERT_VALIDITY,
        }
    }
}

impl Lifetimes {
    /// Every lifetime the same (tests use seconds to watch renewal happen).
    pub fn uniform(d: Duration) -> Self {
        Self {
            cell_ca: d,
            agent_identity: d,
            ingress: d,
        }
    }
}

#[derive(Clone, Debug)]
pub struct PlatformPki {
    store: Store,
    key: MasterKey,
    lifetimes: Lifetimes,
}

impl PlatformPki {
    pub fn new(store: Store, key: MasterKey) -> Self {
        Self {
            store,
            key,
            lifetimes: Lifetimes::default(),
        }
    }

    pub fn with_lifetimes(mut self, lifetimes: Lifetimes) -> Self {
        self.lifetimes = lifetimes;
        self
    }

    pub fn lifetimes(&self) -> Lifetimes {
        self.lifetimes
    }

    fn to_object(
        &self,
        id: &str,
        kind: &str,
        cell_id: Option<&str>,
        chain_pem: &str,
        key_pem: &str,
    ) -> Result<pki_object::Model, CertError> {
        let info = inspect_pem(chain_pem)?;
        let now = Utc::now();
        Ok(pki_object::Model {
            id: id.into(),
            kind: kind.into(),
            cell_id: cell_id.map(str::to_string),
            chain_pem: chain_pem.into(),
            sealed_key: self.key.seal(id, key_pem.as_bytes()),
            not_before: info.not_before,
            not_after: info.not_after,
            created_at: now,
            updated_at: now,
        })
    }

    fn open(&self, obj: &pki_object::Model) -> Result<CertificateAuthority, CertError> {
        let key = self.key.open_str(&obj.id, &obj.sealed_key)?;
        Ok(CertificateAuthority::from_pem(&obj.chain_pem, &key)?)
    }

    /// The platform root, created on first use.
    pub async fn root(&self) -> Result<CertificateAuthority, CertError> {
        if let Some(o) = self.store.pki_object("root").await? {
            return self.open(&o);
        }
        let ca = CertificateAuthority::generate_root("Tessera platform root", ROOT_VALIDITY)?;
        let obj = self.to_object("root", "root_ca", None, &ca.chain_pem, &ca.key_pem)?;
        let stored = self.store.insert_pki_object_if_absent(obj).await?;
        self.open(&stored)
    }

    /// The root's certificate, read without unsealing its key.
    pub async fn root_pem(&self) -> Result<String, CertError> {
        if let Some(o) = self.store.pki_object("root").await? {
            return Ok(o.chain_pem);
        }
        Ok(self.root().await?.cert_pem)
    }

    /// The cell's intermediate, created on first use.
    pub async fn cell_ca(&self, cell_id: &str) -> Result<CertificateAuthority, CertError> {
        let id = cell_ca_id(cell_id);
        if let Some(o) = self.store.pki_object(&id).await? {
            return self.open(&o);
        }
        let ca = self
            .root()
            .await?
            .issue_intermediate(&format!("Tessera cell {cell_id}"), self.lifetimes.cell_ca)?;
        let obj = self.to_object(&id, "cell_ca", Some(cell_id), &ca.chain_pem, &ca.key_pem)?;
        let stored = self.store.insert_pki_object_if_absent(obj).await?;
        self.open(&stored)
    }

    /// Makes sure the cell's ingress certificate covers exactly `hosts` and is not due for
    /// renewal; reissues it otherwise. Returns whether it changed.
    pub async fn ensure_ingress_cert(
        &self,
        cell_id: &str,
        hosts: &[String],
    ) -> Result<bool, CertError> {
        let id = ingress_cert_id(cell_id);
        let mut wanted: Vec<String> = hosts.to_vec();
        wanted.sort();
        wanted.dedup();
        if let Some(o) = self.store.pki_object(&id).await? {
            let current = sans_of(&o.chain_pem);
            if current == wanted && !tessera_pki::renewal_due(o.not_before, o.not_after, Utc::now())
            {
                return Ok(false);
            }
        }
        let issued = self.cell_ca(cell_id).await?.issue(
            &format!("Tessera ingress {cell_id}"),
            &wanted,
            Usage::Server,
            self.lifetimes.ingress,
        )?;
        let obj = self.to_object(
            &id,
            "ingress",
            Some(cell_id),
            &issued.chain_pem,
            &issued.key_pem,
        )?;
        self.store.replace_pki_object(obj).await?;
        Ok(true)
    }

    /// A self-signed CA kept under `id`, created on first use (the first writer wins, so
    /// retried activities agree on one CA).
    async fn stored_ca(
        &self,
        id: &str,
        kind: &str,
        common_name: &str,
        validity: Duration,
    ) -> Result<CertificateAuthority, CertError> {
        if let Some(o) = self.store.pki_object(id).await? {
            return self.open(&o);
        }
        let ca = CertificateAuthority::generate_root(common_name, validity)?;
        let obj = self.to_object(id, kind, None, &ca.chain_pem, &ca.key_pem)?;
        let stored = self.store.insert_pki_object_if_absent(obj).await?;
        self.open(&stored)
    }

    /// The CA generated for a namespace, created on first use.
    pub async fn namespace_ca(
        &self,
        namespace_id: uuid::Uuid,
        temporal_namespace: &str,
    ) -> Result<CertificateAuthority, CertError> {
        self.stored_ca(
            &namespace_ca_id(namespace_id),
            "tenant_ca",
            &format!("{temporal_namespace} client CA"),
            TENANT_CA_VALIDITY,
        )
        .await
    }

    /// The namespace's generated CA, if it has one.
    pub async fn existing_namespace_ca(
        &self,
        namespace_id: uuid::Uuid,
    ) -> Result<Option<CertificateAuthority>, CertError> {
        match self
            .store
            .pki_object(&namespace_ca_id(namespace_id))
            .await?
        {
            Some(o) => Ok(Some(self.open(&o)?)),
            None => Ok(None),
        }
    }

    /// The CA of the namespace's probe certificates, created on first use.
    pub async fn probe_ca(
        &self,
        namespace_id: uuid::Uuid,
    ) -> Result<CertificateAuthority, CertError> {
        self.stored_ca(
            &namespace_probe_ca_id(namespace_id),
            "probe_ca",
            &format!("Tessera probe {namespace_id}"),
            PROBE_CA_VALIDITY,
        )
        .await
    }

    /// A short-lived client certificate for one verification call.
    pub async fn probe_cert(&self, namespace_id: uuid::Uuid) -> Result<IssuedCert, CertError> {
        Ok(self.probe_ca(namespace_id).await?.issue(
            "tessera-probe",
            &[],
            Usage::Client,
            PROBE_CERT_VALIDITY,
        )?)
    }

    /// A leaf signed by a cell's intermediate, kept under `id`: reissued when it is missing,
    /// belongs to another cell, names other hosts, or is due for renewal. Returns whether it
    /// changed.
    async fn ensure_cell_leaf(
        &self,
        id: &str,
        kind: &str,
        cell_id: &str,
        common_name: &str,
        hosts: &[String],
        usage: Usage,
    ) -> Result<bool, CertError> {
        if let Some(o) = self.store.pki_object(id).await?
            && o.cell_id.as_deref() == Some(cell_id)
            && sans_of(&o.chain_pem) == hosts
            && !tessera_pki::renewal_due(o.not_before, o.not_after, Utc::now())
        {
            return Ok(false);
        }
        let issued = self.cell_ca(cell_id).await?.issue(
            common_name,
            hosts,
            usage,
            self.lifetimes.ingress,
        )?;
        let obj = self.to_object(id, kind, Some(cell_id), &issued.chain_pem, &issued.key_pem)?;
        self.store.replace_pki_object(obj).await?;
        Ok(true)
    }

    /// Makes sure the namespace's ingress certificate, signed by `cell_id`'s intermediate,
    /// covers `host` and is not due; reissues it otherwise. Returns whether it changed.
    pub async fn ensure_namespace_server_cert(
        &self,
        namespace_id: uuid::Uuid,
        cell_id: &str,
        host: &str,
    ) -> Result<bool, CertError> {
        self.ensure_cell_leaf(
            &namespace_server_cert_id(namespace_id),
            "namespace_server",
            cell_id,
            host,
            &[host.to_string()],
            Usage::Server,
        )
        .await
    }

    /// Renews a namespace server certificate if it is due, keeping its host and cell.
    pub async fn renew_namespace_server_cert_if_due(
        &self,
        obj: &pki_object::Model,
    ) -> Result<bool, CertError> {
        let (Some(cell), Some(host)) = (obj.cell_id.as_deref(), sans_of(&obj.chain_pem).pop())
        else {
            return Ok(false);
        };
        let hosts = [host];
        self.ensure_cell_leaf(
            &obj.id,
            "namespace_server",
            cell,
            &hosts[0],
            &hosts,
            Usage::Server,
        )
        .await
    }

    /// Replaces the cell's intermediate when it is due; leaves it otherwise. Certificates it
    /// signed stay valid (their chains carry the old intermediate) until they are renewed.
    pub async fn renew_cell_ca_if_due(&self, cell_id: &str) -> Result<bool, CertError> {
        let id = cell_ca_id(cell_id);
        let Some(o) = self.store.pki_object(&id).await? else {
            return Ok(false);
        };
        if !tessera_pki::renewal_due(o.not_before, o.not_after, Utc::now()) {
            return Ok(false);
        }
        let ca = self
            .root()
            .await?
            .issue_intermediate(&format!("Tessera cell {cell_id}"), self.lifetimes.cell_ca)?;
        let obj = self.to_object(&id, "cell_ca", Some(cell_id), &ca.chain_pem, &ca.key_pem)?;
        self.store.replace_pki_object(obj).await?;
        Ok(true)
    }

    /// The DNS names the cell's ingress certificate covers now.
    pub async fn ingress_hosts(&self, cell_id: &str) -> Result<Vec<String>, CertError> {
        Ok(self
            .store
            .pki_object(&ingress_cert_id(cell_id))
            .await?
            .map(|o| sans_of(&o.chain_pem))
            .unwrap_or_default())
    }

    /// Chain and clear key of a stored certificate (for the agent's desired state).
    pub async fn chain_and_key(&self, id: &str) -> Result<Option<(String, String)>, CertError> {
        let Some(o) = self.store.pki_object(id).await? else {
            return Ok(None);
        };
        Ok(Some((
            o.chain_pem.clone(),
            self.key.open_str(&o.id, &o.sealed_key)?,
        )))
    }

    /// Signs an agent's CSR with its cell's intermediate.
    pub async fn sign_agent(&self, cell_id: &str, csr_pem: &str) -> Result<IssuedCert, CertError> {
        Ok(self.cell_ca(cell_id).await?.sign_agent_csr(
            csr_pem,
            cell_id,
            self.lifetimes.agent_identity,
        )?)
    }

    /// Signs an edge's CSR with the root (an edge belongs to no cell).
    pub async fn sign_edge(&self, edge_id: &str, csr_pem: &str) -> Result<IssuedCert, CertError> {
        Ok(self
            .root()
            .await?
            .sign_edge_csr(csr_pem, edge_id, self.lifetimes.agent_identity)?)
    }

    /// A server certificate for the agent endpoint, issued by the root; its chain includes the
    /// root so that a joining agent can pin it.
    pub async fn agent_endpoint_cert(&self, sans: &[String]) -> Result<IssuedCert, CertError> {
        let root = self.root().await?;
        let mut issued = root.issue(
            "Tessera agent endpoint",
            sans,
            Usage::Server,
            Duration::days(90),
        )?;
        issued.chain_pem = format!("{}{}", issued.cert_pem, root.cert_pem);
        Ok(issued)
    }

    /// Id of the server certificate of a cell's synthetic canary (kind `canary_server`).
    pub fn canary_server_cert_id(cell_id: &str) -> String {
        format!("cell/{cell_id}/canary-server")
    }

    /// Id of the client certificate of a cell's synthetic canary (kind `canary_client`).
    pub fn canary_client_cert_id(cell_id: &str) -> String {
        format!("cell/{cell_id}/canary-client")
    }

    /// The SNI host of a cell's canary route: `canary.<cell>.cells.<base-domain>`.
    pub fn canary_host(cell_id: &str, base_domain: &str) -> String {
        format!("canary.{}", cell_host(cell_id, base_domain))
    }

    /// Makes sure the canary's server certificate, signed by the cell's intermediate, covers
    /// exactly `host` and is not due; reissues it otherwise. Returns whether it changed.
    pub async fn ensure_canary_server_cert(
        &self,
        cell_id: &str,
        host: &str,
    ) -> Result<bool, CertError> {
        self.ensure_cell_leaf(
            &Self::canary_server_cert_id(cell_id),
            "canary_server",
            cell_id,
            host,
            &[host.to_string()],
            Usage::Server,
        )
        .await
    }

    /// Makes sure the canary's client certificate, signed by the cell's intermediate, exists
    /// and is not due; reissues it otherwise. Returns whether it changed.
    pub async fn ensure_canary_client_cert(&self, cell_id: &str) -> Result<bool, CertError> {
        self.ensure_cell_leaf(
            &Self::canary_client_cert_id(cell_id),
            "canary_client",
            cell_id,
            &format!("tessera-canary {cell_id}"),
            &[],
            Usage::Client,
        )
        .await
    }

    /// `(chain_pem, fingerprint of the leaf)` of a stored certificate, if it exists.
    pub async fn chain_and_fingerprint(
        &self,
        id: &str,
    ) -> Result<Option<(String, String)>, CertError> {
        let Some(o) = self.store.pki_object(id).await? else {
            return Ok(None);
        };
        let certs = tessera_pki::certs_from_pem(&o.chain_pem)?;
        let fingerprint = certs
            .first()
            .map(|c| tessera_pki::fingerprint_sha256(c))
            .unwrap_or_default();
        Ok(Some((o.chain_pem, fingerprint)))
    }
}

fn sans_of(chain_pem: &str) -> Vec<String> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let Ok(certs) = tessera_pki::certs_from_pem(chain_pem) else {
        return Vec::new();
    };
    let Some(der) = certs.first() else {
        return Vec::new();
    };
    let Ok((_, c)) = X509Certificate::from_der(der) else {
        return Vec::new();
    };
    let mut out: Vec<String> = c
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some(d.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}
