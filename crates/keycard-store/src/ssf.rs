//! Shared Signals (SSF 1.0) streams and the events they deliver.
//!
//! An event is a session revocation: a row of `revocations` whose id is a session's (joined with
//! `sessions` and `users`), written in the same transaction as the revocation itself, so an event
//! exists exactly when the revocation does, survives restarts and is shared by every instance on
//! one PostgreSQL database. `revocations.seq` is commit order on both backends (SQLite has one
//! writer; PostgreSQL's revocation writers serialise on an advisory lock), so it orders events.
//! Events are kept until no token of the session can still be valid (the revocation row's
//! `expires_at`), then purged with the revocation. A stream remembers what its receiver has
//! acknowledged: everything up to `acked_through`, and the acknowledgements above it.
//!
//! The SQL is the same on both backends (`$n` placeholders, which SQLite accepts, and ids as
//! text); [`ssf_backend!`] writes the methods once for each.

use uuid::Uuid;

use crate::StoreError;
use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;

/// The states of a stream (SSF 1.0 §8.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamStatus {
    /// Events are delivered.
    Enabled,
    /// Events are held and delivered once the stream is enabled again.
    Paused,
    /// Events are neither delivered nor held.
    Disabled,
}

impl StreamStatus {
    /// The SSF name: `enabled`, `paused`, `disabled`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "enabled",
            Self::Paused => "paused",
            Self::Disabled => "disabled",
        }
    }

    /// The status named `s` (SSF's names), if any.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "enabled" => Some(Self::Enabled),
            "paused" => Some(Self::Paused),
            "disabled" => Some(Self::Disabled),
            _ => None,
        }
    }
}

/// A stream as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    /// The stream_id.
    pub id: Uuid,
    /// Hex SHA-256 of the credential of the receiver that owns it.
    pub receiver: String,
    /// The receiver's description.
    pub description: Option<String>,
    /// Event type URIs the receiver asked for.
    pub events_requested: Vec<String>,
    /// Delivering, holding or dropping events.
    pub status: StreamStatus,
    /// Why the status was last set, if the setter said.
    pub status_reason: Option<String>,
    /// Seconds since the Unix epoch.
    pub created_at: i64,
    /// Seconds since the Unix epoch.
    pub updated_at: i64,
}

/// A stream being made.
#[derive(Debug, Clone)]
pub struct NewStream<'a> {
    /// The owner: hex SHA-256 of the receiver's credential.
    pub receiver: &'a str,
    /// The receiver's description.
    pub description: Option<&'a str>,
    /// Event type URIs asked for.
    pub events_requested: &'a [String],
    /// At most this many streams per receiver; [`StoreError::Conflict`] beyond.
    pub max_per_receiver: i64,
    /// Now, seconds since the Unix epoch.
    pub now: i64,
}

/// One session revocation, as a stream delivers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEvent {
    /// The revocation's sequence number: the event's identity (the SET's `jti` is made of it).
    pub seq: i64,
    /// The ended session (`sid`).
    pub session: Uuid,
    /// The account's username (the tokens' `sub`).
    pub username: String,
    /// When the session ended, seconds since the Unix epoch.
    pub revoked_at: i64,
    /// Why: `logout`, `ended by owner`, `password change`, `account disabled`, `refresh token
    /// reuse`, ...
    pub reason: Option<String>,
}

/// A verification event (SSF 1.0 §8.1.4) waiting for its receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationEvent {
    /// The SET's jti.
    pub id: Uuid,
    /// The `state` the receiver sent, echoed back.
    pub state: Option<String>,
    /// Seconds since the Unix epoch.
    pub created_at: i64,
}

/// What one poll hands out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pending {
    /// Verification events, oldest first.
    pub verifications: Vec<VerificationEvent>,
    /// Session revocations, in commit order.
    pub sessions: Vec<SessionEvent>,
    /// Whether more were waiting than `max` allowed.
    pub more: bool,
}

impl Pending {
    /// Nothing to deliver.
    pub fn is_empty(&self) -> bool {
        self.verifications.is_empty() && self.sessions.is_empty()
    }
}

/// `SELECT` of every stream column, then `$where`.
macro_rules! stream_select {
    ($where:literal) => {
        concat!(
            "SELECT id, receiver, description, events_requested, status, status_reason, created_at, updated_at
             FROM ssf_streams WHERE ",
            $where
        )
    };
}

