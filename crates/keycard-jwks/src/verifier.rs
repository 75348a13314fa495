//! The verifier: keys from a JWKS URL (given, or found by OpenID Connect discovery), cached in a
//! [`Tokens`], refetched on an unknown `kid` (throttled, single-flight) and refreshed in the
//! background as `Cache-Control` says.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use keycard_token::{
    Algorithm, Audience, Claims, Clock, Decoded, KeyError, KeySource, Keys, SystemClock, TokenError, TokenSettings,
    Tokens,
};
use reqwest::Url;
use serde::de::DeserializeOwned;
use tokio::sync::{Mutex, Notify, oneshot};
use tokio::time::Instant;

use crate::JwksError;
use crate::fetch::{self, MIN_REFRESH};

/// Default of [`JwksVerifierBuilder::min_refetch_interval`]: 5 seconds.
pub const DEFAULT_MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(5);
/// Default of [`JwksVerifierBuilder::cache_verified`]: 10,000 tokens.
pub const DEFAULT_CACHE_CAPACITY: u64 = 10_000;
/// Default of [`JwksVerifierBuilder::http_timeout`]: 5 seconds.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(5);

/// Verifies the tokens of one OpenID Connect / JWKS issuer (Keycloak, Auth0, Entra, Google,
/// Okta, a keycard server): signature by a key of the issuer's published JWK Set, `iss`, `aud`,
/// `exp`, `nbf`, `iat`.
///
/// - **Keys** come from the issuer's JWKS URL, given or found by discovery
///   (`{issuer}/.well-known/openid-configuration`, whose `issuer` must equal the configured one
///   exactly). Only signature keys of asymmetric algorithms are used; the algorithm is the key's,
///   never the token's, so a token signed with HMAC over the public key is refused, and the
///   `jku`/`x5u`/`jwk`/`x5c` headers are never followed.
/// - **An unknown `kid`** (the issuer rotated its keys) triggers one refetch, at most once per
///   [`min_refetch_interval`](JwksVerifierBuilder::min_refetch_interval): concurrent requests
///   wait for the same fetch (bounded by the [`http_timeout`](JwksVerifierBuilder::http_timeout)),
///   and a flood of made-up kids costs one fetch per interval.
/// - **In the background** the key set is refetched when its `Cache-Control: max-age` runs out
///   (clamped to 1 minute .. 24 hours; 15 minutes without one). The task stops when the last
///   clone of the verifier (and every [`JwtConfig`](keycard_axum::JwtConfig) using it) is dropped.
/// - **When the provider is down, slow or answers garbage**, the keys fetched before keep
///   verifying; a warning is logged. An empty or unusable key set never replaces a usable one.
///
/// Cheap to clone (one `Arc`).
///
/// ```no_run
/// use keycard_jwks::JwksVerifier;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let verifier = JwksVerifier::builder()
///     .issuer("https://idp.example.com/realms/master")
///     .audience("my-api")
///     .identity_claim("email")
///     .build()
///     .await?;
/// let token = "eyJ...";
/// let claims = verifier.verify::<keycard_jwks::OidcClaims>(token).await?;
/// println!("hello {}", claims.sub);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct JwksVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    /// Verify-only keys, swapped on every successful fetch.
    tokens: Arc<Tokens>,
    client: reqwest::Client,
    issuer: String,
    /// The discovery URL, when the JWKS URL is found by discovery.
    discovery: Option<Url>,
    algorithms: Option<Vec<Algorithm>>,
    min_refetch_interval: Duration,
    http_timeout: Duration,
    refresh_floor: Duration,
    /// Held while fetching: every fetch is single-flight.
    fetch: Mutex<FetchState>,
    /// Incremented on every key set change.
    generation: AtomicU64,
    /// Wakes the background task when `next_due` moved.
    rescheduled: Arc<Notify>,
    /// Dropped with the verifier: stops the background task.
    _stop: oneshot::Sender<()>,
}

struct FetchState {
    /// The key set's URL (unknown until discovery has succeeded).
    jwks_url: Option<Url>,
    /// When the last refetch for an unknown kid started (successful or not): the throttle.
    last_attempt: Option<Instant>,
    /// When the background task refetches next.
    next_due: Instant,
}

impl std::fmt::Debug for JwksVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksVerifier")
            .field("issuer", &self.inner.issuer)
            .field("kids", &self.kids())
            .finish_non_exhaustive()
    }
}

