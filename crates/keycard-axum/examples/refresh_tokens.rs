//! Flask-JWT-Extended's `examples/refresh_tokens.py`, ported: `POST /login` (no body) returns an
//! access token (1 hour) and a refresh token (30 days); `POST /refresh` with
//! `Authorization: Bearer <refresh token>` returns a new access token; `/protected` takes only
//! access tokens.

mod common;

use std::{sync::Arc, time::Duration};

use axum::routing::{get, post};
use axum::{Router, extract::State};
use keycard_axum::{IssueError, Json, Jwt, JwtConfig, RefreshJwt};
use keycard_token::{TokenSettings, Tokens};
use serde_json::{Value, json};

async fn login(State(tokens): State<Arc<Tokens>>) -> Result<Json<Value>, IssueError> {
    let access_token = tokens.access("example_user").sign()?.token;
    let refresh_token = tokens.refresh("example_user").sign()?.token;
    Ok(Json(json!({ "access_token": access_token, "refresh_token": refresh_token })))
}

// `RefreshJwt` is `@jwt_required(refresh=True)`: only refresh tokens reach this handler.
async fn refresh(State(tokens): State<Arc<Tokens>>, jwt: RefreshJwt) -> Result<Json<Value>, IssueError> {
    Ok(Json(json!({ "access_token": tokens.access(&jwt.sub).sign()?.token })))
}

async fn protected(_: Jwt) -> Json<Value> {
    Json(json!({"foo": "bar"}))
}

#[tokio::main]
async fn main() {
    let tokens = common::tokens(TokenSettings {
        access_ttl: Duration::from_secs(3600),
        refresh_ttl: Duration::from_secs(30 * 24 * 3600),
        ..Default::default()
    });
    let jwt = JwtConfig::<()>::builder(tokens.clone()).build().unwrap_or_else(common::fail);
    let app = Router::new()
        .route("/login", post(login))
        .route("/refresh", post(refresh))
        .route("/protected", get(protected))
        .layer(jwt.layer())
        .with_state(tokens);
    common::serve(app).await;
}
