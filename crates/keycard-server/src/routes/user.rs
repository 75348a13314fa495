//! The caller's own account.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use keycard_axum::AccessToken;
use keycard_store::{User, UserStatus, Username};
use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tracing::instrument;

use crate::error::ApiError;
use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/user", get(user)).route("/protected", get(protected))
}

/// An account as the API shows it: never the password hash.
#[derive(Debug, Serialize)]
pub struct UserView {
    /// Username as registered.
    pub username: String,
    /// Email, or null.
    pub email: Option<String>,
    /// `active` or `disabled`.
    pub status: UserStatus,
    /// Granted roles.
    pub roles: Vec<String>,
    /// RFC 3339 creation time.
    pub created_at: String,
}

impl From<User> for UserView {
    fn from(user: User) -> Self {
        let created_at = OffsetDateTime::from_unix_timestamp(user.created_at)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_default();
        Self { username: user.username, email: user.email, status: user.status, roles: user.roles, created_at }
    }
}

/// `GET /user`: the caller's account, read from the database.
#[instrument(skip_all, fields(sub = ?claims.sub))]
async fn user(State(state): State<AppState>, AccessToken(claims): AccessToken) -> Result<Json<UserView>, ApiError> {
    let username = Username::parse(&claims.sub)?;
    let user = state.store.get_user(&username).await?.ok_or(ApiError::NotFound("User not found"))?;
    Ok(Json(user.into()))
}

/// `GET /protected`: who the token says you are.
async fn protected(AccessToken(claims): AccessToken) -> Json<Value> {
    Json(json!({ "logged_in_as": claims.sub }))
}
