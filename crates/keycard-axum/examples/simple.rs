//! Flask-JWT-Extended's `examples/simple.py`, ported: log in with `test`/`test`, then call
//! `/protected` with `Authorization: Bearer <token>`.

mod common;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::{Router, extract::State, http::StatusCode, response::IntoResponse};
use keycard_axum::{IssueError, Json, Jwt, JwtConfig};
use keycard_token::Tokens;
use serde_json::{Value, json};

async fn login(State(tokens): State<Arc<Tokens>>, Json(body): Json<Value>) -> Result<impl IntoResponse, IssueError> {
    if body["username"] != "test" || body["password"] != "test" {
        return Ok((StatusCode::UNAUTHORIZED, Json(json!({"msg": "Bad username or password"}))));
    }
    Ok((StatusCode::OK, Json(json!({ "access_token": tokens.access("test").sign()?.token }))))
}

async fn protected(jwt: Jwt) -> Json<Value> {
    Json(json!({ "logged_in_as": jwt.sub }))
}

#[tokio::main]
async fn main() {
    let tokens = common::tokens(Default::default());
    let jwt = JwtConfig::<()>::builder(tokens.clone()).build().unwrap_or_else(common::fail);
    let app = Router::new()
        .route("/login", post(login))
        .route("/protected", get(protected))
        .layer(jwt.layer())
        .with_state(tokens);
    common::serve(app).await;
}
