//! keycard-jwks against a stand-in OpenID Provider (one test binary: `cargo test -p keycard-jwks`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

/// The `oidc` example itself (its `main` is not used here).
#[allow(dead_code)]
#[path = "../../examples/oidc.rs"]
mod oidc;

mod oidc_example;
mod provider;
mod verifier;
