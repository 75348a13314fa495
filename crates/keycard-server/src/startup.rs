//! Building and running the application: one state, one router, one listener.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::FromRef;
use axum::http::{HeaderName, HeaderValue, Request, Response, StatusCode, header};
use axum::middleware;
use axum::{Router, extract::DefaultBodyLimit};
use keycard_axum::JwtAuth;
use keycard_store::Store;
use keycard_token::{Clock, Keys, RevocationList, SystemClock, Tokens};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::extract::MAX_BODY_BYTES;
use crate::password::Passwords;
use crate::routes;
use crate::settings::Settings;

/// How often expired revocations are dropped from memory and the database.
const PURGE_INTERVAL: Duration = Duration::from_secs(60);

/// How often revocations recorded by other processes (the CLI, other instances) are picked up.
const REVOCATION_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// `Strict-Transport-Security` sent when serving HTTPS: two years, subdomains included.
const HSTS: &str = "max-age=63072000; includeSubDomains";

/// The state every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Accounts, sessions, revocations.
    pub store: Store,
    /// Token verification and the revocation list, as the extractors see them.
    pub auth: JwtAuth,
    /// Password hashing.
    pub passwords: Passwords,
    /// Per-account throttling of failed logins.
    pub throttle: keycard_store::ThrottlePolicy,
    /// Per-address limits on the credential endpoints.
    pub rate_limits: Arc<crate::security::RateLimits>,
    /// Where client addresses come from.
    pub client_ip: Arc<crate::extract::ClientIpConfig>,
    /// Security events, written off the request path.
    pub audit_log: crate::audit::AuditLog,
}

impl FromRef<AppState> for JwtAuth {
    fn from_ref(state: &AppState) -> JwtAuth {
        state.auth.clone()
    }
}

impl AppState {
    /// The token issuer and verifier.
    pub fn tokens(&self) -> &Tokens {
        self.auth.tokens()
    }

    /// Now, by the token clock.
    pub fn now(&self) -> i64 {
        self.auth.tokens().now()
    }

