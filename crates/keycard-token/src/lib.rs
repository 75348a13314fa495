//! # keycard-token: the JWT core of keycard
//!
//! Everything about a keycard token that does not depend on a web framework:
//!
//! - [`Claims`] and [`TokenType`]: what a keycard token carries (`sub`, `iat`, `nbf`, `exp`, `jti`,
//!   `type`, `fresh`, `roles`, `sid`).
//! - [`Keys`]: the configured algorithm and key material. A verifier is built once per key and the
//!   algorithm is pinned: nothing in a token's header chooses the algorithm or the key beyond a
//!   `kid` lookup in this key set.
//! - [`Tokens`]: issues access/refresh pairs and verifies tokens strictly (RFC 8725): exact
//!   three-segment compact form, strict base64url, no unknown or duplicate header parameters or
//!   claims, integer times, `exp` required, `nbf`/`iat` not in the future.
//! - [`Clock`]: injectable time, so expiry can be tested without sleeping.
//! - [`RevocationList`]: revoked token and session ids kept in memory, each dropped once every
//!   token it could match has expired anyway.
//!
//! ```
//! use std::{sync::Arc, time::Duration};
//! use keycard_token::{Keys, SystemClock, TokenSettings, Tokens, TokenType, NewSession};
//!
//! let keys = Keys::hmac_sha256(b"an example secret of at least 32 bytes!!").unwrap();
//! let tokens = Tokens::new(keys, TokenSettings::default(), Arc::new(SystemClock));
//! let pair = tokens.issue_pair(&NewSession::login("alice", vec!["admin".into()])).unwrap();
//! let claims = tokens.verify(&pair.access_token).unwrap();
//! assert_eq!(claims.sub, "alice");
//! assert_eq!(claims.token_type, TokenType::Access);
//! assert!(claims.fresh);
//! ```

mod claims;
mod clock;
mod error;
mod keys;
mod revocation;
mod tokens;

pub use claims::{Claims, TokenType};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{KeyError, TokenError};
pub use keys::{Algorithm, Keys, MIN_HMAC_SECRET_LEN};
pub use revocation::RevocationList;
pub use tokens::{IssuedPair, MAX_TIMESTAMP, MAX_TOKEN_LEN, NewSession, TokenSettings, Tokens};
pub use uuid::Uuid;
