//! Register, login, refresh with rotation, logout with revocation.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keycard_axum::{AuthError, AuthRejection, Jwt, Location, RefreshJwt, SetCookies};
use keycard_store::{AuditKind, Email, Password, Rotation, UserStatus, Username};
use keycard_token::{Claims, Signed, Uuid};

use crate::auth::Session;
use serde::Deserialize;
use serde_json::json;
use tracing::instrument;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{ClientInfo, Json, LoginEndpoint, RateLimit, RefreshEndpoint, RegisterEndpoint};
use crate::openapi::{
    AccessTokenRefused, ErrorBody, JsonBodyErrors, LogoutAnswer, Message, RateLimited, RefreshTokenRefused, TokenPair,
    Unavailable,
};
use crate::security::check_new_password;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
}

/// Unknown fields are refused: a misspelt `emial` must not be silently ignored.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RegisterRequest {
    /// 1 to 64 letters, digits and combining marks of any script, or printable ASCII (no spaces,
    /// symbols, invisible or format characters); unique regardless of case and width.
    #[schema(min_length = 1, max_length = 64, example = "alice")]
    username: String,
    /// 8 to 128 characters once NFKC-normalised (so no JSON Schema length can say it exactly),
    /// not a common or easily guessed one, not the username.
    #[schema(example = "correct horse battery")]
    password: String,
    /// An email address, or null.
    #[serde(default)]
    #[schema(max_length = 254, example = "alice@example.com")]
    email: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    /// The username (any case).
    #[schema(example = "alice")]
    username: String,
    /// The password.
    #[schema(example = "correct horse battery")]
    password: String,
}

/// `POST /register`: creates an account.
#[utoipa::path(
    post,
    path = "/register",
    tag = "auth",
    summary = "Create an account",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Created: `User created successfully`", body = Message),
        JsonBodyErrors,
        (status = 409, description = "`User already exists`", body = ErrorBody),
        RateLimited,
        Unavailable,
    ),
)]
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
#[utoipa::path(
    post,
    path = "/login",
    tag = "auth",
    summary = "Log in: a fresh token pair in a new session",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "A fresh access token and a refresh token (`Cache-Control: no-store`)", body = TokenPair),
        JsonBodyErrors,
        (status = 401, description = "`Bad username or password`: the same answer, in the same time, for an unknown \
            user, a wrong password and a disabled account", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 409, description = "The account has more roles than a token can carry; an admin must reduce them", body = ErrorBody),
        RateLimited,
        Unavailable,
    ),
)]
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
            state.login_failed(&request.username, &client, verified).await;
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
    Ok(token_response(&state, &access, &refresh))
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
#[utoipa::path(
    post,
    path = "/token/refresh",
    tag = "auth",
    summary = "Rotate the refresh token: a new token pair in the same session",
    description = "Needs a **refresh** token. The refresh token sent is spent: presenting it again ends the whole \
        session (reuse detection, RFC 9700 §4.14.2). Roles and username are read again from the database.",
    security(("refresh_token" = [])),
    responses(
        (status = 200, description = "A new access token and a new refresh token (`Cache-Control: no-store`)", body = TokenPair),
        RefreshTokenRefused,
        (status = 409, description = "The account has more roles than a token can carry; an admin must reduce them", body = ErrorBody),
        RateLimited,
        Unavailable,
    ),
)]
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
    let access = Signed { token: state.tokens().encode(&access)?, claims: access };
    let refresh = Signed { token: state.tokens().encode(&refresh)?, claims: refresh };
    tracing::debug!(username = ?access.claims.sub, "token refreshed");
    state.audit(AuditKind::Refresh, Some(&access.claims.sub), &client, Some(claims.sid), None).await;
    Ok(token_response(&state, &access, &refresh))
}

/// Which sessions a logout ends.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, ToSchema)]
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

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct LogoutParams {
    /// Which sessions end: `local` (this one, the default), `global` (every session of the
    /// account) or `others` (every one but this).
    #[serde(default)]
    #[param(inline)]
    scope: Scope,
}

