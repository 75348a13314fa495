//! Flask-JWT-Extended's `examples/token_freshness.py`, ported: log in with `test`/`test` for a
//! *fresh* access token and a refresh token; `POST /refresh` (with the refresh token) gives a
//! non-fresh access token; `/protected` accepts only fresh access tokens ("Fresh token
//! required" otherwise). Access tokens live 1 hour, refresh tokens 30 days.

mod common;

use std::{sync::Arc, time::Duration};

use axum::routing::{get, post};
use axum::{Router, extract::State, http::StatusCode, response::IntoResponse};
use keycard_axum::{FreshJwt, IssueError, Json, JwtConfig, RefreshJwt};
use keycard_token::{TokenSettings, Tokens};
use serde_json::{Value, json};

// We verify the user's password here, so the access token is fresh.
async fn login(State(tokens): State<Arc<Tokens>>, Json(body): Json<Value>) -> Result<impl IntoResponse, IssueError> {
    if body["username"] != "test" || body["password"] != "test" {
        return Ok((StatusCode::UNAUTHORIZED, Json(json!({"msg": "Bad username or password"}))));
    }
    let access_token = tokens.access("example_user").fresh(true).sign()?.token;
    let refresh_token = tokens.refresh("example_user").sign()?.token;
    Ok((StatusCode::OK, Json(json!({ "access_token": access_token, "refresh_token": refresh_token }))))
}

// No password was checked here, so the new access token is not fresh.
async fn refresh(State(tokens): State<Arc<Tokens>>, jwt: RefreshJwt) -> Result<Json<Value>, IssueError> {
    Ok(Json(json!({ "access_token": tokens.access(&jwt.sub).fresh(false).sign()?.token })))
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
    let jwt = JwtConfig::<()>::builder(tokens.clone()).build().unwrap_or_else(common::fail);
    let app = Router::new()
        .route("/login", post(login))
        .route("/refresh", post(refresh))
        .route("/protected", get(protected))
        .layer(jwt.layer())
        .with_state(tokens);
    common::serve(app).await;
}
