//! Liveness and readiness.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::openapi::{Health, NotReady, Ready};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz))
}

/// Liveness: the process serves HTTP.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    summary = "Liveness: the process serves HTTP",
    responses((status = 200, description = "`{\"status\": \"ok\"}`", body = Health)),
)]
async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Readiness: the database answers and takes writes. Redis is reported but optional: without it
/// keycard works on the database alone.
///
/// Whether the database takes writes is what the last write said (a full disk refuses them);
/// while it refuses them, each check tries one harmless write (at most once a second), so
/// readiness returns by itself once space does. No write at all while writes succeed.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    summary = "Readiness: the database answers and takes writes",
    responses(
        (status = 200, description = "Ready (Redis is reported when configured, but optional)", body = Ready),
        (status = 503, description = "Not ready: the database does not answer, or refuses writes (a full disk)", body = NotReady),
    ),
)]
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let ready = match state.store.ping().await {
        Ok(()) => state.store.check_writes(state.now()).await,
        Err(e) => Err(e),
    };
    match ready {
        Ok(()) => {
            let mut body = json!({ "status": "ready", "database": state.store.kind() });
            if let Some(redis) = &state.redis {
                body["redis"] = json!(if redis.ping().await.is_ok() { "up" } else { "down" });
            }
            (StatusCode::OK, Json(body))
        }
        Err(keycard_store::StoreError::WritesRefused(reason)) => {
            let body = json!({
                "msg": "Service temporarily unavailable",
                "database": state.store.kind(),
                "reason": format!("the database refuses writes: {reason}"),
            });
            (StatusCode::SERVICE_UNAVAILABLE, Json(body))
        }
        Err(e) => {
            tracing::warn!(error = ?e, "readiness check failed");
            let body = json!({ "msg": "Service temporarily unavailable", "reason": "the database does not answer" });
            (StatusCode::SERVICE_UNAVAILABLE, Json(body))
        }
    }
}
