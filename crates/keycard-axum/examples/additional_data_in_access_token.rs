//! Flask-JWT-Extended's `examples/additional_data_in_access_token.py`, ported: log in with
//! `test`/`test` for an access token that also carries `"aud": "some_audience"` and
//! `"foo": "bar"`; `/protected` (with `Authorization: Bearer <token>`) answers the token's `foo`.
//! As in the original, no audience is verified on decode.

mod common;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Router, extract::State};
use keycard_axum::{Json, Jwt, JwtConfig};
use keycard_token::Tokens;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Deserialize)]
struct Login {
    username: Option<String>,
    password: Option<String>,
}

/// The application's claims, beside the registered ones (`foo` may be any JSON value).
#[derive(Clone, Serialize, Deserialize)]
struct AppClaims {
    foo: Value,
}

async fn login(State(tokens): State<Arc<Tokens>>, Json(body): Json<Login>) -> Response {
    if body.username.as_deref() != Some("test") || body.password.as_deref() != Some("test") {
        return (StatusCode::UNAUTHORIZED, Json(json!({"msg": "Bad username or password"}))).into_response();
    }
    // `aud` is a registered claim, not an application one: set it on the claims, then sign them.
    let signed = tokens.access("test").claims(AppClaims { foo: "bar".into() }).build().and_then(|mut claims| {
        claims.aud = Some("some_audience".into());
        tokens.encode(&claims)
    });
    match signed {
        Ok(token) => Json(json!({ "access_token": token })).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"msg": e.to_string()}))).into_response(),
    }
}

async fn protected(jwt: Jwt<AppClaims>) -> Json<Value> {
    Json(json!({ "foo": jwt.foo }))
}

#[tokio::main]
async fn main() {
    let tokens = common::tokens(Default::default());
    let jwt = JwtConfig::<AppClaims>::builder(tokens.clone()).build().unwrap_or_else(|e| common::fail(&e.to_string()));
    let app = Router::new()
        .route("/login", post(login))
        .route("/protected", get(protected))
        .layer(jwt.layer())
        .with_state(tokens);
    common::serve(app).await;
}
