//! Asymmetric signing keys kept in the database and shared by every instance (issue 13).
//!
//! With an asymmetric `KEYCARD_JWT_ALGORITHM` (ES256, EdDSA, RS256, ...), the [`KeyRing`]:
//! - at start, opens every stored key (refusing to start when one cannot be opened: a sealed key
//!   without, or with the wrong, `KEYCARD_KEY_ENCRYPTION_KEY`), and, when the algorithm has no
//!   active key yet, generates one and stores it (of several servers starting at once on one
//!   database, one key wins and all sign with it);
//! - builds the token [`Keys`]: the active key of the algorithm signs (its `kid` goes into every
//!   token), the other keys verify and are published at `/.well-known/jwks.json` until every
//!   token they signed has expired (`retired_at` + refresh lifetime + leeway + a margin for the
//!   servers still signing with them until their next poll), then they are deleted;
//! - polls the table's version every second and swaps the new key set in (`Tokens::set_keys`),
//!   so `keycard keys rotate`, run anywhere, reaches every running server within a second or
//!   two. A failed poll keeps the current keys and logs a warning;
//! - optionally rotates by itself when the active key is older than `KEYCARD_KEY_ROTATION`
//!   (a conditional rotation: several servers finding it due at once rotate it once).
//!
//! ## Keys at rest
//!
//! When `KEYCARD_KEY_ENCRYPTION_KEY` (32 random bytes, base64url) is set, every private key is
//! stored sealed: `0x01 || nonce (12 bytes, random) || AES-256-GCM(PKCS#8 DER)`, with the kid as
//! additional data, so a sealed key cannot be moved to another row. Without it, keys are
//! stored as plain PKCS#8 DER and each is checked against its kid when loaded. The README
//! ("Signing keys") states what this protects against and what it does not.

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keycard_store::{KeyState, NewSigningKey, SigningKeysVersion, Store, StoreError, StoredSigningKey};
use keycard_token::{Algorithm, KeyError, Keys, SigningKey, TokenSettings, Tokens};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::settings::SigningSettings;

pub use crate::settings::KEK_ENV;

/// How often running servers look for new keys.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Extra time a retired key stays published beyond the lifetime of the tokens it signed: the
/// other servers keep signing with it until their next poll.
const RETIRED_MARGIN_SECS: i64 = 60;

/// How often (in polls) retired keys past their window are deleted and the scheduled rotation
/// is checked.
const MAINTENANCE_EVERY: u32 = 60;

/// First byte of a sealed key: the format version.
const SEALED_V1: u8 = 1;

/// Why signing keys could not be loaded, created or rotated. Never contains key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    /// The database failed.
    #[error("reading or writing the signing keys")]
    Store(#[from] StoreError),
    /// A key could not be generated, parsed or used.
    #[error("signing key: {0}")]
    Key(#[from] KeyError),
    /// `KEYCARD_KEY_ENCRYPTION_KEY` is not 32 bytes of base64url.
    #[error("{KEK_ENV} must be 32 random bytes, base64url-encoded (43 characters; `keycard gen-secret` makes one)")]
    BadEncryptionKey,
    /// A stored key is sealed and no encryption key was given.
    #[error("the signing key {kid} in the database is encrypted, but {KEK_ENV} is not set")]
    SealedWithoutEncryptionKey {
        /// The key's kid.
        kid: String,
    },
    /// A stored key does not open with the encryption key given.
    #[error(
        "the signing key {kid} in the database cannot be decrypted with this {KEK_ENV}: \
         it is not the key it was sealed with, or the row was altered"
    )]
    WrongEncryptionKey {
        /// The key's kid.
        kid: String,
    },
    /// A stored key names an algorithm this keycard does not know, or a symmetric one.
    #[error("the signing key {kid} in the database has an unsupported algorithm {algorithm:?}")]
    UnsupportedAlgorithm {
        /// The key's kid.
        kid: String,
        /// What the row says.
        algorithm: String,
    },
    /// A stored key's public key does not match its kid (the row was altered).
    #[error("the signing key stored as {kid} has another public key: the row was altered")]
    KidMismatch {
        /// The kid the row claims.
        kid: String,
    },
    /// The algorithm has no active key (nothing generated it yet).
    #[error("no active {0} signing key in the database")]
    NoActiveKey(&'static str),
    /// Key management was asked of an HMAC algorithm, which uses the shared secret.
    #[error("{0} signs with the shared secret (KEYCARD_JWT_SECRET): it has no keys in the database")]
    Symmetric(&'static str),
}

/// The AES-256-GCM key that seals private keys in the database. Never printed.
pub struct KeyEncryptionKey(LessSafeKey);

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyEncryptionKey(..)")
    }
}