/// Whether the builder was told about the audience.
enum AudienceSpec {
    Unset,
    Unchecked,
    Some(Vec<String>),
}

/// Builds a [`JwksVerifier`]: [`JwksVerifier::builder`], then `issuer` (or `jwks_url`),
/// `audience` (or `no_audience`), the options, and [`build`](JwksVerifierBuilder::build).
///
/// ```
/// use std::time::Duration;
/// use keycard_jwks::JwksVerifier;
/// use keycard_token::Algorithm;
///
/// let builder = JwksVerifier::builder()
///     .issuer("https://idp.example.com")
///     .audience("my-api")
///     .algorithms([Algorithm::ES256, Algorithm::RS256])
///     .identity_claim("email")
///     .leeway(Duration::from_secs(30))
///     .min_refetch_interval(Duration::from_secs(10))
///     .http_timeout(Duration::from_secs(3));
/// # let _ = builder;
/// ```
#[must_use = "finish with .build().await"]
pub struct JwksVerifierBuilder {
    issuer: Option<String>,
    jwks_url: Option<String>,
    audience: AudienceSpec,
    algorithms: Option<Vec<Algorithm>>,
    identity_claim: Option<String>,
    leeway: Duration,
    min_refetch_interval: Duration,
    http_timeout: Duration,
    refresh_floor: Duration,
    clock: Arc<dyn Clock>,
    cache_capacity: u64,
}

impl JwksVerifier {
    /// Starts a verifier: give it [`issuer`](JwksVerifierBuilder::issuer) and
    /// [`audience`](JwksVerifierBuilder::audience) at least.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use keycard_jwks::{JwksError, JwksVerifier};
    /// let err = JwksVerifier::builder().issuer("https://idp.example.com").build().await.unwrap_err();
    /// assert!(matches!(err, JwksError::Config(_)));
    /// # });
    /// ```
    pub fn builder() -> JwksVerifierBuilder {
        JwksVerifierBuilder {
            issuer: None,
            jwks_url: None,
            audience: AudienceSpec::Unset,
            algorithms: None,
            identity_claim: None,
            leeway: Duration::ZERO,
            min_refetch_interval: DEFAULT_MIN_REFETCH_INTERVAL,
            http_timeout: DEFAULT_HTTP_TIMEOUT,
            refresh_floor: MIN_REFRESH,
            clock: Arc::new(SystemClock),
            cache_capacity: DEFAULT_CACHE_CAPACITY,
        }
    }

    /// Verifies `token` and returns its claims (see [`Tokens::verify`]). A token naming a `kid`
    /// the verifier does not know triggers one (throttled) refetch of the key set first.
    ///
    /// The identity ([`Claims::sub`]) comes from the
    /// [`identity_claim`](JwksVerifierBuilder::identity_claim) when one is configured; `C`
    /// receives the claims keycard-token does not handle ([`OidcClaims`](crate::OidcClaims) for
    /// all of them as JSON).
    pub async fn verify<C: DeserializeOwned>(&self, token: &str) -> Result<Claims<C>, TokenError> {
        self.decode(token).await.map(|decoded| decoded.claims)
    }

    /// [`JwksVerifier::verify`], also returning the protected header.
    pub async fn decode<C: DeserializeOwned>(&self, token: &str) -> Result<Decoded<C>, TokenError> {
        match self.inner.tokens.decode(token) {
            Err(TokenError::UnknownKey) => {
                let kid = keycard_token::unverified_kid(token);
                if self.inner.unknown_key(kid.as_deref()).await {
                    self.inner.tokens.decode(token)
                } else {
                    Err(TokenError::UnknownKey)
                }
            }
            decoded => decoded,
        }
    }

    /// The [`Tokens`] verifying with the issuer's current keys (verify-only: it cannot sign).
    /// Give it to [`JwtConfig::builder`](keycard_axum::JwtConfig::builder) together with the
    /// verifier as its key source, or use [`JwksVerifier::jwt_config_builder`].
    pub fn tokens(&self) -> Arc<Tokens> {
        self.inner.tokens.clone()
    }

    /// The issuer whose tokens are accepted (`iss`).
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The key ids of the keys in use (for diagnostics).
    pub fn kids(&self) -> Vec<String> {
        self.inner.tokens.keys().kids().into_iter().map(str::to_owned).collect()
    }

