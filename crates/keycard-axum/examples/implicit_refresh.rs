//! Flask-JWT-Extended's `examples/implicit_refresh.py`, ported: tokens travel only in cookies,
//! and a response to a request whose access cookie expires within 30 minutes carries a new one
//! ([`implicit_refresh`](keycard_axum::JwtConfigBuilder::implicit_refresh), FJE's
//! `after_request` hook). `POST /login` sets the cookies (one-hour token), `GET /protected`
//! needs them, `POST /logout` deletes them.

mod common;

use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Router, extract::State, http::StatusCode};
use keycard_axum::{CookieSettings, Json, Jwt, JwtConfig, Location};
use keycard_token::TokenSettings;
use serde_json::{Value, json};
use std::time::Duration;

async fn login(State(jwt): State<JwtConfig>) -> Response {
    match jwt.tokens().access("example_user").sign() {
        Ok(signed) => (jwt.access_cookies(&signed), Json(json!({"msg": "login successful"}))).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"msg": e.to_string()}))).into_response(),
    }
}

async fn logout(State(jwt): State<JwtConfig>) -> Response {
    (jwt.unset_cookies(), Json(json!({"msg": "logout successful"}))).into_response()
}

async fn protected(_: Jwt) -> Json<Value> {
    Json(json!({"foo": "bar"}))
}

#[tokio::main]
async fn main() {
    let tokens = common::tokens(TokenSettings { access_ttl: Duration::from_secs(3600), ..Default::default() });
    // Cookies without `Secure` work over plain HTTP; in production, keep it on.
    let cookies = CookieSettings { secure: false, ..Default::default() };
    let jwt = JwtConfig::<()>::builder(tokens)
        .locations([Location::Cookies])
        .cookies(cookies)
        .implicit_refresh(Duration::from_secs(30 * 60))
        .build()
        .unwrap_or_else(|e| common::fail(&e.to_string()));
    let app = Router::new()
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/protected", get(protected))
        .layer(jwt.layer())
        .with_state(jwt);
    common::serve(app).await;
}
