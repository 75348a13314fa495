//! What every example reads from the environment, in one place so each example shows only the
//! part that corresponds to its Flask-JWT-Extended original:
//!
//! - `KEYCARD_JWT_SECRET`: the HS256 secret (at least 32 bytes; a random one, with a warning,
//!   when unset),
//! - `KEYCARD_BIND`: the address (default `127.0.0.1:5000`, Flask's),
//! - `KEYCARD_REDIS_URL`: Redis (default `redis://127.0.0.1:6379/0`).
#![allow(dead_code)]

use std::sync::Arc;

use axum::Router;
use keycard_token::{Keys, SystemClock, TokenSettings, Tokens};

/// The token issuer and verifier with `settings` and the secret from `KEYCARD_JWT_SECRET`.
pub fn tokens(settings: TokenSettings) -> Arc<Tokens> {
    let secret = std::env::var("KEYCARD_JWT_SECRET").map(String::into_bytes).unwrap_or_else(|_| {
        eprintln!("warning: KEYCARD_JWT_SECRET is unset; using a random secret (tokens die with the process)");
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).unwrap_or_else(|_| fail("the OS random source failed"));
        secret.to_vec()
    });
    let keys = Keys::hmac_sha256(&secret).unwrap_or_else(|e| fail(format!("KEYCARD_JWT_SECRET: {e}")));
    Arc::new(Tokens::new(keys, settings, Arc::new(SystemClock)))
}

/// Redis, from `KEYCARD_REDIS_URL`.
pub fn redis_url() -> String {
    std::env::var("KEYCARD_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned())
}

/// Serves `app` on `KEYCARD_BIND` until Ctrl-C.
pub async fn serve(app: Router) {
    let addr = std::env::var("KEYCARD_BIND").unwrap_or_else(|_| "127.0.0.1:5000".to_owned());
    let listener =
        tokio::net::TcpListener::bind(&addr).await.unwrap_or_else(|e| fail(format!("cannot listen on {addr}: {e}")));
    eprintln!("listening on http://{addr}");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let served = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
    served.unwrap_or_else(|e| fail(format!("server error: {e}")));
}

/// Prints `msg` and exits with status 1. Generic over its return type so that it can stand in
/// for any value: `config.build().unwrap_or_else(common::fail)`.
pub fn fail<T>(msg: impl std::fmt::Display) -> T {
    eprintln!("error: {msg}");
    std::process::exit(1)
}
