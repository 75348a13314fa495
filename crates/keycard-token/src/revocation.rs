//! Revoked token and session ids, checked on every request without a database round trip.
//!
//! Each entry carries the time after which no token it could match is valid anyway (the `exp`
//! of a revoked token, or the latest possible `exp` of a revoked session's tokens), so
//! [`RevocationList::purge_expired`] keeps the list as small as the set of live revoked tokens.
//! The ids are UUIDs drawn by keycard, so a 128-bit key folded to 64 bits is a good hash and
//! lookups cost a hash probe under an uncontended read lock.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use parking_lot::RwLock;
use uuid::Uuid;

use crate::Claims;

/// Revoked `jti`s and session ids with the time each may be forgotten.
///
/// ```
/// # let tokens = keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
/// #     Default::default(), std::sync::Arc::new(keycard_token::SystemClock));
/// use keycard_token::RevocationList;
/// let signed = tokens.access("alice").sign().unwrap();
/// let revoked = RevocationList::new();
/// revoked.revoke_token(&signed.claims);
/// assert!(revoked.is_revoked(&signed.claims));
/// assert_eq!(revoked.purge_expired(signed.claims.exp), 1); // the token has expired anyway
/// assert!(revoked.is_empty());
/// ```
#[derive(Debug, Default)]
pub struct RevocationList {
    ids: RwLock<HashMap<u128, i64, BuildHasherDefault<UuidHasher>>>,
}

impl RevocationList {
    /// An empty list.
    ///
    /// ```
    /// assert!(keycard_token::RevocationList::new().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Revokes `id` (a `jti` or a session id) until `until` (seconds since the epoch), keeping
    /// the later time if `id` is already revoked. `until` is when no token it matches can verify
    /// any more: a token's `exp`, plus the leeway when one is configured.
    ///
    /// ```
    /// use keycard_token::{RevocationList, Uuid};
    /// let list = RevocationList::new();
    /// let jti = Uuid::new_v4();
    /// list.revoke(jti, 200);
    /// list.revoke(jti, 100); // the later time is kept
    /// assert_eq!(list.purge_expired(150), 0);
    /// assert!(list.contains(&jti));
    /// ```
    pub fn revoke(&self, id: Uuid, until: i64) {
        let mut ids = self.ids.write();
        let entry = ids.entry(id.as_u128()).or_insert(until);
        *entry = (*entry).max(until);
    }

    /// Revokes many ids at once (loading at start-up).
    ///
    /// ```
    /// use keycard_token::{RevocationList, Uuid};
    /// let list = RevocationList::new();
    /// list.extend([(Uuid::new_v4(), 100), (Uuid::new_v4(), 200)]);
    /// assert_eq!(list.len(), 2);
    /// ```
    pub fn extend(&self, entries: impl IntoIterator<Item = (Uuid, i64)>) {
        let mut ids = self.ids.write();
        for (id, until) in entries {
            let entry = ids.entry(id.as_u128()).or_insert(until);
            *entry = (*entry).max(until);
        }
    }

    /// Whether `id` is revoked.
    ///
    /// ```
    /// use keycard_token::{RevocationList, Uuid};
    /// let list = RevocationList::new();
    /// let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    /// list.revoke(a, 100);
    /// assert!(list.contains(&a));
    /// assert!(!list.contains(&b));
    /// ```
    pub fn contains(&self, id: &Uuid) -> bool {
        self.ids.read().contains_key(&id.as_u128())
    }

    /// Whether the token with `claims` is revoked by its `jti`.
    ///
    /// ```
    /// # let tokens = keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
    /// #     Default::default(), std::sync::Arc::new(keycard_token::SystemClock));
    /// let list = keycard_token::RevocationList::new();
    /// let signed = tokens.access("alice").sign().unwrap();
    /// assert!(!list.is_revoked(&signed.claims));
    /// list.revoke_token(&signed.claims);
    /// assert!(list.is_revoked(&signed.claims));
    /// ```
    pub fn is_revoked<C>(&self, claims: &Claims<C>) -> bool {
        claims.jti_uuid().is_some_and(|jti| self.contains(&jti))
    }

