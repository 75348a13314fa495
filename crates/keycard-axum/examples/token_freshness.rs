//! Flask-JWT-Extended's `examples/token_freshness.py`, ported: log in with `test`/`test` for a
//! *fresh* access token and a refresh token; `POST /refresh` (with the refresh token) gives a
//! non-fresh access token; `/protected` accepts only fresh access tokens ("Fresh token
//! required" otherwise). Access tokens live 1 hour, refresh tokens 30 days.

mod common;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Router, extract::State};
use keycard_axum::{FreshJwt, Json, JwtConfig, RefreshJwt};
use keycard_token::{TokenError, TokenSettings, Tokens};
use serde_json::{Value, json};
use std::{sync::Arc, time::Duration};

#[derive(serde::Deserialize)]
struct Login {
    username: Option<String>,
    password: Option<String>,
}

fn internal(e: TokenError) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"msg": e.to_string()}))).into_response()
}

// We verify the user's password here, so the access token is fresh.
async fn login(State(tokens): State<Arc<Tokens>>, Json(body): Json<Login>) -> Result<Json<Value>, Response> {
    if body.username.as_deref() != Some("test") || body.password.as_deref() != Some("test") {
        return Err((StatusCode::UNAUTHORIZED, Json(json!({"msg": "Bad username or password"}))).into_response());
    }
    let access = tokens.access("example_user").fresh(true).sign().map_err(internal)?;
    let refresh = tokens.refresh("example_user").sign().map_err(internal)?;
    Ok(Json(json!({ "access_token": access.token, "refresh_token": refresh.token })))
}

// No password was checked here, so the new access token is not fresh.
async fn refresh(State(tokens): State<Arc<Tokens>>, RefreshJwt(jwt): RefreshJwt) -> Result<Json<Value>, Response> {
    let access = tokens.access(&jwt.sub).fresh(false).sign().map_err(internal)?;
    Ok(Json(json!({ "access_token": access.token })))
}

// `FreshJwt` is `@jwt_required(fresh=True)`.
async fn protected(_: FreshJwt) -> Json<Value> {
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
