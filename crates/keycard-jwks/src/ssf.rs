//! A resource server that hears about logouts: a revocation set fed by the issuer's Shared
//! Signals stream (SSF 1.0, CAEP `session-revoked`, RFC 8936 polling), with bounded staleness.
//!
//! A [`RevocationFeed`] finds the transmitter at `{issuer}/.well-known/ssf-configuration`, makes
//! its own poll stream (deleting the one it made before, under the same description, so a new
//! stream hands it every event still kept: that is how it catches up after its own restart),
//! then long-polls it in the background: each Security Event Token is verified with the
//! issuer's keys (the [`JwksVerifier`]'s, refetched on an unknown `kid`), its session (`sid`) or
//! token (`jti`) goes into an in-memory [`RevocationList`], and its `jti` is acknowledged in the
//! next poll. When the transmitter is down, the feed reconnects with backoff (100 ms doubling to
//! 5 s); when the stream has vanished (the transmitter lost its database), it makes a new one.
//!
//! On the request path the check is in memory only. When the feed has had no contact with the
//! transmitter for longer than [`RevocationFeedBuilder::max_staleness`], requests are refused
//! with 503 ([`WhenStale::FailClosed`], the default) or accepted with a warning
//! ([`WhenStale::FailOpen`]). A long poll in progress counts as contact for up to
//! [`POLL_TIMEOUT`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use keycard_axum::{BoxError, Revocation};
use keycard_token::{Decoded, RevocationList, SecurityEvent, TokenError, Uuid};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::time::Instant;
use url::Url;

use crate::JwksVerifier;
use crate::error::JwksError;
use crate::fetch;

/// CAEP 1.0 `session-revoked`.
pub const SESSION_REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
/// RFC 8936 poll delivery.
const POLL: &str = "urn:ietf:rfc:8936";
/// Longest a poll request may take (the transmitter holds a long poll up to about 25 s).
pub const POLL_TIMEOUT: Duration = Duration::from_secs(35);
/// Default [`RevocationFeedBuilder::max_staleness`].
pub const DEFAULT_MAX_STALENESS: Duration = Duration::from_secs(30);
/// Default [`RevocationFeedBuilder::revocation_lifetime`].
pub const DEFAULT_REVOCATION_LIFETIME: Duration = Duration::from_secs(24 * 3600);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// What requests get when the feed is stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenStale {
    /// Refused with 503 (keycard-axum's "hook failed"): a revoked token is never accepted
    /// because the feed was down. The default.
    #[default]
    FailClosed,
    /// Accepted (with a warning in the log at most once a second): availability over revocation.
    FailOpen,
}

/// Claims that name their session: `sid` (keycard's tokens carry one).
pub trait SessionClaims {
    /// The token's session id, if it has one.
    fn session_id(&self) -> Option<Uuid>;
}

impl SessionClaims for serde_json::Map<String, Value> {
    fn session_id(&self) -> Option<Uuid> {
        self.get("sid").and_then(Value::as_str).and_then(|s| Uuid::try_parse(s).ok())
    }
}

/// Builds a [`RevocationFeed`]: [`RevocationFeed::builder`], options, [`start`](Self::start).
///
/// ```no_run
/// # async fn demo(verifier: keycard_jwks::JwksVerifier) -> Result<(), keycard_jwks::JwksError> {
/// use std::time::Duration;
/// use keycard_jwks::{RevocationFeed, WhenStale};
/// let feed = RevocationFeed::builder(&verifier, std::env::var("KEYCARD_SSF_TOKEN").unwrap())
///     .max_staleness(Duration::from_secs(10))
///     .when_stale(WhenStale::FailClosed)
///     .stream_description("orders-api (host a)")
///     .start()
///     .await?;
/// let jwt = verifier.jwt_config_builder::<keycard_jwks::OidcClaims>().revocation(feed).build();
/// # let _ = jwt; Ok(()) }
/// ```
#[must_use = "finish with .start().await"]
pub struct RevocationFeedBuilder {
    verifier: JwksVerifier,
    credential: String,
    max_staleness: Duration,
    when_stale: WhenStale,
    revocation_lifetime: Duration,
    description: String,
}

impl RevocationFeedBuilder {
    /// Refuse (or, failing open, warn) once the transmitter has not been heard from for this
    /// long (default 30 s).
    pub fn max_staleness(mut self, limit: Duration) -> Self {
        self.max_staleness = limit;
        self
    }

    /// What requests get when the feed is stale (default [`WhenStale::FailClosed`]).
    pub fn when_stale(mut self, when: WhenStale) -> Self {
        self.when_stale = when;
        self
    }

