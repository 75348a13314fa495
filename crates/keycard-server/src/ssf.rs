//! The Shared Signals transmitter (issue 15): who may use it, and what its events look like.
//!
//! Receivers (resource servers) authenticate with one of the bearer credentials of
//! `KEYCARD_RESOURCE_SERVER_TOKENS`; keycard keeps only their SHA-256 and compares digests in
//! constant time. A receiver is known by the hex SHA-256 of its credential: the streams it makes
//! are its own, invisible to the others.
//!
//! Every session revocation (logout, a session ended by its owner, logout of all sessions, an
//! account disabled, a password change ending the other sessions, refresh-token reuse) becomes a
//! CAEP `session-revoked` Security Event Token (RFC 8417), signed with the published asymmetric
//! key. The events are the revocation rows themselves (see `keycard_store::ssf`), so they are as
//! durable as the revocation and shared by every instance on one database.

use std::sync::Arc;

use keycard_store::{SessionEvent, Stream, VerificationEvent};
use keycard_token::Tokens;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use tokio::sync::Notify;

/// CAEP 1.0 §3.1.
pub const SESSION_REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
/// SSF 1.0 §8.1.4.2.
pub const VERIFICATION: &str = "https://schemas.openid.net/secevent/ssf/event-type/verification";
/// RFC 8936 poll delivery.
pub const POLL: &str = "urn:ietf:rfc:8936";
/// The event types a stream can carry (verification events are always delivered).
pub const EVENTS_SUPPORTED: [&str; 1] = [SESSION_REVOKED];
/// Streams one receiver may have at once.
pub const MAX_STREAMS_PER_RECEIVER: i64 = 16;
/// How long an unacknowledged verification event is kept, seconds.
pub const VERIFICATION_RETENTION: i64 = 24 * 3600;
/// The shortest credential accepted (a random 32-character token or longer is the intent).
pub const MIN_CREDENTIAL_LEN: usize = 24;

/// The transmitter's configuration and its wake-up for long polls.
pub struct Transmitter {
    /// SHA-256 of each receiver credential.
    receivers: Vec<[u8; 32]>,
    /// `iss` of the SETs (the tokens' issuer), when SETs can be signed (an asymmetric key).
    issuer: Option<String>,
    /// Base URL of the endpoints.
    public_url: String,
    /// Woken whenever revocations may have been recorded (here or by another process).
    changed: Notify,
    /// Longest wait of a long poll (under the request timeout).
    long_poll: std::time::Duration,
    /// Set when the server stops: long polls answer at once.
    closing: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Transmitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transmitter").field("receivers", &self.receivers.len()).field("issuer", &self.issuer).finish()
    }
}

/// A receiver credential that is too short to be one.
#[derive(Debug, thiserror::Error)]
#[error(
    "KEYCARD_RESOURCE_SERVER_TOKENS: credential {index} is shorter than {MIN_CREDENTIAL_LEN} characters (use e.g. `openssl rand -hex 32`)"
)]
pub struct WeakCredential {
    index: usize,
}

impl Transmitter {
    /// A transmitter for `credentials`; SETs are signed only when `issuer` is given (an
    /// asymmetric signing key with its issuer).
    pub fn new(
        credentials: &[SecretString],
        issuer: Option<String>,
        public_url: &str,
        long_poll: std::time::Duration,
    ) -> Result<Self, WeakCredential> {
        let mut receivers = Vec::with_capacity(credentials.len());
        for (i, credential) in credentials.iter().enumerate() {
            let credential = credential.expose_secret().trim();
            if credential.len() < MIN_CREDENTIAL_LEN {
                return Err(WeakCredential { index: i + 1 });
            }
            receivers.push(sha256(credential.as_bytes()));
        }
        Ok(Self {
            receivers,
            issuer,
            public_url: public_url.trim_end_matches('/').to_owned(),
            changed: Notify::new(),
            long_poll,
            closing: false.into(),
        })
    }

    /// Whether any receiver is configured (nothing is served otherwise).
    pub fn has_receivers(&self) -> bool {
        !self.receivers.is_empty()
    }

    /// The receiver presenting `credential`, as the hex SHA-256 of it; `None` if none matches.
    /// Every configured credential is compared, in constant time.
    pub fn receiver(&self, credential: &str) -> Option<String> {
        let presented = sha256(credential.as_bytes());
        let mut found = subtle::Choice::from(0);
        for known in &self.receivers {
            found |= known.ct_eq(&presented);
        }
        bool::from(found).then(|| hex(&presented))
    }

