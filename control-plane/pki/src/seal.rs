//! Sealing small secrets (private keys, replayable answers) with the master key.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

use crate::PkiError;

/// Seals and opens small secrets (XChaCha20-Poly1305) with the master key.
#[derive(Clone)]
pub struct MasterKey(XChaCha20Poly1305);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// A new random key, base64-encoded (the form `TESSERA_MASTER_KEY` takes).
    pub fn generate_base64() -> String {
        let mut k = [0u8; 32];
        rand::rng().fill_bytes(&mut k);
        B64.encode(k)
    }

    /// From the base64 of 32 bytes.
    pub fn from_base64(encoded: &str) -> Result<Self, PkiError> {
        let bytes = B64
            .decode(encoded.trim().as_bytes())
            .map_err(|e| PkiError::Pem(format!("master key is not base64: {e}")))?;
        if bytes.len() != 32 {
            return Err(PkiError::Pem(format!(
                "master key must be 32 bytes, got {}",
                bytes.len()
            )));
        }
        Ok(Self(
            XChaCha20Poly1305::new_from_slice(&bytes).expect("32-byte key"),
        ))
    }

    /// Seals `plain` for the record named `bound_to` (its id): the name is authenticated with
    /// the value (associated data), so a sealed value copied to another record does not open.
    /// Layout: version byte 2, 24-byte nonce, ciphertext and tag.
    pub fn seal(&self, bound_to: &str, plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; 24];
        rand::rng().fill_bytes(&mut nonce);
        let mut out = vec![BOUND];
        out.extend_from_slice(&nonce);
        out.extend(
            self.0
                .encrypt(
                    XNonce::from_slice(&nonce),
                    Payload {
                        msg: plain,
                        aad: bound_to.as_bytes(),
                    },
                )
                .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers"),
        );
        out
    }

    /// Opens what [`MasterKey::seal`] sealed for `bound_to`. Values sealed before records were
    /// bound (nonce and ciphertext only) still open, until they are sealed again.
    pub fn open(&self, bound_to: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        if let Some((&BOUND, rest)) = sealed.split_first()
            && rest.len() >= 24
        {
            let (nonce, ct) = rest.split_at(24);
            let payload = Payload {
                msg: ct,
                aad: bound_to.as_bytes(),
            };
            if let Ok(plain) = self.0.decrypt(XNonce::from_slice(nonce), payload) {
                return Some(plain);
            }
        }
        if sealed.len() < 24 {
            return None;
        }
        let (nonce, ct) = sealed.split_at(24);
        self.0.decrypt(XNonce::from_slice(nonce), ct).ok()
    }

    /// Opens a sealed UTF-8 text (a PEM private key).
    pub fn open_str(&self, bound_to: &str, sealed: &[u8]) -> Result<String, PkiError> {
        self.open(bound_to, sealed)
            .and_then(|p| String::from_utf8(p).ok())
            .ok_or(PkiError::Unseal)
    }
}

/// First byte of a value sealed for a named record.
const BOUND: u8 = 2;
