//! The SQLite store.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, Row, Sqlite, sqlite::SqliteRow};
use tracing::instrument;
use uuid::Uuid;

use crate::model::{
    ACTIVE_SIGNING_KEY_SQL, APPLIED_MIGRATIONS_SQL, DELETE_RETIRED_KEYS_SQL, DatabaseStatus,
    INSERT_ACTIVE_KEY_IF_NONE_SQL, INSERT_ACTIVE_KEY_SQL, LIST_SIGNING_KEYS_SQL, RETIRE_ACTIVE_KEY_SQL,
    RETIRE_KEY_IF_ACTIVE_SQL, SESSION_REVOCATION_MARGIN, SIGNING_KEYS_VERSION_SQL, migration_status,
};
use crate::throttle::{FailureState, ThrottlePolicy};
use crate::tx::Tx;
use crate::{
    ADMIN_ROLE, AuditEvent, AuditFilter, AuditRecord, Credentials, Email, NewSession, NewSigningKey, NewUser, Revoked,
    Role, Roles, Rotation, SessionInfo, SigningKeysVersion, StoreError, StoredSigningKey, User, UserStatus, Username,
};

/// Migrations for SQLite, embedded in the binary.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The columns of a [`User`], roles folded in with one correlated subquery (role names cannot
/// contain commas, see [`Role::parse`]), so reading an account is one round trip.
macro_rules! user_select {
    ($extra:literal, $where:literal) => {
        concat!(
            "SELECT id, username, email, status, created_at, ",
            "(SELECT group_concat(role, ',') FROM (SELECT role FROM user_roles WHERE user_id = users.id ORDER BY role)) AS roles",
            $extra,
            " FROM users WHERE ",
            $where
        )
    };
}

/// Makes the database file (created here if missing) and its WAL and shared-memory files
/// readable and writable by their owner only: they hold password hashes and, unless
/// `KEYCARD_KEY_ENCRYPTION_KEY` is set, the private signing keys. A file keycard cannot change
/// (another owner's) is left as it is, with a warning.
fn restrict_to_owner(path: &std::path::Path) {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let name = path.as_os_str();
    if name.is_empty() || name == ":memory:" {
        return;
    }
    // Created with 0600 from the start, so it is never readable by others, not even briefly.
    let _ = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path);
    for suffix in ["", "-wal", "-shm"] {
        let mut file = name.to_owned();
        file.push(suffix);
        let file = std::path::PathBuf::from(file);
        let Ok(meta) = std::fs::metadata(&file) else { continue };
        if meta.permissions().mode() & 0o077 != 0
            && let Err(e) = std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
        {
            tracing::warn!(file = %file.display(), error = %e, "cannot make the database file private to its owner");
        }
    }
}

/// Accounts, sessions and revocations on SQLite.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
}

