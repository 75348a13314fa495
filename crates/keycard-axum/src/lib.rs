//! # keycard-axum: Flask-JWT-Extended for axum
//!
//! Everything [Flask-JWT-Extended](https://flask-jwt-extended.readthedocs.io) (FJE) does for an
//! app, in idiomatic axum, speaking FJE's token format: a Flask service and an axum service that
//! share a secret accept each other's tokens, so an API can move one endpoint at a time.
//!
//! | FJE | keycard-axum |
//! |---|---|
//! | `JWTManager(app)` + `app.config["JWT_*"]` | [`JwtConfig::builder`] ... `.build()?`, then `router.layer(config.layer())` |
//! | `@jwt_required()` | a [`Jwt<C>`] handler argument |
//! | `@jwt_required(optional=True)` | `Option<Jwt<C>>` (also `Option<FreshJwt<C>>`, ...) |
//! | `@jwt_required(fresh=True)` / `(refresh=True)` / `(verify_type=False)` | [`FreshJwt<C>`] / [`RefreshJwt<C>`] / [`AnyJwt<C>`] |
//! | `@jwt_required(locations=[...])` | `get(handler).layer(config.with_locations([...])?.layer())` |
//! | `get_jwt()`, `get_jwt_identity()`, `get_jwt_header()`, `get_jwt_request_location()` | `jwt.claims`, `jwt.identity::<I>()`, `jwt.header`, `jwt.location` |
//! | `current_user` + `@jwt.user_lookup_loader` | [`CurrentUser<U>`] + [`LoadUser`] on your user type |
//! | `create_access_token(identity, fresh=, expires_delta=, additional_claims=, additional_headers=)` | `tokens.access(identity).fresh(..).expires_in(..).claims(..).header(..).sign()?` |
//! | `set_access_cookies`, `set_refresh_cookies`, `unset_jwt_cookies` | [`JwtConfig::access_cookies`], [`JwtConfig::refresh_cookies`], [`JwtConfig::unset_cookies`] |
//! | `@jwt.token_in_blocklist_loader` | [`Revocation`] (or [`JwtConfigBuilder::revocation_fn`]) |
//! | `@jwt.token_verification_loader` | [`ClaimsCheck`] (or [`JwtConfigBuilder::claims_check_fn`]) |
//! | `@jwt.expired_token_loader`, `invalid_token_loader`, ... | [`JwtConfigBuilder::on_error`] with an [`ErrorHandler`] |
//! | a custom decorator (`@admin_required()`) | a [`Guard`], used as [`Require<G>`] |
//!
//! ## The FJE tutorial, step by step
//!
//! 1. **Tokens.** A [`Tokens`](keycard_token::Tokens) signs and verifies; the secret is at least
//!    32 bytes. The defaults are FJE's: 15-minute access tokens, 30-day refresh tokens, HS256.
//! 2. **Configuration.** One [`JwtConfig`] per router says where tokens are read from (headers by
//!    default), how errors look and which hooks run. It is checked when built, so a mistake
//!    stops the program at start.
//! 3. **Login** issues a token with `tokens.access(identity).sign()`; the identity is anything
//!    `Display` (a username, an integer id) and is written as the `sub` string.
//! 4. **Protected routes** take a [`Jwt`] argument; without a valid token the handler never runs
//!    and the client gets 401 `{"msg": "Missing Authorization Header"}` (FJE's messages; FJE's
//!    422s are 401s here, with an RFC 6750 `WWW-Authenticate` challenge).
//!
//! ```
//! use std::sync::Arc;
//! use axum::{Router, routing::{get, post}, http::StatusCode, response::IntoResponse};
//! use keycard_axum::{Json, Jwt, JwtConfig};
//! use keycard_token::{Keys, SystemClock, TokenSettings, Tokens};
//! use serde_json::{Value, json};
//!
//! #[derive(serde::Deserialize)]
//! struct Login { username: String, password: String }
//!
//! async fn login(
//!     axum::extract::State(tokens): axum::extract::State<Arc<Tokens>>,
//!     Json(body): Json<Login>,
//! ) -> axum::response::Response {
//!     if body.username != "test" || body.password != "test" {
//!         return (StatusCode::UNAUTHORIZED, Json(json!({"msg": "Bad username or password"}))).into_response();
//!     }
//!     match tokens.access(&body.username).sign() {
//!         Ok(signed) => Json(json!({ "access_token": signed.token })).into_response(),
//!         Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"msg": e.to_string()}))).into_response(),
//!     }
//! }
//!
//! async fn protected(jwt: Jwt) -> Json<Value> {
//!     Json(json!({ "logged_in_as": jwt.sub }))
//! }
//!
//! let keys = Keys::hmac_sha256(b"an example secret of at least 32 bytes!!").unwrap();
//! let tokens = Arc::new(Tokens::new(keys, TokenSettings::default(), Arc::new(SystemClock)));
//! let jwt = JwtConfig::<()>::builder(tokens.clone()).build().unwrap();
//! let app: Router = Router::new()
//!     .route("/login", post(login))
//!     .route("/protected", get(protected))
//!     .layer(jwt.layer())
//!     .with_state(tokens);
//! ```
//!
//! ## Application claims
//!
//! `Jwt<C>` carries [`Claims<C>`](keycard_token::Claims): the registered claims and your own
//! `C` (any serde type, flattened beside them). The [`JwtConfig<C>`] installed on the route
//! must have the same `C`.
//!
//! ## Token locations
//!
//! [`Location::Headers`], [`Location::Cookies`], [`Location::QueryString`] and
//! [`Location::Json`], in the order configured. **Only a missing token falls through to the
//! next location**; a malformed header, an invalid or expired token, or a cookie without its
//! CSRF header on a POST/PUT/PATCH/DELETE stops the search there (FJE's rule). In cookie mode
//! the access token travels in an HttpOnly cookie and its `csrf` claim in a readable cookie the
//! page echoes in `X-CSRF-TOKEN` (double submit, compared in constant time).
//!
//! ## Hooks
//!
//! Traits with defaults, `async` where I/O may happen: [`Revocation`] (in memory, Redis, SQL),
//! [`ClaimsCheck`], [`LoadUser`], [`ErrorHandler`], [`Guard`]. A hook that fails (Redis down)
//! answers 503, never lets a token through and never panics.

