//! The PostgreSQL store: the same behaviour as [`crate::sqlite`], for several keycard instances
//! sharing one database.
//!
//! Differences that matter:
//! - Revocations are numbered by an identity column, and sequence numbers are handed out in
//!   allocation order, not commit order. Pollers read `seq > cursor`, so a transaction that took
//!   number 5 and committed after number 6 was read would be skipped for ever. Every transaction
//!   that records revocations therefore takes one transaction-level advisory lock first: they
//!   commit one at a time, in `seq` order.
//! - Those transactions also `NOTIFY` [`REVOCATION_CHANNEL`] (delivered at commit), so the other
//!   instances pick the revocation up at once instead of at their next poll.
//! - Failed-login counts are read and rewritten under an advisory lock on the account name: two
//!   instances counting a failure for the same name at the same moment both count.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, Postgres, Row};
use tracing::instrument;
use uuid::Uuid;

use crate::model::{
    ACTIVE_SIGNING_KEY_SQL, DELETE_RETIRED_KEYS_SQL, INSERT_ACTIVE_KEY_IF_NONE_SQL, INSERT_ACTIVE_KEY_SQL,
    LIST_SIGNING_KEYS_SQL, RETIRE_ACTIVE_KEY_SQL, RETIRE_KEY_IF_ACTIVE_SQL, SESSION_REVOCATION_MARGIN,
    SIGNING_KEYS_VERSION_SQL,
};
use crate::model::{APPLIED_MIGRATIONS_SQL, DatabaseStatus, migration_status};
use crate::throttle::{FailureState, ThrottlePolicy};
use crate::tx::Tx;
use crate::{
    ADMIN_ROLE, AuditEvent, AuditFilter, AuditRecord, Credentials, Email, NewSession, NewSigningKey, NewUser, Revoked,
    Role, Roles, Rotation, SessionInfo, SigningKeysVersion, StoreError, StoredSigningKey, User, UserStatus, Username,
};

/// The `LISTEN`/`NOTIFY` channel on which revocations are announced (empty payload: listeners
/// read `revocations` after their cursor).
pub const REVOCATION_CHANNEL: &str = "keycard_revocations";

/// Advisory lock key serialising revocation writes (`"keycard"` in ASCII).
const REVOCATION_LOCK: i64 = 0x006b_6579_6361_7264;

/// Migrations for PostgreSQL, embedded in the binary.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The columns of a [`User`], roles folded in with one correlated subquery.
macro_rules! user_select {
    ($extra:literal, $where:literal) => {
        concat!(
            "SELECT id, username, email, status, created_at, ",
            "(SELECT string_agg(role, ',' ORDER BY role) FROM user_roles WHERE user_id = users.id) AS roles",
            $extra,
            " FROM users WHERE ",
            $where
        )
    };
}

/// Accounts, sessions and revocations on PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgStore {
    pub(crate) pool: PgPool,
}