    /// Records a security event (queued for the audit writer; see [`crate::audit`]).
    pub async fn audit(
        &self,
        kind: keycard_store::AuditKind,
        username: Option<&str>,
        client: &crate::extract::ClientInfo,
        session: Option<keycard_token::Uuid>,
        detail: Option<serde_json::Value>,
    ) {
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

    /// Counts a failed password check for `username` (login or password change), and records
    /// the start of throttling.
    pub async fn record_failed_attempt(
        &self,
        username: &keycard_store::Username,
        client: &crate::extract::ClientInfo,
    ) -> Result<(), crate::error::ApiError> {
        let state = self.store.record_login_failure(username.key(), &self.throttle, self.now()).await?;
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

/// The server, bound and ready to run.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    state: AppState,
    request_timeout: Duration,
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
    revocation_cursor: i64,
    audit_writer: tokio::task::JoinHandle<()>,
}

impl Application {
    /// Opens the database, loads revocations, prepares keys and hashing, binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// [`Application::build`] with an injected clock (for expiry tests).
    pub async fn build_with_clock(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let keys = Keys::hmac_sha256(settings.jwt_secret.expose_secret().as_bytes())?;
        let store = Store::connect(&settings.database_url)
            .await
            .with_context(|| format!("opening the database {}", settings.database_url))?;
        let tokens = Arc::new(Tokens::new(keys, settings.tokens, clock));
        let revoked = Arc::new(RevocationList::new());
        // Cursor first: a revocation made while loading is then seen twice, never missed.
        let revocation_cursor = store.revocation_cursor().await.context("reading the revocation cursor")?;
        store.load_live_revocations(tokens.now(), |page| revoked.extend(page)).await.context("loading revocations")?;
        let passwords = Passwords::new(&settings.argon2)?;
        let tls = match &settings.tls {
            Some(files) => {
                Some(axum_server::tls_rustls::RustlsConfig::from_pem_file(&files.cert, &files.key).await.with_context(
                    || format!("loading TLS certificate {} and key {}", files.cert.display(), files.key.display()),
                )?)
            }
            None => None,
        };
        let listener = TcpListener::bind(&settings.bind).await.with_context(|| format!("binding {}", settings.bind))?;
        let addr = listener.local_addr()?;
        tracing::info!(revoked = revoked.len(), "loaded revocations");
        let (audit_log, audit_writer) = crate::audit::AuditLog::start(store.clone());
        let state = AppState {
            audit_log,
            store,
            auth: JwtAuth::new(tokens, revoked),
            passwords,
            throttle: settings.throttle,
            rate_limits: Arc::new(crate::security::RateLimits::new(settings.rate_limit_per_minute)),
            client_ip: Arc::new(settings.client_ip.clone()),
        };
        Ok(Self {
            listener,
            addr,
            state,
            request_timeout: settings.request_timeout,
            tls,
            revocation_cursor,
            audit_writer,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shared state.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests and closes the database.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let mut app = router(self.state.clone(), self.request_timeout);
        let purge = tokio::spawn(purge_loop(self.state.clone()));
        let poll = tokio::spawn(poll_revocations(self.state.clone(), self.revocation_cursor));
        let served = match self.tls {
            None => {
                tracing::info!(addr = %self.addr, "keycard listening");
                axum::serve(self.listener, app.into_make_service_with_connect_info::<SocketAddr>())
                    .with_graceful_shutdown(shutdown)
                    .await
                    .context("serving HTTP")
            }
            Some(config) => {
                app = app.layer(SetResponseHeaderLayer::overriding(
                    header::STRICT_TRANSPORT_SECURITY,
                    HeaderValue::from_static(HSTS),
                ));
                let handle = axum_server::Handle::new();
                let stopper = handle.clone();
                tokio::spawn(async move {
                    shutdown.await;
                    stopper.graceful_shutdown(Some(Duration::from_secs(30)));
                });
                tracing::info!(addr = %self.addr, "keycard listening (https)");
                axum_server::from_tcp_rustls(self.listener.into_std()?, config)?
                    .handle(handle)
                    .serve(app.into_make_service_with_connect_info::<SocketAddr>())
                    .await
                    .context("serving HTTPS")
            }
        };
        purge.abort();
        poll.abort();
        self.state.audit_log.flush().await;
        self.audit_writer.abort();
        self.state.store.close().await;
        tracing::info!("keycard stopped");
        served
    }
}

/// Drops revocations that can no longer match a valid token.
async fn purge_loop(state: AppState) {
    let mut tick = tokio::time::interval(PURGE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = state.now();
        let dropped = state.auth.revocations().purge_expired(now);
        state.rate_limits.shrink();
        match state.store.purge_expired(now).await {
            Ok(rows) => tracing::debug!(dropped, rows, "purged expired revocations"),
            Err(e) => tracing::warn!(error = ?e, "purging expired revocations failed"),
        }
    }
}

/// Mirrors revocations recorded by other processes (the CLI, other instances) into memory, so a
/// token revoked elsewhere is refused here within a poll interval.
async fn poll_revocations(state: AppState, mut cursor: i64) {
    let mut tick = tokio::time::interval(REVOCATION_POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match state.store.revocations_after(cursor).await {
            Ok((revoked, next)) => {
                if !revoked.is_empty() {
                    tracing::debug!(count = revoked.len(), "picked up revocations");
                    state.auth.revocations().extend(revoked);
                }
                cursor = next;
            }
            Err(e) => tracing::warn!(error = ?e, "polling revocations failed"),
        }
    }
}

/// The whole HTTP surface with its middleware. Pure: drive it with `oneshot` in tests.
///
/// Middleware, outermost first: sensitive headers marked before anything can log them; request
/// id set, then the per-request DEBUG line; request id copied to the response; panics caught as
/// 500; `nosniff` and `no-store`; JSON bodies for bodiless errors; the request timeout (408).
pub fn router(state: AppState, request_timeout: Duration) -> Router {
    let x_request_id = HeaderName::from_static("x-request-id");
    let middleware = ServiceBuilder::new()
        .layer(SetSensitiveRequestHeadersLayer::new([header::AUTHORIZATION, header::COOKIE]))
        .layer(SetRequestIdLayer::new(x_request_id.clone(), MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<_>| {
                    let request_id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
                    tracing::debug_span!("request", method = %request.method(), path = %request.uri().path(), request_id)
                })
                .on_request(())
                .on_response(|response: &Response<_>, latency: Duration, _span: &Span| {
                    tracing::debug!(status = response.status().as_u16(), latency_us = latency.as_micros() as u64, "request");
                })
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::new(x_request_id))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("handler panicked");
            // Outside the header layers below (they need axum's body type), so set them here.
            let mut response = crate::error::ApiError::Internal(anyhow::anyhow!("panic")).into_response_owned();
            response.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .layer(middleware::map_response(json_error_bodies))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, request_timeout));

    routes::router()
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware)
        .with_state(state)
}

/// Gives bodiless error responses produced by middleware (timeouts, limits) a `{"msg": ...}` body.
async fn json_error_bodies(response: axum::response::Response) -> axum::response::Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || response.headers().contains_key(header::CONTENT_TYPE)
    {
        return response;
    }
    let msg = status.canonical_reason().unwrap_or("Error");
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let body = serde_json::json!({ "msg": msg }).to_string();
    axum::response::Response::from_parts(parts, axum::body::Body::from(body))
}
