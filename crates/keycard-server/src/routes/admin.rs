//! Administration, for tokens carrying the `admin` role.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use keycard_axum::{Jwt, Require};
use keycard_store::{AuditFilter, AuditKind, AuditRecord, Roles, UserStatus, Username};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::UserView;
use super::user::rfc3339;
use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::ClientInfo;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/users", get(list_users))
        .route("/admin/users/{name}/disable", post(disable))
        .route("/admin/users/{name}/enable", post(enable))
        .route("/admin/users/{name}/roles", put(set_roles))
        .route("/admin/audit", get(audit))
}

/// `GET /admin/users`: every account, oldest first (never a password hash).
async fn list_users(State(state): State<AppState>, _admin: Require<Admin>) -> Result<Json<Vec<UserView>>, ApiError> {
    let users = state.store.list_users().await?;
    Ok(Json(users.into_iter().map(UserView::from).collect()))
}

/// `POST /admin/users/{name}/disable`: refuses the account's logins and revokes all its tokens;
/// 400 for your own account, 409 for the last active admin.
async fn disable(
    State(state): State<AppState>,
    client: ClientInfo,
    Require(Jwt { claims, .. }, _): Require<Admin>,
    Path(name): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    let username = Username::existing(&name)?;
    if Username::existing(&claims.sub).is_ok_and(|me| me.key() == username.key()) {
        return Err(ApiError::BadRequest("You cannot disable your own account".into()));
    }
    set_status(&state, &client, &claims.sub, &username, UserStatus::Disabled).await
}

/// `POST /admin/users/{name}/enable`: lets the account log in again.
async fn enable(
    State(state): State<AppState>,
    client: ClientInfo,
    Require(Jwt { claims, .. }, _): Require<Admin>,
    Path(name): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    let username = Username::existing(&name)?;
    set_status(&state, &client, &claims.sub, &username, UserStatus::Active).await
}

async fn set_status(
    state: &AppState,
    client: &ClientInfo,
    actor: &str,
    username: &Username,
    status: UserStatus,
) -> Result<Json<UserView>, ApiError> {
    let (user, revoked) = state.store.set_status(username, status, state.now()).await.map_err(not_found)?;
    state.accounts.forget(username.key());
    state.revoked(revoked);
    tracing::info!(username = ?user.username, actor = ?actor, status = status.as_str(), "account status changed");
    state
        .audit(AuditKind::status_change(status), Some(&user.username), client, None, Some(json!({ "actor": actor })))
        .await;
    Ok(Json(user.into()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RolesRequest {
    roles: Vec<String>,
}

/// `PUT /admin/users/{name}/roles {"roles": [...]}`: replaces the account's roles; tokens carry
/// them from the next login or refresh. At most [`Roles::MAX`] roles of at most 64 bytes (400
/// beyond), so every token stays well under the verifier's limit; 409 if the account is the
/// last active admin and the list lacks `admin`.
async fn set_roles(
    State(state): State<AppState>,
    client: ClientInfo,
    Require(Jwt { claims, .. }, _): Require<Admin>,
    Path(name): Path<String>,
    crate::extract::Json(request): crate::extract::Json<RolesRequest>,
) -> Result<Json<UserView>, ApiError> {
    let username = Username::existing(&name)?;
    let roles = Roles::parse(&request.roles)?;
    let user = state.store.set_roles(&username, &roles, state.now()).await.map_err(not_found)?;
    state.accounts.forget(username.key());
    let detail = json!({ "actor": claims.sub, "roles": user.roles });
    state.audit(AuditKind::RolesChanged, Some(&user.username), &client, None, Some(detail)).await;
    Ok(Json(user.into()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditParams {
    user: Option<String>,
    kind: Option<String>,
    since: Option<String>,
    limit: Option<u32>,
}

/// An audit event as the API shows it.
#[derive(Debug, Serialize)]
pub struct AuditView {
    id: i64,
    at: String,
    kind: String,
    username: Option<String>,
    client_addr: Option<String>,
    user_agent: Option<String>,
    session_id: Option<String>,
    detail: Option<serde_json::Value>,
}

impl From<AuditRecord> for AuditView {
    fn from(r: AuditRecord) -> Self {
        Self {
            id: r.id,
            at: rfc3339(r.at),
            kind: r.kind,
            username: r.username,
            client_addr: r.client_addr,
            user_agent: r.user_agent,
            session_id: r.session_id,
            detail: r.detail,
        }
    }
}

/// Parses `since`: seconds since the epoch or RFC 3339.
pub fn parse_since(since: &str) -> Result<i64, ApiError> {
    if let Ok(secs) = since.parse::<i64>() {
        return Ok(secs);
    }
    time::OffsetDateTime::parse(since, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| ApiError::BadRequest("since must be seconds since the epoch or an RFC 3339 time".into()))
}

/// `GET /admin/audit?user=&kind=&since=&limit=`: security events, newest first.
async fn audit(
    State(state): State<AppState>,
    _admin: Require<Admin>,
    params: Result<Query<AuditParams>, QueryRejection>,
) -> Result<Json<Vec<AuditView>>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::BadRequest(format!("Invalid query: {}", e.body_text())))?;
    let kind = params.kind.as_deref().map(str::parse::<AuditKind>).transpose()?;
    let since = params.since.as_deref().map(parse_since).transpose()?;
    let filter = AuditFilter { username: params.user, kind, since, limit: params.limit };
    state.audit_log.flush().await;
    let events = state.store.audit_events(&filter).await?;
    Ok(Json(events.into_iter().map(AuditView::from).collect()))
}

fn not_found(e: keycard_store::StoreError) -> ApiError {
    match e {
        keycard_store::StoreError::NotFound => ApiError::NotFound("User not found"),
        e => e.into(),
    }
}
