//! Time as seen by token issuing and verification, injectable for tests.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current time in whole seconds since the Unix epoch (JWT `NumericDate`).
///
/// ```
/// use keycard_token::Clock;
///
/// struct Fixed;
/// impl Clock for Fixed {
///     fn now(&self) -> i64 {
///         1_700_000_000
///     }
/// }
/// assert_eq!(Fixed.now(), 1_700_000_000);
/// ```
pub trait Clock: Send + Sync + 'static {
    /// Seconds since the Unix epoch.
    fn now(&self) -> i64;
}

/// The operating system's wall clock.
///
/// ```
/// use keycard_token::{Clock, SystemClock};
/// assert!(SystemClock.now() > 1_577_836_800); // after 2020-01-01
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        // A clock before 1970 is a broken machine; treat it as the epoch rather than panic.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to: for tests of expiry and not-before.
///
/// ```
/// use std::sync::Arc;
/// use keycard_token::{Keys, ManualClock, TokenError, TokenSettings, Tokens};
///
/// let clock = Arc::new(ManualClock::new(1_700_000_000));
/// let tokens = Tokens::new(Keys::hmac_sha256(&[7; 32]).unwrap(), TokenSettings::default(), clock.clone());
/// let signed = tokens.access("alice").sign().unwrap();
/// clock.advance(15 * 60); // the default access lifetime
/// assert_eq!(tokens.verify::<()>(&signed.token).unwrap_err(), TokenError::Expired);
/// ```
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock reading `now` seconds since the epoch.
    ///
    /// ```
    /// use keycard_token::{Clock, ManualClock};
    /// assert_eq!(ManualClock::new(1_000).now(), 1_000);
    /// ```
    pub fn new(now: i64) -> Self {
        Self(AtomicI64::new(now))
    }

    /// A clock starting at the system time.
    ///
    /// ```
    /// use keycard_token::{Clock, ManualClock, SystemClock};
    /// let clock = ManualClock::starting_now();
    /// assert!((SystemClock.now() - clock.now()).abs() <= 1);
    /// ```
    pub fn starting_now() -> Self {
        Self::new(SystemClock.now())
    }

    /// Moves the clock forward (or backward, with a negative value) by `secs` seconds.
    ///
    /// ```
    /// use keycard_token::{Clock, ManualClock};
    /// let clock = ManualClock::new(1_000);
    /// clock.advance(61);
    /// assert_eq!(clock.now(), 1_061);
    /// clock.advance(-1);
    /// assert_eq!(clock.now(), 1_060);
    /// ```
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }

    /// Sets the clock to `now`.
    ///
    /// ```
    /// use keycard_token::{Clock, ManualClock};
    /// let clock = ManualClock::new(1_000);
    /// clock.set(5);
    /// assert_eq!(clock.now(), 5);
    /// ```
    pub fn set(&self, now: i64) {
        self.0.store(now, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(1_000);
        assert_eq!(clock.now(), 1_000);
        clock.advance(61);
        assert_eq!(clock.now(), 1_061);
        clock.set(5);
        assert_eq!(clock.now(), 5);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now() > 1_577_836_800);
    }
}