impl KeyEncryptionKey {
    /// The key from its base64url form (padding optional); [`KeyRingError::BadEncryptionKey`]
    /// unless it is exactly 32 bytes. The error never contains the value.
    pub fn parse(secret: &SecretString) -> Result<Self, KeyRingError> {
        let text = secret.expose_secret().trim().trim_end_matches('=');
        let bytes = Zeroizing::new(URL_SAFE_NO_PAD.decode(text).map_err(|_| KeyRingError::BadEncryptionKey)?);
        if bytes.len() != 32 {
            return Err(KeyRingError::BadEncryptionKey);
        }
        let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| KeyRingError::BadEncryptionKey)?;
        Ok(Self(LessSafeKey::new(key)))
    }

    /// `0x01 || nonce || ciphertext || tag` of `plaintext`, bound to `kid`.
    pub fn seal(&self, kid: &str, plaintext: &[u8]) -> Result<Vec<u8>, KeyRingError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| KeyError::Generation)?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + AES_256_GCM.tag_len());
        sealed.push(SEALED_V1);
        sealed.extend_from_slice(&nonce);
        let mut body = Zeroizing::new(plaintext.to_vec());
        self.0
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(kid.as_bytes()), &mut *body)
            .map_err(|_| KeyError::Generation)?;
        sealed.extend_from_slice(&body);
        Ok(sealed)
    }

    /// The plaintext of [`KeyEncryptionKey::seal`]'s output for `kid`; `None` if it was sealed
    /// with another key, for another kid, or altered.
    pub fn open(&self, kid: &str, sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let (&version, rest) = sealed.split_first()?;
        if version != SEALED_V1 || rest.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return None;
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buffer = Zeroizing::new(body.to_vec());
        let len = self.0.open_in_place(nonce, Aad::from(kid.as_bytes()), &mut buffer).ok()?.len();
        buffer.truncate(len);
        Some(buffer)
    }
}

/// The asymmetric signing keys of one server: see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct KeyRing {
    store: Store,
    algorithm: Algorithm,
    encryption: Option<Arc<KeyEncryptionKey>>,
    /// How long past `retired_at` a retired key stays published and verifying, in seconds.
    publish_for: i64,
    /// Age of the active key at which it is rotated, in seconds.
    rotate_after: Option<i64>,
}

