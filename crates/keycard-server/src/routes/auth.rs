//! Register, login, refresh with rotation, logout with revocation.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use keycard_axum::{AuthError, Jwt, RefreshJwt};
use keycard_store::{AuditKind, Email, Password, Rotation, UserStatus, Username};
use keycard_token::{Claims, Uuid};

use crate::auth::Session;
use serde::Deserialize;
use serde_json::json;
use tracing::instrument;

use crate::error::ApiError;
use crate::extract::{ClientInfo, Json, LoginEndpoint, RateLimit, RefreshEndpoint, RegisterEndpoint};
use crate::security::check_new_password;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/register", post(register))
        .route("/login", post(login))
        .route("/token/refresh", post(refresh))
        .route("/logout", delete(logout))
}

/// Unknown fields are refused: a misspelt `emial` must not be silently ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterRequest {
    username: String,
    password: String,
    #[serde(default)]
    email: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    username: String,
    password: String,
}

/// `POST /register`: creates an account.
#[instrument(skip_all)]
async fn register(
    _limit: RateLimit<RegisterEndpoint>,
    State(state): State<AppState>,
    client: ClientInfo,
    Json(request): Json<RegisterRequest>,
) -> Result<(StatusCode, axum::Json<serde_json::Value>), ApiError> {
    let username = Username::parse(&request.username)?;
    let password = Password::parse(&request.password)?;
    let email = request.email.as_deref().map(Email::parse).transpose()?;
    check_new_password(&password, &username)?;
    // Saves a hash for a name that is obviously taken; the unique constraint is what decides.
    if state.store.user_exists(&username).await? {
        return Err(ApiError::UserExists);
    }
    let password_hash = state.passwords.hash(&password).await?;
    state
        .store
        .create_user(&keycard_store::NewUser {
            username: &username,
            email: email.as_ref(),
            password_hash: &password_hash,
            roles: &keycard_store::Roles::default(),
            now: state.now(),
        })
        .await?;
    tracing::info!(username = ?username.as_str(), client = %client, "user registered");
    state.audit(AuditKind::UserRegistered, Some(username.as_str()), &client, None, None).await;
    Ok((StatusCode::CREATED, axum::Json(json!({ "msg": "User created successfully" }))))
}

/// `POST /login`: a fresh token pair in a new session. One answer for unknown user, wrong
/// password and disabled account, in the same time. Account names with too many recent failures
/// are answered 429 without checking the password.
#[instrument(skip_all)]
async fn login(
    _limit: RateLimit<LoginEndpoint>,
    State(state): State<AppState>,
    client: ClientInfo,
    Json(request): Json<LoginRequest>,
) -> Result<Response, ApiError> {
    let now = state.now();
    let username = Username::existing(&request.username).ok();
    if let Some(username) = &username
        && let Some(until) = state.login_locked_until(username).await?
    {
        tracing::warn!(username = ?request.username, client = %client, "login throttled");
        return Err(too_many_failures(until - now));
    }
    let credentials = match &username {
        Some(username) => state.store.find_credentials(username).await?,
        None => None,
    };
    // Also verifies imported (werkzeug, bcrypt) hashes and replaces them by argon2id.
    let verified = state.passwords.verify_login(&state.store, credentials.as_ref(), &request.password, now).await?;
    let user = match credentials {
        Some(c) if verified && c.user.status == UserStatus::Active => c.user,
        _ => {
            tracing::warn!(username = ?request.username, client = %client, "login failed");
            state.audit(AuditKind::LoginFailed, Some(&request.username), &client, None, None).await;
            if let Some(username) = &username {
                state.record_failed_attempt(username, &client).await?;
            }
            return Err(ApiError::BadCredentials);
        }
    };

    let session = Session { roles: user.roles.clone(), sid: Uuid::now_v7() };
    let sid = session.sid;
    let access = state.tokens().access(&user.username).fresh(true).claims(session.clone()).sign()?;
    let refresh_jti = Uuid::new_v4();
    let refresh = state.tokens().refresh(&user.username).jti(refresh_jti).claims(session).sign()?;
    state
        .store
        .create_session(&keycard_store::NewSession {
            id: sid,
            user_id: user.id,
            refresh_jti,
            created_at: refresh.claims.iat,
            expires_at: refresh.claims.exp,
            client_addr: client.addr_string(),
            user_agent: client.user_agent.clone(),
        })
        .await?;
    if let Some(username) = &username {
        state.clear_failed_attempts(username).await?;
    }
    tracing::info!(username = ?user.username, client = %client, sid = %sid, "login succeeded");
    state.audit(AuditKind::LoginSucceeded, Some(&user.username), &client, Some(sid), None).await;
    Ok(token_response(&state, access.token, refresh.token))
}

/// The 429 for an account name under throttling.
pub(crate) fn too_many_failures(wait: i64) -> ApiError {
    ApiError::TooManyRequests {
        retry_after: u64::try_from(wait.max(1)).unwrap_or(1),
        msg: "Too many failed login attempts; try again later",
    }
}