    /// Fetches the key set now (discovery first if it has not succeeded yet), whatever the
    /// throttle says, and waits for it. On error the keys in use stay.
    pub async fn refresh(&self) -> Result<(), JwksError> {
        let mut state = self.inner.fetch.lock().await;
        self.inner.fetch_locked(&mut state).await
    }
}

impl KeySource for JwksVerifier {
    fn unknown_key<'a>(&'a self, kid: Option<&'a str>) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>> {
        Box::pin(self.inner.unknown_key(kid))
    }
}

impl Inner {
    /// A token names `kid`, which is not in the key set: refetch (throttled, single-flight).
    /// `true` when the key set now has it (or, for a token without kid, when it changed).
    async fn unknown_key(&self, kid: Option<&str>) -> bool {
        let seen = self.generation.load(Ordering::Acquire);
        if self.has(kid) {
            return true; // fetched since the caller looked
        }
        let Ok(mut state) = tokio::time::timeout(self.http_timeout, self.fetch.lock()).await else {
            tracing::debug!(issuer = %self.issuer, "gave up waiting for the key set fetch in progress");
            return false;
        };
        if self.generation.load(Ordering::Acquire) != seen {
            // Fetched while we waited: that answer is as fresh as ours would be.
            return kid.is_none() || self.has(kid);
        }
        if state.last_attempt.is_some_and(|last| last.elapsed() < self.min_refetch_interval) {
            return false;
        }
        state.last_attempt = Some(Instant::now());
        match self.fetch_locked(&mut state).await {
            Ok(()) => kid.is_none() || self.has(kid),
            Err(e) => {
                tracing::warn!(
                    issuer = %self.issuer,
                    error = %error_chain(&e),
                    "refetching the key set for an unknown kid failed; keeping the keys in use"
                );
                false
            }
        }
    }

    /// Whether the key set has a key with this `kid` (`false` for `None`).
    fn has(&self, kid: Option<&str>) -> bool {
        kid.is_some_and(|kid| self.tokens.keys().kids().contains(&kid))
    }

    /// Fetches the key set (after discovery, if needed) within the HTTP timeout and, if it has
    /// usable keys, puts them in place. The caller holds the fetch lock.
    async fn fetch_locked(&self, state: &mut FetchState) -> Result<(), JwksError> {
        let url = state.jwks_url.as_ref().or(self.discovery.as_ref()).map(Url::to_string).unwrap_or_default();
        match tokio::time::timeout(self.http_timeout, self.fetch_unbounded(state)).await {
            Ok(result) => result,
            Err(_) => Err(JwksError::Timeout { url, timeout: self.http_timeout }),
        }
    }

    async fn fetch_unbounded(&self, state: &mut FetchState) -> Result<(), JwksError> {
        let jwks_url = match (&state.jwks_url, &self.discovery) {
            (Some(url), _) => url.clone(),
            (None, Some(discovery)) => {
                let url = fetch::discover(&self.client, &self.issuer, discovery, self.http_timeout).await?;
                state.jwks_url = Some(url.clone());
                url
            }
            (None, None) => return Err(JwksError::Config("neither a JWKS URL nor an issuer to discover it from")),
        };
        let fetched = fetch::get(&self.client, &jwks_url, self.http_timeout).await?;
        let keys = self.parse_keys(&jwks_url, &fetched.body)?;
        if keys.jwks() == self.tokens.keys().jwks() {
            tracing::debug!(issuer = %self.issuer, url = %jwks_url, "key set fetched, unchanged");
        } else {
            tracing::info!(issuer = %self.issuer, url = %jwks_url, kids = ?keys.kids(), "key set fetched");
            self.tokens.set_keys(keys);
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        state.next_due = Instant::now() + fetch::refresh_interval(fetched.max_age, self.refresh_floor);
        self.rescheduled.notify_one();
        Ok(())
    }

    /// The usable keys of a JWK Set; skipped ones are logged.
    fn parse_keys(&self, url: &Url, body: &[u8]) -> Result<Keys, JwksError> {
        let mut skipped_count = 0;
        let filtered = self.algorithms.as_deref().and_then(|allowed| filter_algorithms(body, allowed));
        let body = match &filtered {
            Some((kept, dropped)) => {
                for kid in dropped {
                    skipped_count += 1;
                    tracing::warn!(issuer = %self.issuer, url = %url, kid = %kid, "JWKS key skipped: algorithm not allowed");
                }
                kept.as_slice()
            }
            None => body,
        };
        let (keys, skipped) = Keys::from_jwks(body).map_err(|_| JwksError::InvalidJwks {
            url: url.to_string(),
            reason: match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                Err(e) => e.to_string(),
                Ok(_) => "no \"keys\" array of objects".to_owned(),
            },
        })?;
        for (kid, reason) in &skipped {
            skipped_count += 1;
            let kid = kid.as_deref().unwrap_or("(none)");
            // Providers publish their encryption keys beside the signature keys (Keycloak does by
            // default): expected, not worth a warning on every refresh.
            if matches!(reason, KeyError::NotForSignatures) {
                tracing::debug!(issuer = %self.issuer, url = %url, kid, reason = %reason, "JWKS key skipped");
            } else {
                tracing::warn!(issuer = %self.issuer, url = %url, kid, reason = %reason, "JWKS key skipped");
            }
        }
        if keys.is_empty() {
            return Err(JwksError::NoUsableKeys { url: url.to_string(), skipped: skipped_count });
        }
        Ok(keys)
    }

