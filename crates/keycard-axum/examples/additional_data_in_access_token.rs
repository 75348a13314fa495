//! Flask-JWT-Extended's `examples/additional_data_in_access_token.py`, ported: log in with
//! `test`/`test` for an access token that also carries `"aud": "some_audience"` and
//! `"foo": "bar"`; `/protected` (with `Authorization: Bearer <token>`) answers the token's `foo`.
//! As in the original, no audience is verified on decode.

mod common;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::{Router, extract::State, http::StatusCode, response::IntoResponse};
use keycard_axum::{IssueError, Json, Jwt, JwtConfig};
use keycard_token::Tokens;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The application's claims, beside the registered ones (`foo` may be any JSON value).
#[derive(Clone, Serialize, Deserialize)]
struct AppClaims {
    foo: Value,
}

async fn login(State(tokens): State<Arc<Tokens>>, Json(body): Json<Value>) -> Result<impl IntoResponse, IssueError> {
    if body["username"] != "test" || body["password"] != "test" {
        return Ok((StatusCode::UNAUTHORIZED, Json(json!({"msg": "Bad username or password"}))));
    }
    // `aud` is a registered claim, so it has its own setter; `foo` is the application's.
    let signed = tokens.access("test").audience("some_audience").claims(AppClaims { foo: "bar".into() }).sign()?;
    Ok((StatusCode::OK, Json(json!({ "access_token": signed.token }))))
}

async fn protected(jwt: Jwt<AppClaims>) -> Json<Value> {
    Json(json!({ "foo": jwt.foo }))
}

#[tokio::main]
async fn main() {
    let tokens = common::tokens(Default::default());
    let jwt = JwtConfig::<AppClaims>::builder(tokens.clone()).build().unwrap_or_else(common::fail);
    let app = Router::new()
        .route("/login", post(login))
        .route("/protected", get(protected))
        .layer(jwt.layer())
        .with_state(tokens);
    common::serve(app).await;
}
