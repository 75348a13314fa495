//! Flask-JWT-Extended's `examples/optional_protected_endpoints.py`, ported: log in with
//! `test`/`test`; `/optionally_protected` answers `{"logged_in_as": "test"}` with
//! `Authorization: Bearer <token>` and `"anonymous user"` without a token. A token that is
//! there but invalid or expired is still refused.

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

// `Option<Jwt>` is `@jwt_required(optional=True)`. The original's `if current_identity:` also
// treats an empty identity as none; keycard refuses a token whose `sub` is empty before this.
async fn optionally_protected(jwt: Option<Jwt>) -> Json<Value> {
    Json(json!({ "logged_in_as": jwt.map_or("anonymous user".to_owned(), |jwt| jwt.claims.sub) }))
}

#[tokio::main]
async fn main() {
    let tokens = common::tokens(Default::default());
    let jwt = JwtConfig::<()>::builder(tokens.clone()).build().unwrap_or_else(common::fail);
    let app = Router::new()
        .route("/login", post(login))
        .route("/optionally_protected", get(optionally_protected))
        .layer(jwt.layer())
        .with_state(tokens);
    common::serve(app).await;
}
