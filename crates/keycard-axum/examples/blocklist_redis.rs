//! Flask-JWT-Extended's `examples/blocklist_redis.py`, ported: `DELETE /logout` stores the
//! token's `jti` in Redis (`SET <jti> "" EX 3600`, so the entry goes when the token would have
//! expired), and a [revocation hook](keycard_axum::JwtConfigBuilder::revocation_fn) refuses any
//! token whose jti is there. Needs Redis at `KEYCARD_REDIS_URL`. `POST /login` (no body) gives a
//! one-hour token; `GET /protected` with `Authorization: Bearer <token>` works until `DELETE
//! /logout` with the same header, then answers "Token has been revoked".

mod common;

use std::{sync::Arc, time::Duration};

use axum::routing::{delete, get, post};
use axum::{Router, extract::State, http::StatusCode};
use keycard_axum::{IssueError, Json, Jwt, JwtConfig};
use keycard_token::{TokenSettings, Tokens};
use redis::AsyncTypedCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde_json::{Value, json};

const ACCESS_EXPIRES: Duration = Duration::from_secs(3600);

#[derive(Clone)]
struct AppState {
    tokens: Arc<Tokens>,
    redis: ConnectionManager,
}

async fn login(State(state): State<AppState>) -> Result<Json<Value>, IssueError> {
    Ok(Json(json!({ "access_token": state.tokens.access("example_user").sign()?.token })))
}

// Revokes the token of the request until it would have expired anyway.
async fn logout(State(mut state): State<AppState>, jwt: Jwt) -> (StatusCode, Json<Value>) {
    match state.redis.set_ex(jwt.jti.clone().unwrap_or_default(), "", ACCESS_EXPIRES.as_secs()).await {
        Ok(()) => (StatusCode::OK, Json(json!({"msg": "Access token revoked"}))),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"msg": format!("Redis error: {e}")}))),
    }
}

async fn protected(_: Jwt) -> Json<Value> {
    Json(json!({"hello": "world"}))
}

#[tokio::main]
async fn main() {
    let tokens = common::tokens(TokenSettings { access_ttl: ACCESS_EXPIRES, ..Default::default() });
    // Connects on first use, and again after Redis restarts; while it is down, requests get a 503 within a second.
    let config =
        ConnectionManagerConfig::new().set_number_of_retries(1).set_connection_timeout(Some(Duration::from_secs(1)));
    let redis = redis::Client::open(common::redis_url())
        .and_then(|client| ConnectionManager::new_lazy_with_config(client, config))
        .unwrap_or_else(|e| common::fail(format!("KEYCARD_REDIS_URL: {e}")));
    // Asked about every verified token; a Redis error answers 503, never lets the token through.
    let blocklist = redis.clone();
    let jwt = JwtConfig::<()>::builder(tokens.clone())
        .revocation_fn(move |token| {
            let (mut redis, jti) = (blocklist.clone(), token.claims.jti.clone().unwrap_or_default());
            async move { Ok(redis.get(jti).await?.is_some()) }
        })
        .build()
        .unwrap_or_else(common::fail);
    let app = Router::new()
        .route("/login", post(login))
        .route("/logout", delete(logout))
        .route("/protected", get(protected))
        .layer(jwt.layer())
        .with_state(AppState { tokens, redis });
    common::serve(app).await;
}
