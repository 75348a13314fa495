//! The HTTP routes. Each module owns a `router()`; they are merged here.

mod admin;
mod auth;
mod demo;
mod health;
mod ssf;
mod user;
mod well_known;

use axum::Router;

use crate::error::ApiError;
use crate::state::AppState;

pub use admin::{AuditView, parse_since};
pub use user::{UserView, rfc3339};

/// Every route of keycard.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(auth::router())
        .merge(demo::router())
        .merge(user::router())
        .merge(admin::router())
        .merge(health::router())
        .merge(well_known::router())
        .merge(ssf::router())
}

/// 404 for unknown routes, in our format.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("Not found")
}

/// 405 for a known route with another method, in our format.
pub async fn method_not_allowed() -> (axum::http::StatusCode, axum::Json<serde_json::Value>) {
    (axum::http::StatusCode::METHOD_NOT_ALLOWED, axum::Json(serde_json::json!({ "msg": "Method not allowed" })))
}
