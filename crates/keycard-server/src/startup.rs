//! Building and running the application: one state, one router, one listener.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::http::{HeaderValue, header};
use axum::{Router, extract::DefaultBodyLimit};
use keycard_store::{SigningKeysVersion, Store};
use keycard_token::{Clock, Keys, RevocationList, SystemClock, TokenSettings, Tokens};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::extract::MAX_BODY_BYTES;
use crate::password::Passwords;
use crate::routes;
use crate::settings::Settings;
use crate::signing_keys::{Discovery, KeyRing};
use crate::state::AppState;

/// How often expired revocations are dropped from memory and the database.
const PURGE_INTERVAL: Duration = Duration::from_secs(60);

/// `Strict-Transport-Security` sent when serving HTTPS: two years, subdomains included.
const HSTS: &str = "max-age=63072000; includeSubDomains";

/// The server, bound and ready to run.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    state: AppState,
    request_timeout: Duration,
    tls: Option<tokio_rustls::TlsAcceptor>,
    connections: crate::settings::ConnectionLimits,
    revocation_cursor: i64,
    revocation_resync: Duration,
    audit_writer: tokio::task::JoinHandle<()>,
    /// With asymmetric keys: the ring to poll and the version its keys were read at.
    key_ring: Option<(KeyRing, SigningKeysVersion)>,
    /// With `KEYCARD_METRICS_BIND`: the metrics listener and its address.
    metrics_listener: Option<(TcpListener, SocketAddr)>,
}

/// The token keys and settings the server starts with.
struct Signing {
    keys: Keys,
    tokens: TokenSettings,
    discovery: Option<Discovery>,
    /// The base URL of the endpoints.
    public_url: String,
    ring: Option<(KeyRing, SigningKeysVersion)>,
}

impl Signing {
    /// HS256 (or HS384/512) with the shared secret, as ever; or the asymmetric keys from the
    /// database, made on first start. Fills in the issuer: with an asymmetric algorithm the
    /// public URL unless one is set; with HMAC only the one set (FJE writes no `iss`).
    async fn prepare(settings: &Settings, store: &Store, addr: SocketAddr, now: i64) -> anyhow::Result<Self> {
        let algorithm = settings.signing.algorithm;
        let scheme = if settings.tls.is_some() { "https" } else { "http" };
        let public_url = settings.signing.public_url.clone().unwrap_or_else(|| format!("{scheme}://{addr}"));
        let mut tokens = settings.tokens.clone();
        if algorithm.is_symmetric() {
            let secret = settings.jwt_secret.expose_secret().as_bytes();
            let keys = Keys::hmac(algorithm, secret)?;
            let discovery = tokens.issuer.as_deref().map(|issuer| Discovery::new(issuer, &public_url, algorithm));
            return Ok(Self { keys, tokens, discovery, public_url, ring: None });
        }
        if tokens.issuer.is_none() {
            if settings.signing.public_url.is_none() {
                tracing::warn!(
                    issuer = %public_url,
                    "neither KEYCARD_ISSUER nor KEYCARD_PUBLIC_URL is set: the issuer is the bound address, which \
                     verifiers must reach and every instance must share; set KEYCARD_PUBLIC_URL"
                );
            }
            tokens.issuer = Some(public_url.clone());
        }
        let ring = KeyRing::new(store.clone(), &settings.signing, &tokens)?;
        let (keys, version) = ring.start(now).await.context("loading the signing keys")?;
        tracing::info!(algorithm = algorithm.as_str(), kids = ?keys.kids(), "signing keys ready");
        let discovery = tokens.issuer.as_deref().map(|issuer| Discovery::new(issuer, &public_url, algorithm));
        Ok(Self { keys, tokens, discovery, public_url, ring: Some((ring, version)) })
    }
}

