//! # keycard-jwks: verify the tokens of any OpenID Connect / JWKS issuer
//!
//! A [`JwksVerifier`] checks the JWTs of Keycloak, Auth0, Entra ID, Google, Okta, or a keycard
//! server with an asymmetric key: it finds the issuer's key set by OpenID Connect discovery (or
//! takes its URL), caches it, refetches it when a token names an unknown `kid` (at most once per
//! few seconds, however many such tokens arrive), refreshes it in the background as the
//! provider's `Cache-Control` says, and keeps verifying with the cached keys while the provider
//! is down. It plugs into keycard-axum's extractors with [`JwksVerifier::jwt_config`].
//!
//! What is checked, always: the signature, by a key of the issuer's set chosen by `kid`, with
//! that key's algorithm (never the token's: algorithm confusion with the public key as an HMAC
//! secret is refused, and the `jku`/`x5u`/`jwk`/`x5c` headers are refused, never followed);
//! `iss` equal to the configured issuer; `aud` naming the configured audience (unless you say
//! [`no_audience`](JwksVerifierBuilder::no_audience)); `exp` (required), `nbf` and `iat`.
//! URLs must be `https://`, except `http://` on loopback hosts; answers are limited to
//! [`MAX_BODY_LEN`]; redirects are not followed.
//!
//! Authorisation claims (groups, roles, scopes, wherever the provider puts them) are read with
//! [`claim_contains`] and friends.
//!
//! ```no_run
//! use axum::{Json, Router, http::StatusCode, response::IntoResponse, routing::get};
//! use keycard_axum::Jwt;
//! use keycard_jwks::{JwksVerifier, OidcClaims, claim_contains};
//! use serde_json::json;
//!
//! async fn reports(jwt: Jwt<OidcClaims>) -> impl IntoResponse {
//!     if !claim_contains(&jwt.claims, "groups", "reporting") {
//!         return (StatusCode::FORBIDDEN, Json(json!({"msg": "reporting group required"})));
//!     }
//!     (StatusCode::OK, Json(json!({ "user": jwt.sub })))
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let verifier = JwksVerifier::builder()
//!         .issuer("https://idp.example.com/realms/master") // discovery: {issuer}/.well-known/openid-configuration
//!         .audience("my-api")                              // the OAuth client id
//!         .identity_claim("email")                         // `jwt.sub` is the email
//!         .build()
//!         .await?;                                         // fails if the provider is unreachable now
//!     let app = Router::new()
//!         .route("/reports", get(reports))
//!         .layer(verifier.jwt_config::<OidcClaims>()?.layer());
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
//!     axum::serve(listener, app).await?;
//!     Ok(())
//! }
//! ```
//!
//! `examples/oidc.rs` is a whole service (Flask-JWT-Extended's `examples/oidc.py`, ported).

mod axum;
mod claims;
mod error;
mod fetch;
mod ssf;
mod verifier;

pub use claims::{OidcClaims, claim, claim_contains, claim_contains_all, claim_contains_any};
pub use error::JwksError;
pub use fetch::MAX_BODY_LEN;
pub use ssf::{
    DEFAULT_MAX_STALENESS, DEFAULT_REVOCATION_LIFETIME, POLL_TIMEOUT, RevocationFeed, RevocationFeedBuilder,
    SESSION_REVOKED, SessionClaims, StaleFeed, WhenStale,
};
pub use verifier::{
    DEFAULT_CACHE_CAPACITY, DEFAULT_HTTP_TIMEOUT, DEFAULT_MIN_REFETCH_INTERVAL, JwksVerifier, JwksVerifierBuilder,
};
