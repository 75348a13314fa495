//! Password hashing with Argon2id, off the async runtime and with bounded concurrency.
//!
//! Each hash holds `memory_kib` of memory and a core for tens of milliseconds, so hashes run in
//! `spawn_blocking` behind a semaphore sized to the CPU count: a login flood queues for a permit
//! instead of exhausting memory or starving the request threads. Logins of unknown users verify
//! against a dummy hash with the same parameters, so the response time does not tell whether a
//! username exists.
//!
//! Every Argon2 computation — hashing at registration and password change, verifying a login,
//! verifying the dummy hash — runs in a block array kept from the previous one, through the
//! library's caller-provided-memory API (`hash_password_into_with_memory`), instead of a fresh
//! `memory_kib` allocation per hash (which also costs a 19 MiB memset: 5.5 % of the server's CPU
//! in a login flood, `bench/analysis.md`, and leaves glibc a freed 19 MiB block to keep or give
//! back). Arrays are made on first use, not at start-up (so the idle RSS does not grow), never
//! freed, and never more than permits: a hash's permit lives in its blocking task, so a request
//! dropped mid-hash (the client hung up) does not let another hash start beside it. Before that,
//! each such drop could add a 19 MiB array for good (`bench/soak.sh`: 55 MB after a login flood
//! with one permit, two arrays). The memory hashing needs is thus `permits x memory_kib`, reused,
//! and flat under load. Only a stored hash with a larger memory cost than the configured one (from
//! before the parameters were lowered) still goes through the library, which allocates for it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use argon2::password_hash::phc::{Output, ParamsString, Salt};
use argon2::password_hash::try_generate_salt;
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, PasswordVerifier, Version};
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
    /// One per hash that may run at once. A hash's permit moves into its blocking task and is
    /// given back when the hash ends, not when the request is dropped: a client that hangs up
    /// mid-hash (every connection wrk closes at the end of a login flood) must not let a second
    /// hash start, and make a second block array, while the first still runs.
    permits: Arc<Semaphore>,
    /// The number of permits: the most block arrays ever kept.
    max_blocks: usize,
    /// Block arrays of the configured size between hashes; a hash takes one only while it holds
    /// a permit, so there are never more than permits.
    blocks: Mutex<Vec<Vec<Block>>>,
    /// Hashes waiting for a permit or running (the queue depth of the metrics): one
    /// [`Queued`] each, which lives as long as the request waits and then as long as the hash.
    queued: AtomicUsize,
    dummy_hash: String,
}

impl Inner {
    /// The PHC string of `password` with a fresh random salt, as the library's
    /// `PasswordHasher::hash_password` makes it, but computed in a kept block array.
    fn hash(&self, password: &[u8]) -> Result<String, HashError> {
        let salt = try_generate_salt().map_err(|e| HashError(format!("no random salt: {e}")))?;
        self.hash_with_salt(password, &salt)
    }

