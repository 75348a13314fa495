//! Several instances behind one address: how a revocation made by one reaches the others, and
//! login-failure counters kept in Redis.
//!
//! Every instance keeps the revocation list in memory (no database round trip when a token is
//! checked) and follows the `revocations` table by its `seq` cursor. It reads the table
//! - when woken: by PostgreSQL `NOTIFY keycard_revocations` (sent by the revoking transaction at
//!   commit), or, when Redis is configured, by a message on `<prefix>revocations` (published by the
//!   revoking instance after its commit);
//! - and every [`Settings::revocation_resync`] regardless, so a lost notification, a Redis outage or a
//!   revocation made by the CLI heals by itself.
//!
//! Redis is never trusted to be up: every call has a short time limit, a failure logs one warning
//! per outage and falls back to the database, and nothing fails open.
//!
//! [`Settings::revocation_resync`]: crate::Settings::revocation_resync

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use keycard_store::{Backend, FailureState, Store, ThrottlePolicy};
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Pause before reconnecting a lost `LISTEN` or subscription.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// Time limit of one Redis command or connection attempt.
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);

/// While Redis is down, requests skip it (going straight to the database) except for one probe
/// this often, so an outage does not add a timeout to every login.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// Optimistic update of one failure record: writes `ARGV[2]` (expiring after `ARGV[3]` seconds)
/// only if the key still holds `ARGV[1]` (`""`: absent). The policy itself stays in Rust.
const COMPARE_AND_SET: &str = r"
local current = redis.call('GET', KEYS[1])
if (current == false and ARGV[1] == '') or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
";

/// A Redis server shared by the instances.
pub struct Redis {
    client: redis::Client,
    manager: ConnectionManager,
    prefix: String,
    compare_and_set: redis::Script,
    up: AtomicBool,
    /// When the last probe of a down Redis started (milliseconds since `epoch`).
    last_probe_ms: std::sync::atomic::AtomicU64,
    epoch: std::time::Instant,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

/// Why a Redis call did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// The server answered with an error or the connection failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// No answer in time.
    #[error("redis did not answer within {REDIS_TIMEOUT:?}")]
    Timeout,
    /// The failure record kept changing under us.
    #[error("redis: failure record contended")]
    Contended,
    /// Redis was found down moments ago; not tried again yet.
    #[error("redis is down")]
    Down,
}