    /// How long a revoked session is remembered (default 24 h): at least the lifetime of the
    /// issuer's access tokens, since a session's access tokens stay valid until they expire.
    pub fn revocation_lifetime(mut self, lifetime: Duration) -> Self {
        self.revocation_lifetime = lifetime;
        self
    }

    /// The stream's description (default `keycard-jwks`). The feed deletes its earlier stream of
    /// the same description at start: instances sharing one receiver credential must each use
    /// their own.
    pub fn stream_description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Finds the transmitter, makes the stream, reads every event it already holds, then follows
    /// it in the background (until the feed and its clones are dropped). Fails when the
    /// transmitter cannot be reached or refuses the credential now.
    pub async fn start(self) -> Result<RevocationFeed, JwksError> {
        let client = fetch::client(POLL_TIMEOUT)?;
        let issuer = self.verifier.issuer().to_owned();
        let config_url = fetch::check_url(&format!("{}/.well-known/ssf-configuration", issuer.trim_end_matches('/')))?;
        let config = get_json(&client, &config_url, None).await?;
        if config["issuer"].as_str() != Some(issuer.as_str()) {
            return Err(JwksError::Ssf(format!("the SSF configuration at {config_url} names another issuer")));
        }
        if !config["delivery_methods_supported"].as_array().is_some_and(|m| m.iter().any(|m| m == POLL)) {
            return Err(JwksError::Ssf(format!("the transmitter at {config_url} does not deliver by poll ({POLL})")));
        }
        let streams_url = fetch::check_url(
            config["configuration_endpoint"]
                .as_str()
                .ok_or_else(|| JwksError::Ssf("the SSF configuration has no configuration_endpoint".into()))?,
        )?;
        let (stop, stopped) = oneshot::channel();
        let inner = Arc::new(Inner {
            revoked: RevocationList::new(),
            health: Mutex::new(Health { last_contact: Instant::now(), polling_since: None, warned: None }),
            max_staleness: self.max_staleness,
            when_stale: self.when_stale,
            _stop: stop,
        });
        let mut follower = Follower {
            client,
            streams_url,
            credential: self.credential,
            description: self.description,
            verifier: self.verifier,
            lifetime: self.revocation_lifetime,
            inner: Arc::downgrade(&inner),
            stream: None,
            ack: Vec::new(),
        };
        follower.make_stream().await?;
        // Catch up before the first request: everything the new stream holds.
        loop {
            let more = follower.poll_once(true).await.map_err(|e| match e {
                PollError::Gone => JwksError::Ssf("the new stream vanished at once".into()),
                PollError::Other(e) => e,
            })?;
            if !more {
                break;
            }
        }
        tokio::spawn(async move {
            tokio::select! {
                () = follower.follow() => {}
                _ = stopped => {}
            }
        });
        Ok(RevocationFeed { inner })
    }
}

/// A revocation set fed by the issuer's Shared Signals stream: use it as keycard-axum's
/// [`Revocation`] hook. Cheap to clone; the background task stops when the last clone is dropped.
#[derive(Clone)]
pub struct RevocationFeed {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RevocationFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationFeed")
            .field("revoked", &self.inner.revoked.len())
            .field("fresh", &self.is_fresh())
            .finish_non_exhaustive()
    }
}

struct Inner {
    revoked: RevocationList,
    health: Mutex<Health>,
    max_staleness: Duration,
    when_stale: WhenStale,
    _stop: oneshot::Sender<()>,
}

struct Health {
    /// The last answer from the transmitter.
    last_contact: Instant,
    /// Since when a poll has been waiting on a connection the transmitter accepted.
    polling_since: Option<Instant>,
    /// When the fail-open warning was last logged.
    warned: Option<Instant>,
}

