//! Password hashing with Argon2id, off the async runtime's threads.

use argon2::Argon2;
use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};

use std::sync::OnceLock;

use crate::error::{ApiError, ApiResult};

/// A hash of a random password, made once with the same parameters as real ones.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(SaltString::generate(&mut OsRng).as_str().as_bytes(), &salt)
            .expect("hashing a random password")
            .to_string()
    })
}

/// Spends what verifying a password costs, and fails: for a login whose email is unknown (or
/// has no password), so that the answer's timing does not tell which emails have accounts.
pub async fn verify_nothing(password: String) -> ApiResult<bool> {
    let dummy = tokio::task::spawn_blocking(|| dummy_hash().to_string())
        .await
        .map_err(ApiError::internal)?;
    verify(password, dummy).await.map(|_| false)
}

pub async fn hash(password: String) -> ApiResult<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(ApiError::internal)
    })
    .await
    .map_err(ApiError::internal)?
}

pub async fn verify(password: String, stored: String) -> ApiResult<bool> {
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&stored).map_err(ApiError::internal)?;
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .map_err(ApiError::internal)?
}