    /// The background refresh, when due: on failure the keys stay and it retries a minute later.
    async fn refresh_if_due(&self) {
        let mut state = self.fetch.lock().await;
        if Instant::now() < state.next_due {
            return; // an unknown-kid refetch moved it
        }
        if let Err(e) = self.fetch_locked(&mut state).await {
            state.next_due = Instant::now() + self.refresh_floor;
            tracing::warn!(
                issuer = %self.issuer,
                error = %error_chain(&e),
                retry_in = ?self.refresh_floor,
                "background refresh of the key set failed; keeping the keys in use"
            );
        }
    }

    async fn next_due(&self) -> Instant {
        self.fetch.lock().await.next_due
    }
}

/// The background task: refreshes when due, until the verifier is dropped. It holds the
/// verifier only while refreshing, so that dropping the last clone stops it.
async fn refresh_loop(inner: Weak<Inner>, mut stop: oneshot::Receiver<()>, rescheduled: Arc<Notify>) {
    loop {
        let due = match inner.upgrade() {
            Some(inner) => inner.next_due().await,
            None => return,
        };
        tokio::select! {
            _ = &mut stop => return,
            () = rescheduled.notified() => continue,
            () = tokio::time::sleep_until(due) => {}
        }
        match inner.upgrade() {
            Some(inner) => inner.refresh_if_due().await,
            None => return,
        }
    }
}

/// The JWK Set `body` without the keys whose algorithm (`alg`, or the one implied by the key
/// type: EC P-256 ES256, P-384 ES384, OKP Ed25519 EdDSA, RSA RS256) is not in `allowed`, and
/// the kids of the keys removed. `None` when `body` is not a JSON object with a `keys` array
/// (keycard-token then says what is wrong with it).
fn filter_algorithms(body: &[u8], allowed: &[Algorithm]) -> Option<(Vec<u8>, Vec<String>)> {
    let mut set: serde_json::Value = serde_json::from_slice(body).ok()?;
    let keys = set.get_mut("keys")?.as_array_mut()?;
    let mut dropped = Vec::new();
    keys.retain(|jwk| {
        let member = |name: &str| jwk.get(name).and_then(serde_json::Value::as_str);
        let alg = member("alg").map(str::to_owned).or_else(|| {
            let implied = match (member("kty")?, member("crv")) {
                ("EC", Some("P-256")) => "ES256",
                ("EC", Some("P-384")) => "ES384",
                ("OKP", Some("Ed25519")) => "EdDSA",
                ("RSA", _) => "RS256",
                _ => return None,
            };
            Some(implied.to_owned())
        });
        let keep = alg.and_then(|alg| alg.parse::<Algorithm>().ok()).is_some_and(|alg| allowed.contains(&alg));
        if !keep {
            dropped.push(member("kid").unwrap_or("(no kid)").to_owned());
        }
        keep
    });
    Some((serde_json::to_vec(&set).ok()?, dropped))
}

