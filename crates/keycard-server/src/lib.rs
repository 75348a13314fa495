//! # keycard-server: the ready JWT auth server
//!
//! Built on `keycard-token` (tokens), `keycard-axum` (extractors) and `keycard-store` (storage)
//! exactly as an outside user would use them. This crate adds password hashing
//! ([`password`]), the routes ([`routes`]), configuration ([`settings`]), logging
//! ([`telemetry`]), connection handling ([`serve`]) and the command line ([`cli`]); `main.rs` only runs [`cli::run`].

pub mod accounts;
pub mod audit;
pub mod cli;
pub mod cluster;
pub mod error;
pub mod extract;
pub mod middleware;
pub mod password;
pub mod routes;
pub mod security;
pub mod serve;
pub mod settings;
pub mod startup;
pub mod telemetry;

pub use settings::Settings;
pub use startup::{AppState, Application, router};