/// Acknowledgements inserted by one statement (2 parameters each, well under both backends'
/// limits).
const ACK_ROWS_PER_STATEMENT: usize = 500;

/// Session revocations of `$1` not yet acknowledged, in `seq` order, at most `$2`.
const PENDING_SESSIONS_SQL: &str = "SELECT r.seq, CAST(s.id AS TEXT) AS sid, u.username, r.revoked_at, s.revoked_reason
     FROM revocations r
     JOIN sessions s ON s.id = r.id
     JOIN users u ON u.id = s.user_id
     JOIN ssf_streams st ON st.id = $1
     WHERE r.seq > st.acked_through
       AND NOT EXISTS (SELECT 1 FROM ssf_acks a WHERE a.stream_id = $1 AND a.seq = r.seq)
     ORDER BY r.seq
     LIMIT $2";

/// Moves `acked_through` of stream `$1` up to just below its oldest unacknowledged event (or to
/// the newest revocation when none is left), then forgets the acknowledgements below it.
const COMPACT_ACKS_SQL: &str = "UPDATE ssf_streams SET acked_through = COALESCE(
        (SELECT MIN(r.seq) - 1 FROM revocations r JOIN sessions s ON s.id = r.id
          WHERE r.seq > ssf_streams.acked_through
            AND NOT EXISTS (SELECT 1 FROM ssf_acks a WHERE a.stream_id = $1 AND a.seq = r.seq)),
        (SELECT MAX(seq) FROM revocations),
        ssf_streams.acked_through)
     WHERE id = $1";

