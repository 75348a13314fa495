//! What the store takes and returns, whatever the backend.

use uuid::Uuid;

use crate::{Email, Roles, UserStatus, Username};

/// Revoked ids with the time each may be forgotten, to mirror into the in-memory list.
pub type Revoked = Vec<(Uuid, i64)>;

/// How long past a session's refresh-token expiry its id stays revoked: covers the largest leeway.
pub(crate) const SESSION_REVOCATION_MARGIN: i64 = 300;

/// Whether the account with username key `$1` is an active holder of role `$2` (`target`), and
/// how many other active accounts hold it (`others`). Shared by both backends (SQLite accepts
/// `$n` placeholders).
pub(crate) const ACTIVE_ADMINS_SQL: &str = "SELECT
    (SELECT COUNT(*) FROM users u JOIN user_roles r ON r.user_id = u.id
      WHERE r.role = $2 AND u.status = 'active' AND u.username_key = $1) AS target,
    (SELECT COUNT(*) FROM users u JOIN user_roles r ON r.user_id = u.id
      WHERE r.role = $2 AND u.status = 'active' AND u.username_key <> $1) AS others";

/// An account as stored (never the password hash).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct User {
    /// Row id.
    #[serde(skip)]
    pub id: i64,
    /// Username as registered.
    pub username: String,
    /// Email, if given.
    pub email: Option<String>,
    /// Active or disabled.
    pub status: UserStatus,
    /// Granted roles, sorted.
    pub roles: Vec<String>,
    /// Creation time, seconds since the epoch.
    pub created_at: i64,
}

/// An account with its password hash, for login only.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The account.
    pub user: User,
    /// PHC string.
    pub password_hash: String,
}

/// A new account.
#[derive(Debug)]
pub struct NewUser<'a> {
    /// Validated username.
    pub username: &'a Username,
    /// Validated email.
    pub email: Option<&'a Email>,
    /// PHC string of the password.
    pub password_hash: &'a str,
    /// Roles granted at creation.
    pub roles: &'a Roles,
    /// Creation time, seconds since the epoch.
    pub now: i64,
}

/// A new login session.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The `sid` claim.
    pub id: Uuid,
    /// The account.
    pub user_id: i64,
    /// `jti` of the session's first refresh token.
    pub refresh_jti: Uuid,
    /// Login time.
    pub created_at: i64,
    /// `exp` of the refresh token.
    pub expires_at: i64,
    /// Client address of the login.
    pub client_addr: Option<String>,
    /// `User-Agent` of the login.
    pub user_agent: Option<String>,
}

/// Outcome of presenting a refresh token for rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was the session's current one and has been replaced; here is the account.
    Rotated(User),
    /// The token was already rotated away: it is being reused.
    Reused {
        /// Owner of the session.
        user_id: i64,
    },
    /// The session has ended (logout or earlier reuse).
    Revoked,
    /// No such session.
    Unknown,
}

/// A live session as the owner sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SessionInfo {
    /// The `sid`.
    pub id: Uuid,
    /// Login time.
    pub created_at: i64,
    /// Last login or refresh.
    pub last_used_at: i64,
    /// Expiry of the current refresh token.
    pub expires_at: i64,
    /// Client address of the login.
    pub client_addr: Option<String>,
    /// `User-Agent` of the login.
    pub user_agent: Option<String>,
}