/// `e` and its sources, `: `-separated, for one log line.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl JwksVerifierBuilder {
    /// The issuer: tokens must carry exactly this `iss`, and (unless
    /// [`jwks_url`](Self::jwks_url) is given) the key set is found by OpenID Connect discovery at
    /// `{issuer}/.well-known/openid-configuration`, whose `issuer` member must be identical.
    /// `https://`, or `http://` on a loopback host.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// The JWK Set URL, fetched directly (no discovery). Tokens must still come from the
    /// configured [`issuer`](Self::issuer), which is required. `https://`, or `http://` on a
    /// loopback host.
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.jwks_url = Some(url.into());
        self
    }

    /// The audience: tokens must carry it in `aud` (the OAuth client id, for most providers).
    /// Call it again to accept several audiences (any one of them matching suffices).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        match &mut self.audience {
            AudienceSpec::Some(list) => list.push(audience.into()),
            _ => self.audience = AudienceSpec::Some(vec![audience.into()]),
        }
        self
    }

    /// Accept tokens whatever their `aud` (or without one). Explicit because it is rarely
    /// right: a token issued for another client of the same provider is then accepted too.
    pub fn no_audience(mut self) -> Self {
        self.audience = AudienceSpec::Unchecked;
        self
    }

    /// The algorithms accepted (default: every asymmetric algorithm keycard-token supports).
    /// Keys of other algorithms are skipped when the key set is fetched; HMAC is never accepted.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = Some(algorithms.into_iter().collect());
        self
    }

    /// The claim holding the identity instead of `sub` (`email`, `preferred_username`, `upn`):
    /// [`Claims::sub`] is then its value, and a token without it is refused.
    pub fn identity_claim(mut self, claim: impl Into<String>) -> Self {
        self.identity_claim = Some(claim.into());
        self
    }

    /// Tolerance for clock skew on `exp`, `nbf` and `iat` (default 0, at most 5 minutes).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Shortest interval between two refetches for unknown kids (default 5 seconds).
    pub fn min_refetch_interval(mut self, interval: Duration) -> Self {
        self.min_refetch_interval = interval;
        self
    }

    /// Longest wait for the provider: each request, and discovery and key set together
    /// (default 5 seconds). A request waiting for a refetch waits at most this long.
    pub fn http_timeout(mut self, timeout: Duration) -> Self {
        self.http_timeout = timeout;
        self
    }

    /// How many verified tokens to remember, so that a token presented again skips the
    /// public-key signature check (an ECDSA, Ed25519 or RSA verification costs 20-50 times an
    /// HMAC); default [`DEFAULT_CACHE_CAPACITY`], 0 turns it off. Only the signature is skipped:
    /// the claims (`exp`, `iss`, `aud`...) are checked every time, and the cache is emptied when
    /// the key set changes (see [`Tokens::cache_verified`]).
    pub fn cache_verified(mut self, capacity: u64) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// The clock `exp`, `nbf` and `iat` are checked against (default the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Shortest interval of the background refresh (default and minimum in production:
    /// 1 minute). For tests only.
    #[doc(hidden)]
    pub fn refresh_floor(mut self, floor: Duration) -> Self {
        self.refresh_floor = floor;
        self
    }

    /// Fetches the key set (after discovery) and starts the background refresh. Fails if the
    /// configuration is incomplete or invalid, or if the provider cannot be reached or gives no
    /// usable key: a service that cannot verify a single token should not start.
    pub async fn build(self) -> Result<JwksVerifier, JwksError> {
        let (verifier, stop) = self.prepare()?;
        {
            let mut state = verifier.inner.fetch.lock().await;
            verifier.inner.fetch_locked(&mut state).await?;
        }
        let rescheduled = verifier.inner.rescheduled.clone();
        tokio::spawn(refresh_loop(Arc::downgrade(&verifier.inner), stop, rescheduled));
        Ok(verifier)
    }

    /// Starts without keys: the first token (or the background task, right away) fetches them.
    /// For services that must start while the provider is down; until the first fetch succeeds
    /// every token is refused ([`TokenError::UnknownKey`]). Must be called within a Tokio runtime.
    pub fn build_lazy(self) -> Result<JwksVerifier, JwksError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| JwksError::Config("build_lazy must be called within a Tokio runtime"))?;
        let (verifier, stop) = self.prepare()?;
        let rescheduled = verifier.inner.rescheduled.clone();
        runtime.spawn(refresh_loop(Arc::downgrade(&verifier.inner), stop, rescheduled));
        Ok(verifier)
    }

    fn prepare(self) -> Result<(JwksVerifier, oneshot::Receiver<()>), JwksError> {
        let issuer = self.issuer.ok_or(JwksError::Config("an issuer is required: .issuer(\"https://...\")"))?;
        let (discovery, jwks_url) = match &self.jwks_url {
            Some(url) => {
                fetch::check_url(&issuer)?;
                (None, Some(fetch::check_url(url)?))
            }
            None => (Some(fetch::discovery_url(&issuer)?), None),
        };
        let audience = match self.audience {
            AudienceSpec::Unset => {
                return Err(JwksError::Config(
                    "an audience is required: .audience(\"client-id\"), or .no_audience() to accept any",
                ));
            }
            AudienceSpec::Unchecked => None,
            AudienceSpec::Some(mut list) if list.len() == 1 => list.pop().map(Audience::One),
            AudienceSpec::Some(list) => Some(Audience::Many(list)),
        };
        if let Some(algorithms) = &self.algorithms {
            if algorithms.is_empty() {
                return Err(JwksError::Config("the algorithm allow-list is empty"));
            }
            if algorithms.iter().any(|alg| alg.is_symmetric()) {
                return Err(JwksError::Config("HMAC algorithms cannot be verified with a public key set"));
            }
        }
        if self.http_timeout.is_zero() {
            return Err(JwksError::Config("the HTTP timeout must not be zero"));
        }
        let settings = TokenSettings {
            issuer: Some(issuer.clone()),
            audience,
            leeway: self.leeway,
            identity_claim: self.identity_claim,
            // Other issuers' tokens often have no `jti`, or one that is not a UUID.
            require_jti: false,
            ..TokenSettings::default()
        };
        let tokens =
            Arc::new(Tokens::new(Keys::verify_only(), settings, self.clock).cache_verified(self.cache_capacity));
        let (stop_tx, stop_rx) = oneshot::channel();
        let inner = Inner {
            tokens,
            client: fetch::client(self.http_timeout)?,
            issuer,
            discovery,
            algorithms: self.algorithms,
            min_refetch_interval: self.min_refetch_interval,
            http_timeout: self.http_timeout,
            refresh_floor: self.refresh_floor,
            fetch: Mutex::new(FetchState { jwks_url, last_attempt: None, next_due: Instant::now() }),
            generation: AtomicU64::new(0),
            rescheduled: Arc::new(Notify::new()),
            _stop: stop_tx,
        };
        Ok((JwksVerifier { inner: Arc::new(inner) }, stop_rx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allow_list_filters_on_the_alg_member_or_the_implied_algorithm() {
        let body = serde_json::json!({"keys": [
            {"kty": "EC", "crv": "P-256", "kid": "p256"},
            {"kty": "EC", "crv": "P-384", "kid": "p384"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed"},
            {"kty": "RSA", "kid": "rsa"},
            {"kty": "RSA", "alg": "PS256", "kid": "pss"},
            {"kty": "oct", "alg": "HS256", "kid": "hmac"},
            {"kty": "EC", "crv": "P-256", "alg": "none", "kid": "none"},
            {"kty": "EC"},
            42,
        ]})
        .to_string();
        let kept = |allowed: &[Algorithm]| {
            let (json, dropped) = filter_algorithms(body.as_bytes(), allowed).unwrap();
            let set: serde_json::Value = serde_json::from_slice(&json).unwrap();
            let kids: Vec<String> =
                set["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect();
            (kids, dropped.len())
        };
        assert_eq!(kept(&[Algorithm::ES256]), (vec!["p256".to_owned()], 8));
        assert_eq!(kept(&[Algorithm::RS256, Algorithm::PS256]), (vec!["rsa".to_owned(), "pss".to_owned()], 7));
        assert_eq!(kept(&[Algorithm::EdDSA, Algorithm::ES384]), (vec!["p384".to_owned(), "ed".to_owned()], 7));
        assert!(filter_algorithms(b"{not json", &[Algorithm::ES256]).is_none());
        assert!(filter_algorithms(br#"{"keys": 1}"#, &[Algorithm::ES256]).is_none());
    }

    #[test]
    fn error_chains_read_as_one_line() {
        let e = JwksError::InvalidUrl { url: "http://x".into(), reason: "no" };
        assert_eq!(error_chain(&e), "invalid URL http://x: no");
    }
}
