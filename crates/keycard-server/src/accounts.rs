//! The accounts `GET /user` shows, kept in memory for a moment.
//!
//! Reading an account from SQLite costs far more than checking a token (sqlx hands each
//! statement to the connection's own thread and back), and a client showing "who am I" asks
//! often. So the answer, already serialised, is kept for [`Settings::account_cache_ttl`]
//! (default 1 s; 0 turns the cache off):
//! - a change made through this instance (disable, enable, roles) forgets the account at once;
//! - a change made elsewhere (another instance, the CLI) shows within the TTL, the same bound as
//!   a revocation reaching every instance; and whenever this instance picks up revocations made
//!   elsewhere (a disabled account, say) it forgets everything.
//!
//! Nothing that decides access reads this cache: tokens are checked against the revocation list,
//! and logins, refreshes and admin actions read the database.
//!
//! [`Settings::account_cache_ttl`]: crate::Settings::account_cache_ttl

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;

/// At most this many accounts are kept; past it the cache starts afresh.
const MAX_ENTRIES: usize = 100_000;

/// Serialised account views by canonical username, each with the time it was read.
#[derive(Debug)]
pub struct AccountCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, Bytes)>>,
    /// Bumped by every invalidation: a read that started before one must not be stored.
    generation: AtomicU64,
}

impl AccountCache {
    /// A cache keeping entries for `ttl` (zero: keeps nothing).
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, entries: Mutex::new(HashMap::new()), generation: AtomicU64::new(0) }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Bytes)>> {
        // A panic while holding the lock leaves a map that is still a valid cache.
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The kept view of `key`, if read less than the TTL ago.
    pub fn get(&self, key: &str) -> Option<Bytes> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries();
        let (read_at, body) = entries.get(key)?;
        (read_at.elapsed() < self.ttl).then(|| body.clone())
    }

    /// Call before reading the database; pass the result to [`AccountCache::insert`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Keeps `body` for `key`, unless something was invalidated since `generation` was taken
    /// (the read may predate the change).
    pub fn insert(&self, key: &str, body: Bytes, generation: u64, read_at: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries();
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key.to_owned(), (read_at, body));
    }

    /// Forgets one account (changed through this instance).
    pub fn forget(&self, key: &str) {
        let mut entries = self.entries();
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.remove(key);
    }

    /// Forgets every account (something changed elsewhere).
    pub fn forget_all(&self) {
        let mut entries = self.entries();
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_are_forgotten() {
        let cache = AccountCache::new(Duration::from_millis(50));
        let generation = cache.generation();
        cache.insert("alice", Bytes::from_static(b"{}"), generation, Instant::now());
        assert_eq!(cache.get("alice").as_deref(), Some(&b"{}"[..]));
        assert_eq!(cache.get("bob"), None);
        cache.forget("alice");
        assert_eq!(cache.get("alice"), None);

        cache.insert("bob", Bytes::from_static(b"{}"), cache.generation(), Instant::now() - Duration::from_millis(60));
        assert_eq!(cache.get("bob"), None, "older than the TTL");
    }

    #[test]
    fn a_read_that_started_before_an_invalidation_is_not_kept() {
        let cache = AccountCache::new(Duration::from_secs(60));
        let before = cache.generation();
        cache.forget_all();
        cache.insert("alice", Bytes::from_static(b"stale"), before, Instant::now());
        assert_eq!(cache.get("alice"), None);
    }

    #[test]
    fn a_zero_ttl_keeps_nothing() {
        let cache = AccountCache::new(Duration::ZERO);
        cache.insert("alice", Bytes::from_static(b"{}"), cache.generation(), Instant::now());
        assert_eq!(cache.get("alice"), None);
    }
}