impl Inner {
    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl RevocationFeed {
    /// Follows the Shared Signals stream of `verifier`'s issuer, authenticating with the
    /// receiver `credential` (for keycard: one of its `KEYCARD_RESOURCE_SERVER_TOKENS`).
    pub fn builder(verifier: &JwksVerifier, credential: impl Into<String>) -> RevocationFeedBuilder {
        RevocationFeedBuilder {
            verifier: verifier.clone(),
            credential: credential.into(),
            max_staleness: DEFAULT_MAX_STALENESS,
            when_stale: WhenStale::FailClosed,
            revocation_lifetime: DEFAULT_REVOCATION_LIFETIME,
            description: "keycard-jwks".into(),
        }
    }

    /// The revoked sessions and tokens heard of so far.
    pub fn revocations(&self) -> &RevocationList {
        &self.inner.revoked
    }

    /// Whether the transmitter has been heard from within the staleness limit.
    pub fn is_fresh(&self) -> bool {
        let health = self.inner.health();
        health.last_contact.elapsed() <= self.inner.max_staleness
            || health.polling_since.is_some_and(|since| since.elapsed() <= POLL_TIMEOUT)
    }

    /// Whether a token with `jti` and session `sid` is revoked; an error when the feed is stale
    /// and fails closed.
    pub fn check(&self, jti: Option<Uuid>, sid: Option<Uuid>) -> Result<bool, StaleFeed> {
        if !self.is_fresh() {
            match self.inner.when_stale {
                WhenStale::FailClosed => return Err(StaleFeed),
                WhenStale::FailOpen => {
                    let mut health = self.inner.health();
                    if health.warned.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                        health.warned = Some(Instant::now());
                        tracing::warn!("the revocation feed is stale: accepting tokens without it (fail open)");
                    }
                }
            }
        }
        Ok(self.inner.revoked.any_revoked(jti.iter().chain(sid.iter())))
    }
}

/// The feed has not heard from the transmitter within its staleness limit.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the revocation feed has not heard from the transmitter within its staleness limit")]
pub struct StaleFeed;

impl<C: SessionClaims + Send + Sync + 'static> Revocation<C> for RevocationFeed {
    async fn is_revoked(&self, token: &Decoded<C>) -> Result<bool, BoxError> {
        Ok(self.check(token.claims.jti_uuid(), token.claims.extra.session_id())?)
    }
}

/// The background side: makes the stream, polls it, applies the events.
struct Follower {
    client: reqwest::Client,
    streams_url: Url,
    credential: String,
    description: String,
    verifier: JwksVerifier,
    lifetime: Duration,
    inner: std::sync::Weak<Inner>,
    /// (stream_id, poll endpoint)
    stream: Option<(String, Url)>,
    /// jtis to acknowledge in the next poll.
    ack: Vec<String>,
}

/// Why one poll failed.
enum PollError {
    /// The stream is gone (404): make a new one.
    Gone,
    /// Anything else: retry with backoff.
    Other(JwksError),
}

impl From<JwksError> for PollError {
    fn from(e: JwksError) -> Self {
        PollError::Other(e)
    }
}

impl Follower {
    async fn make_stream(&mut self) -> Result<(), JwksError> {
        let existing = get_json(&self.client, &self.streams_url, Some(&self.credential)).await?;
        for stream in existing.as_array().into_iter().flatten() {
            if stream["description"].as_str() == Some(self.description.as_str())
                && let Some(id) = stream["stream_id"].as_str()
            {
                let mut url = self.streams_url.clone();
                url.query_pairs_mut().append_pair("stream_id", id);
                let _ = self.client.delete(url).bearer_auth(&self.credential).send().await;
            }
        }
        let body = json!({
            "delivery": { "method": POLL },
            "events_requested": [SESSION_REVOKED],
            "description": self.description,
        });
        let response = self
            .client
            .post(self.streams_url.clone())
            .bearer_auth(&self.credential)
            .json(&body)
            .send()
            .await
            .map_err(|source| JwksError::Http { url: self.streams_url.to_string(), source })?;
        let config = read_json(response, &self.streams_url, 201).await?;
        let id =
            config["stream_id"].as_str().ok_or_else(|| JwksError::Ssf("the new stream has no stream_id".into()))?;
        let endpoint = config["delivery"]["endpoint_url"]
            .as_str()
            .ok_or_else(|| JwksError::Ssf("the new stream has no delivery.endpoint_url".into()))?;
        let endpoint = fetch::check_url(endpoint)?;
        tracing::info!(stream = %id, "following the issuer's Shared Signals stream");
        self.stream = Some((id.to_owned(), endpoint));
        self.ack.clear();
        Ok(())
    }

