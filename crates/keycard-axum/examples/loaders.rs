//! Flask-JWT-Extended's `examples/loaders.py`, ported: `POST /login` (no body) returns an access
//! token for `/protected`; an *expired* token gets the custom answer
//! `401 {"code": "dave", "err": "I can't let you do that"}` (FJE's `expired_token_loader`, here
//! [`JwtConfigBuilder::on_error`](keycard_axum::JwtConfigBuilder::on_error)); every other error
//! keeps its default answer. Try it with a token older than 15 minutes.

mod common;

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Router, extract::State, http::StatusCode};
use keycard_axum::{AuthError, IssueError, Json, Jwt, JwtConfig};
use keycard_token::Tokens;
use serde_json::{Value, json};

fn expired_token(e: &AuthError) -> Option<Response> {
    e.is_expired().then(|| {
        (StatusCode::UNAUTHORIZED, Json(json!({"code": "dave", "err": "I can't let you do that"}))).into_response()
    })
}

async fn login(State(tokens): State<Arc<Tokens>>) -> Result<Json<Value>, IssueError> {
    Ok(Json(json!({ "access_token": tokens.access("example_user").sign()?.token })))
}

async fn protected(_: Jwt) -> Json<Value> {
    Json(json!({"hello": "world"}))
}

#[tokio::main]
async fn main() {
    let tokens = common::tokens(Default::default());
    let jwt = JwtConfig::<()>::builder(tokens.clone()).on_error(expired_token).build().unwrap_or_else(common::fail);
    let app = Router::new()
        .route("/login", post(login))
        .route("/protected", get(protected))
        .layer(jwt.layer())
        .with_state(tokens);
    common::serve(app).await;
}
