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

/// Every stored signing key, oldest first (both backends).
pub(crate) const LIST_SIGNING_KEYS_SQL: &str =
    "SELECT kid, algorithm, private_key, sealed, created_at, activated_at, retired_at, state
     FROM signing_keys ORDER BY created_at, kid";

/// The active key of algorithm `$1` (both backends).
pub(crate) const ACTIVE_SIGNING_KEY_SQL: &str =
    "SELECT kid, algorithm, private_key, sealed, created_at, activated_at, retired_at, state
     FROM signing_keys WHERE algorithm = $1 AND state = 'active'";

/// Retires the active key of algorithm `$1` at `$2` (both backends), returning its kid.
pub(crate) const RETIRE_ACTIVE_KEY_SQL: &str = "UPDATE signing_keys SET state = 'retired', retired_at = $2
     WHERE algorithm = $1 AND state = 'active' RETURNING kid";

/// Retires the key `$3` at `$2` if it is still the active key of algorithm `$1` (both
/// backends), returning its kid.
pub(crate) const RETIRE_KEY_IF_ACTIVE_SQL: &str = "UPDATE signing_keys SET state = 'retired', retired_at = $2
     WHERE algorithm = $1 AND state = 'active' AND kid = $3 RETURNING kid";

/// Inserts key `$1` of algorithm `$2` as the active one (both backends).
pub(crate) const INSERT_ACTIVE_KEY_SQL: &str = "INSERT INTO signing_keys
     (kid, algorithm, private_key, sealed, created_at, activated_at, state)
     VALUES ($1, $2, $3, $4, $5, $5, 'active')";

/// [`INSERT_ACTIVE_KEY_SQL`] unless algorithm `$2` already has an active key (both backends:
/// the partial unique index `signing_keys_one_active` is the arbiter).
pub(crate) const INSERT_ACTIVE_KEY_IF_NONE_SQL: &str = "INSERT INTO signing_keys
     (kid, algorithm, private_key, sealed, created_at, activated_at, state)
     VALUES ($1, $2, $3, $4, $5, $5, 'active')
     ON CONFLICT (algorithm) WHERE state = 'active' DO NOTHING";

/// The polling fingerprint of `signing_keys` (both backends).
pub(crate) const SIGNING_KEYS_VERSION_SQL: &str = "SELECT COUNT(*) AS count, MAX(created_at) AS max_created_at,
     MAX(activated_at) AS max_activated_at, MAX(retired_at) AS max_retired_at FROM signing_keys";

/// Deletes the keys retired before `$1` (both backends).
pub(crate) const DELETE_RETIRED_KEYS_SQL: &str = "DELETE FROM signing_keys WHERE state = 'retired' AND retired_at < $1";

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

/// Where a signing key is in its life (`signing_keys.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Signs new tokens: at most one per algorithm.
    Active,
    /// Published ahead of use; becomes active at a later rotation.
    Next,
    /// Replaced by a newer key: still published and verifying until the tokens it signed have
    /// expired, never signing.
    Retired,
}

impl KeyState {
    /// The stored name: `active`, `next` or `retired`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Active => "active",
            KeyState::Next => "next",
            KeyState::Retired => "retired",
        }
    }
}

impl std::fmt::Display for KeyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for KeyState {
    type Err = crate::StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(KeyState::Active),
            "next" => Ok(KeyState::Next),
            "retired" => Ok(KeyState::Retired),
            _ => Err(crate::StoreError::Corrupt("signing_keys.state")),
        }
    }
}

/// A signing key to store. The store never looks inside `private_key`: PKCS#8 DER, or sealed by
/// the server when it has an encryption key.
#[derive(Clone)]
pub struct NewSigningKey<'a> {
    /// RFC 7638 thumbprint of the public key: the tokens' `kid`.
    pub kid: &'a str,
    /// JWS algorithm name (`ES256`, `EdDSA`, `RS256`, ...).
    pub algorithm: &'a str,
    /// The private key as stored: PKCS#8 DER, or its sealed form when `sealed`.
    pub private_key: &'a [u8],
    /// Whether `private_key` is sealed.
    pub sealed: bool,
    /// Creation (and activation) time, seconds since the epoch.
    pub now: i64,
}