impl SqliteStore {
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
        restrict_to_owner(options.get_filename());
        // One connection per core: each sqlx SQLite connection runs its statements on its own
        // thread, and more threads than cores only add context switches (measured on refresh).
        let connections = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 8);
        let pool = SqlitePoolOptions::new()
            .max_connections(u32::try_from(connections).unwrap_or(2))
            .acquire_timeout(Duration::from_secs(10))
            // A safety net under `Tx`: a connection sqlx believes inside a transaction is
            // closed, never handed out again.
            .after_release(|conn, _| Box::pin(async move { Ok(!conn.is_in_transaction()) }))
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    /// See [`crate::Store::inspect`]: opens the file read-only, never creating it.
    pub async fn inspect(url: &str) -> Result<DatabaseStatus, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?.read_only(true).create_if_missing(false);
        let known: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
        let file = options.get_filename();
        if file.as_os_str().is_empty() || file.as_os_str() == ":memory:" || !file.exists() {
            return Ok(DatabaseStatus { exists: false, ..migration_status(&known, &[]) });
        }
        let mut conn = SqliteConnection::connect_with(&options).await?;
        let table: Option<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'")
                .fetch_optional(&mut conn)
                .await?;
        let applied: Vec<(i64, bool)> = match table {
            Some(_) => sqlx::query_as(APPLIED_MIGRATIONS_SQL).fetch_all(&mut conn).await?,
            None => Vec::new(),
        };
        let _ = conn.close().await;
        Ok(migration_status(&known, &applied))
    }

    /// Starts a write transaction (`BEGIN IMMEDIATE`: the write lock at once, so two writers
    /// never deadlock upgrading a read).
    pub(crate) async fn begin(&self) -> Result<Tx<Sqlite>, StoreError> {
        Tx::begin(&self.pool, "BEGIN IMMEDIATE").await
    }

    /// See [`crate::Store::check_writes`]: rewrites the one row of `write_probe`.
    pub async fn probe_writes(&self, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE write_probe SET written_at = ?1 WHERE id = 1").bind(now).execute(&self.pool).await?;
        Ok(())
    }

    /// Closes every connection (checkpointing the WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// How the connection pool is used right now.
    pub fn pool_stats(&self) -> crate::PoolStats {
        crate::PoolStats::of(&self.pool)
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
        let mut tx = self.begin().await?;
        let result = insert_user(tx.conn(), new).await;
        tx.finish(result).await
    }

    /// See [`crate::Store::create_users`].
    #[instrument(skip_all, fields(users = users.len()))]
    pub async fn create_users(&self, users: &[NewUser<'_>]) -> Result<usize, StoreError> {
        let mut tx = self.begin().await?;
        let result = async {
            for new in users {
                insert_user(tx.conn(), new).await?;
            }
            Ok(users.len())
        }
        .await;
        tx.finish(result).await
    }

    /// See [`crate::Store::replace_password_hash`].
    #[instrument(skip_all)]
    pub async fn replace_password_hash(
        &self,
        user_id: i64,
        old_hash: &str,
        new_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE users SET password_hash = $3, updated_at = $4 WHERE id = $1 AND password_hash = $2")
                .bind(user_id)
                .bind(old_hash)
                .bind(new_hash)
                .bind(now)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
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
        let row = sqlx::query(user_select!(", password_hash", "username_key = ?1"))
            .bind(username.key())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(Credentials { password_hash: row.try_get("password_hash")?, user: user_from_row(&row)? }))
    }

    /// An account by username.
    #[instrument(skip_all)]
    pub async fn get_user(&self, username: &Username) -> Result<Option<User>, StoreError> {
        let row =
            sqlx::query(user_select!("", "username_key = ?1")).bind(username.key()).fetch_optional(&self.pool).await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// An account by row id.
    pub async fn get_user_by_id(&self, id: i64) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(user_select!("", "id = ?1")).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Every account, oldest first.
    #[instrument(skip_all)]
    pub async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query(user_select!("", "1 = 1 ORDER BY id")).fetch_all(&self.pool).await?;
        rows.iter().map(user_from_row).collect()
    }

    /// Grants `role` to the account; `Ok(false)` if it already had it, [`StoreError::NotFound`]
    /// if there is no such account.
    #[instrument(skip_all, fields(role = %role))]
    pub async fn grant_role(&self, username: &Username, role: &Role, now: i64) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let result = async {
            let id = touch_user(tx.conn(), username, now).await?;
            let added = insert_role(tx.conn(), id, role, now).await?;
            if added && role_count(tx.conn(), id).await? > Roles::MAX {
                return Err(StoreError::TooManyRoles);
            }
            Ok(added)
        }
        .await;
        tx.finish(result).await
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
        // One statement: the swap and the account it belongs to (refresh is the hot write path).
        let rotated = sqlx::query(
            "UPDATE sessions SET refresh_jti = ?1, last_used_at = ?2, expires_at = ?3
             WHERE id = ?4 AND refresh_jti = ?5 AND revoked_at IS NULL
             RETURNING user_id AS id,
                 (SELECT username FROM users WHERE users.id = sessions.user_id) AS username,
                 (SELECT email FROM users WHERE users.id = sessions.user_id) AS email,
                 (SELECT status FROM users WHERE users.id = sessions.user_id) AS status,
                 (SELECT created_at FROM users WHERE users.id = sessions.user_id) AS created_at,
                 (SELECT group_concat(role, ',') FROM
                     (SELECT role FROM user_roles WHERE user_roles.user_id = sessions.user_id ORDER BY role)) AS roles",
        )
        .bind(new_jti.to_string())
        .bind(now)
        .bind(expires_at)
        .bind(&sid_text)
        .bind(old_jti.to_string())
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = rotated {
            // A session whose account was deleted has NULL account columns.
            if row.try_get::<Option<String>, _>("username")?.is_none() {
                return Ok(Rotation::Unknown);
            }
            return Ok(Rotation::Rotated(user_from_row(&row)?));
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
        let mut tx = self.begin().await?;
        let result = async {
            sqlx::query(
                "UPDATE sessions SET revoked_at = ?2, revoked_reason = ?3 WHERE id = ?1 AND revoked_at IS NULL",
            )
            .bind(sid.to_string())
            .bind(now)
            .bind(reason)
            .execute(tx.conn())
            .await?;
            for (id, expires_at) in revocations {
                insert_revocation(tx.conn(), *id, *expires_at, now).await?;
            }
            Ok(())
        }
        .await;
        tx.finish(result).await
    }

    /// See [`crate::Store::load_live_revocations`]: up to `limit` revocations in force at `now`
    /// after sequence number `after`, in `seq` order, and the last sequence number read (`after`
    /// if none).
    pub async fn live_revocations_page(&self, after: i64, now: i64, limit: i64) -> Result<(Revoked, i64), StoreError> {
        let rows = sqlx::query(
            "SELECT seq, id, expires_at FROM revocations WHERE seq > ?1 AND expires_at > ?2 ORDER BY seq LIMIT ?3",
        )
        .bind(after)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut last = after;
        let mut page = Vec::with_capacity(rows.len());
        for row in &rows {
            last = row.try_get("seq")?;
            page.push(revocation_from_row(row)?);
        }
        Ok((page, last))
    }

    /// Deletes revocations and sessions that can no longer matter at `now`; returns rows deleted.
    pub async fn purge_expired(&self, now: i64) -> Result<u64, StoreError> {
        let revocations =
            sqlx::query("DELETE FROM revocations WHERE expires_at <= ?1").bind(now).execute(&self.pool).await?;
        let sessions = sqlx::query("DELETE FROM sessions WHERE expires_at <= ?1").bind(now).execute(&self.pool).await?;
        Ok(revocations.rows_affected() + sessions.rows_affected())
    }

    /// Live sessions of an account, newest first.
    pub async fn user_sessions(&self, user_id: i64, now: i64) -> Result<Vec<SessionInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, created_at, last_used_at, expires_at, client_addr, user_agent FROM sessions
             WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2 ORDER BY created_at DESC, id DESC",
        )
        .bind(user_id)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("id")?;
                Ok(SessionInfo {
                    id: Uuid::parse_str(&id).map_err(|_| StoreError::Corrupt("sessions.id is not a UUID"))?,
                    created_at: row.try_get("created_at")?,
                    last_used_at: row.try_get("last_used_at")?,
                    expires_at: row.try_get("expires_at")?,
                    client_addr: row.try_get("client_addr")?,
                    user_agent: row.try_get("user_agent")?,
                })
            })
            .collect()
    }

    /// Ends every live session of an account but `except`, in one transaction; returns the
    /// revoked session ids to mirror in memory.
    #[instrument(skip_all, fields(user_id, reason))]
    pub async fn revoke_user_sessions(
        &self,
        user_id: i64,
        except: Option<Uuid>,
        now: i64,
        reason: &str,
    ) -> Result<Revoked, StoreError> {
        let mut tx = self.begin().await?;
        let result = revoke_sessions_in(tx.conn(), user_id, except, now, reason).await;
        tx.finish(result).await
    }

    /// Ends session `sid` if it belongs to `user_id`; `Ok(None)` if it does not exist or is not
    /// theirs (or is already over).
    pub async fn revoke_own_session(
        &self,
        user_id: i64,
        sid: Uuid,
        now: i64,
        reason: &str,
    ) -> Result<Option<Revoked>, StoreError> {
        let expires_at: Option<i64> = sqlx::query_scalar(
            "SELECT expires_at FROM sessions WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL AND expires_at > ?3",
        )
        .bind(sid.to_string())
        .bind(user_id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(expires_at) = expires_at else { return Ok(None) };
        let revoked = vec![(sid, expires_at.saturating_add(SESSION_REVOCATION_MARGIN))];
        self.revoke_session(sid, now, reason, &revoked).await?;
        Ok(Some(revoked))
    }

    /// Replaces an account's password hash and ends its other sessions, in one transaction.
    pub async fn change_password(
        &self,
        user_id: i64,
        password_hash: &str,
        keep_session: Uuid,
        now: i64,
    ) -> Result<Revoked, StoreError> {
        let mut tx = self.begin().await?;
        let result = async {
            sqlx::query("UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1")
                .bind(user_id)
                .bind(password_hash)
                .bind(now)
                .execute(tx.conn())
                .await?;
            revoke_sessions_in(tx.conn(), user_id, Some(keep_session), now, "password change").await
        }
        .await;
        tx.finish(result).await
    }

    /// Sets an account's status; disabling also ends all its sessions, in the same transaction.
    /// [`StoreError::NotFound`] if there is no such account.
    #[instrument(skip_all, fields(status = status.as_str()))]
    pub async fn set_status(
        &self,
        username: &Username,
        status: UserStatus,
        now: i64,
    ) -> Result<(User, Revoked), StoreError> {
        let mut tx = self.begin().await?;
        let result = async {
            if status == UserStatus::Disabled {
                ensure_not_last_admin(tx.conn(), username).await?;
            }
            let id: Option<i64> = sqlx::query_scalar(
                "UPDATE users SET status = ?2, updated_at = ?3 WHERE username_key = ?1 RETURNING id",
            )
            .bind(username.key())
            .bind(status.as_str())
            .bind(now)
            .fetch_optional(tx.conn())
            .await?;
            let id = id.ok_or(StoreError::NotFound)?;
            let revoked = match status {
                UserStatus::Disabled => revoke_sessions_in(tx.conn(), id, None, now, "account disabled").await?,
                UserStatus::Active => Vec::new(),
            };
            Ok((id, revoked))
        }
        .await;
        let (id, revoked) = tx.finish(result).await?;
        let user = self.get_user_by_id(id).await?.ok_or(StoreError::NotFound)?;
        Ok((user, revoked))
    }

    /// Replaces an account's roles, in one transaction. [`StoreError::NotFound`] if there is no
    /// such account.
    pub async fn set_roles(&self, username: &Username, roles: &Roles, now: i64) -> Result<User, StoreError> {
        let mut tx = self.begin().await?;
        let result = async {
            if !roles.contains(ADMIN_ROLE) {
                ensure_not_last_admin(tx.conn(), username).await?;
            }
            let id = touch_user(tx.conn(), username, now).await?;
            sqlx::query("DELETE FROM user_roles WHERE user_id = ?1").bind(id).execute(tx.conn()).await?;
            for role in roles {
                insert_role(tx.conn(), id, role, now).await?;
            }
            Ok(id)
        }
        .await;
        let id = tx.finish(result).await?;
        self.get_user_by_id(id).await?.ok_or(StoreError::NotFound)
    }

    /// Records several security events in one statement.
    pub async fn record_audit_batch(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        let events: Vec<&AuditEvent> = events.iter().filter(|e| e.kind.is_some()).collect();
        for chunk in events.chunks(512) {
            let mut query = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO audit_events (at, kind, username, client_addr, user_agent, session_id, detail) ",
            );
            query.push_values(chunk, |mut row, event| {
                row.push_bind(event.at)
                    .push_bind(event.kind.map(|k| k.as_str()))
                    .push_bind(event.username.clone())
                    .push_bind(event.client_addr.clone())
                    .push_bind(event.user_agent.clone())
                    .push_bind(event.session_id.clone())
                    .push_bind(event.detail.as_ref().map(|d| d.to_string()));
            });
            query.build().execute(&self.pool).await?;
        }
        Ok(())
    }

    /// Security events matching `filter`, newest first.
    pub async fn audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        let limit = filter.limit.unwrap_or(100).clamp(1, 1000);
        let rows = sqlx::query(
            "SELECT id, at, kind, username, client_addr, user_agent, session_id, detail FROM audit_events
             WHERE (?1 IS NULL OR username = ?1 COLLATE NOCASE)
               AND (?2 IS NULL OR kind = ?2)
               AND (?3 IS NULL OR at >= ?3)
             ORDER BY id DESC LIMIT ?4",
        )
        .bind(filter.username.as_deref())
        .bind(filter.kind.map(|k| k.as_str()))
        .bind(filter.since)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let detail: Option<String> = row.try_get("detail")?;
                Ok(AuditRecord {
                    id: row.try_get("id")?,
                    at: row.try_get("at")?,
                    kind: row.try_get("kind")?,
                    username: row.try_get("username")?,
                    client_addr: row.try_get("client_addr")?,
                    user_agent: row.try_get("user_agent")?,
                    session_id: row.try_get("session_id")?,
                    detail: detail.and_then(|d| serde_json::from_str(&d).ok()),
                })
            })
            .collect()
    }

    /// Until when logins for this account name are refused, if they are at `now`.
    pub async fn login_locked_until(&self, username_key: &str, now: i64) -> Result<Option<i64>, StoreError> {
        let until: Option<i64> = sqlx::query_scalar("SELECT locked_until FROM login_failures WHERE username_key = ?1")
            .bind(username_key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(until.filter(|until| *until > now))
    }

    /// Records a failed login under `policy`, atomically; returns the new state.
    pub async fn record_login_failure(
        &self,
        username_key: &str,
        policy: &ThrottlePolicy,
        now: i64,
    ) -> Result<FailureState, StoreError> {
        let mut tx = self.begin().await?;
        let result = record_failure_in(tx.conn(), username_key, policy, now).await;
        tx.finish(result).await
    }

    /// Clears the failure count of an account name after a successful login.
    pub async fn clear_login_failures(&self, username_key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_failures WHERE username_key = ?1")
            .bind(username_key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The polling cursor: the highest revocation sequence number so far.
    pub async fn revocation_cursor(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM revocations").fetch_one(&self.pool).await?)
    }

    /// Revocations recorded after `cursor` (by any process), and the new cursor.
    pub async fn revocations_after(&self, cursor: i64) -> Result<(Revoked, i64), StoreError> {
        let rows = sqlx::query("SELECT seq, id, expires_at FROM revocations WHERE seq > ?1 ORDER BY seq")
            .bind(cursor)
            .fetch_all(&self.pool)
            .await?;
        let mut next = cursor;
        let mut revoked = Vec::with_capacity(rows.len());
        for row in &rows {
            next = next.max(row.try_get("seq")?);
            revoked.push(revocation_from_row(row)?);
        }
        Ok((revoked, next))
    }

    /// See [`crate::Store::rotate_signing_key`]: in one `BEGIN IMMEDIATE` transaction (SQLite
    /// runs them one at a time), retires the active key of the algorithm and inserts `key` as
    /// the active one.
    #[instrument(skip_all, fields(kid = key.kid, algorithm = key.algorithm))]
    pub async fn rotate_signing_key(&self, key: &NewSigningKey<'_>) -> Result<Vec<String>, StoreError> {
        let mut tx = self.begin().await?;
        let result = async {
            let retired: Vec<String> = sqlx::query_scalar(RETIRE_ACTIVE_KEY_SQL)
                .bind(key.algorithm)
                .bind(key.now)
                .fetch_all(tx.conn())
                .await?;
            insert_signing_key(tx.conn(), INSERT_ACTIVE_KEY_SQL, key).await?;
            Ok(retired)
        }
        .await;
        tx.finish(result).await
    }

    /// See [`crate::Store::rotate_signing_key_if_active`].
    #[instrument(skip_all, fields(kid = key.kid, algorithm = key.algorithm, replacing))]
    pub async fn rotate_signing_key_if_active(
        &self,
        key: &NewSigningKey<'_>,
        replacing: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let result = async {
            let retired: Option<String> = sqlx::query_scalar(RETIRE_KEY_IF_ACTIVE_SQL)
                .bind(key.algorithm)
                .bind(key.now)
                .bind(replacing)
                .fetch_optional(tx.conn())
                .await?;
            if retired.is_none() {
                return Ok(false);
            }
            insert_signing_key(tx.conn(), INSERT_ACTIVE_KEY_SQL, key).await?;
            Ok(true)
        }
        .await;
        tx.finish(result).await
    }

    /// See [`crate::Store::insert_signing_key_if_none_active`].
    #[instrument(skip_all, fields(kid = key.kid, algorithm = key.algorithm))]
    pub async fn insert_signing_key_if_none_active(
        &self,
        key: &NewSigningKey<'_>,
    ) -> Result<StoredSigningKey, StoreError> {
        let mut tx = self.begin().await?;
        let result = async {
            insert_signing_key(tx.conn(), INSERT_ACTIVE_KEY_IF_NONE_SQL, key).await?;
            let row = sqlx::query(ACTIVE_SIGNING_KEY_SQL).bind(key.algorithm).fetch_one(tx.conn()).await?;
            signing_key_from_row(&row)
        }
        .await;
        tx.finish(result).await
    }

    /// See [`crate::Store::signing_keys`].
    pub async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>, StoreError> {
        let rows = sqlx::query(LIST_SIGNING_KEYS_SQL).fetch_all(&self.pool).await?;
        rows.iter().map(signing_key_from_row).collect()
    }

    /// See [`crate::Store::signing_keys_version`].
    pub async fn signing_keys_version(&self) -> Result<SigningKeysVersion, StoreError> {
        let row = sqlx::query(SIGNING_KEYS_VERSION_SQL).fetch_one(&self.pool).await?;
        Ok(SigningKeysVersion {
            count: row.try_get("count")?,
            max_created_at: row.try_get("max_created_at")?,
            max_activated_at: row.try_get("max_activated_at")?,
            max_retired_at: row.try_get("max_retired_at")?,
        })
    }

    /// See [`crate::Store::delete_retired_signing_keys`].
    pub async fn delete_retired_signing_keys(&self, retired_before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(DELETE_RETIRED_KEYS_SQL).bind(retired_before).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }
}

/// Records a failed login for `username_key` under `policy` inside a transaction on `conn`.
async fn record_failure_in(
    conn: &mut SqliteConnection,
    username_key: &str,
    policy: &ThrottlePolicy,
    now: i64,
) -> Result<FailureState, StoreError> {
    let row = sqlx::query(
        "SELECT consecutive, last_failure_at, recent, locked_until FROM login_failures WHERE username_key = ?1",
    )
    .bind(username_key)
    .fetch_optional(&mut *conn)
    .await?;
    let previous = row.as_ref().map(FailureState::from_row).transpose()?;
    let state = policy.after_failure(previous, now);
    let recent = state.recent_text();
    sqlx::query(
        "INSERT INTO login_failures (username_key, consecutive, last_failure_at, recent, locked_until)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (username_key) DO UPDATE SET consecutive = excluded.consecutive,
             last_failure_at = excluded.last_failure_at, recent = excluded.recent, locked_until = excluded.locked_until",
    )
    .bind(username_key)
    .bind(i64::from(state.consecutive))
    .bind(state.last_failure_at)
    .bind(recent)
    .bind(state.locked_until)
    .execute(&mut *conn)
    .await?;
    Ok(state)
}

/// Records that `id` is revoked until `until` (keeping the later time if it already is).
async fn insert_revocation(conn: &mut SqliteConnection, id: Uuid, until: i64, now: i64) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO revocations (id, expires_at, revoked_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (id) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)",
    )
    .bind(id.to_string())
    .bind(until)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Marks the account changed at `now`; its id, or [`StoreError::NotFound`].
async fn touch_user(conn: &mut SqliteConnection, username: &Username, now: i64) -> Result<i64, StoreError> {
    let id: Option<i64> = sqlx::query_scalar("UPDATE users SET updated_at = ?2 WHERE username_key = ?1 RETURNING id")
        .bind(username.key())
        .bind(now)
        .fetch_optional(&mut *conn)
        .await?;
    id.ok_or(StoreError::NotFound)
}

/// Inserts one account with its roles, inside the caller's transaction.
async fn insert_user(conn: &mut SqliteConnection, new: &NewUser<'_>) -> Result<i64, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO users (username, username_key, email, password_hash, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5) RETURNING id",
    )
    .bind(new.username.as_str())
    .bind(new.username.key())
    .bind(new.email.map(Email::as_str))
    .bind(new.password_hash)
    .bind(new.now)
    .fetch_one(&mut *conn)
    .await?;
    for role in new.roles {
        insert_role(&mut *conn, id, role, new.now).await?;
    }
    Ok(id)
}