    /// The SET issuer, when the stream endpoints are available (an asymmetric key).
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// An endpoint's URL.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.public_url)
    }

    /// Longest wait of a long poll.
    pub fn long_poll(&self) -> std::time::Duration {
        self.long_poll
    }

    /// The server is stopping: waiting polls answer now, new ones do not wait.
    pub fn close(&self) {
        self.closing.store(true, std::sync::atomic::Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// Whether the server is stopping (see [`Transmitter::close`]).
    pub fn is_closing(&self) -> bool {
        self.closing.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Tells waiting polls that events may have arrived.
    pub fn wake(&self) {
        self.changed.notify_waiters();
    }

    /// The wake-up long polls wait on.
    pub fn changed(&self) -> &Notify {
        &self.changed
    }

    /// `/.well-known/ssf-configuration` (SSF 1.0 §7.1).
    pub fn configuration(&self, issuer: &str) -> Value {
        json!({
            "spec_version": "1_0",
            "issuer": issuer,
            "jwks_uri": self.url("/.well-known/jwks.json"),
            "delivery_methods_supported": [POLL],
            "configuration_endpoint": self.url("/ssf/streams"),
            "status_endpoint": self.url("/ssf/status"),
            "verification_endpoint": self.url("/ssf/verify"),
            "authorization_schemes": [{ "spec_urn": "urn:ietf:rfc:6750" }],
            "default_subjects": "ALL",
        })
    }

    /// A stream's configuration as SSF 1.0 §8.1.1 describes it.
    pub fn stream_config(&self, issuer: &str, stream: &Stream) -> Value {
        let delivered: Vec<&str> =
            EVENTS_SUPPORTED.iter().copied().filter(|e| stream.events_requested.iter().any(|r| r == e)).collect();
        let mut config = json!({
            "stream_id": stream.id.to_string(),
            "iss": issuer,
            "aud": stream.id.to_string(),
            "delivery": { "method": POLL, "endpoint_url": self.url(&format!("/ssf/poll/{}", stream.id)) },
            "events_supported": EVENTS_SUPPORTED,
            "events_requested": stream.events_requested,
            "events_delivered": delivered,
            "min_verification_interval": 0,
        });
        if let Some(description) = &stream.description {
            config["description"] = description.as_str().into();
        }
        config
    }

    /// The SET announcing `event` on `stream`, and its jti.
    pub fn session_revoked_set(
        &self,
        tokens: &Tokens,
        issuer: &str,
        stream: &Stream,
        event: &SessionEvent,
        now: i64,
    ) -> Result<(String, String), keycard_token::TokenError> {
        let jti = session_jti(event.seq, stream);
        let initiating_entity = match event.reason.as_deref() {
            Some("logout" | "ended by owner" | "password change") => "user",
            Some("refresh token reuse") => "policy",
            Some(r) if r.contains("disable") => "admin",
            _ => "system",
        };
        let mut body = json!({ "event_timestamp": event.revoked_at, "initiating_entity": initiating_entity });
        if let Some(reason) = &event.reason {
            body["reason_admin"] = json!({ "en": reason });
        }
        let claims = json!({
            "iss": issuer,
            "jti": jti,
            "iat": now,
            "aud": stream.id.to_string(),
            "txn": event.seq.to_string(),
            "sub_id": {
                "format": "complex",
                "session": { "format": "opaque", "id": event.session.to_string() },
                "user": { "format": "iss_sub", "iss": issuer, "sub": event.username },
            },
            "events": { SESSION_REVOKED: body },
        });
        Ok((sign(tokens, claims)?, jti))
    }

    /// The SET of a verification event on `stream`, and its jti.
    pub fn verification_set(
        &self,
        tokens: &Tokens,
        issuer: &str,
        stream: &Stream,
        event: &VerificationEvent,
        now: i64,
    ) -> Result<(String, String), keycard_token::TokenError> {
        let jti = event.id.to_string();
        let mut body = json!({});
        if let Some(state) = &event.state {
            body["state"] = state.as_str().into();
        }
        let claims = json!({
            "iss": issuer,
            "jti": jti,
            "iat": now,
            "aud": stream.id.to_string(),
            "sub_id": { "format": "opaque", "id": stream.id.to_string() },
            "events": { VERIFICATION: body },
        });
        Ok((sign(tokens, claims)?, jti))
    }
}

/// What an acknowledged jti names on `stream`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acked {
    /// A session event, by its revocation `seq`.
    Session(i64),
    /// A verification event.
    Verification(keycard_token::Uuid),
}

/// The jti of session event `seq` on `stream`: unique per SET (the same revocation on two
/// streams makes two SETs).
pub fn session_jti(seq: i64, stream: &Stream) -> String {
    format!("{seq}-{}", stream.id.simple())
}

/// Reads back a jti this transmitter wrote for `stream`; `None` for anything else.
pub fn parse_jti(jti: &str, stream: &Stream) -> Option<Acked> {
    if let Some((seq, id)) = jti.split_once('-')
        && id == stream.id.simple().to_string()
    {
        return seq.parse().ok().filter(|s: &i64| *s > 0).map(Acked::Session);
    }
    keycard_token::Uuid::try_parse(jti).ok().map(Acked::Verification)
}

/// Signs `claims` (always an object here) as a SET.
fn sign(tokens: &Tokens, claims: Value) -> Result<String, keycard_token::TokenError> {
    match claims {
        Value::Object(map) => tokens.sign_security_event(&map),
        _ => Err(keycard_token::TokenError::Signing),
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut out = [0; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The transmitter, shared.
pub type SharedTransmitter = Arc<Transmitter>;
