//! # keycard-axum: protect axum routes with keycard JWTs
//!
//! The `@jwt_required()` of Rust is an extractor argument:
//!
//! | extractor | accepts |
//! |---|---|
//! | [`AccessToken`] | a valid, unrevoked access token |
//! | [`FreshAccessToken`] | the same, issued by a password login (not a refresh) |
//! | [`RefreshToken`] | a valid, unrevoked refresh token |
//! | [`RequireRole<R>`] | an access token carrying role [`Role::NAME`] (else 403) |
//! | `Option<AccessToken>` | no `Authorization` header at all, or a valid access token |
//!
//! Every refusal is an [`AuthError`]: 401 (403 for a missing role) with a JSON body
//! `{"msg": "..."}` and a `WWW-Authenticate: Bearer ...` header (RFC 6750 §3). The messages are
//! fixed text and never echo anything taken from the token.
//!
//! The extractors read a [`JwtAuth`] from the application state through [`FromRef`](axum::extract::FromRef), so your state
//! only needs `impl FromRef<AppState> for JwtAuth`:
//!
//! ```
//! use std::sync::Arc;
//! use axum::{Json, Router, extract::FromRef, routing::get};
//! use keycard_axum::{AccessToken, JwtAuth, RequireRole, Role};
//! use keycard_token::{Keys, RevocationList, SystemClock, TokenSettings, Tokens};
//!
//! #[derive(Clone)]
//! struct AppState { auth: JwtAuth }
//!
//! impl FromRef<AppState> for JwtAuth {
//!     fn from_ref(state: &AppState) -> JwtAuth { state.auth.clone() }
//! }
//!
//! struct Admin;
//! impl Role for Admin {
//!     const NAME: &'static str = "admin";
//!     const FORBIDDEN: &'static str = "Admins only";
//! }
//!
//! async fn protected(AccessToken(claims): AccessToken) -> Json<serde_json::Value> {
//!     Json(serde_json::json!({ "logged_in_as": claims.sub }))
//! }
//!
//! async fn admin_only(RequireRole(claims, ..): RequireRole<Admin>) -> String {
//!     format!("hello, admin {}", claims.sub)
//! }
//!
//! let keys = Keys::hmac_sha256(b"an example secret of at least 32 bytes!!").unwrap();
//! let tokens = Arc::new(Tokens::new(keys, TokenSettings::default(), Arc::new(SystemClock)));
//! let auth = JwtAuth::new(tokens, Arc::new(RevocationList::new()));
//! let app: Router = Router::new()
//!     .route("/protected", get(protected))
//!     .route("/admin", get(admin_only))
//!     .with_state(AppState { auth });
//! ```

mod cookies;
mod error;
mod extract;
mod locations;

use std::sync::Arc;

use axum::http::{HeaderMap, header::AUTHORIZATION};
use keycard_token::{Claims, RevocationList, TokenType, Tokens};

pub use error::AuthError;
pub use extract::{AccessToken, FreshAccessToken, RefreshToken, RequireRole, Role};

/// Largest `Authorization` header looked at; anything longer is refused before decoding. Room
/// for `Bearer ` and the longest token keycard-token issues ([`keycard_token::MAX_TOKEN_LEN`]),
/// so every issued token passes this check.
pub const MAX_AUTHORIZATION_LEN: usize = "Bearer ".len() + keycard_token::MAX_TOKEN_LEN;

/// What the extractors need: the token verifier and the revocation list. Cheap to clone.
#[derive(Clone, Debug)]
pub struct JwtAuth {
    tokens: Arc<Tokens>,
    revoked: Arc<RevocationList>,
}

impl JwtAuth {
    /// Verifies with `tokens` and refuses tokens listed in `revoked`.
    pub fn new(tokens: Arc<Tokens>, revoked: Arc<RevocationList>) -> Self {
        Self { tokens, revoked }
    }

    /// The token issuer and verifier.
    pub fn tokens(&self) -> &Arc<Tokens> {
        &self.tokens
    }

    /// The revocation list consulted on every request.
    pub fn revocations(&self) -> &Arc<RevocationList> {
        &self.revoked
    }

    /// Revokes the token with `claims` (by `jti`) from the next request on.
    pub fn revoke_token(&self, claims: &Claims) {
        self.revoked.revoke(claims.jti, claims.exp);
    }

