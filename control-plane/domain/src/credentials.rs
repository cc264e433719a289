//! Bearer credentials: API key tokens, session and invitation tokens.
//!
//! Only a SHA-256 digest of a secret is ever stored; the clear token is shown once. API key
//! tokens embed the key id so a lookup is one indexed read followed by a constant-time compare.

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

const API_KEY_PREFIX: &str = "tsk_";
const SECRET_BYTES: usize = 24;

/// Hex SHA-256 digest of a secret, the only form in which secrets are stored.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The anti-CSRF token of a console session: derived from the session secret, so it needs no
/// storage, cannot be guessed without the (HttpOnly) cookie, and dies with the session.
pub fn csrf_token(session_secret: &str) -> String {
    digest(&format!("csrf:{session_secret}"))
}

/// Constant-time comparison of a presented secret against a stored digest.
pub fn verify_digest(secret: &str, stored_digest: &str) -> bool {
    digest(secret)
        .as_bytes()
        .ct_eq(stored_digest.as_bytes())
        .into()
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// An API key token: `tsk_<key id, 32 hex>_<secret, 48 hex>`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyToken {
    pub key_id: Uuid,
    pub secret: String,
}

tessera_api::debug_without_secrets!(ApiKeyToken { key_id });

impl ApiKeyToken {
    pub fn generate(key_id: Uuid) -> Self {
        Self {
            key_id,
            secret: random_hex(SECRET_BYTES),
        }
    }

    pub fn parse(token: &str) -> Option<Self> {
        let rest = token.strip_prefix(API_KEY_PREFIX)?;
        let (id, secret) = rest.split_once('_')?;
        if id.len() != 32 || secret.len() != SECRET_BYTES * 2 {
            return None;
        }
        if !secret.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let key_id = Uuid::try_parse(id).ok()?;
        Some(Self {
            key_id,
            secret: secret.to_string(),
        })
    }

    pub fn secret_digest(&self) -> String {
        digest(&self.secret)
    }

    pub fn expose(&self) -> String {
        format!("{API_KEY_PREFIX}{}_{}", self.key_id.simple(), self.secret)
    }
}

/// An opaque random token (sessions, invitations, the platform-admin token).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretToken(pub String);

impl std::fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretToken(..)")
    }
}

impl SecretToken {
    pub fn generate(prefix: &str) -> Self {
        Self(format!("{prefix}{}", random_hex(32)))
    }

    pub fn digest(&self) -> String {
        digest(&self.0)
    }
}

/// A one-time join token for a cell agent: `tjt_<secret, 48 hex>_<root CA SHA-256, 64 hex>`.
/// The agent pins the platform root by that fingerprint when it first dials the agent
/// endpoint (it has no trust anchor yet), as `kubeadm join --discovery-token-ca-cert-hash` does.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinToken {
    secret: String,
    pub root_fingerprint: String,
    /// The agent endpoint to dial (`https://host:port`), when the token carries it.
    pub control_plane: Option<String>,
}

// The secret stays out of logs.
impl std::fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinToken")
            .field("root_fingerprint", &self.root_fingerprint)
            .field("control_plane", &self.control_plane)
            .finish_non_exhaustive()
    }
}

const JOIN_TOKEN_PREFIX: &str = "tjt_";
/// The longest agent-endpoint URL a token carries.
const MAX_URL_BYTES: usize = 512;

impl JoinToken {
    /// A token pinning the platform root; with `control_plane`, it also tells the agent where
    /// to dial (`tjt_<secret>_<root sha256>_<hex url>`), so that `cell-agent join --token` is
    /// all a customer's host needs.
    pub fn generate(root_fingerprint: &str, control_plane: Option<&str>) -> Self {
        Self {
            secret: random_hex(SECRET_BYTES),
            root_fingerprint: root_fingerprint.to_ascii_lowercase(),
            control_plane: control_plane.map(|u| u.trim_end_matches('/').to_string()),
        }
    }

    pub fn parse(token: &str) -> Option<Self> {
        let rest = token.trim().strip_prefix(JOIN_TOKEN_PREFIX)?;
        let mut parts = rest.splitn(3, '_');
        let (secret, fp) = (parts.next()?, parts.next()?);
        let hex_of = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
        if !(hex_of(secret, SECRET_BYTES * 2) && hex_of(fp, 64)) {
            return None;
        }
        let control_plane = match parts.next() {
            None => None,
            Some(h) if h.len() <= MAX_URL_BYTES * 2 => {
                let url = String::from_utf8(hex::decode(h).ok()?).ok()?;
                if !url.starts_with("https://") {
                    return None;
                }
                Some(url)
            }
            Some(_) => return None,
        };
        Some(Self {
            secret: secret.to_ascii_lowercase(),
            root_fingerprint: fp.to_ascii_lowercase(),
            control_plane,
        })
    }

    /// What is stored: the digest of the secret part.
    pub fn digest(&self) -> String {
        digest(&self.secret)
    }

    pub fn expose(&self) -> String {
        let url = self
            .control_plane
            .as_ref()
            .map(|u| format!("_{}", hex::encode(u)))
            .unwrap_or_default();
        format!(
            "{JOIN_TOKEN_PREFIX}{}_{}{url}",
            self.secret, self.root_fingerprint
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_token_round_trips_and_rejects_garbage() {
        let fp = "ab".repeat(32);
        let t = JoinToken::generate(&fp, None);
        let parsed = JoinToken::parse(&t.expose()).unwrap();
        assert_eq!(parsed, t);
        assert_eq!(parsed.root_fingerprint, fp);
        assert_eq!(parsed.digest().len(), 64);
        assert_eq!(parsed.control_plane, None);
        // With the agent endpoint to dial.
        let t = JoinToken::generate(&fp, Some("https://cp.example.com:8443/"));
        let parsed = JoinToken::parse(&t.expose()).unwrap();
        assert_eq!(
            parsed.control_plane.as_deref(),
            Some("https://cp.example.com:8443")
        );
        assert_eq!(parsed.digest(), t.digest());
        let plain = format!("tjt_{}_{fp}", "a".repeat(SECRET_BYTES * 2));
        assert!(JoinToken::parse(&format!("{plain}_{}", hex::encode("http://x"))).is_none());
        assert!(JoinToken::parse(&format!("{plain}_zz")).is_none());
        assert!(JoinToken::parse("tjt_abc_def").is_none());
        assert!(JoinToken::parse(&t.expose().replace("tjt_", "tsk_")).is_none());
    }

    #[test]
    fn api_key_token_round_trips() {
        let id = Uuid::now_v7();
        let t = ApiKeyToken::generate(id);
        let s = t.expose();
        assert!(s.starts_with("tsk_"));
        let back = ApiKeyToken::parse(&s).unwrap();
        assert_eq!(back, t);
        assert!(verify_digest(&back.secret, &t.secret_digest()));
        assert!(!verify_digest("nope", &t.secret_digest()));
    }

    #[test]
    fn malformed_tokens_are_rejected() {
        let good = ApiKeyToken::generate(Uuid::now_v7()).expose();
        for bad in [
            "",
            "tsk_",
            "Bearer x",
            &good[..good.len() - 1],
            &good.replace("tsk_", "tsx_"),
            &format!("{good}0"),
            &format!("tsk_{}_{}", "z".repeat(32), "a".repeat(48)),
            &format!("tsk_{}_{}", Uuid::now_v7().simple(), "g".repeat(48)),
        ] {
            assert!(ApiKeyToken::parse(bad).is_none(), "{bad}");
        }
    }
}
