//! Flask-JWT-Extended's `examples/optional_protected_endpoints.py`, ported: log in with
//! `test`/`test`; `/optionally_protected` answers `{"logged_in_as": "test"}` with
//! `Authorization: Bearer <token>` and `"anonymous user"` without a token. A token that is
//! there but invalid or expired is still refused.

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

// `Option<Jwt>` is `@jwt_required(optional=True)`. An empty identity counts as none, as with the
// original's `if current_identity:` (keycard already refuses a token whose `sub` is empty).
async fn optionally_protected(jwt: Option<Jwt>) -> Json<Value> {
    let identity = jwt.as_ref().map(|jwt| jwt.sub.as_str()).filter(|sub| !sub.is_empty());
    Json(json!({ "logged_in_as": identity.unwrap_or("anonymous user") }))
}

#[tokio::main]
async fn main() {
    let tokens = common::tokens(Default::default());
    let jwt = JwtConfig::<()>::builder(tokens.clone()).build().unwrap_or_else(|e| common::fail(&e.to_string()));
    let app = Router::new()
        .route("/login", post(login))
        .route("/optionally_protected", get(optionally_protected))
        .layer(jwt.layer())
        .with_state(tokens);
    common::serve(app).await;
}