fn stream_from_row<R>(row: &R) -> Result<Stream, StoreError>
where
    R: sqlx::Row,
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let id: String = row.try_get("id")?;
    let events: String = row.try_get("events_requested")?;
    let status: String = row.try_get("status")?;
    Ok(Stream {
        id: Uuid::parse_str(&id).map_err(|_| StoreError::Corrupt("ssf_streams.id is not a UUID"))?,
        receiver: row.try_get("receiver")?,
        description: row.try_get("description")?,
        events_requested: serde_json::from_str(&events)
            .map_err(|_| StoreError::Corrupt("ssf_streams.events_requested is not a JSON array of strings"))?,
        status: StreamStatus::parse(&status).ok_or(StoreError::Corrupt("ssf_streams.status is unknown"))?,
        status_reason: row.try_get("status_reason")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn session_event_from_row<R>(row: &R) -> Result<SessionEvent, StoreError>
where
    R: sqlx::Row,
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let sid: String = row.try_get("sid")?;
    Ok(SessionEvent {
        seq: row.try_get("seq")?,
        session: Uuid::parse_str(&sid).map_err(|_| StoreError::Corrupt("sessions.id is not a UUID"))?,
        username: row.try_get("username")?,
        revoked_at: row.try_get("revoked_at")?,
        reason: row.try_get("revoked_reason")?,
    })
}

/// The same SSF methods for each backend: the SQL is shared.
macro_rules! ssf_backend {
    ($store:ty, $db:ty) => {
        impl $store {
            /// See [`crate::Store::create_stream`].
            pub async fn create_stream(&self, new: &NewStream<'_>) -> Result<Stream, StoreError> {
                let mut tx = self.begin().await?;
                let result = async {
                    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ssf_streams WHERE receiver = $1")
                        .bind(new.receiver)
                        .fetch_one(tx.conn())
                        .await?;
                    if count >= new.max_per_receiver {
                        return Err(StoreError::Conflict);
                    }
                    let id = Uuid::new_v4();
                    let events = serde_json::to_string(new.events_requested)
                        .map_err(|_| StoreError::Corrupt("events_requested"))?;
                    sqlx::query(
                        "INSERT INTO ssf_streams (id, receiver, description, events_requested, status,
                             acked_through, created_at, updated_at)
                         VALUES ($1, $2, $3, $4, 'enabled', 0, $5, $5)",
                    )
                    .bind(id.to_string())
                    .bind(new.receiver)
                    .bind(new.description)
                    .bind(events)
                    .bind(new.now)
                    .execute(tx.conn())
                    .await?;
                    Ok(Stream {
                        id,
                        receiver: new.receiver.to_owned(),
                        description: new.description.map(str::to_owned),
                        events_requested: new.events_requested.to_vec(),
                        status: StreamStatus::Enabled,
                        status_reason: None,
                        created_at: new.now,
                        updated_at: new.now,
                    })
                }
                .await;
                tx.finish(result).await
            }

            /// See [`crate::Store::streams`].
            pub async fn streams(&self, receiver: &str) -> Result<Vec<Stream>, StoreError> {
                let rows = sqlx::query(stream_select!("receiver = $1 ORDER BY created_at, id"))
                    .bind(receiver)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(stream_from_row).collect()
            }

            /// See [`crate::Store::update_stream`].
            pub async fn update_stream(&self, stream: &Stream, now: i64) -> Result<bool, StoreError> {
                let events = serde_json::to_string(&stream.events_requested)
                    .map_err(|_| StoreError::Corrupt("events_requested"))?;
                let done = sqlx::query(
                    "UPDATE ssf_streams SET description = $3, events_requested = $4, updated_at = $5
                     WHERE id = $1 AND receiver = $2",
                )
                .bind(stream.id.to_string())
                .bind(&stream.receiver)
                .bind(stream.description.as_deref())
                .bind(events)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            /// See [`crate::Store::delete_stream`].
            pub async fn delete_stream(&self, receiver: &str, id: Uuid) -> Result<bool, StoreError> {
                let done = sqlx::query("DELETE FROM ssf_streams WHERE id = $1 AND receiver = $2")
                    .bind(id.to_string())
                    .bind(receiver)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            /// See [`crate::Store::set_stream_status`].
            pub async fn set_stream_status(
                &self,
                receiver: &str,
                id: Uuid,
                status: StreamStatus,
                reason: Option<&str>,
                now: i64,
            ) -> Result<bool, StoreError> {
                let mut tx = self.begin().await?;
                let result = async {
                    // Leaving `disabled`: what happened meanwhile was dropped, not held.
                    let done = sqlx::query(
                        "UPDATE ssf_streams SET
                             acked_through = CASE WHEN status = 'disabled' AND $3 <> 'disabled'
                                 THEN COALESCE((SELECT MAX(seq) FROM revocations), acked_through)
                                 ELSE acked_through END,
                             status = $3, status_reason = $4, updated_at = $5
                         WHERE id = $1 AND receiver = $2",
                    )
                    .bind(id.to_string())
                    .bind(receiver)
                    .bind(status.as_str())
                    .bind(reason)
                    .bind(now)
                    .execute(tx.conn())
                    .await?;
                    if done.rows_affected() == 1 && status != StreamStatus::Paused {
                        sqlx::query(
                            "DELETE FROM ssf_acks WHERE stream_id = $1
                               AND seq <= (SELECT acked_through FROM ssf_streams WHERE id = $1)",
                        )
                        .bind(id.to_string())
                        .execute(tx.conn())
                        .await?;
                    }
                    Ok(done.rows_affected() == 1)
                }
                .await;
                tx.finish(result).await
            }

            /// See [`crate::Store::add_verification`].
            pub async fn add_verification(
                &self,
                receiver: &str,
                stream: Uuid,
                state: Option<&str>,
                now: i64,
            ) -> Result<Option<Uuid>, StoreError> {
                let id = Uuid::new_v4();
                let done = sqlx::query(
                    "INSERT INTO ssf_verifications (id, stream_id, state, created_at)
                     SELECT $1, id, $3, $4 FROM ssf_streams WHERE id = $2 AND receiver = $5",
                )
                .bind(id.to_string())
                .bind(stream.to_string())
                .bind(state)
                .bind(now)
                .bind(receiver)
                .execute(&self.pool)
                .await?;
                Ok((done.rows_affected() == 1).then_some(id))
            }

            /// See [`crate::Store::acknowledge`].
            pub async fn acknowledge(
                &self,
                stream: Uuid,
                seqs: &[i64],
                verifications: &[Uuid],
            ) -> Result<(), StoreError> {
                if seqs.is_empty() && verifications.is_empty() {
                    return Ok(());
                }
                let id = stream.to_string();
                let mut tx = self.begin().await?;
                let result = async {
                    // Many rows a statement (a poll may acknowledge thousands); those at or
                    // below `acked_through` are deleted by the compaction below.
                    for chunk in seqs.chunks(ACK_ROWS_PER_STATEMENT) {
                        let mut insert = sqlx::QueryBuilder::<$db>::new("INSERT INTO ssf_acks (stream_id, seq) ");
                        insert.push_values(chunk, |mut row, seq| {
                            row.push_bind(id.clone()).push_bind(*seq);
                        });
                        insert.push(" ON CONFLICT DO NOTHING");
                        insert.build().execute(tx.conn()).await?;
                    }
                    for verification in verifications {
                        sqlx::query("DELETE FROM ssf_verifications WHERE id = $1 AND stream_id = $2")
                            .bind(verification.to_string())
                            .bind(&id)
                            .execute(tx.conn())
                            .await?;
                    }
                    if !seqs.is_empty() {
                        sqlx::query(COMPACT_ACKS_SQL).bind(&id).execute(tx.conn()).await?;
                        sqlx::query(
                            "DELETE FROM ssf_acks WHERE stream_id = $1
                               AND seq <= (SELECT acked_through FROM ssf_streams WHERE id = $1)",
                        )
                        .bind(&id)
                        .execute(tx.conn())
                        .await?;
                    }
                    Ok(())
                }
                .await;
                tx.finish(result).await
            }

            /// See [`crate::Store::pending_events`].
            pub async fn pending_events(&self, stream: Uuid, max: i64) -> Result<Pending, StoreError> {
                use sqlx::Row;
                let id = stream.to_string();
                let max = max.max(0);
                let rows = sqlx::query(
                    "SELECT id, state, created_at FROM ssf_verifications WHERE stream_id = $1
                     ORDER BY created_at, id LIMIT $2",
                )
                .bind(&id)
                .bind(max + 1)
                .fetch_all(&self.pool)
                .await?;
                let mut verifications = Vec::with_capacity(rows.len());
                for row in &rows {
                    let vid: String = row.try_get("id")?;
                    verifications.push(VerificationEvent {
                        id: Uuid::parse_str(&vid).map_err(|_| StoreError::Corrupt("ssf_verifications.id"))?,
                        state: row.try_get("state")?,
                        created_at: row.try_get("created_at")?,
                    });
                }
                let max_len = usize::try_from(max).unwrap_or(usize::MAX);
                if verifications.len() > max_len {
                    verifications.truncate(max_len);
                    return Ok(Pending { verifications, sessions: Vec::new(), more: true });
                }
                let room = max_len - verifications.len();
                let rows = sqlx::query(PENDING_SESSIONS_SQL)
                    .bind(&id)
                    .bind(i64::try_from(room).unwrap_or(i64::MAX).saturating_add(1))
                    .fetch_all(&self.pool)
                    .await?;
                let mut sessions = rows.iter().map(session_event_from_row).collect::<Result<Vec<_>, _>>()?;
                let more = sessions.len() > room;
                sessions.truncate(room);
                Ok(Pending { verifications, sessions, more })
            }

            /// See [`crate::Store::purge_ssf`].
            pub async fn purge_ssf(&self, verifications_before: i64) -> Result<u64, StoreError> {
                let verifications = sqlx::query("DELETE FROM ssf_verifications WHERE created_at < $1")
                    .bind(verifications_before)
                    .execute(&self.pool)
                    .await?;
                let acks = sqlx::query(
                    "DELETE FROM ssf_acks WHERE NOT EXISTS (SELECT 1 FROM revocations r WHERE r.seq = ssf_acks.seq)",
                )
                .execute(&self.pool)
                .await?;
                Ok(verifications.rows_affected() + acks.rows_affected())
            }
        }
    };
}

ssf_backend!(SqliteStore, sqlx::Sqlite);
ssf_backend!(PgStore, sqlx::Postgres);

impl SqliteStore {
    /// See [`crate::Store::current_refresh_jti`].
    pub async fn current_refresh_jti(&self, sid: Uuid, now: i64) -> Result<Option<Uuid>, StoreError> {
        let jti: Option<String> = sqlx::query_scalar(
            "SELECT refresh_jti FROM sessions WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2",
        )
        .bind(sid.to_string())
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        jti.map(|j| Uuid::parse_str(&j).map_err(|_| StoreError::Corrupt("sessions.refresh_jti is not a UUID")))
            .transpose()
    }
}

impl PgStore {
    /// See [`crate::Store::current_refresh_jti`].
    pub async fn current_refresh_jti(&self, sid: Uuid, now: i64) -> Result<Option<Uuid>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT refresh_jti FROM sessions WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2",
        )
        .bind(sid)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?)
    }
}
