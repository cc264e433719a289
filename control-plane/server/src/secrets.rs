//! Secrets on disk: the master key, the platform-admin token, and sealing with the master key.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use tessera_domain::SecretToken;

pub use tessera_pki::MasterKey;

/// The master key from `TESSERA_MASTER_KEY` (base64 of 32 bytes) or `<data-dir>/master.key`,
/// created on first start with mode 0600.
pub fn load_master_key(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<MasterKey> {
    let encoded = match configured {
        Some(k) => k.trim().to_string(),
        None => read_or_create_secret(&data_dir.join("master.key"), MasterKey::generate_base64)?,
    };
    Ok(MasterKey::from_base64(&encoded)?)
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
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD as B64;

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

        let k = load_master_key(None, dir.path()).unwrap();
        let sealed = k.seal("row-1", b"hello");
        assert_ne!(&sealed[24..], b"hello");
        let again = load_master_key(None, dir.path()).unwrap();
        assert_eq!(again.open("row-1", &sealed).unwrap(), b"hello");
        let other = load_master_key(Some(&B64.encode([7u8; 32])), dir.path()).unwrap();
        assert!(other.open("row-1", &sealed).is_none());
        assert!(load_master_key(Some("short"), dir.path()).is_err());
    }
}