mod config;
mod cookies;
mod error;
mod extract;
mod json;
mod layer;
mod locations;

pub use config::{
    BoxError, ClaimSet, ClaimsCheck, ConfigError, JwtConfig, JwtConfigBuilder, Location, Revocation, SetCookies,
};
pub use cookies::{CookieSettings, SameSite};
pub use error::{AuthError, AuthRejection, ErrorHandler, IssueError};
pub use extract::{AnyJwt, CurrentUser, FreshJwt, Guard, Jwt, LoadUser, RefreshJwt, Require};
pub use json::{Json, JsonRejection, parse_json};
pub use layer::{JwtLayer, JwtService};

/// The longest `Authorization` value a token keycard-token issues can need: `Bearer ` and
/// [`keycard_token::MAX_TOKEN_LEN`]. The extractors refuse a longer token ("Token is too large")
/// before decoding it; the header value itself may be up to 512 bytes longer, for other
/// comma-separated credentials beside the token (`Basic ..., Bearer <JWT>`, which FJE accepts).
///
/// ```
/// # use std::sync::Arc;
/// # let tokens = Arc::new(keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
/// #     Default::default(), Arc::new(keycard_token::SystemClock)));
/// # async fn send(app: &axum::Router, req: axum::http::Request<axum::body::Body>) -> (u16, String) {
/// #     let response = tower::ServiceExt::oneshot(app.clone(), req).await.unwrap();
/// #     let status = response.status().as_u16();
/// #     let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
/// #     (status, String::from_utf8(body.to_vec()).unwrap())
/// # }
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use axum::{Router, body::Body, http::Request, routing::get};
/// use keycard_axum::{Jwt, JwtConfig, MAX_AUTHORIZATION_LEN};
///
/// let jwt = JwtConfig::<()>::builder(tokens.clone()).build().unwrap();
/// let app = Router::new().route("/", get(|jwt: Jwt| async move { jwt.sub.clone() })).layer(jwt.layer());
/// let too_long = "a".repeat(MAX_AUTHORIZATION_LEN + 1 - "Bearer ".len()); // longer than any token
/// let req = Request::get("/").header("Authorization", format!("Bearer {too_long}")).body(Body::empty()).unwrap();
/// assert_eq!(send(&app, req).await, (401, r#"{"msg":"Token is too large"}"#.to_owned()));
/// # });
/// ```
pub const MAX_AUTHORIZATION_LEN: usize = "Bearer ".len() + keycard_token::MAX_TOKEN_LEN;

#[cfg(test)]
mod tests;
