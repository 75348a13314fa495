//! # keycard-server: the ready JWT auth server
//!
//! Built on `keycard-token` (tokens), `keycard-axum` (extractors) and `keycard-store` (storage)
//! exactly as an outside user would use them. This crate adds password hashing
//! ([`password`]), the routes ([`routes`]), configuration ([`settings`]), logging
//! ([`telemetry`]), metrics ([`metrics`]), connection handling ([`serve`]) and the command line ([`cli`]); `main.rs` only runs [`cli::run`].
//!
//! ## Layers
//!
//! Dependencies between the modules point one way, down (a module may also use others of its
//! own layer, without a cycle); a unit test (`src/layering.rs`) checks it on the sources:
//!
//! ```text
//!  edge        cli                                   the command line (`main.rs` runs it)
//!               │
//!  assembly    startup  check                        Application::build, router(): wires it all;
//!                                                    `keycard config check` from the same pieces
//!               │
//!  HTTP        routes ──► extract ──► error          handlers; extractors; ApiError -> response
//!              routes ──► openapi                    the API description, /openapi.json and /docs
//!              middleware ──► error    serve         the per-request edge layer; connections
//!               │
//!  state       state                                 AppState (+ FromRef): the services, shared
//!               │
//!  services    accounts  audit  cluster  import      own error types (HashError, LoginError,
//!              password  security  signing_keys      RedisError, KeyRingError, StoreError): no
//!              ssf                                   AppState, no ApiError; ssf: the Shared Signals
//!                                                    transmitter
//!               │
//!  foundation  settings ──► client    telemetry      configuration; who is calling; logging;
//!              metrics                               the Prometheus registry
//!               │
//!  crates      keycard-store  keycard-token  keycard-axum
//! ```
//!
//! So `routes -> state -> services -> store`: [`error`] maps the services' errors (such as
//! [`password::HashError`]) to statuses, never the other way round, and [`settings`] knows no
//! HTTP code.

pub mod accounts;
pub mod audit;
pub mod auth;
pub mod check;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod error;
pub mod extract;
pub mod import;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod password;
pub mod routes;
pub mod security;
pub mod serve;
pub mod settings;
pub mod signing_keys;
pub mod ssf;
pub mod startup;
pub mod state;
pub mod telemetry;

pub use settings::Settings;
pub use startup::{Application, router};
pub use state::AppState;

#[cfg(test)]
mod layering;
