//! Flask-JWT-Extended's `examples/implicit_refresh.py`, ported: tokens travel only in cookies,
//! and a response to a request whose access cookie expires within 30 minutes carries a new one
//! ([`implicit_refresh`](keycard_axum::JwtConfigBuilder::implicit_refresh), FJE's
//! `after_request` hook). `POST /login` sets the cookies (one-hour token), `GET /protected`
//! needs them, `POST /logout` deletes them.

mod common;

use std::time::Duration;

use axum::routing::{get, post};
use axum::{Router, extract::State};
use keycard_axum::{CookieSettings, IssueError, Json, Jwt, JwtConfig, Location, SetCookies};
use keycard_token::TokenSettings;
use serde_json::{Value, json};

async fn login(State(jwt): State<JwtConfig>) -> Result<(SetCookies, Json<Value>), IssueError> {
    let signed = jwt.tokens().access("example_user").sign()?;
    Ok((jwt.access_cookies(&signed), Json(json!({"msg": "login successful"}))))
}

async fn logout(State(jwt): State<JwtConfig>) -> (SetCookies, Json<Value>) {
    (jwt.unset_cookies(), Json(json!({"msg": "logout successful"})))
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
        .unwrap_or_else(common::fail);
    let app = Router::new()
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/protected", get(protected))
        .layer(jwt.layer())
        .with_state(jwt);
    common::serve(app).await;
}