impl KeyRing {
    /// The key ring for `signing.algorithm`, which must be asymmetric; `tokens` gives the
    /// lifetimes that bound how long a retired key must keep verifying.
    pub fn new(store: Store, signing: &SigningSettings, tokens: &TokenSettings) -> Result<Self, KeyRingError> {
        if signing.algorithm.is_symmetric() {
            return Err(KeyRingError::Symmetric(signing.algorithm.as_str()));
        }
        let encryption = signing.key_encryption_key.as_ref().map(KeyEncryptionKey::parse).transpose()?.map(Arc::new);
        let lifetime = tokens.refresh_ttl.max(tokens.access_ttl).saturating_add(tokens.leeway);
        let publish_for = i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX).saturating_add(RETIRED_MARGIN_SECS);
        let rotate_after = signing.key_rotation.map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        Ok(Self { store, algorithm: signing.algorithm, encryption, publish_for, rotate_after })
    }

    /// The algorithm new keys are made for.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Start-up: checks that every stored key opens (refusing otherwise), makes the first key
    /// of the algorithm if it has none, rotates if the scheduled rotation is due, and returns the
    /// key set with the version it was read at.
    pub async fn start(&self, now: i64) -> Result<(Keys, SigningKeysVersion), KeyRingError> {
        for row in self.store.signing_keys().await? {
            self.open(&row)?;
            if !row.sealed && self.encryption.is_some() {
                tracing::warn!(
                    kid = %row.kid,
                    "signing key stored unencrypted (from before {KEK_ENV} was set): `keycard keys rotate` \
                     replaces it with an encrypted one"
                );
            }
        }
        let active = self.ensure_active(now).await?;
        self.rotate_if_due(&active, now).await?;
        self.load(now).await
    }

    /// For `keycard config check`: what [`KeyRing::start`] checks before it writes anything
    /// (every stored key opens with this configuration), and whether the algorithm has an
    /// active key (`false`: the first start generates one). Writes nothing.
    pub async fn check(&self) -> Result<bool, KeyRingError> {
        let rows = self.store.signing_keys().await?;
        for row in &rows {
            self.open(row)?;
        }
        Ok(rows.iter().any(|k| self.is_active_signer(k)))
    }

    /// The active key of the algorithm, generated and stored first if there is none. Of several
    /// servers doing this at once, one key wins and every one gets it.
    async fn ensure_active(&self, now: i64) -> Result<StoredSigningKey, KeyRingError> {
        let rows = self.store.signing_keys().await?;
        if let Some(active) = rows.into_iter().find(|k| self.is_active_signer(k)) {
            return Ok(active);
        }
        let (key, stored, sealed) = self.generate()?;
        let new =
            NewSigningKey { kid: key.kid(), algorithm: self.algorithm.as_str(), private_key: &stored, sealed, now };
        let active = self.store.insert_signing_key_if_none_active(&new).await?;
        if active.kid == key.kid() {
            tracing::info!(kid = %active.kid, algorithm = %active.algorithm, sealed, "generated the first signing key");
        } else {
            tracing::info!(kid = %active.kid, "another instance generated the first signing key: using it");
        }
        Ok(active)
    }

    /// Rotates if `active` is older than the scheduled rotation interval (and still active).
    async fn rotate_if_due(&self, active: &StoredSigningKey, now: i64) -> Result<(), KeyRingError> {
        let Some(after) = self.rotate_after else { return Ok(()) };
        let since = active.activated_at.unwrap_or(active.created_at);
        if now.saturating_sub(since) < after {
            return Ok(());
        }
        let (key, stored, sealed) = self.generate()?;
        let new =
            NewSigningKey { kid: key.kid(), algorithm: self.algorithm.as_str(), private_key: &stored, sealed, now };
        if self.store.rotate_signing_key_if_active(&new, &active.kid).await? {
            tracing::info!(kid = %key.kid(), retired = %active.kid, "scheduled rotation: new signing key");
        }
        Ok(())
    }

    /// `keycard keys rotate`: a new active key of the algorithm, retiring the previous one, in
    /// one transaction. Refuses when the stored keys could not be opened with this
    /// configuration (running servers could not open the new key either). Returns the new kid.
    pub async fn rotate(&self, now: i64) -> Result<String, KeyRingError> {
        for row in self.store.signing_keys().await? {
            self.open(&row)?;
        }
        let (key, stored, sealed) = self.generate()?;
        let new =
            NewSigningKey { kid: key.kid(), algorithm: self.algorithm.as_str(), private_key: &stored, sealed, now };
        let retired = self.store.rotate_signing_key(&new).await?;
        tracing::info!(kid = %key.kid(), ?retired, sealed, "rotated the signing key");
        Ok(key.kid().to_owned())
    }

    /// A fresh key of the algorithm and its stored form (sealed when an encryption key is set).
    fn generate(&self) -> Result<(SigningKey, Zeroizing<Vec<u8>>, bool), KeyRingError> {
        let key = SigningKey::generate(self.algorithm)?;
        let der = key.to_pkcs8()?;
        match &self.encryption {
            Some(kek) => {
                let sealed = Zeroizing::new(kek.seal(key.kid(), &der)?);
                Ok((key, sealed, true))
            }
            None => Ok((key, der, false)),
        }
    }

    /// The private key of a stored row, checked against its kid.
    fn open(&self, row: &StoredSigningKey) -> Result<SigningKey, KeyRingError> {
        let algorithm: Algorithm = row.algorithm.parse().map_err(|_| self.unsupported(row))?;
        if algorithm.is_symmetric() {
            return Err(self.unsupported(row));
        }
        let der = if row.sealed {
            let kek = self
                .encryption
                .as_ref()
                .ok_or_else(|| KeyRingError::SealedWithoutEncryptionKey { kid: row.kid.clone() })?;
            kek.open(&row.kid, &row.private_key)
                .ok_or_else(|| KeyRingError::WrongEncryptionKey { kid: row.kid.clone() })?
        } else {
            Zeroizing::new(row.private_key.clone())
        };
        let key = SigningKey::from_pkcs8(algorithm, &der)?;
        if key.kid() != row.kid {
            return Err(KeyRingError::KidMismatch { kid: row.kid.clone() });
        }
        Ok(key)
    }

    fn unsupported(&self, row: &StoredSigningKey) -> KeyRingError {
        KeyRingError::UnsupportedAlgorithm { kid: row.kid.clone(), algorithm: row.algorithm.clone() }
    }

    fn is_active_signer(&self, row: &StoredSigningKey) -> bool {
        row.state == KeyState::Active && row.algorithm == self.algorithm.as_str()
    }

    /// Whether a stored key should be published and verify at `now`.
    fn is_published(&self, row: &StoredSigningKey, now: i64) -> bool {
        match (row.state, row.retired_at) {
            (KeyState::Retired, Some(at)) => now < at.saturating_add(self.publish_for),
            (KeyState::Retired, None) => false,
            (KeyState::Active | KeyState::Next, _) => true,
        }
    }

    /// The key set at `now` and the version it was read at (version first: a change made
    /// while reading is seen again at the next poll, never missed).
    pub async fn load(&self, now: i64) -> Result<(Keys, SigningKeysVersion), KeyRingError> {
        let version = self.store.signing_keys_version().await?;
        let rows = self.store.signing_keys().await?;
        Ok((self.build(&rows, now)?, version))
    }

    /// The active key of the algorithm signs; every other published key verifies.
    fn build(&self, rows: &[StoredSigningKey], now: i64) -> Result<Keys, KeyRingError> {
        let active =
            rows.iter().find(|k| self.is_active_signer(k)).ok_or(KeyRingError::NoActiveKey(self.algorithm.as_str()))?;
        let mut keys = Keys::signing(self.open(active)?);
        for row in rows.iter().filter(|k| k.kid != active.kid && self.is_published(k, now)) {
            keys = keys.with_verification_key(&self.open(row)?)?;
        }
        Ok(keys)
    }

    /// Deletes the retired keys past their publication window; returns how many.
    async fn delete_expired(&self, now: i64) -> Result<u64, KeyRingError> {
        Ok(self.store.delete_retired_signing_keys(now.saturating_sub(self.publish_for)).await?)
    }

    /// Runs for ever: every [`POLL_INTERVAL`], reads the version and, when it changed, swaps
    /// the new key set into `tokens`; every minute also deletes expired retired keys, applies
    /// the scheduled rotation and rebuilds the set (a retired key leaves it when its window
    /// ends). Failures keep the current keys and are logged, once per outage.
    pub async fn poll(self, tokens: Arc<Tokens>, mut version: SigningKeysVersion, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        let mut polls: u32 = 0;
        loop {
            tick.tick().await;
            polls = polls.wrapping_add(1);
            let now = tokens.now();
            let maintenance = polls.is_multiple_of(MAINTENANCE_EVERY);
            let result = async {
                if maintenance {
                    self.maintain(now).await?;
                }
                let current = self.store.signing_keys_version().await?;
                if current == version && !maintenance {
                    return Ok(None);
                }
                self.load(now).await.map(Some)
            }
            .await;
            match result {
                Ok(Some((keys, read_at))) => {
                    if read_at != version {
                        tracing::info!(kids = ?keys.kids(), "signing keys changed: now using them");
                    }
                    tokens.set_keys(keys);
                    version = read_at;
                    if failing {
                        tracing::info!("reading signing keys again");
                        failing = false;
                    }
                }
                Ok(None) if failing => {
                    tracing::info!("reading signing keys again");
                    failing = false;
                }
                Ok(None) => {}
                Err(e) if !failing => {
                    tracing::warn!(error = %error_chain(&e), "reading signing keys failed: keeping the current keys");
                    failing = true;
                }
                Err(_) => {}
            }
        }
    }

    /// The once-a-minute work: expired keys deleted, scheduled rotation applied.
    async fn maintain(&self, now: i64) -> Result<(), KeyRingError> {
        let deleted = self.delete_expired(now).await?;
        if deleted > 0 {
            tracing::info!(deleted, "deleted retired signing keys whose tokens have all expired");
        }
        if self.rotate_after.is_some() {
            let rows = self.store.signing_keys().await?;
            if let Some(active) = rows.into_iter().find(|k| self.is_active_signer(k)) {
                self.rotate_if_due(&active, now).await?;
            }
        }
        Ok(())
    }
}

