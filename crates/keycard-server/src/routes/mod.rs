//! The HTTP routes. Each module owns a `router()`; they are merged here.

mod admin;
mod auth;
mod demo;
mod health;
mod ssf;
mod user;
mod well_known;

use axum::Router;
use utoipa_axum::router::OpenApiRouter;

use crate::error::ApiError;
use crate::state::AppState;

pub use admin::{AuditView, parse_since};
pub use user::{UserView, rfc3339};

/// Every route of keycard, each with its OpenAPI description: the document's paths are these
/// routes, so none can be served undescribed, except the demo's static page and assets (and
/// `/docs`, added by [`router`]), which are no API.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(crate::openapi::base())
        .merge(auth::router())
        .merge(OpenApiRouter::from(demo::router()))
        .merge(user::router())
        .merge(admin::router())
        .merge(health::router())
        .merge(well_known::router())
        .merge(ssf::router())
}

/// The OpenAPI document of [`api`], as served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut document = api().into_openapi();
    crate::openapi::complete(&mut document);
    document
}

/// Every route of keycard, and its description at `/openapi.json` and `/docs`.
pub fn router() -> Router<AppState> {
    let (router, document) = api().split_for_parts();
    router.merge(crate::openapi::router(document))
}

/// 404 for unknown routes, in our format.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("Not found")
}

/// 405 for a known route with another method, in our format.
pub async fn method_not_allowed() -> (axum::http::StatusCode, axum::Json<serde_json::Value>) {
    (axum::http::StatusCode::METHOD_NOT_ALLOWED, axum::Json(serde_json::json!({ "msg": "Method not allowed" })))
}
