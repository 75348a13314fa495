//! Flask-JWT-Extended's `examples/refresh_tokens.py`, ported: `POST /login` (no body) returns an
//! access token (1 hour) and a refresh token (30 days); `POST /refresh` with
//! `Authorization: Bearer <refresh token>` returns a new access token; `/protected` takes only
//! access tokens.

mod common;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Router, extract::State};
use keycard_axum::{Json, Jwt, JwtConfig, RefreshJwt};
use keycard_token::{TokenError, TokenSettings, Tokens};
use serde_json::{Value, json};
use std::{sync::Arc, time::Duration};

fn internal(e: TokenError) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"msg": e.to_string()}))).into_response()
}

async fn login(State(tokens): State<Arc<Tokens>>) -> Result<Json<Value>, Response> {
    let access = tokens.access("example_user").sign().map_err(internal)?;
    let refresh = tokens.refresh("example_user").sign().map_err(internal)?;
    Ok(Json(json!({ "access_token": access.token, "refresh_token": refresh.token })))
}

// `RefreshJwt` is `@jwt_required(refresh=True)`: only refresh tokens reach this handler.
async fn refresh(State(tokens): State<Arc<Tokens>>, RefreshJwt(jwt): RefreshJwt) -> Result<Json<Value>, Response> {
    let access = tokens.access(&jwt.sub).sign().map_err(internal)?;
    Ok(Json(json!({ "access_token": access.token })))
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
    let jwt = JwtConfig::<()>::builder(tokens.clone()).build().unwrap_or_else(|e| common::fail(&e.to_string()));
    let app = Router::new()
        .route("/login", post(login))
        .route("/refresh", post(refresh))
        .route("/protected", get(protected))
        .layer(jwt.layer())
        .with_state(tokens);
    common::serve(app).await;
}
