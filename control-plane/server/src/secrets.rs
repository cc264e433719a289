//! Secrets on disk: the master key, the platform-admin token, and sealing with the master key.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use tessera_domain::SecretToken;

/// Seals and opens small secrets (XChaCha20-Poly1305) with the master key.
#[derive(Clone)]
pub struct MasterKey(XChaCha20Poly1305);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// From `TESSERA_MASTER_KEY` (base64 of 32 bytes) or `<data-dir>/master.key`, created on
    /// first start with mode 0600.
    pub fn load(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<Self> {
        let encoded = match configured {
            Some(k) => k.trim().to_string(),
            None => {
                let path = data_dir.join("master.key");
                read_or_create_secret(&path, || {
                    let mut k = [0u8; 32];
                    rand::rng().fill_bytes(&mut k);
                    B64.encode(k)
                })?
            }
        };
        let bytes = B64
            .decode(encoded.as_bytes())
            .map_err(|e| anyhow::anyhow!("master key is not base64: {e}"))?;
        anyhow::ensure!(
            bytes.len() == 32,
            "master key must be 32 bytes, got {}",
            bytes.len()
        );
        Ok(Self(
            XChaCha20Poly1305::new_from_slice(&bytes).map_err(|e| anyhow::anyhow!("{e}"))?,
        ))
    }

    pub fn seal(&self, plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; 24];
        rand::rng().fill_bytes(&mut nonce);
        let mut out = nonce.to_vec();
        out.extend(
            self.0
                .encrypt(XNonce::from_slice(&nonce), plain)
                .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers"),
        );
        out
    }

    pub fn open(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < 24 {
            return None;
        }
        let (nonce, ct) = sealed.split_at(24);
        self.0.decrypt(XNonce::from_slice(nonce), ct).ok()
    }
}

/// The platform-admin token, created at first start in `<data-dir>/admin-token` (mode 0600).
pub fn admin_token(data_dir: &Path) -> anyhow::Result<SecretToken> {
    let path = data_dir.join("admin-token");
    Ok(SecretToken(read_or_create_secret(&path, || {
        SecretToken::generate("tadm_").0
    })?))
}

fn read_or_create_secret(path: &Path, make: impl FnOnce() -> String) -> anyhow::Result<String> {
    match fs::read_to_string(path) {
        Ok(s) => {
            let mode = fs::metadata(path)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
            }
            Ok(s.trim().to_string())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let value = make();
            let tmp = path.with_extension("tmp");
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(value.as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            fs::rename(&tmp, path)?;
            Ok(value)
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let t1 = admin_token(dir.path()).unwrap();
        let t2 = admin_token(dir.path()).unwrap();
        assert_eq!(t1, t2);
        let mode = fs::metadata(dir.path().join("admin-token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        let k = MasterKey::load(None, dir.path()).unwrap();
        let sealed = k.seal(b"hello");
        assert_ne!(&sealed[24..], b"hello");
        let again = MasterKey::load(None, dir.path()).unwrap();
        assert_eq!(again.open(&sealed).unwrap(), b"hello");
        let other = MasterKey::load(Some(&B64.encode([7u8; 32])), dir.path()).unwrap();
        assert!(other.open(&sealed).is_none());
        assert!(MasterKey::load(Some("short"), dir.path()).is_err());
    }
}
