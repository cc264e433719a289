//! The cell's identity on disk: key (mode 0600), certificate chain, platform root, and who we are.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `agent.json`: which cell this directory belongs to and where its control plane is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Membership {
    /// The cell's id; for an edge (`tessera-edge`), the edge's.
    pub cell_id: String,
    pub region: String,
    pub ring: u32,
    pub control_plane: String,
}

#[derive(Clone)]
pub struct Identity {
    pub membership: Membership,
    pub chain_pem: String,
    pub key_pem: String,
    pub root_ca_pem: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("membership", &self.membership)
            .finish_non_exhaustive()
    }
}

fn paths(dir: &Path) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    let id = dir.join("identity");
    (
        dir.join("agent.json"),
        id.join("chain.pem"),
        id.join("key.pem"),
        id.join("root-ca.pem"),
    )
}

/// Writes `data` to `path` atomically (temp file + rename) with `mode`.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    fs::rename(&tmp, path)
}

impl Identity {
    pub fn exists(dir: &Path) -> bool {
        let (m, c, k, r) = paths(dir);
        m.exists() && c.exists() && k.exists() && r.exists()
    }

    pub fn load(dir: &Path) -> crate::Result<Self> {
        let (m, c, k, r) = paths(dir);
        let read = |p: &Path| {
            fs::read_to_string(p).with_context(|| {
                format!(
                    "reading {} (has this cell joined? run `cell-agent join`)",
                    p.display()
                )
            })
        };
        Ok(Self {
            membership: serde_json::from_str(&read(&m)?)?,
            chain_pem: read(&c)?,
            key_pem: read(&k)?,
            root_ca_pem: read(&r)?,
        })
    }

    /// Saves key first, then chain, then membership last: a crash leaves no half identity that
    /// `exists` would accept.
    pub fn save(&self, dir: &Path) -> crate::Result<()> {
        let (m, c, k, r) = paths(dir);
        write_atomic(&k, self.key_pem.as_bytes(), 0o600)?;
        write_atomic(&c, self.chain_pem.as_bytes(), 0o644)?;
        write_atomic(&r, self.root_ca_pem.as_bytes(), 0o644)?;
        write_atomic(&m, &serde_json::to_vec_pretty(&self.membership)?, 0o644)?;
        Ok(())
    }

    pub fn not_before_after(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        tessera_pki::inspect_pem(&self.chain_pem)
            .ok()
            .map(|i| (i.not_before, i.not_after))
    }

    /// A rustls client config that trusts only the platform root and presents this identity.
    pub fn client_tls(&self) -> crate::Result<rustls::ClientConfig> {
        let roots = tessera_pki::roots_from_pem(&self.root_ca_pem)?;
        let chain = tessera_pki::certs_from_pem(&self.chain_pem)?;
        let key = tessera_pki::key_from_pem(&self.key_pem)?;
        Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?)
    }
}
