//! Prometheus metrics, served on a listener of their own (`KEYCARD_METRICS_BIND`), never on the
//! public port.
//!
//! One [`Metrics`] per [`Application`](crate::Application) (a registry of its own, no global
//! recorder: two servers in one process, as in the tests, count apart). It exists only when
//! metrics are on; off, the request path does not even read the clock for them.
//!
//! What is counted where:
//! - HTTP requests by route *template* (axum's `MatchedPath`, so `/user/sessions/{id}`, never
//!   the id; `unmatched` for anything no route matched), method (the standard ones, else
//!   `other`) and status, with a latency histogram: in [`crate::middleware`], which sees every
//!   answer, 408s and panics included;
//! - logins by outcome, refresh-token reuse and lock-outs started: where the server audits them
//!   ([`crate::state`]);
//! - rate-limited requests: in [`crate::security::RateLimits`];
//! - the revocation set, the password-hash queue and the database pool: read when scraped
//!   ([`Gauges`], filled in by [`crate::startup`]).
//!
//! On the request path the counters of fixed label sets are plain atomics held here; the
//! per-route ones take `prometheus-client`'s family read lock (a map lookup; a write lock only
//! the first time a label set is seen) and, for the histogram, its per-series mutex. A scrape
//! holds each of those only while it formats that one series.
//!
//! The names, types and labels are documented in the README ("Metrics").

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::MatchedPath;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Upper bounds of the latency histogram's buckets, in seconds: from a token check (tens of
/// microseconds) through a login (an Argon2 hash, tens of milliseconds) to the request timeout.
pub const LATENCY_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The route label of requests no route matched.
pub const UNMATCHED: &str = "unmatched";

/// The `Content-Type` of a scrape: the Prometheus text format 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// How a login ended (`keycard_logins_total{outcome}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoginOutcome {
    /// Tokens issued.
    Success,
    /// Unknown user or wrong password.
    BadCredentials,
    /// The right password for a disabled account.
    Disabled,
    /// Refused without a password check: the account name is locked out after failed attempts.
    Locked,
    /// Refused by the per-address rate limit of `/login`.
    RateLimited,
}

impl LoginOutcome {
    const ALL: [Self; 5] = [Self::Success, Self::BadCredentials, Self::Disabled, Self::Locked, Self::RateLimited];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::BadCredentials => "bad_credentials",
            Self::Disabled => "disabled",
            Self::Locked => "locked",
            Self::RateLimited => "rate_limited",
        }
    }
}

/// Why a request was refused 429 (`keycard_throttled_requests_total{reason, endpoint}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Throttled {
    /// The per-address rate limit of `POST /login`.
    RateLimitLogin,
    /// The per-address rate limit of `POST /register`.
    RateLimitRegister,
    /// The per-address rate limit of `POST /token/refresh`.
    RateLimitRefresh,
    /// An account name locked out after failed password checks (a login, or a password change,
    /// which checks the same password and shares the lock-out).
    Lockout,
}

impl Throttled {
    const ALL: [Self; 4] = [Self::RateLimitLogin, Self::RateLimitRegister, Self::RateLimitRefresh, Self::Lockout];

    /// The `reason` and `endpoint` label values.
    pub fn labels(self) -> (&'static str, &'static str) {
        match self {
            Self::RateLimitLogin => ("rate_limit", "login"),
            Self::RateLimitRegister => ("rate_limit", "register"),
            Self::RateLimitRefresh => ("rate_limit", "refresh"),
            Self::Lockout => ("lockout", "login"),
        }
    }
}

/// A route template (or [`UNMATCHED`]) as a label value. Axum's `MatchedPath` is kept as it is
/// (cloning it is a reference count), so counting a request allocates nothing; equal and hashed
/// by the text.
#[derive(Debug, Clone)]
pub enum Route {
    /// The template axum matched.
    Matched(MatchedPath),
    /// A fixed name ([`UNMATCHED`]).
    Named(&'static str),
}

impl Route {
    /// The label value.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Matched(path) => path.as_str(),
            Self::Named(name) => name,
        }
    }
}

impl PartialEq for Route {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Route {}

impl std::hash::Hash for Route {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl EncodeLabelValue for Route {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    route: Route,
    method: &'static str,
    status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct LatencyLabels {
    route: Route,
    method: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ThrottleLabels {
    reason: &'static str,
    endpoint: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

type LatencyFamily = Family<LatencyLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// What is read when scraped rather than counted as it happens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Revoked token and session ids held in memory.
    pub revocations: usize,
    /// Password hashes waiting for a hashing slot or running in one.
    pub hash_queue: usize,
    /// Hashing slots (hashes that may run at once).
    pub hash_slots: usize,
    /// Database connections in use.
    pub pool_in_use: u32,
    /// Database connections open and idle.
    pub pool_idle: u32,
    /// The most database connections the pool opens.
    pub pool_max: u32,
}

/// Reads the [`Gauges`] at scrape time.
pub type Sampler = Arc<dyn Fn() -> Gauges + Send + Sync>;

/// The server's metrics: see the [module docs](self).
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: LatencyFamily,
    logins: [Counter; LoginOutcome::ALL.len()],
    throttled: [Counter; Throttled::ALL.len()],
    refresh_reuse: Counter,
    lockouts: Counter,
    revocations: Gauge,
    hash_queue: Gauge,
    hash_slots: Gauge,
    pool_in_use: Gauge,
    pool_idle: Gauge,
    pool_max: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric registered (the labelled business counters at zero, so that `rate()` has a
    /// start), and `keycard_build_info` set.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("keycard");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            requests.clone(),
        );
        let latency: LatencyFamily = Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's arrival at the router to its response, by route template and method",
            latency.clone(),
        );