/// Grants `role`; whether it was new.
async fn insert_role(conn: &mut SqliteConnection, user_id: i64, role: &Role, now: i64) -> Result<bool, StoreError> {
    let done = sqlx::query("INSERT OR IGNORE INTO user_roles (user_id, role, granted_at) VALUES (?1, ?2, ?3)")
        .bind(user_id)
        .bind(role.as_str())
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// [`StoreError::LastAdmin`] if `username` is an active admin and no other active admin exists.
/// Inside a `BEGIN IMMEDIATE` transaction, which SQLite runs one at a time: the count cannot
/// change before the caller's change commits.
async fn ensure_not_last_admin(conn: &mut SqliteConnection, username: &Username) -> Result<(), StoreError> {
    let row = sqlx::query(crate::model::ACTIVE_ADMINS_SQL)
        .bind(username.key())
        .bind(ADMIN_ROLE)
        .fetch_one(&mut *conn)
        .await?;
    let (target, others): (i64, i64) = (row.try_get("target")?, row.try_get("others")?);
    if target > 0 && others == 0 {
        return Err(StoreError::LastAdmin);
    }
    Ok(())
}

/// How many roles the account holds, inside `tx`.
async fn role_count(conn: &mut SqliteConnection, user_id: i64) -> Result<usize, StoreError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM user_roles WHERE user_id = ?1")
        .bind(user_id)
        .fetch_one(&mut *conn)
        .await?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Ends every live session of `user_id` but `except` inside `tx`, recording their revocations.
async fn revoke_sessions_in(
    conn: &mut SqliteConnection,
    user_id: i64,
    except: Option<Uuid>,
    now: i64,
    reason: &str,
) -> Result<Revoked, StoreError> {
    let except = except.map(|u| u.to_string());
    let rows = sqlx::query(
        "UPDATE sessions SET revoked_at = ?2, revoked_reason = ?3
         WHERE user_id = ?1 AND revoked_at IS NULL AND (?4 IS NULL OR id <> ?4)
         RETURNING id, expires_at",
    )
    .bind(user_id)
    .bind(now)
    .bind(reason)
    .bind(except.as_deref())
    .fetch_all(&mut *conn)
    .await?;
    let mut revoked = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: String = row.try_get("id")?;
        let id = Uuid::parse_str(&id).map_err(|_| StoreError::Corrupt("sessions.id is not a UUID"))?;
        let until = row.try_get::<i64, _>("expires_at")?.max(now).saturating_add(SESSION_REVOCATION_MARGIN);
        insert_revocation(conn, id, until, now).await?;
        revoked.push((id, until));
    }
    Ok(revoked)
}

