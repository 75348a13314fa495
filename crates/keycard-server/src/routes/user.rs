//! The caller's own account: profile, sessions, password.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use keycard_axum::{AuthError, FreshJwt, Jwt};
use keycard_store::{AuditKind, Password, SessionInfo, User, UserStatus, Username};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tracing::instrument;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::Session;
use crate::error::ApiError;
use crate::extract::ClientInfo;
use crate::openapi::{
    AccessTokenRefused, ErrorBody, FreshTokenRefused, JsonBodyErrors, LoggedInAs, Message, PasswordChanged,
    RateLimited, Unavailable,
};
use crate::security::check_new_password;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(user))
        .routes(routes!(protected))
        .routes(routes!(sessions))
        .routes(routes!(end_session))
        .routes(routes!(change_password))
}

/// RFC 3339 text of a Unix time.
pub fn rfc3339(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t).ok().and_then(|t| t.format(&Rfc3339).ok()).unwrap_or_default()
}

/// An account as the API shows it: never the password hash.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = User)]
pub struct UserView {
    /// Username as registered.
    pub username: String,
    /// Email, or null.
    pub email: Option<String>,
    /// `active` or `disabled`.
    #[schema(value_type = crate::openapi::AccountStatus)]
    pub status: UserStatus,
    /// Granted roles.
    pub roles: Vec<String>,
    /// RFC 3339 creation time.
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<User> for UserView {
    fn from(user: User) -> Self {
        Self {
            username: user.username,
            email: user.email,
            status: user.status,
            roles: user.roles,
            created_at: rfc3339(user.created_at),
        }
    }
}

/// The account behind a token, or 401 if it is gone.
async fn account(state: &AppState, sub: &str) -> Result<User, ApiError> {
    let username = Username::existing(sub)?;
    state.store.get_user(&username).await?.ok_or(ApiError::NotFound("User not found"))
}

/// `GET /user`: the caller's account, read from the database or, if read less than
/// `KEYCARD_ACCOUNT_CACHE_TTL` ago, from memory (see [`crate::accounts`]).
#[utoipa::path(
    get,
    path = "/user",
    tag = "account",
    summary = "The caller's account",
    security(("access_token" = [])),
    responses(
        (status = 200, description = "The account (never a password hash)", body = UserView),
        AccessTokenRefused,
        (status = 404, description = "`User not found`: the account no longer exists", body = ErrorBody),
        Unavailable,
    ),
)]
#[instrument(skip_all, fields(sub = ?claims.sub))]
async fn user(State(state): State<AppState>, Jwt { claims, .. }: Jwt<Session>) -> Result<Response, ApiError> {
    let username = Username::existing(&claims.sub)?;
    if let Some(body) = state.accounts.get(username.key()) {
        return Ok(json_body(body));
    }
    let generation = state.accounts.generation();
    let read_at = std::time::Instant::now();
    let user = state.store.get_user(&username).await?.ok_or(ApiError::NotFound("User not found"))?;
    let body = Bytes::from(serde_json::to_vec(&UserView::from(user)).map_err(|e| ApiError::Internal(e.into()))?);
    state.accounts.insert(username.key(), body.clone(), generation, read_at);
    Ok(json_body(body))
}

fn json_body(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}

/// `GET /protected`: who the token says you are.
#[utoipa::path(
    get,
    path = "/protected",
    tag = "account",
    summary = "Who the access token says you are (no database read)",
    security(("access_token" = [])),
    responses((status = 200, description = "The token's subject", body = LoggedInAs), AccessTokenRefused),
)]
async fn protected(Jwt { claims, .. }: Jwt<Session>) -> Json<Value> {
    Json(json!({ "logged_in_as": claims.sub }))
}

/// A live session as listed to its owner.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Session)]
struct SessionView {
    /// The session id (`sid` in its tokens).
    id: Uuid,
    /// RFC 3339: the login.
    #[schema(format = DateTime)]
    created_at: String,
    /// RFC 3339: the last refresh.
    #[schema(format = DateTime)]
    last_used_at: String,
    /// RFC 3339: when its refresh token expires.
    #[schema(format = DateTime)]
    expires_at: String,
    /// The client address at login, if known.
    client_addr: Option<String>,
    /// The client's `User-Agent` at login (at most 256 characters), if sent.
    user_agent: Option<String>,
    /// Whether this is the session of the token asking.
    current: bool,
}