impl Application {
    /// Opens the database, loads revocations, prepares keys and hashing, binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// [`Application::build`] with an injected clock (for expiry tests).
    pub async fn build_with_clock(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        settings.transport.validate().map_err(anyhow::Error::msg)?;
        let options = keycard_store::StoreOptions {
            // A request waiting on the database is answered 503 before the request timeout
            // (unless that is absurdly short).
            timeout: settings
                .database_timeout
                .min(settings.request_timeout.mul_f64(0.9))
                .max(Duration::from_millis(100)),
            max_connections: settings.database_max_connections,
        };
        let database = keycard_store::redact_url(&settings.database_url);
        let store = Store::connect_with(&settings.database_url, options)
            .await
            .with_context(|| format!("opening the database {database}"))?;
        let redis = match &settings.redis_url {
            Some(url) => Some(Arc::new(crate::cluster::Redis::new(url, &settings.redis_prefix)?)),
            None => None,
        };
        tracing::info!(backend = %store.kind(), %database, redis = redis.is_some(), "database ready");
        if let Some(redis) = &redis
            && let Err(e) = redis.ping().await
        {
            tracing::warn!(error = %e, "redis does not answer yet: starting on the database alone");
        }
        let tls = settings.tls.as_ref().map(crate::serve::load_tls).transpose()?;
        let listener = TcpListener::bind(&settings.bind).await.with_context(|| format!("binding {}", settings.bind))?;
        let addr = listener.local_addr()?;
        let metrics_listener = match &settings.metrics_bind {
            Some(bind) => {
                let listener = TcpListener::bind(bind)
                    .await
                    .with_context(|| format!("binding the metrics listener KEYCARD_METRICS_BIND={bind}"))?;
                let metrics_addr = listener.local_addr()?;
                Some((listener, metrics_addr))
            }
            None => None,
        };
        let metrics = metrics_listener.is_some().then(|| Arc::new(crate::metrics::Metrics::new()));
        let mut signing = Signing::prepare(&settings, &store, addr, clock.now()).await?;
        // Cookie mode: every token carries the double-submit value its CSRF cookie holds.
        signing.tokens.csrf_claim |= settings.transport.locations.cookies();
        let ssf = if settings.resource_server_tokens.is_empty() {
            None
        } else {
            // SETs are signed with the published asymmetric key only: an HMAC secret is shared.
            let issuer = (!settings.signing.algorithm.is_symmetric()).then(|| signing.tokens.issuer.clone()).flatten();
            if issuer.is_none() {
                tracing::warn!(
                    "KEYCARD_RESOURCE_SERVER_TOKENS is set with an HMAC algorithm: POST /introspect works, \
                     Shared Signals need an asymmetric key (KEYCARD_JWT_ALGORITHM=ES256, EdDSA or RS256)"
                );
            }
            let long_poll = settings.request_timeout.saturating_sub(Duration::from_secs(2)).max(Duration::from_secs(1));
            Some(Arc::new(crate::ssf::Transmitter::new(
                &settings.resource_server_tokens,
                issuer,
                &signing.public_url,
                long_poll,
            )?))
        };
        let tokens = Arc::new(
            Tokens::new(signing.keys, signing.tokens, clock).cache_verified(settings.signing.verified_token_cache),
        );
        let revoked = Arc::new(RevocationList::new());
        // Cursor first: a revocation made while loading is then seen twice, never missed.
        let revocation_cursor = store.revocation_cursor().await.context("reading the revocation cursor")?;
        store.load_live_revocations(tokens.now(), |page| revoked.extend(page)).await.context("loading revocations")?;
        let passwords = Passwords::new(&settings.argon2)?;
        tracing::info!(revoked = revoked.len(), "loaded revocations");
        let (audit_log, audit_writer) = crate::audit::AuditLog::start(store.clone());
        let state = AppState::new(crate::state::Services {
            audit_log,
            store,
            jwt: crate::auth::config(tokens, revoked.clone(), &settings.transport)?,
            revocations: revoked,
            passwords,
            throttle: settings.throttle,
            rate_limits: Arc::new(
                crate::security::RateLimits::new(settings.rate_limit_per_minute).with_metrics(metrics.clone()),
            ),
            client_ip: Arc::new(settings.client_ip.clone()),
            redis,
            accounts: Arc::new(crate::accounts::AccountCache::new(settings.account_cache_ttl)),
            discovery: signing.discovery,
            metrics,
            ssf,
        });
        Ok(Self {
            listener,
            addr,
            state,
            request_timeout: settings.request_timeout,
            tls,
            connections: settings.connections,
            revocation_cursor,
            revocation_resync: settings.revocation_resync,
            audit_writer,
            key_ring: signing.ring,
            metrics_listener,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The metrics listener's address, when `KEYCARD_METRICS_BIND` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().map(|(_, addr)| *addr)
    }

    /// The shared state.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests and closes the database.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let mut app = router(self.state.clone(), self.request_timeout);
        let purge = tokio::spawn(purge_loop(self.state.clone()));
        let wake = Arc::new(tokio::sync::Notify::new());
        let wakeups = crate::cluster::spawn_wakeups(&self.state.store, self.state.redis.clone(), wake.clone());
        let poll =
            tokio::spawn(poll_revocations(self.state.clone(), self.revocation_cursor, self.revocation_resync, wake));
        let key_poll = self.key_ring.map(|(ring, version)| {
            let tokens = self.state.jwt.tokens().clone();
            tokio::spawn(ring.poll(tokens, version, crate::signing_keys::POLL_INTERVAL))
        });
        if self.tls.is_some() {
            app = app.layer(SetResponseHeaderLayer::overriding(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static(HSTS),
            ));
        }
        let https = if self.tls.is_some() { " (https)" } else { "" };
        let options = crate::serve::ServeOptions {
            limits: self.connections,
            tls: self.tls,
            client_ip: self.state.client_ip.clone(),
            // Requests in flight are answered by then (408 at the request timeout).
            grace: self.request_timeout + Duration::from_secs(1),
        };
        tracing::info!(addr = %self.addr, "keycard listening{https}");
        // One shutdown for both listeners: the public one's future tells the metrics one.
        let (stop_metrics, metrics_stopped) = tokio::sync::watch::channel(false);
        let ssf = self.state.ssf.clone();
        let shutdown = async move {
            shutdown.await;
            let _ = stop_metrics.send(true);
            // Waiting Shared Signals polls answer now rather than hold the shutdown for 25 s.
            if let Some(ssf) = ssf {
                ssf.close();
            }
        };
        let metrics = self.metrics_listener.and_then(|(listener, addr)| {
            let metrics = self.state.metrics.clone()?;
            let mut stopped = metrics_stopped;
            let stopped = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            Some(serve_metrics(listener, addr, metrics, self.state.clone(), self.connections, stopped))
        });
        let public = crate::serve::serve(self.listener, app, options, shutdown);
        let (served, metrics_served) = match metrics {
            Some(metrics) => {
                let (served, metrics_served) = tokio::join!(public, metrics);
                (served, Some(metrics_served))
            }
            None => (public.await, None),
        };
        let served = served.context("serving HTTP");
        if let Some(Err(e)) = metrics_served {
            tracing::error!(error = %e, "serving metrics failed");
        }
        purge.abort();
        poll.abort();
        if let Some(key_poll) = key_poll {
            key_poll.abort();
        }
        if let Some(wakeups) = wakeups {
            wakeups.abort();
        }
        self.state.audit_log.flush().await;
        self.audit_writer.abort();
        self.state.store.close().await;
        tracing::info!("keycard stopped");
        served
    }
}

/// Longest a scrape in flight may take to finish at shutdown.
const METRICS_GRACE: Duration = Duration::from_secs(1);
/// Connections the metrics listener keeps open at most (Prometheus needs one or two).
const METRICS_MAX_CONNECTIONS: usize = 64;

/// Serves `GET /metrics` on its own listener, with the public listener's header-read and idle
/// timeouts but far fewer connections, until `shutdown`. Its requests are not counted in the
/// request metrics, and a scrape reads the gauges then: the pool, the revocation set, the
/// password-hash queue.
fn serve_metrics(
    listener: TcpListener,
    addr: SocketAddr,
    metrics: Arc<crate::metrics::Metrics>,
    state: AppState,
    limits: crate::settings::ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> impl Future<Output = std::io::Result<()>> + Send {
    let sampler: crate::metrics::Sampler = Arc::new(move || {
        let pool = state.store.pool_stats();
        crate::metrics::Gauges {
            revocations: state.revocations.len(),
            hash_queue: state.passwords.queue_depth(),
            hash_slots: state.passwords.slots(),
            pool_in_use: pool.in_use,
            pool_idle: pool.idle,
            pool_max: pool.max,
        }
    });
    let app = crate::metrics::router(metrics, sampler);
    let options = crate::serve::ServeOptions {
        limits: crate::settings::ConnectionLimits {
            max_connections: METRICS_MAX_CONNECTIONS,
            max_connections_per_client: 0,
            ..limits
        },
        tls: None,
        client_ip: Arc::new(crate::client::ClientIpConfig::default()),
        grace: METRICS_GRACE,
    };
    tracing::info!(address = %addr, "metrics listening");
    crate::serve::serve(listener, app, options, shutdown)
}

/// Drops revocations that can no longer match a valid token.
async fn purge_loop(state: AppState) {
    let mut tick = tokio::time::interval(PURGE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = state.now();
        let dropped = state.revocations.purge_expired(now);
        state.rate_limits.shrink();
        match state.store.purge_expired(now).await {
            Ok(rows) => tracing::debug!(dropped, rows, "purged expired revocations"),
            Err(e) => tracing::warn!(error = ?e, "purging expired revocations failed"),
        }
        if state.ssf.is_some()
            && let Err(e) = state.store.purge_ssf(now.saturating_sub(crate::ssf::VERIFICATION_RETENTION)).await
        {
            tracing::warn!(error = ?e, "purging old stream events failed");
        }
    }
}

/// Mirrors revocations recorded by other processes (the CLI, other instances) into memory: at
/// once when woken by a notification (see [`crate::cluster`]), and every
/// `resync` in any case.
async fn poll_revocations(state: AppState, mut cursor: i64, resync: Duration, wake: Arc<tokio::sync::Notify>) {
    let mut tick = tokio::time::interval(resync);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = wake.notified() => {}
        }
        match state.store.revocations_after(cursor).await {
            Ok((revoked, next)) => {
                if !revoked.is_empty() {
                    tracing::debug!(count = revoked.len(), "picked up revocations");
                    state.revocations.extend(revoked);
                    state.events_may_have_arrived();
                    // An account may have been disabled elsewhere.
                    state.accounts.forget_all();
                }
                cursor = next;
                if failing {
                    tracing::info!("reading revocations again");
                    failing = false;
                }
            }
            // One warning per outage, not four a second.
            Err(e) if !failing => {
                tracing::warn!(error = ?e, "reading revocations failed: retrying");
                failing = true;
            }
            Err(_) => {}
        }
    }
}

/// The whole HTTP surface with its middleware. Pure: drive it with `oneshot` in tests.
///
/// Middleware, outermost first: sensitive headers marked before anything can log them; then
/// [`Edge`](crate::middleware::Edge), which sets and propagates the request id, runs the handler
/// in the per-request DEBUG span, answers panics with 500 and slow requests with 408, and adds
/// `nosniff`, `no-store` and JSON bodies for bodiless errors to every response.
pub fn router(state: AppState, request_timeout: Duration) -> Router {
    let request_ids = Arc::new(crate::middleware::RequestIds::new());
    let middleware = ServiceBuilder::new()
        .layer(SetSensitiveRequestHeadersLayer::new([header::AUTHORIZATION, header::COOKIE]))
        .layer(crate::middleware::EdgeLayer::new(request_ids, request_timeout).metrics(state.metrics.clone()));

    let jwt = state.jwt.layer();
    routes::router()
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(jwt)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware)
        .with_state(state)
}
