//! The SQLite store.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, sqlite::SqliteRow};
use tracing::instrument;
use uuid::Uuid;

use crate::{Email, Role, StoreError, UserStatus, Username};

/// Migrations for SQLite, embedded in the binary.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

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
    pub roles: &'a [Role],
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

/// Accounts, sessions and revocations on SQLite.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating if missing) the database at `url` (`sqlite://path` or `sqlite::memory:`),
    /// in WAL mode with a busy timeout, and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // In WAL mode NORMAL loses no committed transaction when a process dies.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    /// Closes every connection (checkpointing the WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Creates an account with its roles, in one transaction. [`StoreError::Conflict`] when the
    /// username (case-insensitively) is taken.
    #[instrument(skip_all, fields(username = ?new.username.as_str()))]
    pub async fn create_user(&self, new: &NewUser<'_>) -> Result<i64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (username, username_key, email, password_hash, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5) RETURNING id",
        )
        .bind(new.username.as_str())
        .bind(new.username.key())
        .bind(new.email.map(Email::as_str))
        .bind(new.password_hash)
        .bind(new.now)
        .fetch_one(&mut *tx)
        .await?;
        for role in new.roles {
            sqlx::query("INSERT OR IGNORE INTO user_roles (user_id, role, granted_at) VALUES (?1, ?2, ?3)")
                .bind(id)
                .bind(role.as_str())
                .bind(new.now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// Whether an account with this (canonical) username exists.
    pub async fn user_exists(&self, username: &Username) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE username_key = ?1")
            .bind(username.key())
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
    }

    /// The account and password hash for a login, if the account exists.
    #[instrument(skip_all)]
    pub async fn find_credentials(&self, username: &Username) -> Result<Option<Credentials>, StoreError> {
        let row = sqlx::query(
            "SELECT id, username, email, status, created_at, password_hash FROM users WHERE username_key = ?1",
        )
        .bind(username.key())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let password_hash: String = row.try_get("password_hash")?;
        let user = self.with_roles(user_from_row(&row)?).await?;
        Ok(Some(Credentials { user, password_hash }))
    }

    /// An account by username.
    #[instrument(skip_all)]
    pub async fn get_user(&self, username: &Username) -> Result<Option<User>, StoreError> {
        let row = sqlx::query("SELECT id, username, email, status, created_at FROM users WHERE username_key = ?1")
            .bind(username.key())
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => Ok(Some(self.with_roles(user_from_row(&row)?).await?)),
            None => Ok(None),
        }
    }

    /// An account by row id.
    pub async fn get_user_by_id(&self, id: i64) -> Result<Option<User>, StoreError> {
        let row = sqlx::query("SELECT id, username, email, status, created_at FROM users WHERE id = ?1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => Ok(Some(self.with_roles(user_from_row(&row)?).await?)),
            None => Ok(None),
        }
    }

    /// Every account, oldest first.
    #[instrument(skip_all)]
    pub async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query("SELECT id, username, email, status, created_at FROM users ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        let mut users = rows.iter().map(user_from_row).collect::<Result<Vec<_>, _>>()?;
        let roles =
            sqlx::query("SELECT user_id, role FROM user_roles ORDER BY user_id, role").fetch_all(&self.pool).await?;
        for row in roles {
            let user_id: i64 = row.try_get("user_id")?;
            if let Ok(i) = users.binary_search_by_key(&user_id, |u| u.id) {
                users[i].roles.push(row.try_get("role")?);
            }
        }
        Ok(users)
    }

    /// Grants `role` to the account; `Ok(false)` if it already had it, [`StoreError::NotFound`]
    /// if there is no such account.
    #[instrument(skip_all, fields(role = %role))]
    pub async fn grant_role(&self, username: &Username, role: &Role, now: i64) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE username_key = ?1")
            .bind(username.key())
            .fetch_optional(&mut *tx)
            .await?;
        let id = id.ok_or(StoreError::NotFound)?;
        let done = sqlx::query("INSERT OR IGNORE INTO user_roles (user_id, role, granted_at) VALUES (?1, ?2, ?3)")
            .bind(id)
            .bind(role.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE users SET updated_at = ?2 WHERE id = ?1").bind(id).bind(now).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a new login session.
    #[instrument(skip_all, fields(sid = %session.id))]
    pub async fn create_session(&self, session: &NewSession) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (id, user_id, refresh_jti, created_at, last_used_at, expires_at, client_addr, user_agent)
             VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7)",
        )
        .bind(session.id.to_string())
        .bind(session.user_id)
        .bind(session.refresh_jti.to_string())
        .bind(session.created_at)
        .bind(session.expires_at)
        .bind(session.client_addr.as_deref())
        .bind(session.user_agent.as_deref())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Replaces the session's refresh token `old_jti` by `new_jti` if, and only if, `old_jti` is
    /// the current one and the session is live. One conditional `UPDATE`: of any number of
    /// concurrent calls with the same `old_jti`, at most one returns [`Rotation::Rotated`].
    #[instrument(skip_all, fields(sid = %sid))]
    pub async fn rotate_refresh(
        &self,
        sid: Uuid,
        old_jti: Uuid,
        new_jti: Uuid,
        now: i64,
        expires_at: i64,
    ) -> Result<Rotation, StoreError> {
        let sid_text = sid.to_string();
        let rotated: Option<i64> = sqlx::query_scalar(
            "UPDATE sessions SET refresh_jti = ?1, last_used_at = ?2, expires_at = ?3
             WHERE id = ?4 AND refresh_jti = ?5 AND revoked_at IS NULL
             RETURNING user_id",
        )
        .bind(new_jti.to_string())
        .bind(now)
        .bind(expires_at)
        .bind(&sid_text)
        .bind(old_jti.to_string())
        .fetch_optional(&self.pool)
        .await?;
        if let Some(user_id) = rotated {
            return match self.get_user_by_id(user_id).await? {
                Some(user) => Ok(Rotation::Rotated(user)),
                None => Ok(Rotation::Unknown),
            };
        }
        let row = sqlx::query("SELECT user_id, revoked_at FROM sessions WHERE id = ?1")
            .bind(&sid_text)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(Rotation::Unknown) };
        let revoked_at: Option<i64> = row.try_get("revoked_at")?;
        if revoked_at.is_some() {
            return Ok(Rotation::Revoked);
        }
        Ok(Rotation::Reused { user_id: row.try_get("user_id")? })
    }

    /// Ends session `sid` (if still live) and records `revocations` (id, forget-after time), in
    /// one transaction.
    #[instrument(skip_all, fields(sid = %sid, reason))]
    pub async fn revoke_session(
        &self,
        sid: Uuid,
        now: i64,
        reason: &str,
        revocations: &[(Uuid, i64)],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE sessions SET revoked_at = ?2, revoked_reason = ?3 WHERE id = ?1 AND revoked_at IS NULL")
            .bind(sid.to_string())
            .bind(now)
            .bind(reason)
            .execute(&mut *tx)
            .await?;
        for (id, expires_at) in revocations {
            sqlx::query(
                "INSERT INTO revocations (id, expires_at, revoked_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)",
            )
            .bind(id.to_string())
            .bind(expires_at)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every revocation still in force at `now`, to load into memory at start.
    pub async fn live_revocations(&self, now: i64) -> Result<Vec<(Uuid, i64)>, StoreError> {
        let rows = sqlx::query("SELECT id, expires_at FROM revocations WHERE expires_at > ?1")
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("id")?;
                let id = Uuid::parse_str(&id).map_err(|_| StoreError::Corrupt("revocations.id is not a UUID"))?;
                Ok((id, row.try_get("expires_at")?))
            })
            .collect()
    }

    /// Deletes revocations and sessions that can no longer matter at `now`; returns rows deleted.
    pub async fn purge_expired(&self, now: i64) -> Result<u64, StoreError> {
        let revocations =
            sqlx::query("DELETE FROM revocations WHERE expires_at <= ?1").bind(now).execute(&self.pool).await?;
        let sessions = sqlx::query("DELETE FROM sessions WHERE expires_at <= ?1").bind(now).execute(&self.pool).await?;
        Ok(revocations.rows_affected() + sessions.rows_affected())
    }

    async fn with_roles(&self, mut user: User) -> Result<User, StoreError> {
        user.roles = sqlx::query_scalar("SELECT role FROM user_roles WHERE user_id = ?1 ORDER BY role")
            .bind(user.id)
            .fetch_all(&self.pool)
            .await?;
        Ok(user)
    }
}

fn user_from_row(row: &SqliteRow) -> Result<User, StoreError> {
    let status: String = row.try_get("status")?;
    Ok(User {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        email: row.try_get("email")?,
        status: status.parse().map_err(|_| StoreError::Corrupt("users.status"))?,
        roles: Vec::new(),
        created_at: row.try_get("created_at")?,
    })
}

#[cfg(test)]
mod tests;
