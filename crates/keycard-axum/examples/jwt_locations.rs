//! Flask-JWT-Extended's `examples/jwt_locations.py`, ported: `/protected` accepts a token from
//! the `Authorization: Bearer` header, the `access_token_cookie` cookie (with `X-CSRF-TOKEN` set
//! to the `csrf_access_token` cookie on POST), a JSON body `{"access_token": ...}` or `?jwt=`, in
//! that order; `/only_headers` only from the header. Get a token from `POST
//! /login_without_cookies`, or the cookies from `POST /login_with_cookies`; `POST
//! /logout_with_cookies` deletes them.

mod common;

use axum::routing::{get, post};
use axum::{Router, extract::State};
use keycard_axum::{CookieSettings, IssueError, Json, Jwt, JwtConfig, Location, SetCookies};
use serde_json::{Value, json};

async fn login_without_cookies(State(jwt): State<JwtConfig>) -> Result<Json<Value>, IssueError> {
    Ok(Json(json!({ "access_token": jwt.tokens().access("example_user").sign()?.token })))
}

async fn login_with_cookies(State(jwt): State<JwtConfig>) -> Result<(SetCookies, Json<Value>), IssueError> {
    let signed = jwt.tokens().access("example_user").sign()?;
    Ok((jwt.access_cookies(&signed), Json(json!({"msg": "login successful"}))))
}

async fn logout_with_cookies(State(jwt): State<JwtConfig>) -> (SetCookies, Json<Value>) {
    (jwt.unset_cookies(), Json(json!({"msg": "logout successful"})))
}

async fn protected(_: Jwt) -> Json<Value> {
    Json(json!({"foo": "bar"}))
}

async fn only_headers(_: Jwt) -> Json<Value> {
    Json(json!({"foo": "baz"}))
}

#[tokio::main]
async fn main() {
    let tokens = common::tokens(Default::default());
    // Cookies without `Secure` work over plain HTTP; in production, keep it on.
    let cookies = CookieSettings { secure: false, ..Default::default() };
    let jwt = JwtConfig::<()>::builder(tokens)
        .locations([Location::Headers, Location::Cookies, Location::Json, Location::QueryString])
        .cookies(cookies)
        .build()
        .unwrap_or_else(common::fail);
    let headers = jwt.with_locations([Location::Headers]).unwrap_or_else(common::fail);
    let app = Router::new()
        .route("/login_without_cookies", post(login_without_cookies))
        .route("/login_with_cookies", post(login_with_cookies))
        .route("/logout_with_cookies", post(logout_with_cookies))
        .route("/protected", get(protected).post(protected))
        .route("/only_headers", get(only_headers).layer(headers.layer()))
        .layer(jwt.layer())
        .with_state(jwt);
    common::serve(app).await;
}
