//! Account-security policy: what a new password must not be, and per-address rate limits.
//!
//! The extractor that applies the limits to a request is [`crate::extract::RateLimit`].

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use keycard_store::{Password, Username, ValidationError};
use zxcvbn::matching::patterns::MatchPattern;

use crate::metrics::{LoginOutcome, Metrics, Throttled};

/// Passwords ranked this high or better in the leaked-password list are refused.
const COMMON_PASSWORD_RANK: usize = 10_000;

/// Checks a new password against the policy beyond length (NIST SP 800-63B §5.1.1.2): not one
/// of the 10,000 most common passwords (zxcvbn's list, case-insensitive) and not the username.
pub fn check_new_password(password: &Password, username: &Username) -> Result<(), ValidationError> {
    let lowered = password.expose().to_lowercase();
    if lowered == username.key() || lowered == username.as_str().to_lowercase() {
        return Err(ValidationError("password must not be the username"));
    }
    if is_common(password.expose()) {
        return Err(ValidationError("password is too common: it is among the 10,000 most used passwords"));
    }
    Ok(())
}

/// Whether the whole password is one entry of the top-10,000 list (not a fragment, not l33t or
/// reversed: those are weak but not verbatim breached passwords).
fn is_common(password: &str) -> bool {
    let entropy = zxcvbn::zxcvbn(password, &[]);
    let [only] = entropy.sequence() else { return false };
    let whole = only.i == 0 && only.token.chars().count() == password.chars().count();
    // zxcvbn does not export its dictionary enum; the variant name is its public face.
    matches!(&only.pattern, MatchPattern::Dictionary(d)
        if whole && format!("{:?}", d.dictionary_name) == "Passwords"
            && d.rank <= COMMON_PASSWORD_RANK && !d.l33t && !d.reversed)
}

/// The endpoints limited per client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `POST /login`.
    Login,
    /// `POST /register`.
    Register,
    /// `POST /token/refresh`.
    Refresh,
}

/// Per-client-address request limits, `per_minute` requests a minute to each endpoint.
pub struct RateLimits {
    limiter: Option<DefaultKeyedRateLimiter<(IpAddr, Endpoint)>>,
    metrics: Option<Arc<Metrics>>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits").field("enabled", &self.limiter.is_some()).finish()
    }
}

impl RateLimits {
    /// `per_minute` requests a minute per address and endpoint (bursts up to that); 0: no limit.
    pub fn new(per_minute: u32) -> Self {
        Self { limiter: NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n))), metrics: None }
    }

    /// Counts the requests refused in `metrics` (when on).
    pub fn with_metrics(mut self, metrics: Option<Arc<Metrics>>) -> Self {
        self.metrics = metrics;
        self
    }

    /// `Err(wait)` when `ip` is over its limit for `endpoint`.
    pub fn check(&self, ip: IpAddr, endpoint: Endpoint) -> Result<(), Duration> {
        let Some(limiter) = &self.limiter else { return Ok(()) };
        limiter.check_key(&(ip, endpoint)).map_err(|not_until| {
            if let Some(metrics) = &self.metrics {
                match endpoint {
                    Endpoint::Login => metrics.login(LoginOutcome::RateLimited),
                    Endpoint::Register => metrics.throttle(Throttled::RateLimitRegister),
                    Endpoint::Refresh => metrics.throttle(Throttled::RateLimitRefresh),
                }
            }
            not_until.wait_time_from(DefaultClock::default().now())
        })
    }

    /// Forgets addresses that are back under their limit (bounds memory).
    pub fn shrink(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(password: &str, username: &str) -> Result<(), ValidationError> {
        check_new_password(&Password::parse(password).unwrap(), &Username::parse(username).unwrap())
    }

    #[test]
    fn common_passwords_are_refused_in_any_case() {
        for common in ["password", "12345678", "Password1", "iloveyou", "sunshine", "qwertyuiop", "PASSWORD123"] {
            let err = check(common, "alice").unwrap_err();
            assert!(err.0.contains("too common"), "{common}");
        }
    }

    #[test]
    fn ordinary_passwords_pass() {
        for fine in ["correct horse battery", "Tr0ub4dor&3x", "🔑🔑 my long passphrase 🔑🔑", "password is long enough"]
        {
            assert!(check(fine, "alice").is_ok(), "{fine}");
        }
    }

    #[test]
    fn the_username_is_not_a_password() {
        assert_eq!(check("AliceSmith", "alicesmith").unwrap_err().0, "password must not be the username");
        assert_eq!(check("ａｌｉｃｅｓｍｉｔｈ", "AliceSmith").unwrap_err().0, "password must not be the username");
    }

    #[test]
    fn rate_limits_apply_per_address_and_endpoint() {
        let limits = RateLimits::new(2);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        assert!(limits.check(a, Endpoint::Login).is_ok());
        assert!(limits.check(a, Endpoint::Login).is_ok());
        let wait = limits.check(a, Endpoint::Login).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(30), "{wait:?}");
        assert!(limits.check(b, Endpoint::Login).is_ok());
        assert!(limits.check(a, Endpoint::Register).is_ok());
        let off = RateLimits::new(0);
        assert!((0..1000).all(|_| off.check(a, Endpoint::Login).is_ok()));
    }
}
