//! Flask-JWT-Extended's `examples/automatic_user_loading.py`, ported: the token's identity is the
//! user's integer id, and `/who_am_i` loads that user from SQLite (in memory, seeded with three
//! users) through [`CurrentUser`]. Log in with `{"username": "batman", "password": "password"}`
//! (or `panther`, `little_sapphire`), then call `/who_am_i` with `Authorization: Bearer <token>`.

mod common;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::{Router, extract::State, http::StatusCode, response::IntoResponse};
use keycard_axum::{BoxError, CurrentUser, IssueError, Json, Jwt, JwtConfig, LoadUser};
use keycard_token::Tokens;
use serde_json::{Value, json};
use sqlx::SqlitePool;
use subtle::ConstantTimeEq;

#[derive(Clone)]
struct AppState {
    tokens: Arc<Tokens>,
    db: SqlitePool,
}

#[derive(sqlx::FromRow)]
struct User {
    id: i64,
    username: String,
    full_name: String,
}

// NOTE: in a real application, hash and salt passwords.
fn check_password(password: &str) -> bool {
    password.as_bytes().ct_eq(b"password").into()
}

// The user of a token (FJE's `user_lookup_loader`): `Ok(None)` answers 401 "Error loading the user <sub>".
impl LoadUser<AppState> for User {
    async fn load(jwt: &Jwt, state: &AppState) -> Result<Option<Self>, BoxError> {
        let Ok(id) = jwt.identity::<i64>() else { return Ok(None) };
        Ok(sqlx::query_as("SELECT * FROM user WHERE id = ?").bind(id).fetch_optional(&state.db).await?)
    }
}

async fn login(State(state): State<AppState>, Json(body): Json<Value>) -> Result<impl IntoResponse, IssueError> {
    let query = sqlx::query_as("SELECT * FROM user WHERE username = ?").bind(body["username"].as_str());
    let user: Option<User> = match query.fetch_optional(&state.db).await {
        Ok(user) => user,
        Err(e) => return Ok((StatusCode::SERVICE_UNAVAILABLE, Json(json!({"msg": format!("database error: {e}")})))),
    };
    let Some(user) = user.filter(|_| check_password(body["password"].as_str().unwrap_or_default())) else {
        return Ok((StatusCode::UNAUTHORIZED, Json(json!("Wrong username or password"))));
    };
    Ok((StatusCode::OK, Json(json!({ "access_token": state.tokens.access(user.id).sign()?.token }))))
}

async fn who_am_i(CurrentUser(user, _): CurrentUser<User>) -> Json<Value> {
    Json(json!({ "id": user.id, "full_name": user.full_name, "username": user.username }))
}

async fn open_db() -> Result<SqlitePool, sqlx::Error> {
    // One connection that never closes: an in-memory database lives as long as its connection.
    let options = sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).idle_timeout(None).max_lifetime(None);
    let db = options.connect("sqlite::memory:").await?;
    sqlx::query("CREATE TABLE user (id INTEGER PRIMARY KEY, username TEXT NOT NULL UNIQUE, full_name TEXT NOT NULL)")
        .execute(&db)
        .await?;
    let seed = "INSERT INTO user (full_name, username) \
        VALUES ('Bruce Wayne', 'batman'), ('Ann Takamaki', 'panther'), ('Jester Lavore', 'little_sapphire')";
    sqlx::query(seed).execute(&db).await?;
    Ok(db)
}

#[tokio::main]
async fn main() {
    let tokens = common::tokens(Default::default());
    let jwt = JwtConfig::<()>::builder(tokens.clone()).build().unwrap_or_else(common::fail);
    let db = open_db().await.unwrap_or_else(|e| common::fail(format!("SQLite: {e}")));
    let app = Router::new()
        .route("/login", post(login))
        .route("/who_am_i", get(who_am_i))
        .layer(jwt.layer())
        .with_state(AppState { tokens, db });
    common::serve(app).await;
}