/// `error: cause: cause` on one line, for logs.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// What `/.well-known/openid-configuration` says: only what is true of keycard (it is no OpenID
/// provider: no authorization endpoint, no ID tokens), enough for a verifier to find the keys.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Discovery {
    /// The `iss` of every token.
    pub issuer: String,
    /// Where the public keys are.
    pub jwks_uri: String,
    /// The algorithm keycard signs with. keycard issues no ID tokens, but OpenID Connect
    /// verifiers read this member to know which algorithms the issuer's tokens may use (some
    /// assume RS256 only when it is absent).
    pub id_token_signing_alg_values_supported: Vec<String>,
}

impl Discovery {
    /// The document for `issuer`, with the JWKS under `public_url`, signing with `algorithm`.
    pub fn new(issuer: &str, public_url: &str, algorithm: keycard_token::Algorithm) -> Self {
        Self {
            issuer: issuer.to_owned(),
            jwks_uri: format!("{}/.well-known/jwks.json", public_url.trim_end_matches('/')),
            id_token_signing_alg_values_supported: vec![algorithm.as_str().to_owned()],
        }
    }
}

/// One row of `keycard keys list`: never key material.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyInfo {
    /// The kid.
    pub kid: String,
    /// The JWS algorithm.
    pub algorithm: String,
    /// Creation time, RFC 3339.
    pub created: String,
    /// Active, next or retired.
    pub state: KeyState,
    /// When it was retired, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retired: Option<String>,
    /// Whether it is stored encrypted.
    pub encrypted: bool,
}

