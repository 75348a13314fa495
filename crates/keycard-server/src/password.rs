//! Password hashing with Argon2id, off the async runtime and with bounded concurrency.
//!
//! Each hash holds `memory_kib` of memory and a core for tens of milliseconds, so hashes run in
//! `spawn_blocking` behind a semaphore sized to the CPU count: a login flood queues for a permit
//! instead of exhausting memory or starving the request threads. Logins of unknown users verify
//! against a dummy hash made with the same parameters, so the response time does not tell
//! whether a username exists.

use std::sync::Arc;

use anyhow::Context;
use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
use keycard_store::Password;
use tokio::sync::Semaphore;

use crate::settings::Argon2Settings;

/// Hashes and verifies passwords.
#[derive(Clone)]
pub struct Passwords {
    inner: Arc<Inner>,
}

struct Inner {
    argon2: Argon2<'static>,
    permits: Semaphore,
    dummy_hash: String,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords").field("params", self.inner.argon2.params()).finish()
    }
}

/// Hashing failed (bad parameters or a runtime fault); never a wrong password.
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

impl Passwords {
    /// A hasher with `settings`; computes the dummy hash, so it takes one hash's time.
    pub fn new(settings: &Argon2Settings) -> anyhow::Result<Self> {
        let params = Params::new(settings.memory_kib, settings.iterations, settings.parallelism, None)
            .map_err(|e| anyhow::anyhow!("invalid Argon2 parameters: {e}"))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let concurrency =
            settings.concurrency.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from)).max(1);
        let dummy_hash = argon2
            .hash_password(b"keycard dummy password for unknown users")
            .map_err(|e| anyhow::anyhow!("computing the dummy hash: {e}"))
            .context("checking the Argon2 parameters")?
            .to_string();
        Ok(Self { inner: Arc::new(Inner { argon2, permits: Semaphore::new(concurrency), dummy_hash }) })
    }

    /// The PHC string of `password` with a fresh random salt.
    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let password = password.expose().to_owned();
        self.blocking(move |inner| {
            inner.argon2.hash_password(password.as_bytes()).map(|h| h.to_string()).map_err(|e| HashError(e.to_string()))
        })
        .await?
    }

    /// Whether `password` matches `hash`. With no hash (unknown user) it verifies against the
    /// dummy hash, taking the same time, and answers `false`. A malformed stored hash is `false`.
    pub async fn verify(&self, hash: Option<&str>, password: &str) -> Result<bool, HashError> {
        let known = hash.is_some();
        let hash = hash.map(str::to_owned);
        let password = password.to_owned();
        self.blocking(move |inner| {
            let stored = hash.as_deref().unwrap_or(&inner.dummy_hash);
            let matches = PasswordHash::new(stored)
                .is_ok_and(|parsed| inner.argon2.verify_password(password.as_bytes(), &parsed).is_ok());
            matches && known
        })
        .await
    }

    async fn blocking<T: Send + 'static>(&self, f: impl FnOnce(&Inner) -> T + Send + 'static) -> Result<T, HashError> {
        let _permit = self.inner.permits.acquire().await.map_err(|e| HashError(e.to_string()))?;
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&inner)).await.map_err(|e| HashError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Passwords {
        Passwords::new(&Argon2Settings { memory_kib: 1024, iterations: 1, parallelism: 1, concurrency: Some(2) })
            .unwrap()
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let passwords = cheap();
        let hash = passwords.hash(&Password::parse("correct horse battery").unwrap()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{hash}");
        assert!(passwords.verify(Some(&hash), "correct horse battery").await.unwrap());
        assert!(!passwords.verify(Some(&hash), "correct horse batterz").await.unwrap());
        assert!(!passwords.verify(Some("not a phc string"), "x").await.unwrap());
    }

    #[tokio::test]
    async fn unknown_users_never_verify_even_with_the_dummy_password() {
        let passwords = cheap();
        assert!(!passwords.verify(None, "keycard dummy password for unknown users").await.unwrap());
    }

    #[tokio::test]
    async fn the_stored_parameters_are_used_for_verification() {
        let hash = cheap().hash(&Password::parse("password123").unwrap()).await.unwrap();
        let other =
            Passwords::new(&Argon2Settings { memory_kib: 2048, iterations: 2, parallelism: 1, concurrency: None })
                .unwrap();
        assert!(other.verify(Some(&hash), "password123").await.unwrap());
    }

    #[test]
    fn default_parameters_are_owasps() {
        let s = Argon2Settings::default();
        assert_eq!((s.memory_kib, s.iterations, s.parallelism), (19_456, 2, 1));
        assert!(Passwords::new(&Argon2Settings { memory_kib: 1, ..s }).is_err());
    }
}
