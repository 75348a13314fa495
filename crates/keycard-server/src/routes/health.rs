//! Liveness and readiness.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz))
}

/// Liveness: the process serves HTTP.
async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Readiness: the database answers. Redis is reported but optional: without it keycard works on
/// the database alone.
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match state.store.ping().await {
        Ok(()) => {
            let mut body = json!({ "status": "ready", "database": state.store.kind() });
            if let Some(redis) = &state.redis {
                body["redis"] = json!(if redis.ping().await.is_ok() { "up" } else { "down" });
            }
            (StatusCode::OK, Json(body))
        }
        Err(e) => {
            tracing::warn!(error = ?e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "msg": "Service temporarily unavailable" })))
        }
    }
}