        let logins_family = Family::<OutcomeLabels, Counter>::default();
        registry.register("logins", "Logins by outcome", logins_family.clone());
        let logins =
            LoginOutcome::ALL.map(|o| logins_family.get_or_create_owned(&OutcomeLabels { outcome: o.as_str() }));

        let throttled_family = Family::<ThrottleLabels, Counter>::default();
        registry.register(
            "throttled_requests",
            "Requests refused 429: per-address rate limits and account lock-outs",
            throttled_family.clone(),
        );
        let throttled = Throttled::ALL.map(|t| {
            let (reason, endpoint) = t.labels();
            throttled_family.get_or_create_owned(&ThrottleLabels { reason, endpoint })
        });

        let refresh_reuse = Counter::default();
        registry.register(
            "refresh_token_reuse",
            "Refresh tokens presented again after rotation (each ends its session)",
            refresh_reuse.clone(),
        );
        let lockouts = Counter::default();
        registry.register("login_lockouts", "Account lock-outs started by failed password checks", lockouts.clone());

        let revocations = Gauge::default();
        registry.register("revocations", "Revoked token and session ids held in memory", revocations.clone());
        let hash_queue = Gauge::default();
        registry.register(
            "password_hash_queue_depth",
            "Password hashes waiting for a hashing slot or running in one",
            hash_queue.clone(),
        );
        let hash_slots = Gauge::default();
        registry.register("password_hash_slots", "Password hashes that may run at once", hash_slots.clone());

        let pool = Family::<StateLabels, Gauge>::default();
        registry.register("db_pool_connections", "Database connections by state (in_use, idle)", pool.clone());
        let pool_in_use = pool.get_or_create_owned(&StateLabels { state: "in_use" });
        let pool_idle = pool.get_or_create_owned(&StateLabels { state: "idle" });
        let pool_max = Gauge::default();
        registry.register("db_pool_max_connections", "The most database connections the pool opens", pool_max.clone());

        let build = Family::<BuildLabels, Gauge>::default();
        registry.register("build_info", "Always 1; the labels describe the build", build.clone());
        build.get_or_create(&BuildLabels { version: env!("CARGO_PKG_VERSION") }).set(1);

        Self {
            registry,
            requests,
            latency,
            logins,
            throttled,
            refresh_reuse,
            lockouts,
            revocations,
            hash_queue,
            hash_slots,
            pool_in_use,
            pool_idle,
            pool_max,
        }
    }

    /// The route label of a request: its template, or [`UNMATCHED`].
    pub fn route(matched: Option<&MatchedPath>) -> Route {
        match matched {
            Some(path) => Route::Matched(path.clone()),
            None => Route::Named(UNMATCHED),
        }
    }

    /// Counts one answered request and its latency.
    pub fn request(&self, route: Route, method: &'static str, status: StatusCode, latency: Duration) {
        self.latency.get_or_create(&LatencyLabels { route: route.clone(), method }).observe(latency.as_secs_f64());
        self.requests.get_or_create(&RequestLabels { route, method, status: status.as_u16() }).inc();
    }

    /// Counts a login's outcome.
    pub fn login(&self, outcome: LoginOutcome) {
        if let Some(i) = LoginOutcome::ALL.iter().position(|o| *o == outcome) {
            self.logins[i].inc();
        }
        if outcome == LoginOutcome::RateLimited {
            self.throttle(Throttled::RateLimitLogin);
        }
    }

    /// Counts a request refused 429 (a rate-limited login is counted through [`Metrics::login`]).
    pub fn throttle(&self, why: Throttled) {
        if let Some(i) = Throttled::ALL.iter().position(|t| *t == why) {
            self.throttled[i].inc();
        }
        if why == Throttled::Lockout {
            self.login(LoginOutcome::Locked);
        }
    }

    /// Counts a refresh-token reuse detection.
    pub fn refresh_reuse(&self) {
        self.refresh_reuse.inc();
    }

    /// Counts the start of an account lock-out.
    pub fn lockout_started(&self) {
        self.lockouts.inc();
    }

