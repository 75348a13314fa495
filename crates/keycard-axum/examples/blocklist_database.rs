//! Flask-JWT-Extended's `examples/blocklist_database.py`, ported: `DELETE /logout` stores the
//! token's `jti` in a SQLite blocklist (`blocklist_database.db` in the working directory), and a
//! [revocation hook](keycard_axum::JwtConfigBuilder::revocation_fn) refuses any token found there.
//! `POST /login` (no body) gives a one-hour token; `GET /protected` with `Authorization: Bearer
//! <token>` works until `DELETE /logout` with the same header, then answers "Token has been revoked".

mod common;

use std::{sync::Arc, time::Duration};

use axum::routing::{delete, get, post};
use axum::{Router, extract::State, http::StatusCode};
use keycard_axum::{IssueError, Json, Jwt, JwtConfig};
use keycard_token::{TokenSettings, Tokens};
use serde_json::{Value, json};
use sqlx::SqlitePool;

#[derive(Clone)]
struct AppState {
    tokens: Arc<Tokens>,
    db: SqlitePool,
}

async fn login(State(state): State<AppState>) -> Result<Json<Value>, IssueError> {
    Ok(Json(json!({ "access_token": state.tokens.access("example_user").sign()?.token })))
}

// Revokes the token of the request: its jti goes into the blocklist.
async fn logout(State(state): State<AppState>, jwt: Jwt) -> (StatusCode, Json<Value>) {
    let insert = sqlx::query("INSERT INTO token_blocklist (jti) VALUES (?)").bind(jwt.jti.clone().unwrap_or_default());
    match insert.execute(&state.db).await {
        Ok(_) => (StatusCode::OK, Json(json!({"msg": "JWT revoked"}))),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"msg": format!("database error: {e}")}))),
    }
}

async fn protected(_: Jwt) -> Json<Value> {
    Json(json!({"hello": "world"}))
}

async fn open_db() -> Result<SqlitePool, sqlx::Error> {
    let db = SqlitePool::connect("sqlite:blocklist_database.db?mode=rwc").await?;
    let create = "CREATE TABLE IF NOT EXISTS token_blocklist (id INTEGER PRIMARY KEY, jti TEXT NOT NULL, \
        created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)";
    sqlx::query(create).execute(&db).await?;
    sqlx::query("CREATE INDEX IF NOT EXISTS token_blocklist_jti ON token_blocklist (jti)").execute(&db).await?;
    Ok(db)
}

#[tokio::main]
async fn main() {
    let tokens = common::tokens(TokenSettings { access_ttl: Duration::from_secs(3600), ..Default::default() });
    let db = open_db().await.unwrap_or_else(|e| common::fail(format!("SQLite: {e}")));
    // Asked about every verified token; a database error answers 503, never lets the token through.
    let blocklist = db.clone();
    let jwt = JwtConfig::<()>::builder(tokens.clone())
        .revocation_fn(move |token| {
            let (db, jti) = (blocklist.clone(), token.claims.jti.clone().unwrap_or_default());
            async move {
                let found =
                    sqlx::query("SELECT 1 FROM token_blocklist WHERE jti = ?").bind(jti).fetch_optional(&db).await?;
                Ok(found.is_some())
            }
        })
        .build()
        .unwrap_or_else(common::fail);
    let app = Router::new()
        .route("/login", post(login))
        .route("/logout", delete(logout))
        .route("/protected", get(protected))
        .layer(jwt.layer())
        .with_state(AppState { tokens, db });
    common::serve(app).await;
}
