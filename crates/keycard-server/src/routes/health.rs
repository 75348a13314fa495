//! Liveness and readiness.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz))
}

/// Liveness: the process serves HTTP.
async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Readiness: the database answers and takes writes. Redis is reported but optional: without it
/// keycard works on the database alone.
///
/// Whether the database takes writes is what the last write said (a full disk refuses them);
/// while it refuses them, each check tries one harmless write (at most once a second), so
/// readiness returns by itself once space does. No write at all while writes succeed.
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