    /// The Prometheus text exposition of every metric, after setting the [`Gauges`].
    pub fn render(&self, gauges: &Gauges) -> Result<String, std::fmt::Error> {
        let set = |gauge: &Gauge, value: u64| {
            gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
        };
        set(&self.revocations, gauges.revocations as u64);
        set(&self.hash_queue, gauges.hash_queue as u64);
        set(&self.hash_slots, gauges.hash_slots as u64);
        set(&self.pool_in_use, gauges.pool_in_use.into());
        set(&self.pool_idle, gauges.pool_idle.into());
        set(&self.pool_max, gauges.pool_max.into());
        let mut text = String::with_capacity(8 * 1024);
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// The method label: the standard methods by name, anything else `other` (a client must not be
/// able to make up label values).
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// The metrics listener's routes: `GET /metrics`; anything else 404 (405 for another method),
/// in keycard's `{"msg": ...}` format.
pub fn router(metrics: Arc<Metrics>, sampler: Sampler) -> Router {
    let scrape = move || {
        let metrics = Arc::clone(&metrics);
        let sampler = Arc::clone(&sampler);
        async move { scrape(&metrics, &sampler) }
    };
    Router::new().route("/metrics", get(scrape)).fallback(not_found).method_not_allowed_fallback(method_not_allowed)
}

fn scrape(metrics: &Metrics, sampler: &Sampler) -> Response {
    match metrics.render(&sampler()) {
        Ok(text) => {
            let mut response = text.into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(_) => {
            tracing::error!("formatting the metrics failed");
            json_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
        }
    }
}

fn json_error(status: StatusCode, msg: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "msg": msg }))).into_response()
}

async fn not_found() -> Response {
    json_error(StatusCode::NOT_FOUND, "Not found")
}

async fn method_not_allowed() -> Response {
    json_error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line_value(text: &str, series: &str) -> Option<f64> {
        text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn a_fresh_registry_shows_every_family_with_zeroed_business_counters() {
        let text = Metrics::new().render(&Gauges { pool_max: 4, hash_slots: 2, ..Gauges::default() }).unwrap();
        assert_eq!(line_value(&text, r#"keycard_build_info{version="0.1.0"}"#), Some(1.0), "{text}");
        for outcome in LoginOutcome::ALL {
            let series = format!(r#"keycard_logins_total{{outcome="{}"}}"#, outcome.as_str());
            assert_eq!(line_value(&text, &series), Some(0.0), "{series}\n{text}");
        }
        assert_eq!(
            line_value(&text, r#"keycard_throttled_requests_total{reason="lockout",endpoint="login"}"#),
            Some(0.0)
        );
        assert_eq!(line_value(&text, "keycard_db_pool_max_connections"), Some(4.0));
        assert_eq!(line_value(&text, "keycard_password_hash_slots"), Some(2.0));
        // Families without a series yet are left out (no request has been answered).
        assert!(!text.contains("keycard_http_requests_total"), "{text}");
    }

    #[test]
    fn requests_are_counted_by_template_with_a_histogram() {
        let metrics = Metrics::new();
        let route = Route::Named("/user/sessions/{id}");
        metrics.request(route.clone(), "DELETE", StatusCode::OK, Duration::from_millis(3));
        metrics.request(route, "DELETE", StatusCode::OK, Duration::from_millis(30));
        metrics.request(Metrics::route(None), "GET", StatusCode::NOT_FOUND, Duration::from_micros(50));
        let text = metrics.render(&Gauges::default()).unwrap();
        let labels = r#"route="/user/sessions/{id}",method="DELETE""#;
        assert_eq!(line_value(&text, &format!("keycard_http_requests_total{{{labels},status=\"200\"}}")), Some(2.0));
        assert_eq!(line_value(&text, &format!("keycard_http_request_duration_seconds_count{{{labels}}}")), Some(2.0));
        assert_eq!(
            line_value(&text, &format!("keycard_http_request_duration_seconds_bucket{{{labels},le=\"0.005\"}}")),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            line_value(&text, r#"keycard_http_requests_total{route="unmatched",method="GET",status="404"}"#),
            Some(1.0)
        );
        assert!(text.contains("# TYPE keycard_http_requests_total counter"), "{text}");
        assert!(text.contains("# TYPE keycard_http_request_duration_seconds histogram"), "{text}");
    }

    #[test]
    fn lockouts_and_rate_limited_logins_count_as_both_logins_and_throttling() {
        let metrics = Metrics::new();
        metrics.throttle(Throttled::Lockout);
        metrics.login(LoginOutcome::RateLimited);
        metrics.throttle(Throttled::RateLimitRegister);
        let text = metrics.render(&Gauges::default()).unwrap();
        assert_eq!(line_value(&text, r#"keycard_logins_total{outcome="locked"}"#), Some(1.0));
        assert_eq!(line_value(&text, r#"keycard_logins_total{outcome="rate_limited"}"#), Some(1.0));
        assert_eq!(
            line_value(&text, r#"keycard_throttled_requests_total{reason="lockout",endpoint="login"}"#),
            Some(1.0)
        );
        assert_eq!(
            line_value(&text, r#"keycard_throttled_requests_total{reason="rate_limit",endpoint="login"}"#),
            Some(1.0)
        );
        assert_eq!(
            line_value(&text, r#"keycard_throttled_requests_total{reason="rate_limit",endpoint="register"}"#),
            Some(1.0)
        );
    }

    #[test]
    fn made_up_methods_are_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }
}
