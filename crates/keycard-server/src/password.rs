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
//!
//! Hashes imported from Flask (werkzeug scrypt and PBKDF2, bcrypt; see [`legacy`]) are verified
//! here too, in the same blocking pool under the same permits, and [`Passwords::verify_login`]
//! replaces one by an Argon2id hash as soon as its password has been verified. Those allocate
//! their own memory (at most 64 MiB for scrypt, 256 MiB for an imported Argon2id string with a
//! larger memory cost than the configured one: the bounds of [`legacy`]), one per permit at most,
//! and only until the account's first login.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use argon2::password_hash::phc::{Output, ParamsString, Salt};
use argon2::password_hash::try_generate_salt;
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, PasswordVerifier, Version};
use keycard_store::{Credentials, Password, Store, Username};
use tokio::sync::Semaphore;

use crate::settings::Argon2Settings;

pub mod legacy;

pub use legacy::{HashFormatError, Recognised, Scheme, recognise};

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

/// Why [`Passwords::verify_login`] could not decide (never a wrong password, which is `false`).
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Hashing failed.
    #[error(transparent)]
    Hash(#[from] HashError),
    /// The database failed (reading the account again, or replacing an imported hash: the
    /// login fails closed).
    #[error(transparent)]
    Store(#[from] keycard_store::StoreError),
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

    /// Whether `password` (NFKC-normalised, see [`Password::normalize`]) matches `hash`, in any
    /// stored format keycard understands (Argon2id, or an imported werkzeug or bcrypt hash).
    /// With no hash (unknown user) it verifies against the dummy hash, taking the same time, and
    /// answers `false`. A malformed stored hash is `false`.
    pub async fn verify(&self, hash: Option<&str>, password: &str) -> Result<bool, HashError> {
        self.check(hash, password, password).await
    }

    /// [`Passwords::verify`] with the password both as typed and normalised: an imported hash
    /// was made by Flask from the password as typed (werkzeug and bcrypt normalise nothing), so it
    /// is tried with that first, then with the normalised form if that differs. Argon2id hashes
    /// are keycard's and always of the normalised form.
    async fn check(&self, hash: Option<&str>, typed: &str, normalized: &str) -> Result<bool, HashError> {
        let known = hash.is_some();
        let hash = hash.map(str::to_owned);
        let (typed, normalized) = (typed.to_owned(), normalized.to_owned());
        self.blocking(move |inner| {
            let stored = hash.as_deref().unwrap_or(&inner.dummy_hash);
            let matched = match legacy::recognise(stored) {
                Ok(Recognised::Foreign(foreign)) => {
                    foreign.verify(typed.as_bytes()) || (typed != normalized && foreign.verify(normalized.as_bytes()))
                }
                // Argon2id (ours may exceed the import bounds) or malformed (false).
                Ok(Recognised::Argon2id) | Err(_) => inner.verify(normalized.as_bytes(), stored),
            };
            matched && known
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

    /// The login check: whether `password` (as typed) matches the account's stored hash; with
    /// no account, the dummy verification and `false`.
    ///
    /// When the stored hash is an imported one (werkzeug, bcrypt) and the password matches, it
    /// is replaced by an Argon2id hash of the password before this returns, by a conditional
    /// `UPDATE` (so no copy of the old hash is kept anywhere). If that write fails, the login
    /// **fails closed**: the error (503 while the database is unavailable) is returned and no
    /// token is issued, so an account never logs in while its imported hash outlives the login;
    /// the old hash stays until a later login succeeds in replacing it. If the hash changed
    /// meanwhile (a concurrent login replaced it first, or a password change), the password is
    /// checked against the hash now stored.
    ///
    /// A wrong password against an imported hash gets `false` after the full verification, as
    /// against an Argon2id one; the time it takes is that hash's own cost (bounded, see
    /// [`legacy`]), as it was in the Flask app.
    pub async fn verify_login(
        &self,
        store: &Store,
        credentials: Option<&Credentials>,
        password: &str,
        now: i64,
    ) -> Result<bool, LoginError> {
        let normalized = Password::normalize(password);
        let Some(credentials) = credentials else {
            return Ok(self.check(None, password, &normalized).await?);
        };
        let stored = credentials.password_hash.as_str();
        if !self.check(Some(stored), password, &normalized).await? {
            return Ok(false);
        }
        match legacy::recognise(stored) {
            Ok(Recognised::Foreign(foreign)) => {
                self.upgrade(store, credentials, foreign.scheme(), normalized, now).await
            }
            Ok(Recognised::Argon2id) | Err(_) => Ok(true),
        }
    }

    /// Replaces the verified imported hash of `credentials` by an Argon2id hash of `normalized`.
    async fn upgrade(
        &self,
        store: &Store,
        credentials: &Credentials,
        from: Scheme,
        normalized: String,
        now: i64,
    ) -> Result<bool, LoginError> {
        let password = normalized.clone();
        // Not `hash(&Password)`: an imported password may be shorter than today's rule allows,
        // and it keeps working (a password change must meet the rule).
        let new_hash = self.blocking(move |inner| inner.hash(password.as_bytes())).await??;
        let user = &credentials.user;
        match store.replace_password_hash(user.id, &credentials.password_hash, &new_hash, now).await {
            Ok(true) => {
                tracing::info!(username = ?user.username, from = from.label(), "imported password hash replaced by argon2id");
                Ok(true)
            }
            Ok(false) => {
                // The name was read from the database: it passes the look-up rule.
                let Ok(username) = Username::existing(&user.username) else { return Ok(false) };
                match store.find_credentials(&username).await? {
                    Some(current)
                        if current.user.id == user.id
                            && !matches!(legacy::recognise(&current.password_hash), Ok(Recognised::Foreign(_))) =>
                    {
                        Ok(self.check(Some(&current.password_hash), &normalized, &normalized).await?)
                    }
                    _ => Ok(false),
                }
            }
            Err(e) => {
                tracing::warn!(username = ?user.username, error = ?e, "cannot replace the imported password hash: login refused");
                Err(e.into())
            }
        }
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

    /// Real hashes of "correct horse battery" (and of one non-ASCII password), made once with
    /// Werkzeug 3.1.9 and bcrypt 5.0.0 from PyPI (Python 3.11, in a venv):
    ///
    /// ```text
    /// from werkzeug.security import generate_password_hash
    /// import bcrypt
    /// generate_password_hash("correct horse battery", method="scrypt")          # N=2^15, r=8, p=1
    /// generate_password_hash("correct horse battery", method="scrypt:16384:8:1")
    /// generate_password_hash("correct horse battery", method="pbkdf2:sha256:1000")
    /// generate_password_hash("correct horse battery", method="pbkdf2:sha512:1000")
    /// generate_password_hash("pässwörd ünïcode", method="scrypt:1024:8:1")
    /// bcrypt.hashpw(b"correct horse battery", bcrypt.gensalt(rounds=4, prefix=b"2b"))  # and b"2a"
    /// ```
    const WERKZEUG_SCRYPT_DEFAULT: &str = "scrypt:32768:8:1$mMzwfTP0vNmxES2r$98a9b29ad529b6d7893ee4fe210c60def5e7642159e2c969c799ea75bf4c2180958ed76dcffc8a6b63fceb69c86076984759c3c6da02c60950155be6135c4a72";
    const WERKZEUG_SCRYPT: &str = "scrypt:16384:8:1$FdH84JD2SVt3ddie$8b5766afe8eed9be0212ffac8818000d310c30bacebd24b0e5d1f1c514ca52d7911c08d98ad310367c2c3b8812618e4d6158ce0a5716b619b3ab77b951bcb122";
    const WERKZEUG_PBKDF2_SHA256: &str =
        "pbkdf2:sha256:1000$PhXNxtXJVGHmcNZa$be4912ef4cc4c5031b16baf52618be2d7803544cf3ecc00f157e34cedb027908";
    const WERKZEUG_PBKDF2_SHA512: &str = "pbkdf2:sha512:1000$MZxJkkbpHBX4qyEO$fcbeeb5fccf0cdb0f54da2d07fc259699d993edccb2ba88201d8579a9990e171ce2ef8961d2430d3098618efae34c7cb4060be708e4125f00533ab68628bf28e";
    const WERKZEUG_SCRYPT_UNICODE: &str = "scrypt:1024:8:1$9WN0uqrQQsezR9Vd$dc2a1dd41c71f4de096cee2d11efd0ae58a1c595a06541a9a7a69e885536c0a7644ceb43fd2dbb977e7f1da4cf25441158d66bddc14d0267d2a6802b59ad104d";
    const BCRYPT_2B: &str = "$2b$04$fYBPB3NJ243wyedwIMMj3uw3A7BildXhSrWD.vAJBVXHAYVr3fJ/u";
    const BCRYPT_2A: &str = "$2a$04$Mk5TqNqWQG9i4BG5p9LQn.WydTT9AUB7NjO8B.2raoCmlX1lkvS4.";

    #[tokio::test]
    async fn werkzeug_and_bcrypt_hashes_verify_their_password_only() {
        let passwords = cheap();
        let vectors = [
            (WERKZEUG_SCRYPT_DEFAULT, Scheme::WerkzeugScrypt),
            (WERKZEUG_SCRYPT, Scheme::WerkzeugScrypt),
            (WERKZEUG_PBKDF2_SHA256, Scheme::WerkzeugPbkdf2Sha256),
            (WERKZEUG_PBKDF2_SHA512, Scheme::WerkzeugPbkdf2Sha512),
            (BCRYPT_2B, Scheme::Bcrypt),
            (BCRYPT_2A, Scheme::Bcrypt),
        ];
        for (hash, scheme) in vectors {
            assert_eq!(recognise(hash).unwrap().scheme(), scheme, "{hash}");
            assert!(passwords.verify(Some(hash), "correct horse battery").await.unwrap(), "{hash}");
            assert!(!passwords.verify(Some(hash), "correct horse batterz").await.unwrap(), "{hash}");
            assert!(!passwords.verify(Some(hash), "").await.unwrap(), "{hash}");
        }
        // bcrypt's $2y$ (PHP's name for $2b$) is the same algorithm.
        let two_y = BCRYPT_2B.replacen("$2b$", "$2y$", 1);
        assert!(passwords.verify(Some(&two_y), "correct horse battery").await.unwrap());
        assert!(passwords.verify(Some(WERKZEUG_SCRYPT_UNICODE), "p\u{e4}ssw\u{f6}rd \u{fc}n\u{ef}code").await.unwrap());
        // A flipped output digit, an upper-case copy (hex is case-blind) and a wrong salt.
        let flipped = format!("{}0", &WERKZEUG_PBKDF2_SHA256[..WERKZEUG_PBKDF2_SHA256.len() - 1]);
        assert!(!passwords.verify(Some(&flipped), "correct horse battery").await.unwrap());
        let upper = WERKZEUG_PBKDF2_SHA256.replace("be4912ef4cc4", "BE4912EF4CC4");
        assert!(passwords.verify(Some(&upper), "correct horse battery").await.unwrap());
        let salted = WERKZEUG_PBKDF2_SHA256.replace("$PhXNxtXJVGHmcNZa$", "$PhXNxtXJVGHmcNZb$");
        assert!(!passwords.verify(Some(&salted), "correct horse battery").await.unwrap());
    }

    /// The password as typed is what Flask hashed; one whose NFKC form differs still verifies.
    #[tokio::test]
    async fn an_imported_hash_is_checked_against_the_password_as_typed() {
        let passwords = cheap();
        let typed = "\u{fb01}ne password"; // "ﬁne password": NFKC makes "fine password"
        let mut output = [0u8; 32];
        let iterations = std::num::NonZeroU32::new(1000).unwrap();
        aws_lc_rs::pbkdf2::derive(
            aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256,
            iterations,
            b"salt",
            typed.as_bytes(),
            &mut output,
        );
        let hex: String = output.iter().map(|b| format!("{b:02x}")).collect();
        let hash = format!("pbkdf2:sha256:1000$salt${hex}");
        let normalized = Password::normalize(typed);
        assert_ne!(normalized, typed);
        assert!(passwords.check(Some(&hash), typed, &normalized).await.unwrap());
        assert!(!passwords.check(Some(&hash), "fine password", "fine password").await.unwrap());
    }

    #[test]
    fn malformed_and_out_of_bounds_hashes_are_refused_with_a_reason_that_does_not_echo_them() {
        let hex64 = "ab".repeat(64);
        let hex32 = "ab".repeat(32);
        let cases = [
            ("md5$salt$abc".to_owned(), "unknown password hash format"),
            ("plain-text-password".to_owned(), "unknown password hash format"),
            (format!("scrypt$salt${hex64}"), "expected scrypt:N:r:p"),
            (format!("scrypt:16384:8$salt${hex64}"), "expected scrypt:N:r:p"),
            (format!("scrypt:1000:8:1$salt${hex64}"), "power of two"),
            (format!("scrypt:2097152:8:1$salt${hex64}"), "bounds"),
            (format!("scrypt:65536:16:1$salt${hex64}"), "bounds"),
            (format!("scrypt:32768:8:16$salt${hex64}"), "bounds"),
            (format!("scrypt:16384:8:1$salt${hex32}"), "128 hex digits"),
            (format!("scrypt:16384:8:1$${hex64}"), "salt"),
            ("scrypt:16384:8:1$salt".to_owned(), "METHOD$SALT$HEX"),
            (format!("scrypt:16384:8:1$salt${}", "zz".repeat(64)), "hex digits"),
            (format!("pbkdf2:sha256$salt${hex32}"), "expected pbkdf2"),
            (format!("pbkdf2:sha1:1000$salt${hex32}"), "only sha256 and sha512"),
            (format!("pbkdf2:sha256:0$salt${hex32}"), "iterations must be"),
            (format!("pbkdf2:sha256:2000001$salt${hex32}"), "iterations must be"),
            (format!("pbkdf2:sha512:1000$salt${hex32}"), "128 hex digits"),
            (BCRYPT_2B.replacen("$04$", "$15$", 1), "cost must be"),
            (BCRYPT_2B.replacen("$04$", "$03$", 1), "cost must be"),
            (BCRYPT_2B[..59].to_owned(), "bcrypt: expected"),
            (format!("{}!", &BCRYPT_2B[..59]), "bcrypt: expected"),
            ("$2x$04$fYBPB3NJ243wyedwIMMj3uw3A7BildXhSrWD.vAJBVXHAYVr3fJ/u".to_owned(), "unknown"),
            ("$argon2i$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".to_owned(), "only argon2id"),
            ("$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".to_owned(), "bounds"),
            ("$argon2id$v=19$m=131072,t=16,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".to_owned(), "bounds"),
            ("$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ".to_owned(), "missing"),
            ("$argon2id$nonsense".to_owned(), "PHC"),
        ];
        for (hash, reason) in &cases {
            let err = recognise(hash).map(|r| r.scheme()).expect_err(hash).to_string();
            assert!(err.contains(reason), "{hash}: {err}");
            assert!(!err.contains("salt$") && !err.contains("abab") && !err.contains("fYBPB3"), "{err}");
        }
        let ours = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
        assert_eq!(recognise(ours).unwrap().scheme(), Scheme::Argon2id);
    }

    /// The default werkzeug scrypt (N = 2^15) and the largest PBKDF2 allowed stay well under the
    /// second the bounds promise (optimised dependencies, as in every profile here).
    #[test]
    fn the_costliest_accepted_hashes_verify_in_about_a_second_at_most() {
        let hex32 = "ab".repeat(32);
        for hash in [
            WERKZEUG_SCRYPT_DEFAULT.to_owned(),
            format!("pbkdf2:sha256:{}$salt${hex32}", legacy::PBKDF2_MAX_ITERATIONS),
        ] {
            let Ok(Recognised::Foreign(foreign)) = recognise(&hash) else { panic!("{hash}") };
            let started = std::time::Instant::now();
            let _ = foreign.verify(b"correct horse battery");
            assert!(started.elapsed() < std::time::Duration::from_secs(3), "{hash}: {:?}", started.elapsed());
        }
    }

    #[test]
    fn default_parameters_are_owasps() {
        let s = Argon2Settings::default();
        assert_eq!((s.memory_kib, s.iterations, s.parallelism), (19_456, 2, 1));
        assert!(Passwords::new(&Argon2Settings { memory_kib: 1, ..s }).is_err());
    }
}