    /// [`Inner::hash`] with a given salt (the library's `hash_password_with_salt`).
    fn hash_with_salt(&self, password: &[u8], salt: &[u8]) -> Result<String, HashError> {
        let salt = Salt::new(salt).map_err(|e| HashError(e.to_string()))?;
        let params = self.argon2.params();
        let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
        self.with_blocks(|blocks| self.argon2.hash_password_into_with_memory(password, &salt, &mut output, blocks))
            .map_err(|e| HashError(e.to_string()))?;
        let hash = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(params).map_err(|e| HashError(e.to_string()))?,
            salt: Some(salt),
            hash: Some(Output::new(&output).map_err(|e| HashError(e.to_string()))?),
        };
        Ok(hash.to_string())
    }

    /// Whether `password` matches the PHC string `stored`, as [`PasswordVerifier::verify_password`]
    /// decides it (algorithm, version and parameters from the string, constant-time comparison
    /// of the output), but computed in a kept block array when the string's memory cost is at
    /// most the configured one (Argon2 uses the first `block_count` blocks of the array it is
    /// given). A string with a larger memory cost (from before the parameters were lowered)
    /// goes through the library, which allocates for it.
    fn verify(&self, password: &[u8], stored: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(stored) else {
            return false;
        };
        let Ok(params) = Params::try_from(&parsed) else {
            return false;
        };
        if params.block_count() > self.argon2.params().block_count() {
            return self.argon2.verify_password(password, &parsed).is_ok();
        }
        let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
            return false;
        };
        let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
            return false;
        };
        let Ok(version) = parsed.version.map(Version::try_from).transpose() else {
            return false;
        };
        let hasher = Argon2::new(algorithm, version.unwrap_or_default(), params);
        let mut output = [0u8; Output::MAX_LENGTH];
        let Some(output) = output.get_mut(..expected.len()) else {
            return false;
        };
        let computed = self.with_blocks(|blocks| hasher.hash_password_into_with_memory(password, salt, output, blocks));
        computed.is_ok() && Output::new(output).is_ok_and(|computed| computed == *expected)
    }

    /// Runs `f` on a block array of the configured size: a kept one, or a new one that is kept
    /// afterwards. Argon2 writes every block it uses before reading it, so what a previous hash
    /// left there does not matter. Called only while holding a permit, so no more arrays are
    /// ever made than permits.
    fn with_blocks<T>(&self, f: impl FnOnce(&mut [Block]) -> T) -> T {
        let kept = self.blocks.lock().ok().and_then(|mut kept| kept.pop());
        let mut blocks = kept.unwrap_or_else(|| vec![Block::new(); self.argon2.params().block_count()]);
        let result = f(&mut blocks);
        if let Ok(mut kept) = self.blocks.lock()
            && kept.len() < self.max_blocks
        {
            kept.push(blocks);
        }
        result
    }
}

/// One hash counted in [`Inner::queued`] until dropped: with the request while it waits for a
/// permit, then with the blocking task (even if the request goes away).
struct Queued(Arc<Inner>);