/// `GET /user/sessions`: the caller's live sessions, newest first.
#[utoipa::path(
    get,
    path = "/user/sessions",
    tag = "account",
    summary = "The caller's live sessions, newest first",
    security(("access_token" = [])),
    responses(
        (status = 200, description = "The live sessions", body = Vec<SessionView>),
        AccessTokenRefused,
        (status = 404, description = "`User not found`: the account no longer exists", body = ErrorBody),
        Unavailable,
    ),
)]
async fn sessions(
    State(state): State<AppState>,
    Jwt { claims, .. }: Jwt<Session>,
) -> Result<Json<Vec<SessionView>>, ApiError> {
    let user = account(&state, &claims.sub).await?;
    let sessions = state.store.user_sessions(user.id, state.now()).await?;
    let view = |s: SessionInfo| SessionView {
        current: s.id == claims.sid,
        id: s.id,
        created_at: rfc3339(s.created_at),
        last_used_at: rfc3339(s.last_used_at),
        expires_at: rfc3339(s.expires_at),
        client_addr: s.client_addr,
        user_agent: s.user_agent,
    };
    Ok(Json(sessions.into_iter().map(view).collect()))
}

/// `DELETE /user/sessions/{id}`: ends one of the caller's sessions (404 if not theirs).
#[utoipa::path(
    delete,
    path = "/user/sessions/{id}",
    tag = "account",
    summary = "End one of the caller's sessions",
    security(("access_token" = [])),
    params(("id" = Uuid, Path, description = "The session id, from `GET /user/sessions`")),
    responses(
        (status = 200, description = "`Session revoked`: that session's tokens stop working", body = Message),
        AccessTokenRefused,
        (status = 404, description = "`Session not found`: no live session of yours has that id", body = ErrorBody),
        Unavailable,
    ),
)]
async fn end_session(
    State(state): State<AppState>,
    client: ClientInfo,
    Jwt { claims, .. }: Jwt<Session>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    // A segment that is not UTF-8 once percent-decoded names no session either.
    let Path(id) = id.map_err(|_| ApiError::NotFound("Session not found"))?;
    let sid = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("Session not found"))?;
    let user = account(&state, &claims.sub).await?;
    let revoked = state
        .store
        .revoke_own_session(user.id, sid, state.now(), "ended by owner")
        .await?
        .ok_or(ApiError::NotFound("Session not found"))?;
    state.revoked(revoked);
    state.audit(AuditKind::SessionRevoked, Some(&user.username), &client, Some(sid), None).await;
    Ok(Json(json!({ "msg": "Session revoked" })))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ChangePassword {
    /// The account's password now.
    current_password: String,
    /// The new password: 8 to 128 characters once NFKC-normalised, not a common or easily
    /// guessed one, not the username.
    new_password: String,
}

/// `PUT /user/password`: needs a fresh token (from a password login) and the current password;
/// ends every other session of the account.
#[utoipa::path(
    put,
    path = "/user/password",
    tag = "account",
    summary = "Change the password (needs a fresh access token); ends every other session",
    description = "Needs a **fresh** access token: one from a password login, not from a refresh.",
    security(("access_token" = [])),
    request_body = ChangePassword,
    responses(
        (status = 200, description = "`Password changed`", body = PasswordChanged),
        JsonBodyErrors,
        FreshTokenRefused,
        RateLimited,
        Unavailable,
    ),
)]
#[instrument(skip_all, fields(sub = ?claims.sub))]
async fn change_password(
    State(state): State<AppState>,
    client: ClientInfo,
    FreshJwt(Jwt { claims, .. }): FreshJwt<Session>,
    crate::extract::Json(request): crate::extract::Json<ChangePassword>,
) -> Result<Json<Value>, ApiError> {
    let username = Username::existing(&claims.sub)?;
    let now = state.now();
    if let Some(until) = state.login_locked_until(&username).await? {
        return Err(super::auth::too_many_failures(until - now));
    }
    let credentials = state.store.find_credentials(&username).await?.ok_or(AuthError::Revoked)?;
    let current = Password::normalize(&request.current_password);
    if !state.passwords.verify(Some(&credentials.password_hash), &current).await? {
        tracing::warn!(username = ?username.as_str(), client = %client, "password change: wrong current password");
        state.record_failed_attempt(&username, &client).await?;
        return Err(ApiError::WrongCurrentPassword);
    }
    let new_password = Password::parse(&request.new_password)?;
    check_new_password(&new_password, &username)?;
    let hash = state.passwords.hash(&new_password).await?;
    let revoked = state.store.change_password(credentials.user.id, &hash, claims.sid, now).await?;
    let ended = revoked.len();
    state.revoked(revoked);
    tracing::info!(username = ?username.as_str(), client = %client, ended, "password changed");
    let detail = json!({ "other_sessions_ended": ended });
    state.audit(AuditKind::PasswordChanged, Some(username.as_str()), &client, Some(claims.sid), Some(detail)).await;
    Ok(Json(json!({ "msg": "Password changed", "other_sessions_ended": ended })))
}
