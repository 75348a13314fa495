//! Administration, for tokens carrying the `admin` role.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use keycard_axum::{Jwt, Require};
use keycard_store::{AuditFilter, AuditKind, AuditRecord, Roles, UserStatus, Username};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::UserView;
use super::user::rfc3339;
use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::ClientInfo;
use crate::openapi::{AccessTokenRefused, AdminsOnly, ErrorBody, JsonBodyErrors, Unavailable};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users))
        .routes(routes!(disable))
        .routes(routes!(enable))
        .routes(routes!(set_roles))
        .routes(routes!(audit))
}

/// The `{name}` of a path, or 404: a segment that is not UTF-8 once percent-decoded names no
/// account.
fn account_name(name: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    name.map(|Path(name)| name).map_err(|_| ApiError::NotFound("User not found"))
}

/// `GET /admin/users`: every account, oldest first (never a password hash).
#[utoipa::path(
    get,
    path = "/admin/users",
    tag = "admin",
    summary = "Every account, oldest first",
    security(("access_token" = [])),
    responses(
        (status = 200, description = "The accounts (never a password hash)", body = Vec<UserView>),
        AccessTokenRefused,
        AdminsOnly,
        Unavailable,
    ),
)]
async fn list_users(State(state): State<AppState>, _admin: Require<Admin>) -> Result<Json<Vec<UserView>>, ApiError> {
    let users = state.store.list_users().await?;
    Ok(Json(users.into_iter().map(UserView::from).collect()))
}

/// `POST /admin/users/{name}/disable`: refuses the account's logins and revokes all its tokens;
/// 400 for your own account, 409 for the last active admin.
#[utoipa::path(
    post,
    path = "/admin/users/{name}/disable",
    tag = "admin",
    summary = "Disable an account: its logins are refused and all its tokens revoked",
    security(("access_token" = [])),
    params(("name" = String, Path, description = "The username (any case)")),
    responses(
        (status = 200, description = "The account, now disabled", body = UserView),
        (status = 400, description = "`You cannot disable your own account`, or a name no account can have", body = ErrorBody),
        AccessTokenRefused,
        AdminsOnly,
        (status = 404, description = "`User not found`", body = ErrorBody),
        (status = 409, description = "Refused: this is the last active admin", body = ErrorBody),
        Unavailable,
    ),
)]
async fn disable(
    State(state): State<AppState>,
    client: ClientInfo,
    Require(Jwt { claims, .. }, _): Require<Admin>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<UserView>, ApiError> {
    let name = account_name(name)?;
    let username = Username::existing(&name)?;
    if Username::existing(&claims.sub).is_ok_and(|me| me.key() == username.key()) {
        return Err(ApiError::BadRequest("You cannot disable your own account".into()));
    }
    set_status(&state, &client, &claims.sub, &username, UserStatus::Disabled).await
}

/// `POST /admin/users/{name}/enable`: lets the account log in again.
#[utoipa::path(
    post,
    path = "/admin/users/{name}/enable",
    tag = "admin",
    summary = "Enable an account: it can log in again",
    security(("access_token" = [])),
    params(("name" = String, Path, description = "The username (any case)")),
    responses(
        (status = 200, description = "The account, now active", body = UserView),
        (status = 400, description = "A name no account can have", body = ErrorBody),
        AccessTokenRefused,
        AdminsOnly,
        (status = 404, description = "`User not found`", body = ErrorBody),
        Unavailable,
    ),
)]
async fn enable(
    State(state): State<AppState>,
    client: ClientInfo,
    Require(Jwt { claims, .. }, _): Require<Admin>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<UserView>, ApiError> {
    let name = account_name(name)?;
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RolesRequest {
    /// The account's new roles, replacing the old ones: at most 32 distinct names (duplicates
    /// count once), each 1 to 64 characters of `a-z`, `0-9`, `_`, `-`, `.`, `:` starting with a
    /// letter.
    #[schema(example = json!(["admin"]))]
    roles: Vec<String>,
}

/// `PUT /admin/users/{name}/roles {"roles": [...]}`: replaces the account's roles; tokens carry
/// them from the next login or refresh. At most [`Roles::MAX`] roles of at most 64 bytes (400
/// beyond), so every token stays well under the verifier's limit; 409 if the account is the
/// last active admin and the list lacks `admin`.
#[utoipa::path(
    put,
    path = "/admin/users/{name}/roles",
    tag = "admin",
    summary = "Replace an account's roles (tokens carry them from the next login or refresh)",
    security(("access_token" = [])),
    params(("name" = String, Path, description = "The username (any case)")),
    request_body = RolesRequest,
    responses(
        (status = 200, description = "The account with its new roles", body = UserView),
        JsonBodyErrors,
        AccessTokenRefused,
        AdminsOnly,
        (status = 404, description = "`User not found`", body = ErrorBody),
        (status = 409, description = "Refused: the list lacks `admin` and this is the last active admin", body = ErrorBody),
        Unavailable,
    ),
)]
async fn set_roles(
    State(state): State<AppState>,
    client: ClientInfo,
    Require(Jwt { claims, .. }, _): Require<Admin>,
    name: Result<Path<String>, PathRejection>,
    crate::extract::Json(request): crate::extract::Json<RolesRequest>,
) -> Result<Json<UserView>, ApiError> {
    let name = account_name(name)?;
    let username = Username::existing(&name)?;
    let roles = Roles::parse(&request.roles)?;
    let user = state.store.set_roles(&username, &roles, state.now()).await.map_err(not_found)?;
    state.accounts.forget(username.key());
    let detail = json!({ "actor": claims.sub, "roles": user.roles });
    state.audit(AuditKind::RolesChanged, Some(&user.username), &client, None, Some(detail)).await;
    Ok(Json(user.into()))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AuditParams {
    /// Only events of this account.
    user: Option<String>,
    /// Only events of this kind (`login_failed`, `logout`, `user_disabled`, ...).
    kind: Option<String>,
    /// Only events at or after this time: seconds since the epoch or RFC 3339.
    since: Option<String>,
    /// At most this many events (default 100; more than 1000 counts as 1000, 0 as 1).
    #[param(value_type = Option<i64>, minimum = 0, maximum = 4294967295_i64)]
    limit: Option<u32>,
}

/// An audit event as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AuditEvent)]
pub struct AuditView {
    /// Ascending event id.
    id: i64,
    /// RFC 3339: when it happened.
    #[schema(format = DateTime)]
    at: String,
    /// What happened (`login_failed`, `logout`, `user_disabled`, ...).
    kind: String,
    /// The account concerned, if any.
    username: Option<String>,
    /// The client address, if known.
    client_addr: Option<String>,
    /// The client's `User-Agent`, if sent.
    user_agent: Option<String>,
    /// The session concerned, if any.
    session_id: Option<String>,
    /// Details of the event (JSON), if any.
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
#[utoipa::path(
    get,
    path = "/admin/audit",
    tag = "admin",
    summary = "Security events, newest first",
    security(("access_token" = [])),
    params(AuditParams),
    responses(
        (status = 200, description = "The events", body = Vec<AuditView>),
        (status = 400, description = "An unknown `kind`, a `since` that is neither seconds nor RFC 3339, a `limit` \
            that is not a 32-bit unsigned number, or another query parameter", body = ErrorBody),
        AccessTokenRefused,
        AdminsOnly,
        Unavailable,
    ),
)]
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
