//! Sealing small secrets (private keys, replayable answers) with the master key.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit};
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

    /// Opens a sealed UTF-8 text (a PEM private key).
    pub fn open_str(&self, sealed: &[u8]) -> Result<String, PkiError> {
        self.open(sealed)
            .and_then(|p| String::from_utf8(p).ok())
            .ok_or(PkiError::Unseal)
    }
}
