//! # keycard-token: JWTs in Flask-JWT-Extended's format, issued and verified strictly
//!
//! Everything about a token that does not depend on a web framework:
//!
//! - [`Claims<C>`]: the registered claims Flask-JWT-Extended 4 writes and reads (`sub`, `iat`,
//!   `nbf`, `exp`, `jti`, `type`, `fresh`, `csrf`, and `iss`/`aud` when configured) with `C`, the
//!   application's own claims, flattened beside them. A Flask service and a keycard service sharing
//!   a secret accept each other's tokens.
//! - [`Keys`]: the configured algorithm and key material: HMAC secrets, asymmetric
//!   [`SigningKey`]s (ES256, ES384, EdDSA, RS256/384/512, PS256/384/512) with RFC 7638 `kid`s,
//!   and public keys from a JWK Set ([`Keys::from_jwks`], [`Keys::jwks`]). The algorithm is pinned
//!   to the key: nothing in a token's header chooses the algorithm or the key beyond a `kid`
//!   lookup in this set, and `jku`/`x5u`/`jwk` headers are refused.
//! - [`KeySource`]: asked for keys a token names but the set lacks (a JWKS refetch).
//! - [`Tokens`]: issues tokens ([`Tokens::access`], [`Tokens::refresh`]: identity of any
//!   `Display` type, freshness, lifetime, extra claims and headers) and verifies them strictly
//!   (RFC 8725): exact compact form, strict base64url, `exp` always required, integer times,
//!   `nbf`/`iat` not in the future, `iss`/`aud` checked when configured.
//! - [`Clock`]: injectable time, so expiry can be tested without sleeping.
//! - [`RevocationList`]: revoked ids kept in memory, each dropped once every token it could match
//!   has expired anyway.
//!
//! Safer than Flask-JWT-Extended: `exp` is required, application claims cannot overwrite the
//! registered ones ([`TokenError::Reserved`]), the identity is always a non-empty string `sub` (an
//! integer id is written as `"42"`, which PyJWT 2.10 and FJE 4.7 accept), and HMAC secrets must be
//! at least 32 bytes.
//!
//! ```
//! use std::sync::Arc;
//! use keycard_token::{Keys, SystemClock, TokenSettings, Tokens, TokenType};
//!
//! let keys = Keys::hmac_sha256(b"an example secret of at least 32 bytes!!").unwrap();
//! let tokens = Tokens::new(keys, TokenSettings::default(), Arc::new(SystemClock));
//! let access = tokens.access("alice").fresh(true).sign().unwrap();
//! let claims = tokens.verify::<()>(&access.token).unwrap();
//! assert_eq!(claims.sub, "alice");
//! assert_eq!(claims.token_type, TokenType::Access);
//! assert!(claims.is_fresh_at(tokens.now()));
//! ```

mod claims;
mod clock;
mod error;
mod keys;
mod revocation;
mod source;
mod tokens;

pub use claims::{Audience, Claims, Fresh, RESERVED_CLAIMS, TokenType};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{KeyError, TokenError};
pub use keys::{Algorithm, Jwk, JwkSet, Keys, MIN_HMAC_SECRET_LEN, MIN_RSA_BITS, SigningKey, SkippedKeys};
pub use revocation::RevocationList;
pub use source::KeySource;
pub use tokens::{
    Decoded, Header, Issue, MAX_TIMESTAMP, MAX_TOKEN_LEN, SECEVENT_TYP, SecurityEvent, Signed, TokenSettings, Tokens,
    unverified_kid,
};
pub use uuid::Uuid;