impl PgStore {
    /// Connects to `url` (`postgres://…`; libpq-style parameters such as `sslmode` and
    /// `options[search_path]` are honoured) and applies pending migrations (sqlx takes an advisory
    /// lock, so instances starting together migrate once). Acquiring a connection gives up after
    /// `timeout`.
    pub async fn connect(url: &str, max_connections: u32, timeout: Duration) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?.application_name("keycard");
        reachable_within(&options, timeout).await?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(2))
            .min_connections(1)
            // Requests are bounded by the store's own time limit; this bound is for start-up
            // (migrations), once `reachable_within` has seen the database answer.
            .acquire_timeout(timeout.max(Duration::from_secs(30)))
            // A safety net under `Tx`: a connection sqlx believes inside a transaction is
            // closed, never handed out again.
            .after_release(|conn, _| Box::pin(async move { Ok(!conn.is_in_transaction()) }))
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    /// See [`crate::Store::inspect`]: one connection (within `timeout`), reads only.
    pub async fn inspect(url: &str, timeout: Duration) -> Result<DatabaseStatus, StoreError> {
        let options = PgConnectOptions::from_str(url)?.application_name("keycard config check");
        let known: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
        let mut conn = match tokio::time::timeout(timeout, PgConnection::connect_with(&options)).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) if crate::error::is_transient(&e) => {
                return Err(StoreError::Unreachable { waited: timeout, source: Some(e) });
            }
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => return Err(StoreError::Unreachable { waited: timeout, source: None }),
        };
        let table: Option<String> =
            sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text").fetch_one(&mut conn).await?;
        let applied: Vec<(i64, bool)> = match table {
            Some(_) => sqlx::query_as(APPLIED_MIGRATIONS_SQL).fetch_all(&mut conn).await?,
            None => Vec::new(),
        };
        let _ = conn.close().await;
        Ok(migration_status(&known, &applied))
    }

    /// The pool, for `LISTEN`.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// How the connection pool is used right now.
    pub fn pool_stats(&self) -> crate::PoolStats {
        crate::PoolStats::of(&self.pool)
    }

    /// Starts a transaction.
    pub(crate) async fn begin(&self) -> Result<Tx<Postgres>, StoreError> {
        Tx::begin(&self.pool, "BEGIN").await
    }

    /// See [`crate::Store::check_writes`]: rewrites the one row of `write_probe`.
    pub async fn probe_writes(&self, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE write_probe SET written_at = $1 WHERE id = 1").bind(now).execute(&self.pool).await?;
        Ok(())
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// See [`crate::Store::create_user`].
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

    /// See [`crate::Store::user_exists`].
    pub async fn user_exists(&self, username: &Username) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE username_key = $1")
            .bind(username.key())
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
    }

    /// See [`crate::Store::find_credentials`].
    #[instrument(skip_all)]
    pub async fn find_credentials(&self, username: &Username) -> Result<Option<Credentials>, StoreError> {
        let row = sqlx::query(user_select!(", password_hash", "username_key = $1"))
            .bind(username.key())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(Credentials { password_hash: row.try_get("password_hash")?, user: user_from_row(&row)? }))
    }

    /// See [`crate::Store::get_user`].
    #[instrument(skip_all)]
    pub async fn get_user(&self, username: &Username) -> Result<Option<User>, StoreError> {
        let row =
            sqlx::query(user_select!("", "username_key = $1")).bind(username.key()).fetch_optional(&self.pool).await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// See [`crate::Store::get_user_by_id`].
    pub async fn get_user_by_id(&self, id: i64) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(user_select!("", "id = $1")).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// See [`crate::Store::list_users`].
    #[instrument(skip_all)]
    pub async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query(user_select!("", "TRUE ORDER BY id")).fetch_all(&self.pool).await?;
        rows.iter().map(user_from_row).collect()
    }

    /// See [`crate::Store::grant_role`].
    #[instrument(skip_all, fields(role = %role))]
    pub async fn grant_role(&self, username: &Username, role: &Role, now: i64) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let result = async {
            let id = touch_user(tx.conn(), username, now).await?;
            let added = insert_role(tx.conn(), id, role, now).await?;
            // The account's row is locked (touch_user): concurrent grants to it count one at a time.
            let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM user_roles WHERE user_id = $1")
                .bind(id)
                .fetch_one(tx.conn())
                .await?;
            if added && usize::try_from(count).unwrap_or(usize::MAX) > Roles::MAX {
                return Err(StoreError::TooManyRoles);
            }
            Ok(added)
        }
        .await;
        tx.finish(result).await
    }

    /// See [`crate::Store::create_session`].
    #[instrument(skip_all, fields(sid = %session.id))]
    pub async fn create_session(&self, session: &NewSession) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (id, user_id, refresh_jti, created_at, last_used_at, expires_at, client_addr, user_agent)
             VALUES ($1, $2, $3, $4, $4, $5, $6, $7)",
        )
        .bind(session.id)
        .bind(session.user_id)
        .bind(session.refresh_jti)
        .bind(session.created_at)
        .bind(session.expires_at)
        .bind(session.client_addr.as_deref())
        .bind(session.user_agent.as_deref())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// See [`crate::Store::rotate_refresh`]. Under READ COMMITTED, a second `UPDATE` of the same
    /// row waits for the first to commit and then re-checks `refresh_jti` against the new row:
    /// of concurrent calls with the same `old_jti`, on any number of instances, at most one wins.
    #[instrument(skip_all, fields(sid = %sid))]
    pub async fn rotate_refresh(
        &self,
        sid: Uuid,
        old_jti: Uuid,
        new_jti: Uuid,
        now: i64,
        expires_at: i64,
    ) -> Result<Rotation, StoreError> {
        let rotated = sqlx::query(
            "UPDATE sessions SET refresh_jti = $1, last_used_at = $2, expires_at = $3
             FROM users
             WHERE sessions.id = $4 AND sessions.refresh_jti = $5 AND sessions.revoked_at IS NULL
               AND users.id = sessions.user_id
             RETURNING users.id, users.username, users.email, users.status, users.created_at,
                 (SELECT string_agg(role, ',' ORDER BY role) FROM user_roles WHERE user_roles.user_id = users.id)
                     AS roles",
        )
        .bind(new_jti)
        .bind(now)
        .bind(expires_at)
        .bind(sid)
        .bind(old_jti)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = rotated {
            return Ok(Rotation::Rotated(user_from_row(&row)?));
        }
        let row = sqlx::query("SELECT user_id, revoked_at FROM sessions WHERE id = $1")
            .bind(sid)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(Rotation::Unknown) };
        let revoked_at: Option<i64> = row.try_get("revoked_at")?;
        if revoked_at.is_some() {
            return Ok(Rotation::Revoked);
        }
        Ok(Rotation::Reused { user_id: row.try_get("user_id")? })
    }

    /// See [`crate::Store::revoke_session`].
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
            lock_revocations(tx.conn()).await?;
            sqlx::query(
                "UPDATE sessions SET revoked_at = $2, revoked_reason = $3 WHERE id = $1 AND revoked_at IS NULL",
            )
            .bind(sid)
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
            "SELECT seq, id, expires_at FROM revocations WHERE seq > $1 AND expires_at > $2 ORDER BY seq LIMIT $3",
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

    /// See [`crate::Store::purge_expired`].
    pub async fn purge_expired(&self, now: i64) -> Result<u64, StoreError> {
        let revocations =
            sqlx::query("DELETE FROM revocations WHERE expires_at <= $1").bind(now).execute(&self.pool).await?;
        let sessions = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1").bind(now).execute(&self.pool).await?;
        Ok(revocations.rows_affected() + sessions.rows_affected())
    }

    /// See [`crate::Store::user_sessions`].
    pub async fn user_sessions(&self, user_id: i64, now: i64) -> Result<Vec<SessionInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, created_at, last_used_at, expires_at, client_addr, user_agent FROM sessions
             WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 ORDER BY created_at DESC, id DESC",
        )
        .bind(user_id)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(SessionInfo {
                    id: row.try_get("id")?,
                    created_at: row.try_get("created_at")?,
                    last_used_at: row.try_get("last_used_at")?,
                    expires_at: row.try_get("expires_at")?,
                    client_addr: row.try_get("client_addr")?,
                    user_agent: row.try_get("user_agent")?,
                })
            })
            .collect()
    }

    /// See [`crate::Store::revoke_user_sessions`].
    #[instrument(skip_all, fields(user_id, reason))]
    pub async fn revoke_user_sessions(
        &self,
        user_id: i64,
        except: Option<Uuid>,
        now: i64,
        reason: &str,
    ) -> Result<Revoked, StoreError> {
        let mut tx = self.begin().await?;
        let result = async {
            lock_revocations(tx.conn()).await?;
            revoke_sessions_in(tx.conn(), user_id, except, now, reason).await
        }
        .await;
        tx.finish(result).await
    }

    /// See [`crate::Store::revoke_own_session`].
    pub async fn revoke_own_session(
        &self,
        user_id: i64,
        sid: Uuid,
        now: i64,
        reason: &str,
    ) -> Result<Option<Revoked>, StoreError> {
        let mut tx = self.begin().await?;
        let result = async {
            lock_revocations(tx.conn()).await?;
            let expires_at: Option<i64> = sqlx::query_scalar(
                "UPDATE sessions SET revoked_at = $4, revoked_reason = $5
                 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > $3
                 RETURNING expires_at",
            )
            .bind(sid)
            .bind(user_id)
            .bind(now)
            .bind(now)
            .bind(reason)
            .fetch_optional(tx.conn())
            .await?;
            let Some(expires_at) = expires_at else { return Ok(None) };
            let until = expires_at.saturating_add(SESSION_REVOCATION_MARGIN);
            insert_revocation(tx.conn(), sid, until, now).await?;
            Ok(Some(vec![(sid, until)]))
        }
        .await;
        tx.finish(result).await
    }

    /// See [`crate::Store::change_password`].
    pub async fn change_password(
        &self,
        user_id: i64,
        password_hash: &str,
        keep_session: Uuid,
        now: i64,
    ) -> Result<Revoked, StoreError> {
        let mut tx = self.begin().await?;
        let result = async {
            lock_revocations(tx.conn()).await?;
            sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
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

    /// See [`crate::Store::set_status`].
    #[instrument(skip_all, fields(status = status.as_str()))]
    pub async fn set_status(
        &self,
        username: &Username,
        status: UserStatus,
        now: i64,
    ) -> Result<(User, Revoked), StoreError> {
        let mut tx = self.begin().await?;
        let result = async {
            lock_revocations(tx.conn()).await?;
            if status == UserStatus::Disabled {
                ensure_not_last_admin(tx.conn(), username).await?;
            }
            let id: Option<i64> = sqlx::query_scalar(
                "UPDATE users SET status = $2, updated_at = $3 WHERE username_key = $1 RETURNING id",
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

    /// See [`crate::Store::set_roles`].
    pub async fn set_roles(&self, username: &Username, roles: &Roles, now: i64) -> Result<User, StoreError> {
        let mut tx = self.begin().await?;
        let result = async {
            if !roles.contains(ADMIN_ROLE) {
                ensure_not_last_admin(tx.conn(), username).await?;
            }
            let id = touch_user(tx.conn(), username, now).await?;
            sqlx::query("DELETE FROM user_roles WHERE user_id = $1").bind(id).execute(tx.conn()).await?;
            for role in roles {
                insert_role(tx.conn(), id, role, now).await?;
            }
            Ok(id)
        }
        .await;
        let id = tx.finish(result).await?;
        self.get_user_by_id(id).await?.ok_or(StoreError::NotFound)
    }

    /// See [`crate::Store::record_audit_batch`].
    pub async fn record_audit_batch(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        let events: Vec<&AuditEvent> = events.iter().filter(|e| e.kind.is_some()).collect();
        for chunk in events.chunks(512) {
            let mut query = sqlx::QueryBuilder::<Postgres>::new(
                "INSERT INTO audit_events (at, kind, username, client_addr, user_agent, session_id, detail) ",
            );
            query.push_values(chunk, |mut row, event| {
                row.push_bind(event.at)
                    .push_bind(event.kind.map(|k| k.as_str()))
                    .push_bind(event.username.clone())
                    .push_bind(event.client_addr.clone())
                    .push_bind(event.user_agent.clone())
                    .push_bind(event.session_id.clone())
                    .push_bind(event.detail.as_ref().map(|d| d.to_string()))
                    .push_unseparated("::jsonb");
            });
            query.build().execute(&self.pool).await?;
        }
        Ok(())
    }

    /// See [`crate::Store::audit_events`].
    pub async fn audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        let limit = filter.limit.unwrap_or(100).clamp(1, 1000);
        let rows = sqlx::query(
            "SELECT id, at, kind, username, client_addr, user_agent, session_id, detail::text AS detail
             FROM audit_events
             WHERE ($1::text IS NULL OR lower(username) = lower($1))
               AND ($2::text IS NULL OR kind = $2)
               AND ($3::bigint IS NULL OR at >= $3)
             ORDER BY id DESC LIMIT $4",
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

    /// See [`crate::Store::login_locked_until`].
    pub async fn login_locked_until(&self, username_key: &str, now: i64) -> Result<Option<i64>, StoreError> {
        let until: Option<i64> = sqlx::query_scalar("SELECT locked_until FROM login_failures WHERE username_key = $1")
            .bind(username_key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(until.filter(|until| *until > now))
    }

    /// See [`crate::Store::record_login_failure`].
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

    /// See [`crate::Store::clear_login_failures`].
    pub async fn clear_login_failures(&self, username_key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_failures WHERE username_key = $1")
            .bind(username_key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// See [`crate::Store::revocation_cursor`].
    pub async fn revocation_cursor(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0)::bigint FROM revocations").fetch_one(&self.pool).await?)
    }

    /// See [`crate::Store::revocations_after`].
    pub async fn revocations_after(&self, cursor: i64) -> Result<(Revoked, i64), StoreError> {
        let rows = sqlx::query("SELECT seq, id, expires_at FROM revocations WHERE seq > $1 ORDER BY seq")
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

    /// See [`crate::Store::rotate_signing_key`]: in one transaction under the signing-key
    /// advisory lock (so two rotations at once serialise instead of the second one failing on
    /// the unique index), retires the active key of the algorithm and inserts `key` as the
    /// active one.
    #[instrument(skip_all, fields(kid = key.kid, algorithm = key.algorithm))]
    pub async fn rotate_signing_key(&self, key: &NewSigningKey<'_>) -> Result<Vec<String>, StoreError> {
        let mut tx = self.begin().await?;
        let result = async {
            lock_signing_keys(tx.conn()).await?;
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
            lock_signing_keys(tx.conn()).await?;
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
        // Two statements, no transaction: an insert racing another waits for it on the unique
        // index and then does nothing; the select (a fresh snapshot under READ COMMITTED) sees
        // whichever key won.
        let mut conn = self.pool.acquire().await?;
        insert_signing_key(&mut conn, INSERT_ACTIVE_KEY_IF_NONE_SQL, key).await?;
        let row = sqlx::query(ACTIVE_SIGNING_KEY_SQL).bind(key.algorithm).fetch_one(&mut *conn).await?;
        signing_key_from_row(&row)
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

/// How long to wait between two connection attempts at start-up.
const CONNECT_RETRY: Duration = Duration::from_millis(250);

/// Fails fast, with the cause, when no connection can be made within `timeout`: connection
/// attempts are retried until then (a server starting alongside keycard), then
/// [`StoreError::Unreachable`]. A refusal by a server that answers (a wrong password, no such
/// database) is returned at once.
async fn reachable_within(options: &PgConnectOptions, timeout: Duration) -> Result<(), StoreError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = None;
    loop {
        match tokio::time::timeout_at(deadline, PgConnection::connect_with(options)).await {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
                return Ok(());
            }
            Ok(Err(e)) if crate::error::is_transient(&e) => {
                tracing::debug!(error = %e, "the database is not reachable yet");
                last = Some(e);
            }
            Ok(Err(e)) => return Err(e.into()),
            Err(_elapsed) => break,
        }
        if tokio::time::Instant::now() + CONNECT_RETRY >= deadline {
            break;
        }
        tokio::time::sleep(CONNECT_RETRY).await;
    }
    Err(StoreError::Unreachable { waited: timeout, source: last })
}

/// The first statement of a transaction that will record revocations: takes the revocation lock
/// (so `seq` order is commit order) and queues the notification (sent at commit, dropped on
/// rollback).
async fn lock_revocations(conn: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1), pg_notify($2, '')")
        .bind(REVOCATION_LOCK)
        .bind(REVOCATION_CHANNEL)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Advisory lock key serialising changes that may remove an admin (`"kcadmin"` in ASCII).
const ADMIN_LOCK: i64 = 0x006b_6361_646d_696e;

/// [`StoreError::LastAdmin`] if `username` is an active admin and no other active admin exists.
/// Takes [`ADMIN_LOCK`] first (held to the end of the transaction) and counts in a later statement, whose
/// snapshot sees every change committed before the lock was granted: of two admins removing
/// each other at once, the second sees the first's change and is refused.
async fn ensure_not_last_admin(conn: &mut PgConnection, username: &Username) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(ADMIN_LOCK).execute(&mut *conn).await?;
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

/// Marks the account changed at `now` inside `tx` (locking its row); its id, or
/// [`StoreError::NotFound`].
async fn touch_user(conn: &mut PgConnection, username: &Username, now: i64) -> Result<i64, StoreError> {
    let id: Option<i64> = sqlx::query_scalar("UPDATE users SET updated_at = $2 WHERE username_key = $1 RETURNING id")
        .bind(username.key())
        .bind(now)
        .fetch_optional(&mut *conn)
        .await?;
    id.ok_or(StoreError::NotFound)
}

/// Inserts one account with its roles, inside the caller's transaction.
async fn insert_user(conn: &mut PgConnection, new: &NewUser<'_>) -> Result<i64, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO users (username, username_key, email, password_hash, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
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

/// Grants `role` inside `tx`; whether it was new.
async fn insert_role(conn: &mut PgConnection, user_id: i64, role: &Role, now: i64) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO user_roles (user_id, role, granted_at) VALUES ($1, $2, $3) ON CONFLICT (user_id, role) DO NOTHING",
    )
    .bind(user_id)
    .bind(role.as_str())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a failed login for `username_key` under `policy` inside a transaction on `conn`.
async fn record_failure_in(
    conn: &mut PgConnection,
    username_key: &str,
    policy: &ThrottlePolicy,
    now: i64,
) -> Result<FailureState, StoreError> {
    // A row lock cannot cover a row that does not exist yet; an advisory lock on the name can.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 7))").bind(username_key).execute(&mut *conn).await?;
    let row = sqlx::query(
        "SELECT consecutive, last_failure_at, recent, locked_until FROM login_failures WHERE username_key = $1",
    )
    .bind(username_key)
    .fetch_optional(&mut *conn)
    .await?;
    let previous = row.as_ref().map(FailureState::from_row).transpose()?;
    let state = policy.after_failure(previous, now);
    let recent = state.recent_text();
    sqlx::query(
        "INSERT INTO login_failures (username_key, consecutive, last_failure_at, recent, locked_until)
         VALUES ($1, $2, $3, $4, $5)
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
async fn insert_revocation(conn: &mut PgConnection, id: Uuid, until: i64, now: i64) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO revocations (id, expires_at, revoked_at) VALUES ($1, $2, $3)
         ON CONFLICT (id) DO UPDATE SET expires_at = GREATEST(revocations.expires_at, excluded.expires_at)",
    )
    .bind(id)
    .bind(until)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Ends every live session of `user_id` but `except` inside `tx`, recording their revocations.
async fn revoke_sessions_in(
    conn: &mut PgConnection,
    user_id: i64,
    except: Option<Uuid>,
    now: i64,
    reason: &str,
) -> Result<Revoked, StoreError> {
    let rows = sqlx::query(
        "UPDATE sessions SET revoked_at = $2, revoked_reason = $3
         WHERE user_id = $1 AND revoked_at IS NULL AND ($4::uuid IS NULL OR id <> $4)
         RETURNING id, expires_at",
    )
    .bind(user_id)
    .bind(now)
    .bind(reason)
    .bind(except)
    .fetch_all(&mut *conn)
    .await?;
    let mut revoked = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: Uuid = row.try_get("id")?;
        let until = row.try_get::<i64, _>("expires_at")?.max(now).saturating_add(SESSION_REVOCATION_MARGIN);
        insert_revocation(conn, id, until, now).await?;
        revoked.push((id, until));
    }
    Ok(revoked)
}

fn revocation_from_row(row: &PgRow) -> Result<(Uuid, i64), StoreError> {
    Ok((row.try_get("id")?, row.try_get("expires_at")?))
}

fn user_from_row(row: &PgRow) -> Result<User, StoreError> {
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

/// Advisory lock key serialising signing-key rotations (`"kcsignk"` in ASCII).
const SIGNING_KEY_LOCK: i64 = 0x006b_6373_6967_6e6b;

/// The first statement of a rotation: takes the signing-key lock until the transaction ends.
async fn lock_signing_keys(conn: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(SIGNING_KEY_LOCK).execute(&mut *conn).await?;
    Ok(())
}

/// Runs `sql` (one of the signing-key inserts) for `key` on `conn`.
async fn insert_signing_key(
    conn: &mut PgConnection,
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

fn signing_key_from_row(row: &PgRow) -> Result<StoredSigningKey, StoreError> {
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
