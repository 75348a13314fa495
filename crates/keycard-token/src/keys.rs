//! Key configuration: the one place that decides which algorithm and key verify a token.
//!
//! The HMAC keys are prepared once (aws-lc-rs precomputes the inner and outer pads), and each key
//! is bound to exactly one algorithm. Comparison of signatures is constant-time
//! (`aws_lc_rs::hmac::verify`).

use aws_lc_rs::hmac;

use crate::KeyError;

/// Shortest HMAC secret accepted: 256 bits, the output size of SHA-256 (RFC 7518 §3.2).
///
/// ```
/// use keycard_token::{Keys, MIN_HMAC_SECRET_LEN};
/// assert!(Keys::hmac_sha256(&[7; MIN_HMAC_SECRET_LEN]).is_ok());
/// assert!(Keys::hmac_sha256(&[7; MIN_HMAC_SECRET_LEN - 1]).is_err());
/// ```
pub const MIN_HMAC_SECRET_LEN: usize = 32;

/// The JWS algorithms keycard can sign and verify with.
///
/// ```
/// use keycard_token::Algorithm;
/// let alg: Algorithm = "HS512".parse().unwrap();
/// assert_eq!(alg, Algorithm::HS512);
/// assert!("none".parse::<Algorithm>().is_err());
/// assert!("hs256".parse::<Algorithm>().is_err()); // case-sensitive
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// HMAC with SHA-256 (the default).
    HS256,
    /// HMAC with SHA-384.
    HS384,
    /// HMAC with SHA-512.
    HS512,
}

impl Algorithm {
    /// The `alg` header value, exactly as RFC 7518 spells it (comparison is case-sensitive).
    ///
    /// ```
    /// assert_eq!(keycard_token::Algorithm::HS384.as_str(), "HS384");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            Algorithm::HS256 => hmac::HMAC_SHA256,
            Algorithm::HS384 => hmac::HMAC_SHA384,
            Algorithm::HS512 => hmac::HMAC_SHA512,
        }
    }
}

impl std::str::FromStr for Algorithm {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "HS256" => Ok(Algorithm::HS256),
            "HS384" => Ok(Algorithm::HS384),
            "HS512" => Ok(Algorithm::HS512),
            _ => Err(KeyError::UnsupportedAlgorithm),
        }
    }
}

/// One key with its pinned algorithm.
pub(crate) struct Key {
    pub(crate) kid: Option<String>,
    pub(crate) alg: Algorithm,
    /// Base64url of the protected header keycard writes with this key; also the fast path for
    /// verification (a byte-equal header needs no parsing).
    pub(crate) header_b64: String,
    /// That header, parsed: what a token with exactly this header decodes to.
    pub(crate) header: std::sync::Arc<crate::Header>,
    key: hmac::Key,
}

impl Key {
    pub(crate) fn sign(&self, message: &[u8]) -> hmac::Tag {
        hmac::sign(&self.key, message)
    }

    /// Constant-time check of `signature` over `message`.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        hmac::verify(&self.key, message, signature).is_ok()
    }
}

/// The key set tokens are signed and verified with. The first key signs; a token is verified only
/// by the key whose `kid` it names (or the key without a `kid` when it names none), and only with
/// that key's algorithm.
///
/// ```
/// use std::sync::Arc;
/// use keycard_token::{Algorithm, Keys, SystemClock, TokenSettings, Tokens};
///
/// let keys = Keys::hmac(Algorithm::HS384, &[7; 48]).unwrap();
/// let tokens = Tokens::new(keys, TokenSettings::default(), Arc::new(SystemClock));
/// let decoded = tokens.decode::<()>(&tokens.access("alice").sign().unwrap().token).unwrap();
/// assert_eq!(decoded.header.alg, Algorithm::HS384);
/// assert_eq!(decoded.header.kid, None);
/// ```
pub struct Keys {
    pub(crate) keys: Vec<Key>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_list().entries(self.keys.iter().map(|k| (k.alg, k.kid.as_deref()))).finish()
    }
}

impl Keys {
    /// HS256 with `secret`, which must be at least [`MIN_HMAC_SECRET_LEN`] bytes.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use keycard_token::{Keys, SystemClock, TokenError, TokenSettings, Tokens};
    ///
    /// let ours = Tokens::new(Keys::hmac_sha256(&[7; 32]).unwrap(), TokenSettings::default(), Arc::new(SystemClock));
    /// let theirs = Tokens::new(Keys::hmac_sha256(&[8; 32]).unwrap(), TokenSettings::default(), Arc::new(SystemClock));
    /// let token = theirs.access("alice").sign().unwrap().token;
    /// assert_eq!(ours.verify::<()>(&token).unwrap_err(), TokenError::InvalidSignature);
    /// ```
    pub fn hmac_sha256(secret: &[u8]) -> Result<Self, KeyError> {
        Self::hmac(Algorithm::HS256, secret)
    }