/// `POST /token/refresh`: rotates the refresh token. Presenting a refresh token that was already
/// rotated away ends the whole session (reuse detection, RFC 9700 §4.14.2).
#[instrument(skip_all, fields(sid = %claims.sid))]
async fn refresh(
    _limit: RateLimit<RefreshEndpoint>,
    State(state): State<AppState>,
    client: ClientInfo,
    RefreshJwt(Jwt { claims, .. }): RefreshJwt<Session>,
) -> Result<Response, ApiError> {
    let session = Session { roles: Vec::new(), sid: claims.sid };
    let mut access = state.tokens().access(&claims.sub).claims(session.clone()).build()?;
    let new_jti = Uuid::new_v4();
    let mut refresh = state.tokens().refresh(&claims.sub).jti(new_jti).claims(session).build()?;
    let old_jti = crate::auth::jti(&claims).ok_or(AuthError::Revoked)?;
    let rotation = state.store.rotate_refresh(claims.sid, old_jti, new_jti, refresh.iat, refresh.exp).await?;
    let user = match rotation {
        Rotation::Rotated(user) if user.status == UserStatus::Active => user,
        Rotation::Rotated(_) => {
            end_session(&state, &claims, "account disabled").await?;
            return Err(AuthError::Revoked.into());
        }
        Rotation::Reused { .. } => {
            tracing::warn!(username = ?claims.sub, client = %client, "refresh token reuse detected: session revoked");
            end_session(&state, &claims, "refresh token reuse").await?;
            state.audit(AuditKind::RefreshReuse, Some(&claims.sub), &client, Some(claims.sid), None).await;
            return Err(AuthError::RefreshReused.into());
        }
        Rotation::Revoked | Rotation::Unknown => {
            // Heal the in-memory list: this session is over.
            state.revocations.revoke(claims.sid, session_revocation_until(&state));
            return Err(AuthError::Revoked.into());
        }
    };
    // Roles and username come from the database, so a grant takes effect at the next refresh.
    access.sub.clone_from(&user.username);
    refresh.sub.clone_from(&user.username);
    access.roles.clone_from(&user.roles);
    refresh.roles = user.roles;
    let access_token = state.tokens().encode(&access)?;
    let refresh_token = state.tokens().encode(&refresh)?;
    tracing::debug!(username = ?access.sub, "token refreshed");
    state.audit(AuditKind::Refresh, Some(&access.sub), &client, Some(claims.sid), None).await;
    Ok(token_response(&state, access_token, refresh_token))
}

/// Which sessions a logout ends.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Scope {
    /// This session only.
    #[default]
    Local,
    /// Every session of the account.
    Global,
    /// Every session of the account but this one.
    Others,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogoutParams {
    #[serde(default)]
    scope: Scope,
}

/// `DELETE /logout?scope=local|global|others`: `local` (the default) revokes this access token
/// and ends its session, so the session's refresh token (and any other access token of it) stops
/// working too; `global` ends every session of the account; `others` every one but this.
/// Durable before it answers.
#[instrument(skip_all, fields(sid = %claims.sid))]
async fn logout(
    State(state): State<AppState>,
    client: ClientInfo,
    Jwt { claims, .. }: Jwt<Session>,
    params: Result<Query<LogoutParams>, QueryRejection>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let Query(params) = params.map_err(|_| ApiError::BadRequest("scope must be local, global or others".into()))?;
    let mut ended = 0;
    if params.scope != Scope::Local {
        let username = Username::existing(&claims.sub)?;
        let user = state.store.get_user(&username).await?.ok_or(AuthError::Revoked)?;
        let except = (params.scope == Scope::Others).then_some(claims.sid);
        let revoked = state.store.revoke_user_sessions(user.id, except, state.now(), "logout").await?;
        ended = revoked.len();
        state.revoked(revoked);
    }
    if params.scope != Scope::Others {
        end_session(&state, &claims, "logout").await?;
        ended = ended.max(1);
    }
    let scope = match params.scope {
        Scope::Local => "local",
        Scope::Global => "global",
        Scope::Others => "others",
    };
    tracing::info!(username = ?claims.sub, client = %client, scope, "logout");
    let detail = json!({ "scope": scope, "sessions_ended": ended });
    state.audit(AuditKind::Logout, Some(&claims.sub), &client, Some(claims.sid), Some(detail)).await;
    Ok(axum::Json(match params.scope {
        Scope::Local => json!({ "msg": "Token revoked" }),
        Scope::Global | Scope::Others => json!({ "msg": "Token revoked", "sessions_ended": ended }),
    }))
}

/// Until when a revoked session id must stay in memory: past that, every access token of the
/// session has expired (refresh tokens are checked against the database anyway).
fn session_revocation_until(state: &AppState) -> i64 {
    let settings = state.tokens().settings();
    let lifetime = settings.access_ttl.as_secs().saturating_add(settings.leeway.as_secs());
    state.now().saturating_add(i64::try_from(lifetime).unwrap_or(i64::MAX))
}

/// Ends the session of `claims` and revokes the token itself, durably, then in memory.
async fn end_session(state: &AppState, claims: &Claims<Session>, reason: &str) -> Result<(), ApiError> {
    let sid_until = session_revocation_until(state).max(claims.exp);
    // Kept past `exp` by the leeway, during which the token would still verify.
    let leeway = i64::try_from(state.tokens().settings().leeway.as_secs()).unwrap_or(i64::MAX);
    // keycard's tokens always carry a UUID jti (the extractor refuses any other).
    let jti = crate::auth::jti(claims).unwrap_or_default();
    let revocations = [(jti, claims.exp.saturating_add(leeway)), (claims.sid, sid_until)];
    state.store.revoke_session(claims.sid, state.now(), reason, &revocations).await?;
    state.revoked(revocations.to_vec());
    Ok(())
}

/// A token response (RFC 6749 §5.1): never cached.
fn token_response(state: &AppState, access_token: String, refresh_token: String) -> Response {
    let body = json!({
        "access_token": access_token,
        "refresh_token": refresh_token,
        "token_type": "Bearer",
        "expires_in": state.tokens().settings().access_ttl.as_secs(),
    });
    let mut response = axum::Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