impl KeyInfo {
    /// The listing of a stored key; `rfc3339` formats seconds since the epoch.
    pub fn new(row: &StoredSigningKey, rfc3339: impl Fn(i64) -> String) -> Self {
        Self {
            kid: row.kid.clone(),
            algorithm: row.algorithm.clone(),
            created: rfc3339(row.created_at),
            state: row.state,
            retired: row.retired_at.map(&rfc3339),
            encrypted: row.sealed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek(byte: u8) -> KeyEncryptionKey {
        KeyEncryptionKey::parse(&SecretString::from(URL_SAFE_NO_PAD.encode([byte; 32]))).unwrap()
    }

    #[test]
    fn a_sealed_key_opens_only_with_its_key_and_kid() {
        let sealed = kek(1).seal("kid-a", b"pkcs8 bytes").unwrap();
        assert_eq!(sealed[0], SEALED_V1);
        assert!(!sealed.windows(11).any(|w| w == b"pkcs8 bytes"), "the plaintext shows through");
        assert_eq!(kek(1).open("kid-a", &sealed).unwrap().as_slice(), b"pkcs8 bytes");
        assert!(kek(2).open("kid-a", &sealed).is_none(), "another key opened it");
        assert!(kek(1).open("kid-b", &sealed).is_none(), "it opened under another kid");
        let mut altered = sealed.clone();
        if let Some(last) = altered.last_mut() {
            *last ^= 1;
        }
        assert!(kek(1).open("kid-a", &altered).is_none());
        for short in [&[][..], &[SEALED_V1][..], &sealed[..20]] {
            assert!(kek(1).open("kid-a", short).is_none());
        }
        // A fresh nonce each time.
        assert_ne!(kek(1).seal("kid-a", b"x").unwrap(), kek(1).seal("kid-a", b"x").unwrap());
    }

    #[test]
    fn an_encryption_key_must_be_32_bytes_of_base64url_and_is_never_echoed() {
        for bad in ["", "short", &URL_SAFE_NO_PAD.encode([7u8; 31]), &URL_SAFE_NO_PAD.encode([7u8; 33]), "!!!!"] {
            let err = KeyEncryptionKey::parse(&SecretString::from(bad.to_owned())).unwrap_err();
            assert!(matches!(err, KeyRingError::BadEncryptionKey));
            if !bad.is_empty() {
                assert!(!err.to_string().contains(bad));
            }
        }
        let padded = format!("{}=", URL_SAFE_NO_PAD.encode([7u8; 32]));
        assert!(KeyEncryptionKey::parse(&SecretString::from(padded)).is_ok());
        assert_eq!(format!("{:?}", kek(3)), "KeyEncryptionKey(..)");
    }
}