impl std::fmt::Debug for NewSigningKey<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("private_key", &Redacted(self.private_key.len()))
            .field("sealed", &self.sealed)
            .field("now", &self.now)
            .finish()
    }
}

/// A stored signing key. Its `Debug` never shows the key material.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSigningKey {
    /// RFC 7638 thumbprint of the public key: the tokens' `kid`.
    pub kid: String,
    /// JWS algorithm name (`ES256`, `EdDSA`, `RS256`, ...).
    pub algorithm: String,
    /// The private key as stored: PKCS#8 DER, or its sealed form when `sealed`.
    pub private_key: Vec<u8>,
    /// Whether `private_key` is sealed.
    pub sealed: bool,
    /// Creation time, seconds since the epoch.
    pub created_at: i64,
    /// When the key started signing.
    pub activated_at: Option<i64>,
    /// When a newer key replaced it.
    pub retired_at: Option<i64>,
    /// Active, next or retired.
    pub state: KeyState,
}

impl std::fmt::Debug for StoredSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("private_key", &Redacted(self.private_key.len()))
            .field("sealed", &self.sealed)
            .field("created_at", &self.created_at)
            .field("activated_at", &self.activated_at)
            .field("retired_at", &self.retired_at)
            .field("state", &self.state)
            .finish()
    }
}

impl Drop for StoredSigningKey {
    fn drop(&mut self) {
        // Best effort: overwrite the key material before the allocation is freed.
        self.private_key.iter_mut().for_each(|b| *b = 0);
        std::hint::black_box(&mut self.private_key);
    }
}

/// Stands in for key material in `Debug` output.
struct Redacted(usize);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<redacted, {} bytes>", self.0)
    }
}

/// A cheap fingerprint of the `signing_keys` table, for polling: when it differs from the last
/// one seen, the keys have changed (a rotation, a new key, a deletion).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SigningKeysVersion {
    /// How many keys are stored.
    pub count: i64,
    /// Newest `created_at`.
    pub max_created_at: Option<i64>,
    /// Newest `activated_at`.
    pub max_activated_at: Option<i64>,
    /// Newest `retired_at`.
    pub max_retired_at: Option<i64>,
}

/// A database as `keycard config check` sees it, read without changing anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseStatus {
    /// Whether the database exists (`false`: an SQLite file not created yet, made at first
    /// start).
    pub exists: bool,
    /// Migrations of this keycard that are applied.
    pub applied: usize,
    /// Migrations of this keycard not applied yet (the server applies them at start).
    pub pending: usize,
    /// Versions applied to the database that this keycard does not know (a newer keycard
    /// migrated it): the server refuses to start.
    pub unknown: Vec<i64>,
    /// Versions whose migration failed half-way: the server refuses to start.
    pub failed: Vec<i64>,
}

/// Which of `known` versions are applied, pending, unknown to `known`, failed; `applied`:
/// (version, success) rows of `_sqlx_migrations`.
pub(crate) fn migration_status(known: &[i64], applied: &[(i64, bool)]) -> DatabaseStatus {
    let ok: Vec<i64> = applied.iter().filter(|(_, success)| *success).map(|(v, _)| *v).collect();
    DatabaseStatus {
        exists: true,
        applied: known.iter().filter(|v| ok.contains(v)).count(),
        pending: known.iter().filter(|v| !ok.contains(v)).count(),
        unknown: ok.iter().copied().filter(|v| !known.contains(v)).collect(),
        failed: applied.iter().filter(|(_, success)| !*success).map(|(v, _)| *v).collect(),
    }
}

/// The applied migrations (both backends).
pub(crate) const APPLIED_MIGRATIONS_SQL: &str = "SELECT version, success FROM _sqlx_migrations ORDER BY version";