    /// An HMAC key for `alg` with `secret`, which must be at least [`MIN_HMAC_SECRET_LEN`] bytes.
    ///
    /// ```
    /// use keycard_token::{Algorithm, KeyError, Keys};
    /// assert!(Keys::hmac(Algorithm::HS512, &[7; 64]).is_ok());
    /// assert!(matches!(Keys::hmac(Algorithm::HS512, &[7; 31]), Err(KeyError::SecretTooShort { len: 31, .. })));
    /// ```
    pub fn hmac(alg: Algorithm, secret: &[u8]) -> Result<Self, KeyError> {
        Ok(Self { keys: vec![Key::hmac(None, alg, secret)?] })
    }

    /// Adds a verification key selected by tokens whose header names `kid`, such as tokens of
    /// another issuer that writes one (FJE's `additional_headers={"kid": ...}`). New tokens are
    /// still signed by the first key, which has no `kid`: keycard does not yet sign with a `kid`,
    /// so its own tokens always select the first key.
    ///
    /// ```
    /// use keycard_token::{Algorithm, KeyError, Keys};
    /// let keys = Keys::hmac_sha256(&[1; 32]).unwrap().with_hmac_key("flask-2024", Algorithm::HS512, &[2; 64]).unwrap();
    /// let again = keys.with_hmac_key("flask-2024", Algorithm::HS256, &[3; 32]);
    /// assert!(matches!(again, Err(KeyError::DuplicateKid)));
    /// ```
    pub fn with_hmac_key(mut self, kid: &str, alg: Algorithm, secret: &[u8]) -> Result<Self, KeyError> {
        if kid.is_empty() || self.keys.iter().any(|k| k.kid.as_deref() == Some(kid)) {
            return Err(KeyError::DuplicateKid);
        }
        self.keys.push(Key::hmac(Some(kid.to_owned()), alg, secret)?);
        Ok(self)
    }

    /// The key that signs new tokens.
    pub(crate) fn signing(&self) -> &Key {
        // Every constructor puts at least one key in the set.
        &self.keys[0]
    }

    /// The key a token's header selects: a lookup in our own set, nothing more.
    pub(crate) fn lookup(&self, kid: Option<&str>) -> Option<&Key> {
        self.keys.iter().find(|k| k.kid.as_deref() == kid)
    }
}

impl Key {
    fn hmac(kid: Option<String>, alg: Algorithm, secret: &[u8]) -> Result<Self, KeyError> {
        if secret.len() < MIN_HMAC_SECRET_LEN {
            return Err(KeyError::SecretTooShort { len: secret.len(), min: MIN_HMAC_SECRET_LEN });
        }
        let header = match &kid {
            None => serde_json::json!({"alg": alg.as_str(), "typ": "JWT"}),
            Some(kid) => serde_json::json!({"alg": alg.as_str(), "typ": "JWT", "kid": kid}),
        };
        let header_b64 = crate::tokens::b64(header.to_string().as_bytes());
        let parsed =
            crate::Header { alg, typ: Some("JWT".to_owned()), kid: kid.clone(), extra: serde_json::Map::new() };
        Ok(Self { kid, alg, header_b64, header: std::sync::Arc::new(parsed), key: hmac::Key::new(alg.hmac(), secret) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_shorter_than_32_bytes_is_refused() {
        let err = Keys::hmac_sha256(&[7u8; 31]).err();
        assert!(matches!(err, Some(KeyError::SecretTooShort { len: 31, min: 32 })));
        assert!(Keys::hmac_sha256(&[7u8; 32]).is_ok());
    }

    #[test]
    fn debug_output_never_contains_key_material() {
        let keys = Keys::hmac_sha256(b"super-secret-value-super-secret-value").unwrap();
        let shown = format!("{keys:?}");
        assert!(!shown.contains("super-secret"), "{shown}");
    }

    #[test]
    fn lookup_is_by_exact_kid_only() {
        let keys = Keys::hmac_sha256(&[1u8; 32]).unwrap().with_hmac_key("old", Algorithm::HS256, &[2u8; 32]).unwrap();
        assert!(keys.lookup(None).is_some());
        assert!(keys.lookup(Some("old")).is_some());
        assert!(keys.lookup(Some("OLD")).is_none());
        assert!(keys.lookup(Some("../../dev/null")).is_none());
        assert!(keys.lookup(Some("")).is_none());
    }
}