/// `DELETE /logout?scope=local|global|others`: `local` (the default) revokes this access token
/// and ends its session, so the session's refresh token (and any other access token of it) stops
/// working too; `global` ends every session of the account; `others` every one but this.
/// Durable before it answers.
///
/// In cookie mode every answer also expires the four cookies (FJE's `unset_jwt_cookies`),
/// including the 401 for an access token that is expired, revoked or otherwise refused: the
/// browser must not keep cookies that no longer work. The exception is a refused CSRF check:
/// that request is not shown to come from the application's own page, so it changes nothing.
#[utoipa::path(
    delete,
    path = "/logout",
    tag = "auth",
    summary = "Log out: revoke this access token and end its session (or all, or the others)",
    security(("access_token" = [])),
    params(LogoutParams),
    responses(
        (status = 200, description = "`Token revoked`; `sessions_ended` with `scope=global` or `scope=others`", body = LogoutAnswer),
        (status = 400, description = "`scope must be local, global or others` (also for any other query parameter)", body = ErrorBody),
        AccessTokenRefused,
        Unavailable,
    ),
)]
#[instrument(skip_all, fields(sid = tracing::field::Empty))]
async fn logout(
    State(state): State<AppState>,
    client: ClientInfo,
    jwt: Result<Jwt<Session>, AuthRejection>,
    params: Result<Query<LogoutParams>, QueryRejection>,
) -> Response {
    let unset = cookie_mode(&state).then(|| state.jwt.unset_cookies());
    match jwt {
        Ok(Jwt { claims, .. }) => {
            tracing::Span::current().record("sid", tracing::field::display(claims.sid));
            match end_sessions(&state, &client, &claims, params).await {
                Ok(body) => (unset, body).into_response(),
                // Nothing was ended: the cookies still work, so they stay.
                Err(e) => e.into_response(),
            }
        }
        Err(rejection) if matches!(rejection.error(), AuthError::CsrfMissing | AuthError::CsrfMismatch) => {
            rejection.into_response()
        }
        Err(rejection) => (unset, rejection).into_response(),
    }
}

/// Whether `/login` and `/token/refresh` set cookies (`KEYCARD_TOKEN_LOCATIONS` has `cookies`).
fn cookie_mode(state: &AppState) -> bool {
    state.jwt.locations().contains(&Location::Cookies)
}

/// What a logout ends, after the token was accepted.
async fn end_sessions(
    state: &AppState,
    client: &ClientInfo,
    claims: &Claims<Session>,
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
        end_session(state, claims, "logout").await?;
        ended = ended.max(1);
    }
    let scope = match params.scope {
        Scope::Local => "local",
        Scope::Global => "global",
        Scope::Others => "others",
    };
    tracing::info!(username = ?claims.sub, client = %client, scope, "logout");
    let detail = json!({ "scope": scope, "sessions_ended": ended });
    state.audit(AuditKind::Logout, Some(&claims.sub), client, Some(claims.sid), Some(detail)).await;
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

/// A token response (RFC 6749 §5.1): never cached. In cookie mode it also sets the token
/// cookies and their CSRF cookies (`Max-Age` each token's remaining lifetime); with cookies as
/// the only location the body carries no token at all, so the page's script never sees one.
fn token_response(state: &AppState, access: &Signed<Session>, refresh: &Signed<Session>) -> Response {
    let expires_in = state.tokens().settings().access_ttl.as_secs();
    let headers_too = state.jwt.locations().contains(&Location::Headers);
    let body = if headers_too {
        json!({
            "access_token": access.token,
            "refresh_token": refresh.token,
            "token_type": "Bearer",
            "expires_in": expires_in,
        })
    } else {
        json!({ "msg": "The tokens are in cookies", "expires_in": expires_in })
    };
    let cookies: Option<SetCookies> =
        cookie_mode(state).then(|| state.jwt.access_cookies(access).and(state.jwt.refresh_cookies(refresh)));
    let mut response = (cookies, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