impl Queued {
    fn new(inner: &Arc<Inner>) -> Self {
        inner.queued.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(inner))
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.0.queued.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A PHC string with `params`, a random salt and a random output: verifying any password
/// against it costs exactly one hash with `params` (what a known user's login costs) and never
/// succeeds, and making it costs no hash, so start-up neither waits for one nor frees a block
/// array (see the module documentation for why freeing one matters).
fn dummy_hash(params: &Params) -> anyhow::Result<String> {
    let mut random = [0u8; Salt::RECOMMENDED_LENGTH + Params::DEFAULT_OUTPUT_LEN];
    getrandom::fill(&mut random).map_err(|e| anyhow::anyhow!("no random bytes: {e}"))?;
    let (salt, output) = random.split_at(Salt::RECOMMENDED_LENGTH);
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|e| anyhow::anyhow!("{e}"))?,
        salt: Some(Salt::new(salt).map_err(|e| anyhow::anyhow!("{e}"))?),
        hash: Some(Output::new(output).map_err(|e| anyhow::anyhow!("{e}"))?),
    };
    Ok(hash.to_string())
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
    /// A hasher with `settings`. Allocates no block array: the first hash makes the first one.
    pub fn new(settings: &Argon2Settings) -> anyhow::Result<Self> {
        let params = Params::new(settings.memory_kib, settings.iterations, settings.parallelism, None)
            .map_err(|e| anyhow::anyhow!("invalid Argon2 parameters: {e}"))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let concurrency =
            settings.concurrency.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from)).max(1);
        let dummy_hash = dummy_hash(argon2.params()).context("making the dummy hash")?;
        Ok(Self {
            inner: Arc::new(Inner {
                argon2,
                permits: Arc::new(Semaphore::new(concurrency)),
                max_blocks: concurrency,
                blocks: Mutex::new(Vec::new()),
                queued: AtomicUsize::new(0),
                dummy_hash,
            }),
        })
    }

    /// The PHC string of `password` with a fresh random salt.
    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let password = password.expose().to_owned();
        self.blocking(move |inner| inner.hash(password.as_bytes())).await?
    }

    /// Whether `password` matches `hash`. With no hash (unknown user) it verifies against the
    /// dummy hash, taking the same time, and answers `false`. A malformed stored hash is `false`.
    pub async fn verify(&self, hash: Option<&str>, password: &str) -> Result<bool, HashError> {
        let known = hash.is_some();
        let hash = hash.map(str::to_owned);
        let password = password.to_owned();
        self.blocking(move |inner| {
            let stored = hash.as_deref().unwrap_or(&inner.dummy_hash);
            inner.verify(password.as_bytes(), stored) && known
        })
        .await
    }

    /// Hashes waiting for a hashing slot or running in one.
    pub fn queue_depth(&self) -> usize {
        self.inner.queued.load(Ordering::Relaxed)
    }

    /// Hashes that may run at once.
    pub fn slots(&self) -> usize {
        self.inner.max_blocks
    }

    async fn blocking<T: Send + 'static>(&self, f: impl FnOnce(&Inner) -> T + Send + 'static) -> Result<T, HashError> {
        let queued = Queued::new(&self.inner);
        let permit = Arc::clone(&self.inner.permits).acquire_owned().await.map_err(|e| HashError(e.to_string()))?;
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let result = f(&inner);
            drop(permit);
            drop(queued);
            result
        })
        .await
        .map_err(|e| HashError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use argon2::PasswordHasher;

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

    /// `Inner::verify` answers what the library's `verify_password` answers, whether it computes in
    /// a kept block array (the configured memory cost or less) or lets the library allocate (more).
    #[test]
    fn verification_agrees_with_the_library() {
        let passwords = cheap();
        let inner = &passwords.inner;
        let phc = |algorithm, version, m_cost, t_cost, output_len| {
            let params = Params::new(m_cost, t_cost, 1, output_len).unwrap();
            Argon2::new(algorithm, version, params).hash_password(b"password123").unwrap().to_string()
        };
        let configured = phc(Algorithm::Argon2id, Version::V0x13, 1024, 1, None);
        let mut tampered = configured.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        let stored = [
            configured.clone(),
            phc(Algorithm::Argon2id, Version::V0x13, 1024, 2, Some(16)),
            phc(Algorithm::Argon2i, Version::V0x13, 1024, 1, Some(64)),
            phc(Algorithm::Argon2d, Version::V0x10, 1024, 1, None),
            phc(Algorithm::Argon2id, Version::V0x13, 2048, 1, None),
            phc(Algorithm::Argon2id, Version::V0x13, 512, 1, None),
            tampered,
            configured.rsplit_once('$').unwrap().0.to_owned(),
            "not a phc string".to_owned(),
        ];
        for stored in &stored {
            for password in [b"password123".as_slice(), b"password124", b""] {
                let library = PasswordHash::new(stored)
                    .is_ok_and(|parsed| inner.argon2.verify_password(password, &parsed).is_ok());
                assert_eq!(inner.verify(password, stored), library, "{stored}");
            }
        }
        assert!(inner.verify(b"password123", &configured));
        assert_eq!(inner.blocks.lock().unwrap().len(), 1);
    }

    /// A request dropped mid-hash (the client hung up) keeps its permit until its hash ends, so
    /// the next hash cannot start beside it and make a second block array.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_request_keeps_its_permit_until_its_hash_ends() {
        let passwords =
            Passwords::new(&Argon2Settings { memory_kib: 8192, iterations: 4, parallelism: 1, concurrency: Some(1) })
                .unwrap();
        for _ in 0..20 {
            let dropped =
                tokio::time::timeout(std::time::Duration::from_millis(1), passwords.verify(None, "password123"));
            assert!(dropped.await.is_err(), "the hash should outlast 1 ms");
        }
        assert!(!passwords.verify(None, "password123").await.unwrap());
        assert_eq!(passwords.inner.blocks.lock().unwrap().len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_block_arrays_are_kept_than_permits() {
        let passwords = cheap();
        let hash = passwords.hash(&Password::parse("password123").unwrap()).await.unwrap();
        let checks: Vec<_> = (0..8)
            .map(|i| {
                let (passwords, hash) = (passwords.clone(), hash.clone());
                tokio::spawn(async move {
                    let password = if i % 2 == 0 { "password123" } else { "password124" };
                    passwords.verify(Some(&hash), password).await.unwrap() == (i % 2 == 0)
                })
            })
            .collect();
        for check in checks {
            assert!(check.await.unwrap());
        }
        let kept = passwords.inner.blocks.lock().unwrap().len();
        assert!((1..=2).contains(&kept), "{kept}");
    }

    /// `Inner::hash_with_salt` makes exactly the library's PHC string, in a kept block array.
    #[test]
    fn hashing_agrees_with_the_library_and_keeps_its_block_array() {
        let passwords = cheap();
        let inner = &passwords.inner;
        let salt = [42u8; 16];
        for password in [b"password123".as_slice(), b"", "p\u{e4}ssw\u{f6}rd".as_bytes()] {
            let library = inner.argon2.hash_password_with_salt(password, &salt).unwrap().to_string();
            assert_eq!(inner.hash_with_salt(password, &salt).unwrap(), library);
        }
        assert_eq!(inner.blocks.lock().unwrap().len(), 1);
        let hash = inner.hash(b"password123").unwrap();
        assert_ne!(hash, inner.hash(b"password123").unwrap(), "a fresh salt each time");
        assert!(inner.verify(b"password123", &hash));
        assert_eq!(inner.blocks.lock().unwrap().len(), 1);
    }

    /// The dummy hash has the configured parameters (so verifying against it costs what a real
    /// login costs, in the kept array) and no password verifies against it.
    #[test]
    fn the_dummy_hash_costs_a_configured_hash() {
        let passwords = cheap();
        let inner = &passwords.inner;
        assert!(inner.dummy_hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{}", inner.dummy_hash);
        let parsed = PasswordHash::new(&inner.dummy_hash).unwrap();
        assert_eq!(Params::try_from(&parsed).unwrap().block_count(), inner.argon2.params().block_count());
        assert!(inner.blocks.lock().unwrap().is_empty(), "no array before the first hash");
        assert!(!inner.verify(b"keycard dummy password for unknown users", &inner.dummy_hash));
        assert_eq!(inner.blocks.lock().unwrap().len(), 1);
    }

    /// The queue depth counts the hashes waiting for the one slot and the one running, and
    /// comes back to zero, also for requests dropped while they wait.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_queue_depth_counts_waiting_and_running_hashes() {
        let passwords =
            Passwords::new(&Argon2Settings { memory_kib: 8192, iterations: 4, parallelism: 1, concurrency: Some(1) })
                .unwrap();
        assert_eq!((passwords.queue_depth(), passwords.slots()), (0, 1));
        let checks: Vec<_> = (0..4)
            .map(|_| {
                let passwords = passwords.clone();
                tokio::spawn(async move { passwords.verify(None, "password123").await })
            })
            .collect();
        let dropped = tokio::time::timeout(std::time::Duration::from_millis(1), passwords.verify(None, "x"));
        assert!(dropped.await.is_err());
        let mut deepest = 0;
        for _ in 0..200 {
            deepest = deepest.max(passwords.queue_depth());
            if deepest >= 4 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        assert!(deepest >= 4, "queue depth seen: {deepest}");
        for check in checks {
            assert!(!check.await.unwrap().unwrap());
        }
        assert_eq!(passwords.queue_depth(), 0);
    }

    #[test]
    fn default_parameters_are_owasps() {
        let s = Argon2Settings::default();
        assert_eq!((s.memory_kib, s.iterations, s.parallelism), (19_456, 2, 1));
        assert!(Passwords::new(&Argon2Settings { memory_kib: 1, ..s }).is_err());
    }
}
