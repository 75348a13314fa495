//! Flask-JWT-Extended's `examples/custom_decorators.py`, ported: `POST /login` (no body) returns
//! an access token with `"is_administrator": true`; `/protected` requires a valid access token
//! *and* that claim (403 "Admins only!" otherwise). The decorator `@admin_required()` is a
//! [`Guard`], used as the extractor `Require<Admin>`.

mod common;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::{Router, extract::State};
use keycard_axum::{AuthError, Guard, IssueError, Json, Jwt, JwtConfig, Require};
use keycard_token::Tokens;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Clone, Serialize, Deserialize)]
struct AppClaims {
    is_administrator: bool,
}

/// A valid access token whose `is_administrator` claim is true.
struct Admin;

impl Guard for Admin {
    type Claims = AppClaims;

    fn check(jwt: &Jwt<AppClaims>) -> Result<(), AuthError> {
        if jwt.is_administrator { Ok(()) } else { Err(AuthError::Forbidden("Admins only!".into())) }
    }
}

async fn login(State(tokens): State<Arc<Tokens>>) -> Result<Json<Value>, IssueError> {
    let signed = tokens.access("admin_user").claims(AppClaims { is_administrator: true }).sign()?;
    Ok(Json(json!({ "access_token": signed.token })))
}

async fn protected(_: Require<Admin>) -> Json<Value> {
    Json(json!({"foo": "bar"}))
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