fn revocation_from_row(row: &SqliteRow) -> Result<(Uuid, i64), StoreError> {
    let id: String = row.try_get("id")?;
    let id = Uuid::parse_str(&id).map_err(|_| StoreError::Corrupt("revocations.id is not a UUID"))?;
    Ok((id, row.try_get("expires_at")?))
}

fn user_from_row(row: &SqliteRow) -> Result<User, StoreError> {
    let status: String = row.try_get("status")?;
    Ok(User {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        email: row.try_get("email")?,
        status: status.parse().map_err(|_| StoreError::Corrupt("users.status"))?,
        roles: row
            .try_get::<Option<String>, _>("roles")?
            .map(|roles| roles.split(',').map(str::to_owned).collect())
            .unwrap_or_default(),
        created_at: row.try_get("created_at")?,
    })
}

/// Runs `sql` (one of the signing-key inserts) for `key` on `conn`.
async fn insert_signing_key(
    conn: &mut SqliteConnection,
    sql: &'static str,
    key: &NewSigningKey<'_>,
) -> Result<(), StoreError> {
    sqlx::query(sql)
        .bind(key.kid)
        .bind(key.algorithm)
        .bind(key.private_key)
        .bind(key.sealed)
        .bind(key.now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

fn signing_key_from_row(row: &SqliteRow) -> Result<StoredSigningKey, StoreError> {
    let state: String = row.try_get("state")?;
    Ok(StoredSigningKey {
        kid: row.try_get("kid")?,
        algorithm: row.try_get("algorithm")?,
        private_key: row.try_get("private_key")?,
        sealed: row.try_get("sealed")?,
        created_at: row.try_get("created_at")?,
        activated_at: row.try_get("activated_at")?,
        retired_at: row.try_get("retired_at")?,
        state: state.parse()?,
    })
}
