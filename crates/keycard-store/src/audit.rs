//! Security events recorded in the database.

use serde::Serialize;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// An account was created.
    UserRegistered,
    /// A password login succeeded.
    LoginSucceeded,
    /// A password login failed (unknown user, wrong password or disabled account).
    LoginFailed,
    /// Failed logins started being throttled for an account name.
    ThrottlingStarted,
    /// A refresh token was rotated.
    Refresh,
    /// A rotated-away refresh token was presented again: the session was revoked.
    RefreshReuse,
    /// A logout (detail: scope).
    Logout,
    /// A session was ended from the session list.
    SessionRevoked,
    /// The password was changed.
    PasswordChanged,
    /// Roles were changed (detail: roles).
    RolesChanged,
    /// The account was disabled.
    UserDisabled,
    /// The account was enabled.
    UserEnabled,
}

impl AuditKind {
    /// Every kind, for parsing and documentation.
    pub const ALL: [AuditKind; 12] = [
        AuditKind::UserRegistered,
        AuditKind::LoginSucceeded,
        AuditKind::LoginFailed,
        AuditKind::ThrottlingStarted,
        AuditKind::Refresh,
        AuditKind::RefreshReuse,
        AuditKind::Logout,
        AuditKind::SessionRevoked,
        AuditKind::PasswordChanged,
        AuditKind::RolesChanged,
        AuditKind::UserDisabled,
        AuditKind::UserEnabled,
    ];

    /// The event recording that an account was given `status`.
    pub fn status_change(status: crate::UserStatus) -> Self {
        match status {
            crate::UserStatus::Disabled => AuditKind::UserDisabled,
            crate::UserStatus::Active => AuditKind::UserEnabled,
        }
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::UserRegistered => "user_registered",
            AuditKind::LoginSucceeded => "login_succeeded",
            AuditKind::LoginFailed => "login_failed",
            AuditKind::ThrottlingStarted => "throttling_started",
            AuditKind::Refresh => "refresh",
            AuditKind::RefreshReuse => "refresh_reuse",
            AuditKind::Logout => "logout",
            AuditKind::SessionRevoked => "session_revoked",
            AuditKind::PasswordChanged => "password_changed",
            AuditKind::RolesChanged => "roles_changed",
            AuditKind::UserDisabled => "user_disabled",
            AuditKind::UserEnabled => "user_enabled",
        }
    }
}

impl std::str::FromStr for AuditKind {
    type Err = crate::ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AuditKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or(crate::ValidationError("kind must be one of the audit event kinds listed in the README"))
    }
}

/// An event to record.
#[derive(Debug, Clone, Default)]
pub struct AuditEvent {
    /// Time, seconds since the epoch.
    pub at: i64,
    /// What happened (`None` is never stored; use [`AuditEvent::new`]).
    pub kind: Option<AuditKind>,
    /// The account concerned.
    pub username: Option<String>,
    /// Client address.
    pub client_addr: Option<String>,
    /// Client `User-Agent`.
    pub user_agent: Option<String>,
    /// Session concerned.
    pub session_id: Option<String>,
    /// Event-specific details.
    pub detail: Option<serde_json::Value>,
}

impl AuditEvent {
    /// An event of `kind` at `at`.
    pub fn new(kind: AuditKind, at: i64) -> Self {
        Self { at, kind: Some(kind), ..Self::default() }
    }
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    /// Row id (increasing).
    pub id: i64,
    /// Time, seconds since the epoch.
    pub at: i64,
    /// Kind name.
    pub kind: String,
    /// Account concerned.
    pub username: Option<String>,
    /// Client address.
    pub client_addr: Option<String>,
    /// Client `User-Agent`.
    pub user_agent: Option<String>,
    /// Session concerned.
    pub session_id: Option<String>,
    /// Details.
    pub detail: Option<serde_json::Value>,
}

/// Which events to read (newest first).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this account (exact username as recorded, compared case-insensitively).
    pub username: Option<String>,
    /// Only this kind.
    pub kind: Option<AuditKind>,
    /// Only events at or after this time.
    pub since: Option<i64>,
    /// At most this many (default 100, capped at 1000).
    pub limit: Option<u32>,
}
