//! The one application state the handlers share.
//!
//! It bundles the services (store, tokens, hashing, limits, audit log, Redis, account cache)
//! and knows nothing of HTTP responses: its methods fail with [`StoreError`], which
//! [`crate::error`] maps to a status.

use std::sync::Arc;

use keycard_axum::JwtConfig;
use keycard_store::{Store, StoreError};
use keycard_token::{RevocationList, Tokens};

use crate::accounts::AccountCache;
use crate::audit::AuditLog;
use crate::auth::Session;
use crate::client::{ClientInfo, ClientIpConfig};
use crate::cluster::Redis;
use crate::metrics::{LoginOutcome, Metrics, Throttled};
use crate::password::Passwords;
use crate::security::RateLimits;

/// The state every handler shares: one `Arc`, so the router's per-request clone is one
/// reference count, not one per service. Dereferences to [`Services`].
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    /// The state holding `services`.
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// What the handlers share.
pub struct Services {
    /// Accounts, sessions, revocations.
    pub store: Store,
    /// The extractors' configuration (installed on the router as a layer).
    pub jwt: JwtConfig<Session>,
    /// Revoked token and session ids, consulted by the extractors' revocation hook.
    pub revocations: Arc<RevocationList>,
    /// Password hashing.
    pub passwords: Passwords,
    /// Per-account throttling of failed logins.
    pub throttle: keycard_store::ThrottlePolicy,
    /// Per-address limits on the credential endpoints.
    pub rate_limits: Arc<RateLimits>,
    /// Where client addresses come from.
    pub client_ip: Arc<ClientIpConfig>,
    /// Security events, written off the request path.
    pub audit_log: AuditLog,
    /// Redis, when configured: revocation fan-out and login-failure counters.
    pub redis: Option<Arc<Redis>>,
    /// What `GET /user` answered lately.
    pub accounts: Arc<AccountCache>,
    /// The discovery document, when tokens carry an `iss` (asymmetric keys or `KEYCARD_ISSUER`).
    pub discovery: Option<crate::signing_keys::Discovery>,
    /// The Prometheus metrics, when `KEYCARD_METRICS_BIND` is set.
    pub metrics: Option<Arc<Metrics>>,
    /// The Shared Signals transmitter and introspection, when resource servers are configured.
    pub ssf: Option<Arc<crate::ssf::Transmitter>>,
}

impl AppState {
    /// The token issuer and verifier.
    pub fn tokens(&self) -> &Tokens {
        self.jwt.tokens()
    }

    /// Now, by the token clock.
    pub fn now(&self) -> i64 {
        self.jwt.tokens().now()
    }

    /// Records a security event (queued for the audit writer; see [`crate::audit`]), and counts
    /// it in the metrics when it is one they count (successful logins, refresh-token reuse,
    /// lock-outs started; failed logins through [`AppState::login_failed`]).
    pub async fn audit(
        &self,
        kind: keycard_store::AuditKind,
        username: Option<&str>,
        client: &ClientInfo,
        session: Option<keycard_token::Uuid>,
        detail: Option<serde_json::Value>,
    ) {
        if let Some(metrics) = &self.metrics {
            match kind {
                keycard_store::AuditKind::LoginSucceeded => metrics.login(LoginOutcome::Success),
                keycard_store::AuditKind::RefreshReuse => metrics.refresh_reuse(),
                keycard_store::AuditKind::ThrottlingStarted => metrics.lockout_started(),
                _ => {}
            }
        }
        let event = keycard_store::AuditEvent {
            username: username.map(str::to_owned),
            client_addr: client.addr_string(),
            user_agent: client.user_agent.clone(),
            session_id: session.map(|s| s.to_string()),
            detail,
            ..keycard_store::AuditEvent::new(kind, self.now())
        };
        self.audit_log.record(event).await;
    }

    /// Records a failed login of `username` (audited as `login_failed`, whatever the reason, so
    /// the audit log does not tell them apart either); `password_matched`: the password was
    /// right but the account is not active (counted as `disabled` in the metrics, else
    /// `bad_credentials`).
    pub async fn login_failed(&self, username: &str, client: &ClientInfo, password_matched: bool) {
        if let Some(metrics) = &self.metrics {
            metrics.login(if password_matched { LoginOutcome::Disabled } else { LoginOutcome::BadCredentials });
        }
        self.audit(keycard_store::AuditKind::LoginFailed, Some(username), client, None, None).await;
    }

    /// Mirrors revocations just committed into this instance's list and tells the other
    /// instances (through Redis when configured; PostgreSQL's `NOTIFY` went with the commit).
    pub fn revoked(&self, revoked: keycard_store::Revoked) {
        if revoked.is_empty() {
            return;
        }
        self.revocations.extend(revoked);
        self.events_may_have_arrived();
        if let Some(redis) = &self.redis {
            let redis = redis.clone();
            // Off the request path: the others' periodic read covers a lost message.
            tokio::spawn(async move {
                let _ = redis.publish_revocation().await;
            });
        }
    }

    /// Wakes the Shared Signals polls waiting for events.
    pub fn events_may_have_arrived(&self) {
        if let Some(ssf) = &self.ssf {
            ssf.wake();
        }
    }

    /// Until when logins of this account name are refused, if they are now (the caller refuses
    /// the request then: counted as a lock-out in the metrics). With Redis, the database is
    /// consulted too: it holds what was counted while Redis was unreachable.
    pub async fn login_locked_until(&self, username: &keycard_store::Username) -> Result<Option<i64>, StoreError> {
        let now = self.now();
        let in_database = self.store.login_locked_until(username.key(), now);
        let until = match &self.redis {
            None => in_database.await?,
            Some(redis) => {
                let (in_redis, in_database) = tokio::join!(redis.login_locked_until(username.key(), now), in_database);
                in_redis.unwrap_or(None).max(in_database?)
            }
        };
        if until.is_some()
            && let Some(metrics) = &self.metrics
        {
            metrics.throttle(Throttled::Lockout);
        }
        Ok(until)
    }

    /// Forgets the failed attempts of an account name (after a successful login).
    pub async fn clear_failed_attempts(&self, username: &keycard_store::Username) -> Result<(), StoreError> {
        if let Some(redis) = &self.redis {
            let _ = redis.clear_login_failures(username.key()).await;
        }
        self.store.clear_login_failures(username.key()).await?;
        Ok(())
    }

    /// Counts a failed password check for `username` (login or password change), and records
    /// the start of throttling. The count is shared by every instance: in Redis when it is
    /// configured and answers, else in the database.
    pub async fn record_failed_attempt(
        &self,
        username: &keycard_store::Username,
        client: &ClientInfo,
    ) -> Result<(), StoreError> {
        let now = self.now();
        let in_redis = match &self.redis {
            Some(redis) => redis.record_login_failure(username.key(), &self.throttle, now).await.ok(),
            None => None,
        };
        let state = match in_redis {
            Some(state) => state,
            None => self.store.record_login_failure(username.key(), &self.throttle, now).await?,
        };
        if self.throttle.starts_throttling(&state) {
            tracing::warn!(username = ?username.as_str(), client = %client, "failed logins: throttling started");
            let detail = serde_json::json!({ "failures": state.consecutive, "locked_until": state.locked_until });
            self.audit(
                keycard_store::AuditKind::ThrottlingStarted,
                Some(username.as_str()),
                client,
                None,
                Some(detail),
            )
            .await;
        }
        Ok(())
    }
}
