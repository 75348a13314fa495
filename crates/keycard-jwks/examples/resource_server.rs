//! A resource server that verifies a keycard server's tokens by its JWKS, without asking it, and
//! still refuses a token the moment its session ends: it follows keycard's Shared Signals stream
//! (CAEP `session-revoked` events, RFC 8936 polling) and checks every token against it, in memory.
//!
//! ```sh
//! # keycard with an asymmetric key and this service's credential:
//! KEYCARD_JWT_ALGORITHM=ES256 KEYCARD_PUBLIC_URL=http://127.0.0.1:5000 \
//! KEYCARD_RESOURCE_SERVER_TOKENS=$SSF_TOKEN keycard serve &
//! KEYCARD_ISSUER_URL=http://127.0.0.1:5000 KEYCARD_SSF_TOKEN=$SSF_TOKEN KEYCARD_BIND=127.0.0.1:8000 \
//!     cargo run -p keycard-jwks --example resource_server
//! curl -H "Authorization: Bearer $ACCESS" http://127.0.0.1:8000/protected   # {"logged_in_as":"alice"}
//! # log out at keycard; the next request here is a 401 (`Token has been revoked`)
//! ```
//!
//! Environment:
//!
//! - `KEYCARD_ISSUER_URL` (required): the keycard server (its issuer, `KEYCARD_PUBLIC_URL`).
//! - `KEYCARD_SSF_TOKEN` (required): this service's receiver credential (one of keycard's
//!   `KEYCARD_RESOURCE_SERVER_TOKENS`).
//! - `KEYCARD_AUDIENCE` (optional): the `aud` tokens must name (keycard's `KEYCARD_AUDIENCE`).
//! - `KEYCARD_STALENESS` (optional, seconds, default 30): with no news from keycard for longer,
//!   requests are refused with 503 (fail closed).
//! - `KEYCARD_VERIFIED_TOKEN_CACHE` (optional, default 10000): how many tokens whose signature
//!   verified are remembered, so a token presented again skips the public-key check (claims,
//!   expiry and revocation are still checked on every request); `0` turns the cache off.
//! - `KEYCARD_BIND` (default `127.0.0.1:5000`): the address to listen on.

use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use keycard_axum::Jwt;
use keycard_jwks::{JwksVerifier, OidcClaims, RevocationFeed};
use serde_json::json;

/// What the example reads from the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `KEYCARD_ISSUER_URL`.
    pub issuer: String,
    /// `KEYCARD_SSF_TOKEN`.
    pub ssf_token: String,
    /// `KEYCARD_AUDIENCE`.
    pub audience: Option<String>,
    /// `KEYCARD_STALENESS`.
    pub staleness: Duration,
    /// `KEYCARD_VERIFIED_TOKEN_CACHE`.
    pub verified_token_cache: u64,
    /// `KEYCARD_BIND`.
    pub bind: String,
}

impl Settings {
    /// The settings from `var` (the environment, in `main`).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let get = |name: &str| var(name).filter(|v| !v.is_empty());
        let required = |name: &str| get(name).ok_or(format!("{name} is required"));
        let staleness = match get("KEYCARD_STALENESS") {
            Some(s) => Duration::from_secs(s.parse().map_err(|_| format!("KEYCARD_STALENESS: `{s}` is not seconds"))?),
            None => keycard_jwks::DEFAULT_MAX_STALENESS,
        };
        let verified_token_cache = match get("KEYCARD_VERIFIED_TOKEN_CACHE") {
            Some(s) => {
                s.parse().map_err(|_| format!("KEYCARD_VERIFIED_TOKEN_CACHE: `{s}` is not a number of tokens"))?
            }
            None => keycard_jwks::DEFAULT_CACHE_CAPACITY,
        };
        Ok(Settings {
            issuer: required("KEYCARD_ISSUER_URL")?,
            ssf_token: required("KEYCARD_SSF_TOKEN")?,
            audience: get("KEYCARD_AUDIENCE"),
            staleness,
            verified_token_cache,
            bind: get("KEYCARD_BIND").unwrap_or_else(|| "127.0.0.1:5000".to_owned()),
        })
    }
}

/// The application: the issuer's keys and its revocation stream (fails if either cannot be
/// reached now), then the route.
pub async fn app(settings: &Settings) -> Result<Router, Box<dyn std::error::Error>> {
    let builder = JwksVerifier::builder().issuer(&settings.issuer).cache_verified(settings.verified_token_cache);
    let builder = match &settings.audience {
        Some(audience) => builder.audience(audience),
        None => builder.no_audience(),
    };
    let verifier = builder.build().await?;
    let feed = RevocationFeed::builder(&verifier, &settings.ssf_token)
        .max_staleness(settings.staleness)
        .stream_description(format!("resource_server example on {}", settings.bind))
        .start()
        .await?;
    let jwt = verifier.jwt_config_builder::<OidcClaims>().revocation(feed).build()?;
    Ok(Router::new().route("/protected", get(protected)).layer(jwt.layer()))
}

async fn protected(jwt: Jwt<OidcClaims>) -> Json<serde_json::Value> {
    Json(json!({ "logged_in_as": jwt.sub }))
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let settings = Settings::from_vars(|name| std::env::var(name).ok()).unwrap_or_else(fail);
    let app = app(&settings).await.unwrap_or_else(|e| {
        let mut msg = e.to_string();
        let mut source = e.source();
        while let Some(cause) = source {
            msg = format!("{msg}: {cause}");
            source = cause.source();
        }
        fail(msg)
    });
    let listener = tokio::net::TcpListener::bind(&settings.bind)
        .await
        .unwrap_or_else(|e| fail(format!("cannot listen on {}: {e}", settings.bind)));
    eprintln!("listening on http://{}", settings.bind);
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .unwrap_or_else(|e| fail(format!("server error: {e}")));
}

/// Prints `msg` and exits with status 1.
fn fail<T>(msg: impl std::fmt::Display) -> T {
    eprintln!("error: {msg}");
    std::process::exit(1)
}