    /// Revokes the token with `claims` by its `jti` until its `exp`; `false` (and nothing
    /// revoked) when its `jti` is not a UUID, as in tokens of issuers other than keycard and FJE.
    ///
    /// ```
    /// # let tokens = keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
    /// #     Default::default(), std::sync::Arc::new(keycard_token::SystemClock));
    /// let list = keycard_token::RevocationList::new();
    /// let signed = tokens.access("alice").sign().unwrap();
    /// assert!(list.revoke_token(&signed.claims));
    /// assert!(list.is_revoked(&signed.claims));
    /// ```
    pub fn revoke_token<C>(&self, claims: &Claims<C>) -> bool {
        match claims.jti_uuid() {
            Some(jti) => {
                self.revoke(jti, claims.exp);
                true
            }
            None => false,
        }
    }

    /// Whether any of `ids` is revoked (a token's `jti` and its session id, say), under one lock.
    ///
    /// ```
    /// use keycard_token::{RevocationList, Uuid};
    /// let list = RevocationList::new();
    /// let (jti, session) = (Uuid::new_v4(), Uuid::now_v7());
    /// assert!(!list.any_revoked([&jti, &session]));
    /// list.revoke(session, 100);
    /// assert!(list.any_revoked([&jti, &session]));
    /// ```
    pub fn any_revoked<'a>(&self, ids: impl IntoIterator<Item = &'a Uuid>) -> bool {
        let list = self.ids.read();
        ids.into_iter().any(|id| list.contains_key(&id.as_u128()))
    }

    /// Forgets entries whose time has passed at `now`; returns how many were dropped.
    ///
    /// ```
    /// use keycard_token::{RevocationList, Uuid};
    /// let list = RevocationList::new();
    /// list.extend([(Uuid::new_v4(), 100), (Uuid::new_v4(), 200)]);
    /// assert_eq!(list.purge_expired(100), 1);
    /// assert_eq!(list.len(), 1);
    /// ```
    pub fn purge_expired(&self, now: i64) -> usize {
        let mut ids = self.ids.write();
        let before = ids.len();
        ids.retain(|_, until| *until > now);
        before - ids.len()
    }

    /// Number of revoked ids held.
    ///
    /// ```
    /// let list = keycard_token::RevocationList::new();
    /// list.revoke(keycard_token::Uuid::new_v4(), 100);
    /// assert_eq!(list.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.ids.read().len()
    }

    /// Whether no id is revoked.
    ///
    /// ```
    /// let list = keycard_token::RevocationList::new();
    /// assert!(list.is_empty());
    /// list.revoke(keycard_token::Uuid::new_v4(), 100);
    /// assert!(!list.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Folds a `u128` UUID key to 64 bits. Only correct for keys that are already uniformly random,
/// which keycard's ids are (v4 `jti`s; v7 session ids have 62 random low bits).
#[derive(Default)]
struct UuidHasher(u64);

impl Hasher for UuidHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
        }
    }

    fn write_u128(&mut self, i: u128) {
        // The truncations are the point: fold the two halves.
        self.0 = (i as u64) ^ ((i >> 64) as u64).rotate_left(32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(jti: Uuid) -> Claims {
        serde_json::from_value(serde_json::json!({"sub": "alice", "iat": 0, "exp": 10, "jti": jti})).unwrap()
    }

    #[test]
    fn a_token_is_revoked_by_its_jti_and_ids_can_be_checked_together() {
        let list = RevocationList::new();
        let (a, b, s) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::now_v7());
        assert!(!list.is_revoked(&claims(a)));
        list.revoke(a, 100);
        assert!(list.is_revoked(&claims(a)));
        assert!(!list.is_revoked(&claims(b)));
        assert!(!list.any_revoked([&b, &s]));
        list.revoke(s, 100);
        assert!(list.any_revoked([&b, &s]));
    }

    #[test]
    fn purge_drops_only_entries_whose_time_has_passed() {
        let list = RevocationList::new();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        list.extend([(a, 100), (b, 200)]);
        assert_eq!(list.purge_expired(100), 1);
        assert!(!list.contains(&a));
        assert!(list.contains(&b));
        assert_eq!(list.len(), 1);
    }

    #[test]
    fn revoking_twice_keeps_the_later_time() {
        let list = RevocationList::new();
        let a = Uuid::new_v4();
        list.revoke(a, 200);
        list.revoke(a, 100);
        assert_eq!(list.purge_expired(150), 0);
        assert!(list.contains(&a));
    }
}
