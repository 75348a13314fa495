//! Per-account throttling of failed logins: a pure policy, persisted by the store.
//!
//! After `max_failures` consecutive failures, each further failure locks the account name for a
//! delay that doubles from `base_delay` up to `max_delay`; the count is forgotten after
//! `forget_after` without failures and cleared by a success, so there is never a permanent
//! lock-out an attacker could use to deny a user. Independently, at most `hourly_cap` failures are
//! accepted in any sliding hour: the times of the last hour's failures are kept, and reaching the
//! cap locks until the oldest of them is an hour old.

/// Throttling parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Consecutive failures before the first lock (default 5; 0 turns throttling off).
    pub max_failures: u32,
    /// First lock, in seconds (default 30); doubles with each further failure.
    pub base_delay: i64,
    /// Longest lock, in seconds (default 15 minutes).
    pub max_delay: i64,
    /// Failures accepted per account name in any hour (default 100).
    pub hourly_cap: u32,
    /// Seconds without a failure after which the consecutive count starts again (default 1 hour).
    pub forget_after: i64,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self { max_failures: 5, base_delay: 30, max_delay: 900, hourly_cap: 100, forget_after: 3600 }
    }
}

/// Failed-login state of one account name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FailureState {
    /// Failures since the last success.
    pub consecutive: u32,
    /// Time of the last failure.
    pub last_failure_at: i64,
    /// Times of the failures of the last hour, oldest first.
    pub recent: Vec<i64>,
    /// Attempts before this time are refused without checking the password.
    pub locked_until: i64,
}

impl FailureState {
    /// The failure times as stored: comma-separated, oldest first.
    pub fn recent_text(&self) -> String {
        self.recent.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
    }

    /// Failure times from [`FailureState::recent_text`]'s form (unparsable entries skipped).
    pub fn parse_recent(text: &str) -> Vec<i64> {
        text.split(',').filter_map(|t| t.parse().ok()).collect()
    }

    /// A row of `login_failures` (`consecutive`, `last_failure_at`, `recent`, `locked_until`),
    /// on either backend.
    pub(crate) fn from_row<'r, R: sqlx::Row>(row: &'r R) -> Result<Self, sqlx::Error>
    where
        &'static str: sqlx::ColumnIndex<R>,
        i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        &'r str: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        Ok(FailureState {
            consecutive: u32::try_from(row.try_get::<i64, _>("consecutive")?).unwrap_or(u32::MAX),
            last_failure_at: row.try_get("last_failure_at")?,
            recent: FailureState::parse_recent(row.try_get::<&str, _>("recent")?),
            locked_until: row.try_get("locked_until")?,
        })
    }
}

impl ThrottlePolicy {
    /// Whether throttling is on (`max_failures > 0`).
    pub fn is_enabled(&self) -> bool {
        self.max_failures > 0
    }

    /// The state after a failure at `now`, given the previous state.
    pub fn after_failure(&self, previous: Option<FailureState>, now: i64) -> FailureState {
        let mut state = previous.unwrap_or_default();
        if now.saturating_sub(state.last_failure_at) >= self.forget_after {
            state.consecutive = 0;
        }
        state.recent.retain(|t| now.saturating_sub(*t) < 3600);
        state.recent.push(now);
        let cap = usize::try_from(self.hourly_cap.max(1)).unwrap_or(usize::MAX);
        if state.recent.len() > cap {
            let excess = state.recent.len() - cap;
            state.recent.drain(..excess);
        }
        state.consecutive = state.consecutive.saturating_add(1);
        state.last_failure_at = now;
        state.locked_until = 0;
        if !self.is_enabled() {
            return state;
        }
        if state.consecutive >= self.max_failures {
            let doublings = (state.consecutive - self.max_failures).min(30);
            let delay = self.base_delay.saturating_mul(1i64 << doublings).min(self.max_delay);
            state.locked_until = now.saturating_add(delay);
        }
        if state.recent.len() >= cap {
            state.locked_until = state.locked_until.max(state.recent[0].saturating_add(3600));
        }
        state
    }

    /// Whether this failure is the one that started throttling (for the audit log).
    pub fn starts_throttling(&self, state: &FailureState) -> bool {
        self.is_enabled() && state.consecutive == self.max_failures
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn fail_n(policy: &ThrottlePolicy, n: u32, start: i64, step: i64) -> FailureState {
        let mut state = None;
        for i in 0..n {
            state = Some(policy.after_failure(state, start + i64::from(i) * step));
        }
        state.unwrap_or_default()
    }

    #[test]
    fn the_fifth_failure_locks_and_the_lock_doubles() {
        let p = ThrottlePolicy::default();
        assert_eq!(fail_n(&p, 4, 1000, 1).locked_until, 0);
        let fifth = fail_n(&p, 5, 1000, 1);
        assert_eq!(fifth.locked_until, 1004 + 30);
        assert!(p.starts_throttling(&fifth));
        let at = fifth.locked_until;
        let sixth = p.after_failure(Some(fifth), at);
        assert_eq!(sixth.locked_until - sixth.last_failure_at, 60);
        assert!(!p.starts_throttling(&sixth));
    }

    #[test]
    fn locks_are_capped_and_forgotten_after_an_hour() {
        let p = ThrottlePolicy::default();
        let many = fail_n(&p, 40, 0, 1);
        assert_eq!(many.locked_until - many.last_failure_at, 900);
        let at = many.last_failure_at + 3600;
        let later = p.after_failure(Some(many), at);
        assert_eq!(later.consecutive, 1);
        assert_eq!(later.locked_until, 0);
        assert_eq!(later.recent, vec![at]);
    }

    #[test]
    fn the_hourly_cap_holds_even_without_backoff() {
        let p = ThrottlePolicy { base_delay: 0, max_delay: 0, ..ThrottlePolicy::default() };
        assert_eq!(fail_n(&p, 99, 0, 1).locked_until, 98);
        assert_eq!(fail_n(&p, 100, 0, 1).locked_until, 3600);
    }

    #[test]
    fn a_disabled_policy_never_locks() {
        let p = ThrottlePolicy { max_failures: 0, ..ThrottlePolicy::default() };
        assert_eq!(fail_n(&p, 500, 0, 0).locked_until, 0);
    }

    proptest! {
        #[test]
        fn at_most_the_hourly_cap_of_failures_are_accepted_in_any_hour(
            steps in proptest::collection::vec(0i64..90, 1..600),
            base_delay in prop_oneof![Just(0i64), Just(30)],
        ) {
            // An attacker who retries as soon as the lock allows.
            let p = ThrottlePolicy { base_delay, max_delay: base_delay * 30, ..ThrottlePolicy::default() };
            let mut state: Option<FailureState> = None;
            let mut now = 0i64;
            let mut accepted = Vec::new();
            for step in steps {
                now += step;
                if state.as_ref().is_some_and(|s| now < s.locked_until) {
                    continue;
                }
                state = Some(p.after_failure(state, now));
                accepted.push(now);
            }
            for (i, t) in accepted.iter().enumerate() {
                let in_hour = accepted[i..].iter().take_while(|u| **u < t + 3600).count();
                prop_assert!(in_hour <= 100, "{in_hour} failures within an hour");
            }
            if let Some(s) = state {
                prop_assert!(s.locked_until <= s.last_failure_at + 3600, "lock longer than an hour");
            }
        }
    }
}
