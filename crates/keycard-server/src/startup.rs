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

/// The state every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Accounts, sessions, revocations.
    pub store: Store,
    /// Token verification and the revocation list, as the extractors see them.
    pub auth: JwtAuth,
    /// Password hashing.
    pub passwords: Passwords,
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
}

/// The server, bound and ready to run.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    state: AppState,
    request_timeout: Duration,
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
        revoked.extend(store.live_revocations(tokens.now()).await.context("loading revocations")?);
        let passwords = Passwords::new(&settings.argon2)?;
        let listener = TcpListener::bind(&settings.bind).await.with_context(|| format!("binding {}", settings.bind))?;
        let addr = listener.local_addr()?;
        tracing::info!(revoked = revoked.len(), "loaded revocations");
        let state = AppState { store, auth: JwtAuth::new(tokens, revoked), passwords };
        Ok(Self { listener, addr, state, request_timeout: settings.request_timeout })
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
        let app = router(self.state.clone(), self.request_timeout);
        let purge = tokio::spawn(purge_loop(self.state.clone()));
        tracing::info!(addr = %self.addr, "keycard listening");
        let served = axum::serve(self.listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(shutdown)
            .await;
        purge.abort();
        self.state.store.close().await;
        tracing::info!("keycard stopped");
        served.context("serving HTTP")
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
        match state.store.purge_expired(now).await {
            Ok(rows) => tracing::debug!(dropped, rows, "purged expired revocations"),
            Err(e) => tracing::warn!(error = ?e, "purging expired revocations failed"),
        }
    }
}

/// The whole HTTP surface with its middleware. Pure: drive it with `oneshot` in tests.
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
            crate::error::ApiError::Internal(anyhow::anyhow!("panic")).into_response_owned()
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
