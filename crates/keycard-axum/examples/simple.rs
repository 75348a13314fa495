//! Flask-JWT-Extended's `examples/simple.py`, ported: log in with `test`/`test`, then call
//! `/protected` with `Authorization: Bearer <token>`.

mod common;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Router, extract::State};
use keycard_axum::{Json, Jwt, JwtConfig};
use keycard_token::Tokens;
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(serde::Deserialize)]
struct Login {
    username: Option<String>,
    password: Option<String>,
}

async fn login(State(tokens): State<Arc<Tokens>>, Json(body): Json<Login>) -> Response {
    if body.username.as_deref() != Some("test") || body.password.as_deref() != Some("test") {
        return (StatusCode::UNAUTHORIZED, Json(json!({"msg": "Bad username or password"}))).into_response();
    }
    match tokens.access("test").sign() {
        Ok(signed) => Json(json!({ "access_token": signed.token })).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"msg": e.to_string()}))).into_response(),
    }
}

async fn protected(jwt: Jwt) -> Json<Value> {
    Json(json!({ "logged_in_as": jwt.sub }))
}

#[tokio::main]
async fn main() {
    let tokens = common::tokens(Default::default());
    let jwt = JwtConfig::<()>::builder(tokens.clone()).build().unwrap_or_else(|e| common::fail(&e.to_string()));
    let app = Router::new()
        .route("/login", post(login))
        .route("/protected", get(protected))
        .layer(jwt.layer())
        .with_state(tokens);
    common::serve(app).await;
}