    /// One poll: acknowledges what was applied, applies what comes. `Ok(more)`.
    async fn poll_once(&mut self, immediately: bool) -> Result<bool, PollError> {
        let Some((stream_id, endpoint)) = self.stream.clone() else { return Err(PollError::Gone) };
        let body = json!({ "ack": self.ack, "maxEvents": 1000, "returnImmediately": immediately });
        let sent = self.client.post(endpoint.clone()).bearer_auth(&self.credential).json(&body).send();
        let response = sent.await.map_err(|source| JwksError::Http { url: endpoint.to_string(), source })?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(PollError::Gone);
        }
        let answer = read_json(response, &endpoint, 200).await?;
        self.ack.clear();
        let Some(inner) = self.inner.upgrade() else { return Ok(false) };
        let sets = answer["sets"].as_object().cloned().unwrap_or_default();
        let mut errors = BTreeMap::new();
        for (jti, set) in &sets {
            match self.verify(set.as_str().unwrap_or_default()).await {
                Ok(event) if event.claims.get("aud").and_then(Value::as_str) == Some(stream_id.as_str()) => {
                    apply(&inner.revoked, &event, self.lifetime);
                }
                Ok(_) => {
                    errors.insert(jti.clone(), "the SET is for another stream");
                }
                Err(e) => {
                    errors.insert(jti.clone(), "invalid SET");
                    tracing::warn!(%jti, error = %e, "a security event from the transmitter did not verify");
                }
            }
            // Acknowledged either way: a SET that does not verify will not verify next time.
            self.ack.push(jti.clone());
        }
        if !errors.is_empty() {
            tracing::warn!(count = errors.len(), "security events refused");
        }
        inner.health().last_contact = Instant::now();
        Ok(answer["moreAvailable"].as_bool().unwrap_or(false))
    }

    async fn verify(&self, set: &str) -> Result<SecurityEvent, TokenError> {
        let tokens = self.verifier.tokens();
        match tokens.verify_security_event(set) {
            Err(TokenError::UnknownKey) => {
                // A rotation: the key set may have a new key (the refetch is throttled).
                let _ = self.verifier.refresh().await;
                self.verifier.tokens().verify_security_event(set)
            }
            other => other,
        }
    }

    /// Polls until the feed is dropped, reconnecting with backoff.
    async fn follow(&mut self) {
        let mut backoff = FIRST_BACKOFF;
        let mut failing = false;
        loop {
            if self.inner.strong_count() == 0 {
                return;
            }
            let started = Instant::now();
            if let Some(inner) = self.inner.upgrade() {
                inner.health().polling_since = Some(started);
            }
            let result = match self.stream {
                Some(_) => self.poll_once(false).await,
                None => self.make_stream().await.map(|()| true).map_err(PollError::Other),
            };
            if let Some(inner) = self.inner.upgrade() {
                inner.health().polling_since = None;
            }
            match result {
                Ok(_) => {
                    if failing {
                        tracing::info!("the Shared Signals stream answers again");
                    }
                    failing = false;
                    backoff = FIRST_BACKOFF;
                }
                Err(PollError::Gone) => {
                    tracing::warn!("the Shared Signals stream is gone: making a new one");
                    self.stream = None;
                }
                Err(PollError::Other(e)) => {
                    if !failing {
                        tracing::warn!(error = %crate::verifier::error_chain(&e), "polling the Shared Signals stream failed: retrying");
                    }
                    failing = true;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

/// Puts the session (or token) an event names into `revoked`.
fn apply(revoked: &RevocationList, event: &SecurityEvent, lifetime: Duration) {
    if event.claims["events"].get(SESSION_REVOKED).is_none() {
        return;
    }
    let subject = &event.claims["sub_id"];
    let id = match subject["format"].as_str() {
        Some("complex") => subject["session"]["id"].as_str(),
        Some("opaque") => subject["id"].as_str(),
        Some("jwt_id") => subject["jti"].as_str(),
        _ => None,
    };
    let Some(id) = id.and_then(|id| Uuid::try_parse(id).ok()) else {
        tracing::warn!(jti = event.jti(), "a session-revoked event without a session keycard-jwks understands");
        return;
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let until = i64::try_from(now.saturating_add(lifetime.as_secs())).unwrap_or(i64::MAX);
    revoked.revoke(id, until);
    tracing::debug!(%id, "session revoked by the issuer");
}

async fn get_json(client: &reqwest::Client, url: &Url, credential: Option<&str>) -> Result<Value, JwksError> {
    let mut request = client.get(url.clone());
    if let Some(credential) = credential {
        request = request.bearer_auth(credential);
    }
    let response = request.send().await.map_err(|source| JwksError::Http { url: url.to_string(), source })?;
    read_json(response, url, 200).await
}

async fn read_json(response: reqwest::Response, url: &Url, expected: u16) -> Result<Value, JwksError> {
    let status = response.status().as_u16();
    if status != expected {
        return Err(JwksError::Status { url: url.to_string(), status });
    }
    let body = response.bytes().await.map_err(|source| JwksError::Http { url: url.to_string(), source })?;
    if body.len() > fetch::MAX_BODY_LEN * 8 {
        return Err(JwksError::Ssf(format!("the answer of {url} is too large")));
    }
    serde_json::from_slice(&body).map_err(|_| JwksError::Ssf(format!("the answer of {url} is not JSON")))
}