    /// Authenticates a request from its headers: a bearer token of type `expected` that verifies
    /// and is not revoked.
    pub fn authenticate(&self, headers: &HeaderMap, expected: TokenType) -> Result<Claims, AuthError> {
        let token = bearer_token(headers)?;
        let claims = self.tokens.verify(token).map_err(AuthError::InvalidToken)?;
        if claims.token_type != expected {
            return Err(AuthError::WrongTokenType { expected });
        }
        if self.revoked.is_revoked(&claims) {
            return Err(AuthError::Revoked);
        }
        Ok(claims)
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive, RFC 7235).
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, AuthError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next().ok_or(AuthError::MissingHeader)?;
    if values.next().is_some() {
        return Err(AuthError::BadHeader);
    }
    if value.len() > MAX_AUTHORIZATION_LEN {
        return Err(AuthError::HeaderTooLarge);
    }
    let value = value.to_str().map_err(|_| AuthError::BadHeader)?;
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::BadHeader)?;
    if !scheme.eq_ignore_ascii_case("Bearer") {
        return Err(AuthError::BadHeader);
    }
    if token.is_empty() || has_whitespace(token) {
        return Err(AuthError::BadHeader);
    }
    Ok(token)
}

/// Whether `s`, which [`HeaderValue::to_str`](axum::http::HeaderValue::to_str) admitted (visible
/// ASCII and tabs only), contains whitespace. Of those characters only space and tab are
/// whitespace, and both are `<= b' '`; the loop has no early exit so that it vectorizes (it runs
/// on every authenticated request over a ~350-byte token).
///
/// Strict base64url decoding in `Tokens::verify` would refuse whitespace too, but as an invalid
/// token; here it is a malformed header (`invalid_request`), as RFC 6750 §3.1 asks.
fn has_whitespace(s: &str) -> bool {
    let mut found = false;
    for &b in s.as_bytes() {
        found |= b <= b' ';
    }
    found
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod bearer_tests {
    use axum::http::HeaderValue;

    use super::*;

    /// The parser before the whitespace scan was made branch-free, kept as the reference.
    fn reference(headers: &HeaderMap) -> Result<&str, AuthError> {
        let mut values = headers.get_all(AUTHORIZATION).iter();
        let value = values.next().ok_or(AuthError::MissingHeader)?;
        if values.next().is_some() {
            return Err(AuthError::BadHeader);
        }
        if value.len() > MAX_AUTHORIZATION_LEN {
            return Err(AuthError::HeaderTooLarge);
        }
        let value = value.to_str().map_err(|_| AuthError::BadHeader)?;
        let (scheme, token) = value.split_once(' ').ok_or(AuthError::BadHeader)?;
        if !scheme.eq_ignore_ascii_case("Bearer") || token.is_empty() || token.bytes().any(|b| b.is_ascii_whitespace())
        {
            return Err(AuthError::BadHeader);
        }
        Ok(token)
    }

    #[test]
    fn bearer_token_agrees_with_the_reference_parser() {
        let long = format!("Bearer {}", "a".repeat(MAX_AUTHORIZATION_LEN));
        let mut values: Vec<Vec<u8>> = [
            "Bearer a.b.c",
            "bearer a.b.c",
            "BEARER a.b.c",
            "Bearer",
            "Bearer ",
            "Bearer  a.b.c",
            "Bearer a b",
            "Bearer a\tb",
            "Bearer\ta.b.c",
            "Bearer a.b.c ",
            "Bearer a.b.c\t",
            "Basic abc",
            "Bearerx a",
            " Bearer a",
            "Bearer ~!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}",
            long.as_str(),
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        // Bytes a header value may hold that `to_str` refuses (obs-text), at the start, middle and end.
        for b in [0x80u8, 0xa0, 0xc3, 0xff] {
            values.push([b"Bearer ".as_slice(), &[b], b"a.b.c"].concat());
            values.push([b"Bearer a.b".as_slice(), &[b], b".c"].concat());
            values.push([b"Bearer a.b.c".as_slice(), &[b]].concat());
        }
        for value in values {
            let mut headers = HeaderMap::new();
            headers.insert(AUTHORIZATION, HeaderValue::from_bytes(&value).unwrap());
            assert_eq!(bearer_token(&headers), reference(&headers), "{:?}", String::from_utf8_lossy(&value));
        }
        assert_eq!(bearer_token(&HeaderMap::new()), Err(AuthError::MissingHeader));
        // Every printable byte but space is a token byte; tab and space are not.
        for b in 0x21u8..=0x7e {
            let mut headers = HeaderMap::new();
            headers.insert(AUTHORIZATION, HeaderValue::from_bytes(&[b"Bearer x".as_slice(), &[b]].concat()).unwrap());
            assert!(bearer_token(&headers).is_ok(), "{b:#x}");
            assert_eq!(bearer_token(&headers), reference(&headers));
        }
    }
}