impl Redis {
    /// A client for `url` (`redis://[:password@]host[:port][/db]`), keys and channels under
    /// `prefix`. Connects lazily: keycard starts, on the database path, while Redis is down.
    pub fn new(url: &SecretString, prefix: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url.expose_secret())
            .map_err(|e| anyhow::anyhow!("invalid KEYCARD_REDIS_URL: {:?}", e.kind()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        Ok(Self {
            client,
            manager,
            prefix: prefix.to_owned(),
            compare_and_set: redis::Script::new(COMPARE_AND_SET),
            up: AtomicBool::new(true),
            last_probe_ms: std::sync::atomic::AtomicU64::new(0),
            epoch: std::time::Instant::now(),
        })
    }

    fn channel(&self) -> String {
        format!("{}revocations", self.prefix)
    }

    fn failure_key(&self, username_key: &str) -> String {
        format!("{}login_failures:{username_key}", self.prefix)
    }

    /// Runs `op` with the time limit, recording whether Redis is up (one log line per change).
    /// While it is down, only one call a [`PROBE_EVERY`] goes through; the others fail at once.
    async fn call<T>(
        &self,
        what: &'static str,
        op: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, RedisError> {
        if !self.is_up() {
            let now_ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
            let last = self.last_probe_ms.load(Ordering::Relaxed);
            let due = now_ms.saturating_sub(last) >= u64::try_from(PROBE_EVERY.as_millis()).unwrap_or(1000);
            if !due || self.last_probe_ms.compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed).is_err()
            {
                return Err(RedisError::Down);
            }
        }
        let result = tokio::time::timeout(REDIS_TIMEOUT * 2, op).await.unwrap_or(Err(RedisError::Timeout));
        match &result {
            Ok(_) => self.mark_up(),
            Err(e) => self.mark_down(what, e),
        }
        result
    }

    fn mark_up(&self) {
        if !self.up.swap(true, Ordering::Relaxed) {
            tracing::info!("redis is reachable again");
        }
    }

    fn mark_down(&self, what: &str, error: &dyn std::fmt::Display) {
        let now_ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_probe_ms.store(now_ms, Ordering::Relaxed);
        if self.up.swap(false, Ordering::Relaxed) {
            tracing::warn!(%error, operation = what, "redis is unreachable: continuing on the database alone");
        }
    }

    /// Whether the last Redis call succeeded.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Wakes every instance's revocation reader.
    pub async fn publish_revocation(&self) -> Result<(), RedisError> {
        let mut conn = self.manager.clone();
        let channel = self.channel();
        self.call("publish", async move { Ok(conn.publish::<_, _, ()>(channel, "").await?) }).await
    }

    /// Until when logins of this account name are locked, by the Redis record.
    pub async fn login_locked_until(&self, username_key: &str, now: i64) -> Result<Option<i64>, RedisError> {
        let mut conn = self.manager.clone();
        let key = self.failure_key(username_key);
        let value: Option<String> = self.call("get", async move { Ok(conn.get(key).await?) }).await?;
        Ok(value.and_then(|v| decode_state(&v)).map(|s| s.locked_until).filter(|until| *until > now))
    }

    /// Counts a failure atomically across instances (read, apply the policy, compare-and-set;
    /// retried when another instance wrote in between).
    pub async fn record_login_failure(
        &self,
        username_key: &str,
        policy: &ThrottlePolicy,
        now: i64,
    ) -> Result<FailureState, RedisError> {
        let key = self.failure_key(username_key);
        self.call("record failure", async {
            for _ in 0..16 {
                let mut conn = self.manager.clone();
                let old: Option<String> = conn.get(&key).await?;
                let previous = old.as_deref().and_then(decode_state);
                let state = policy.after_failure(previous, now);
                // Kept while it can still matter: the consecutive count, the hour window, the lock.
                let ttl = policy.forget_after.max(3600).max(state.locked_until.saturating_sub(now)).saturating_add(60);
                let written: i64 = self
                    .compare_and_set
                    .key(&key)
                    .arg(old.as_deref().unwrap_or(""))
                    .arg(encode_state(&state))
                    .arg(ttl)
                    .invoke_async(&mut conn)
                    .await?;
                if written == 1 {
                    return Ok(state);
                }
            }
            Err(RedisError::Contended)
        })
        .await
    }

    /// Forgets the failures of an account name.
    pub async fn clear_login_failures(&self, username_key: &str) -> Result<(), RedisError> {
        let mut conn = self.manager.clone();
        let key = self.failure_key(username_key);
        self.call("clear failures", async move { Ok(conn.del::<_, ()>(key).await?) }).await
    }

    /// Whether Redis answers `PING`.
    pub async fn ping(&self) -> Result<(), RedisError> {
        let mut conn = self.manager.clone();
        self.call("ping", async move { Ok(redis::cmd("PING").query_async::<()>(&mut conn).await?) }).await
    }
}

/// `consecutive;last_failure_at;locked_until;t1,t2,...`
fn encode_state(state: &FailureState) -> String {
    format!("{};{};{};{}", state.consecutive, state.last_failure_at, state.locked_until, state.recent_text())
}

fn decode_state(value: &str) -> Option<FailureState> {
    let mut parts = value.splitn(4, ';');
    let consecutive = parts.next()?.parse().ok()?;
    let last_failure_at = parts.next()?.parse().ok()?;
    let locked_until = parts.next()?.parse().ok()?;
    let recent = parts.next()?.split(',').filter(|t| !t.is_empty()).map(str::parse).collect::<Result<_, _>>().ok()?;
    Some(FailureState { consecutive, last_failure_at, recent, locked_until })
}

/// Starts the task that wakes the revocation reader when another instance revokes: Redis
/// pub/sub when configured, else `LISTEN` on PostgreSQL; nothing on SQLite (one host: the
/// periodic read is enough).
pub fn spawn_wakeups(store: &Store, redis: Option<Arc<Redis>>, wake: Arc<Notify>) -> Option<JoinHandle<()>> {
    match (redis, store.backend()) {
        (Some(redis), _) => Some(tokio::spawn(follow_redis(redis, wake))),
        (None, Backend::Postgres(pg)) => Some(tokio::spawn(follow_postgres(pg.pool().clone(), wake))),
        (None, Backend::Sqlite(_)) => None,
    }
}

/// `LISTEN keycard_revocations`, reconnecting for ever; each notification (and each reconnection,
/// since notifications may have been missed meanwhile) wakes the reader.
async fn follow_postgres(pool: sqlx::PgPool, wake: Arc<Notify>) {
    let mut healthy = true;
    loop {
        let listening = async {
            let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await?;
            listener.listen(keycard_store::postgres::REVOCATION_CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        match listening.await {
            Ok(mut listener) => {
                if !healthy {
                    tracing::info!("listening for revocations again");
                }
                wake.notify_one();
                loop {
                    match listener.try_recv().await {
                        Ok(Some(_)) => wake.notify_one(),
                        // The connection dropped; the next call reconnects (or fails).
                        Ok(None) => wake.notify_one(),
                        Err(e) => {
                            tracing::warn!(error = %e, "LISTEN for revocations lost: relying on the periodic read");
                            healthy = false;
                            break;
                        }
                    }
                }
            }
            Err(e) => {
                if healthy {
                    tracing::warn!(error = %e, "cannot LISTEN for revocations: relying on the periodic read");
                    healthy = false;
                }
            }
        }
        tokio::time::sleep(RECONNECT_DELAY).await;
    }
}

/// Subscribes to `<prefix>revocations`, resubscribing for ever.
async fn follow_redis(redis: Arc<Redis>, wake: Arc<Notify>) {
    let channel = redis.channel();
    loop {
        let subscribing = async {
            let mut pubsub = redis.client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        match tokio::time::timeout(REDIS_TIMEOUT * 2, subscribing).await {
            Ok(Ok(mut pubsub)) => {
                redis.mark_up();
                wake.notify_one();
                let mut messages = pubsub.on_message();
                while messages.next().await.is_some() {
                    wake.notify_one();
                }
                redis.mark_down("subscribe", &"the subscription connection closed");
            }
            Ok(Err(e)) => redis.mark_down("subscribe", &e),
            Err(_) => redis.mark_down("subscribe", &"no answer in time"),
        }
        tokio::time::sleep(RECONNECT_DELAY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_down_redis_is_probed_once_a_second_not_on_every_call() {
        // Nothing listens on port 1: connections are refused.
        let redis = Redis::new(&SecretString::from("redis://127.0.0.1:1".to_owned()), "t:").unwrap();
        assert!(matches!(redis.ping().await, Err(RedisError::Redis(_) | RedisError::Timeout)));
        assert!(!redis.is_up());
        let started = std::time::Instant::now();
        for _ in 0..100 {
            assert!(matches!(redis.login_locked_until("alice", 0).await, Err(RedisError::Down)));
        }
        assert!(started.elapsed() < REDIS_TIMEOUT, "a call waited on a down Redis");
    }

    #[test]
    fn failure_records_round_trip() {
        let state =
            FailureState { consecutive: 7, last_failure_at: 1_700_000_000, recent: vec![1, 2, 3], locked_until: 9 };
        assert_eq!(decode_state(&encode_state(&state)), Some(state));
        let empty = FailureState::default();
        assert_eq!(decode_state(&encode_state(&empty)), Some(empty));
        for bad in ["", "1;2", "x;1;2;", "1;2;3;4,y"] {
            assert_eq!(decode_state(bad), None, "{bad}");
        }
    }
}
