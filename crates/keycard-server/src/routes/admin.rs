//! Administration, for tokens carrying the `admin` role.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use keycard_axum::{RequireRole, Role};

use super::UserView;
use crate::error::ApiError;
use crate::startup::AppState;

/// The role that may use `/admin/*`.
pub struct Admin;

impl Role for Admin {
    const NAME: &'static str = "admin";
    const FORBIDDEN: &'static str = "Admins only";
}

pub fn router() -> Router<AppState> {
    Router::new().route("/admin/users", get(list_users))
}

/// `GET /admin/users`: every account, oldest first (never a password hash).
async fn list_users(
    State(state): State<AppState>,
    _admin: RequireRole<Admin>,
) -> Result<Json<Vec<UserView>>, ApiError> {
    let users = state.store.list_users().await?;
    Ok(Json(users.into_iter().map(UserView::from).collect()))
}
