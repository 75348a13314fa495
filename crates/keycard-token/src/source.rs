//! Where a verifier gets keys it does not have yet.

use std::future::Future;
use std::pin::Pin;

/// Asked when a token names a `kid` the key set does not hold (a key rotated in at the issuer),
/// before the token is refused. An implementation refetches the issuer's JWK Set, installs it
/// with [`crate::Tokens::set_keys`] and answers whether the keys changed; the caller then
/// verifies the token once more. It must bound the work a flood of unknown `kid`s can cause
/// (keycard-jwks refetches at most once per few seconds, one fetch for all waiting callers).
///
/// ```
/// use std::{future::Future, pin::Pin};
/// use keycard_token::KeySource;
///
/// /// Never finds anything new.
/// struct Static;
///
/// impl KeySource for Static {
///     fn unknown_key<'a>(&'a self, _kid: Option<&'a str>) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>> {
///         Box::pin(async { false })
///     }
/// }
/// ```
pub trait KeySource: Send + Sync {
    /// A token names `kid`, which is not in the current key set: refresh the keys if allowed,
    /// and say whether they changed.
    fn unknown_key<'a>(&'a self, kid: Option<&'a str>) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>>;
}
