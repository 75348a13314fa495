//! keycard's HTTP edge: one tower layer around every route, doing what eight did before
//! (tower-http's `SetRequestId`, `TraceLayer`, `PropagateRequestId`, `CatchPanic`, two
//! `SetResponseHeader`s and `TimeoutLayer`, and a `map_response`) at a fraction of the cost: one
//! boxed future, no UUID, no request extensions, no timer for requests that finish on their first
//! poll. `GET /protected` is CPU-bound on this path, so every instruction here shows in its rate
//! (see `bench/analysis.md`).
//!
//! In order, for every request [`Edge`]:
//! 1. takes the request's `X-Request-Id`, or makes one with [`RequestIds`] (a random
//!    per-process prefix and a counter); the id goes into the span and the response (it is not
//!    written into the request's headers: nothing reads it there);
//! 2. opens the DEBUG span `request` (method, path, request id) that the handler runs in, and at
//!    the end logs one DEBUG line with the status and latency (`RUST_LOG=keycard_server=debug`);
//! 3. answers 500 (our JSON) when the handler panics;
//! 4. answers 408 when the response takes longer than the request timeout. The timer is armed only
//!    when the handler first has to wait (a token check never does), so it counts from then, not
//!    from the request's arrival: the difference is the handler's first synchronous stretch
//!    (microseconds; a future cannot be interrupted while it runs anyway);
//! 5. gives the response `X-Content-Type-Options: nosniff`, `Cache-Control: no-store` and the
//!    request id unless it already has them, and a bodiless 4xx/5xx (a timeout, a limit) a
//!    `{"msg": ...}` body;
//! 6. when metrics are on ([`EdgeLayer::metrics`]), counts the request by route template
//!    (`MatchedPath`: the layer is installed with `Router::layer`, so it runs after routing),
//!    method and final status, and records its latency. Off, it costs one `Option` check.

use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::MatchedPath;
use axum::http::{HeaderName, HeaderValue, Request, StatusCode, header};
use axum::response::Response;
use tower::{Layer, Service};

use crate::metrics::{Metrics, Route};

/// The request id header, read from requests and written to responses.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

const HEX: &[u8; 16] = b"0123456789abcdef";
/// Hex digits of the random prefix.
const PREFIX_LEN: usize = 16;
/// Longest id: the prefix, `-`, and `u64::MAX` in decimal.
const MAX_ID_LEN: usize = PREFIX_LEN + 1 + 20;

/// Request ids for requests that arrive without one: 64 random bits drawn once, as 16 hex digits,
/// then `-` and a counter in decimal (`3f2a9c0d81b4e657-0`, `3f2a9c0d81b4e657-1`, ...). Unique
/// across restarts and instances through the prefix, within a process through the counter;
/// always a valid header value. Costs an atomic increment and a few dozen instructions, where a
/// UUID v4 costs random bytes, `fmt` and header validation.
#[derive(Debug)]
pub struct RequestIds {
    prefix: [u8; PREFIX_LEN],
    next: AtomicU64,
}

impl RequestIds {
    /// A generator with a fresh random prefix.
    pub fn new() -> Self {
        Self::with_prefix(random_prefix())
    }

    fn with_prefix(random: u64) -> Self {
        let mut prefix = [0u8; PREFIX_LEN];
        for (i, digit) in prefix.iter_mut().enumerate() {
            *digit = HEX[((random >> (60 - 4 * i)) & 0xf) as usize];
        }
        Self { prefix, next: AtomicU64::new(0) }
    }

    /// The next id.
    pub fn next_id(&self) -> HeaderValue {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut id = [0u8; MAX_ID_LEN];
        id[..PREFIX_LEN].copy_from_slice(&self.prefix);
        id[PREFIX_LEN] = b'-';
        // Decimal digits from the right, then moved up behind the `-`.
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        let mut rest = n;
        loop {
            start -= 1;
            digits[start] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        let len = PREFIX_LEN + 1 + (digits.len() - start);
        id[PREFIX_LEN + 1..len].copy_from_slice(&digits[start..]);
        // Hex digits, `-` and decimal digits are always a valid header value; the fallback (the
        // counter alone) is unreachable.
        HeaderValue::from_bytes(&id[..len]).unwrap_or_else(|_| HeaderValue::from(n))
    }
}

impl Default for RequestIds {
    fn default() -> Self {
        Self::new()
    }
}

/// 64 bits from the OS random source; should that fail (keycard could not have made its secret
/// either), the time and the process id, which still differ between restarts and instances.
fn random_prefix() -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        nanos.rotate_left(17) ^ u64::from(std::process::id()).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    })
}

/// The [`Layer`] of [`Edge`].
#[derive(Debug, Clone)]
pub struct EdgeLayer {
    ids: Arc<RequestIds>,
    timeout: Duration,
    metrics: Option<Arc<Metrics>>,
}

impl EdgeLayer {
    /// Request ids from `ids`; responses not started within `timeout` of the handler first waiting
    /// are answered 408.
    pub fn new(ids: Arc<RequestIds>, timeout: Duration) -> Self {
        Self { ids, timeout, metrics: None }
    }

    /// Counts every request and its latency in `metrics` (when `Some`).
    pub fn metrics(mut self, metrics: Option<Arc<Metrics>>) -> Self {
        self.metrics = metrics;
        self
    }
}

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        Edge { inner, ids: Arc::clone(&self.ids), timeout: self.timeout, metrics: self.metrics.clone() }
    }
}

/// The middleware: see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Edge<S> {
    inner: S,
    ids: Arc<RequestIds>,
    timeout: Duration,
    metrics: Option<Arc<Metrics>>,
}

/// What [`Edge`] needs to count a request once it is answered.
struct Counted {
    metrics: Arc<Metrics>,
    route: Route,
    method: &'static str,
    start: Instant,
}

/// How the handler ended.
enum Outcome<T> {
    Done(T),
    TimedOut,
    Panicked,
}

impl<S, B, E> Service<Request<B>> for Edge<S>
where
    S: Service<Request<B>, Response = Response, Error = E>,
    S::Future: Send + 'static,
    E: 'static,
{
    type Response = Response;
    type Error = E;
    type Future = Pin<Box<dyn Future<Output = Result<Response, E>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let request_id = match request.headers().get(X_REQUEST_ID) {
            Some(id) => id.clone(),
            None => self.ids.next_id(),
        };
        let span = tracing::debug_span!(
            "request",
            method = %request.method(),
            path = %request.uri().path(),
            request_id = request_id.to_str().unwrap_or(""),
        );
        let counted = self.metrics.as_ref().map(|metrics| Counted {
            metrics: Arc::clone(metrics),
            route: Metrics::route(request.extensions().get::<MatchedPath>()),
            method: crate::metrics::method_label(request.method()),
            start: Instant::now(),
        });
        // The latency is only read when DEBUG is on somewhere or metrics are: no clock read
        // otherwise.
        let start = match &counted {
            Some(counted) => Some(counted.start),
            None => tracing::level_enabled!(tracing::Level::DEBUG).then(Instant::now),
        };
        let called = span.in_scope(|| catch_unwind(AssertUnwindSafe(|| self.inner.call(request))));
        let timeout = self.timeout;
        Box::pin(async move {
            let outcome = match called {
                Ok(future) => run(future, timeout, &span).await,
                Err(_panic) => Outcome::Panicked,
            };
            let response = match outcome {
                Outcome::Done(Ok(response)) => response,
                Outcome::Done(Err(e)) => return Err(e),
                Outcome::TimedOut => {
                    let mut response = Response::new(Body::empty());
                    *response.status_mut() = StatusCode::REQUEST_TIMEOUT;
                    response
                }
                Outcome::Panicked => {
                    span.in_scope(|| tracing::error!("handler panicked"));
                    crate::error::ApiError::Internal(anyhow::anyhow!("panic")).into_response_owned()
                }
            };
            let response = finish(response, request_id);
            if let Some(Counted { metrics, route, method, start }) = counted {
                metrics.request(route, method, response.status(), start.elapsed());
            }
            if let Some(start) = start {
                span.in_scope(|| {
                    tracing::debug!(
                        status = response.status().as_u16(),
                        latency_us = start.elapsed().as_micros() as u64,
                        "request"
                    );
                });
            }
            Ok(response)
        })
    }
}

/// Drives the handler's future inside `span`, catching panics; arms the timeout the first time
/// the future has to wait.
async fn run<F: Future>(future: F, timeout: Duration, span: &tracing::Span) -> Outcome<F::Output> {
    let mut future = pin!(future);
    let mut timer = pin!(None::<tokio::time::Sleep>);
    poll_fn(|cx| {
        let _entered = span.enter();
        match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(Poll::Ready(output)) => return Poll::Ready(Outcome::Done(output)),
            Ok(Poll::Pending) => {}
            Err(_panic) => return Poll::Ready(Outcome::Panicked),
        }
        if timer.as_mut().as_pin_mut().is_none() {
            timer.set(Some(tokio::time::sleep(timeout)));
        }
        match timer.as_mut().as_pin_mut().map(|sleep| sleep.poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(Outcome::TimedOut),
            _ => Poll::Pending,
        }
    })
    .await
}

/// The headers every response carries, and a JSON body for bodiless errors.
fn finish(mut response: Response, request_id: HeaderValue) -> Response {
    let headers = response.headers_mut();
    headers.entry(header::X_CONTENT_TYPE_OPTIONS).or_insert(HeaderValue::from_static("nosniff"));
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    headers.entry(X_REQUEST_ID).or_insert(request_id);
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
    Response::from_parts(parts, Body::from(body))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::convert::Infallible;

    use axum::http::Method;
    use tower::{ServiceExt, service_fn};

    use super::*;

    fn is_generated_id(id: &str) -> bool {
        let (prefix, counter) = id.split_once('-').unwrap_or(("", ""));
        prefix.len() == 16
            && prefix.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            && !counter.is_empty()
            && counter.bytes().all(|b| b.is_ascii_digit())
    }

    #[test]
    fn request_ids_are_a_random_prefix_and_a_counter() {
        let ids = RequestIds::with_prefix(0x0123_4567_89ab_cdef);
        assert_eq!(ids.next_id(), "0123456789abcdef-0");
        assert_eq!(ids.next_id(), "0123456789abcdef-1");
        ids.next.store(u64::MAX, Ordering::Relaxed);
        assert_eq!(ids.next_id(), "0123456789abcdef-18446744073709551615");
        for n in [9, 10, 99, 100, 12_345, 1 << 40] {
            ids.next.store(n, Ordering::Relaxed);
            assert_eq!(ids.next_id().to_str().unwrap(), format!("0123456789abcdef-{n}"));
        }
    }

    #[test]
    fn request_ids_are_unique_across_threads_and_generators() {
        let ids = Arc::new(RequestIds::new());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let ids = Arc::clone(&ids);
                std::thread::spawn(move || (0..1000).map(|_| ids.next_id()).collect::<Vec<_>>())
            })
            .collect();
        let mut seen = HashSet::new();
        for thread in threads {
            for id in thread.join().unwrap() {
                assert!(is_generated_id(id.to_str().unwrap()), "{id:?}");
                assert!(seen.insert(id));
            }
        }
        assert_eq!(seen.len(), 4000);
        // Another process (another generator) draws another prefix.
        let first = |id: HeaderValue| id.to_str().unwrap()[..16].to_owned();
        assert_ne!(first(RequestIds::new().next_id()), first(RequestIds::new().next_id()));
    }

    /// The layer around a handler that answers with `respond` after `delay`.
    fn edge(
        respond: fn() -> Response,
        delay: Duration,
        timeout: Duration,
    ) -> impl Service<Request<Body>, Response = Response, Error = Infallible, Future: Send> {
        EdgeLayer::new(Arc::new(RequestIds::with_prefix(0xabc)), timeout).layer(service_fn(
            move |_request: Request<Body>| async move {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                Ok::<_, Infallible>(respond())
            },
        ))
    }

    fn get() -> Request<Body> {
        Request::builder().method(Method::GET).uri("/x").body(Body::empty()).unwrap()
    }

    fn json_ok() -> Response {
        axum::response::IntoResponse::into_response(axum::Json(serde_json::json!({ "ok": true })))
    }

    fn status(status: StatusCode) -> Response {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = status;
        response
    }

    async fn body(response: Response) -> String {
        String::from_utf8(axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap().to_vec()).unwrap()
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[tokio::test]
    async fn every_response_gets_nosniff_no_store_and_a_request_id() {
        let response = edge(json_ok, Duration::ZERO, SECOND).oneshot(get()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert_eq!(response.headers()["x-request-id"], "0000000000000abc-0");
        assert_eq!(body(response).await, r#"{"ok":true}"#);
    }

    #[tokio::test]
    async fn headers_the_handler_set_are_kept() {
        fn own() -> Response {
            let mut response = json_ok();
            let headers = response.headers_mut();
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=60"));
            headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("other"));
            headers.insert(X_REQUEST_ID, HeaderValue::from_static("from-handler"));
            response
        }
        let response = edge(own, Duration::ZERO, SECOND).oneshot(get()).await.unwrap();
        assert_eq!(response.headers()["cache-control"], "max-age=60");
        assert_eq!(response.headers()["x-content-type-options"], "other");
        assert_eq!(response.headers()["x-request-id"], "from-handler");
        assert_eq!(response.headers().get_all(header::CACHE_CONTROL).iter().count(), 1);
    }

    #[tokio::test]
    async fn an_incoming_request_id_is_propagated() {
        let mut request = get();
        request.headers_mut().insert(X_REQUEST_ID, HeaderValue::from_static("abc-123"));
        let response = edge(json_ok, Duration::ZERO, SECOND).oneshot(request).await.unwrap();
        assert_eq!(response.headers()["x-request-id"], "abc-123");
    }

    #[tokio::test]
    async fn bodiless_errors_get_a_json_body_and_others_are_untouched() {
        fn too_large() -> Response {
            let mut response = status(StatusCode::PAYLOAD_TOO_LARGE);
            response.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
            response
        }
        let response = edge(too_large, Duration::ZERO, SECOND).oneshot(get()).await.unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(response.headers()["content-type"], "application/json");
        assert!(!response.headers().contains_key(header::CONTENT_LENGTH));
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        assert_eq!(body(response).await, r#"{"msg":"Payload Too Large"}"#);

        fn text_error() -> Response {
            let mut response = status(StatusCode::BAD_REQUEST);
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            *response.body_mut() = Body::from("plain");
            response
        }
        let response = edge(text_error, Duration::ZERO, SECOND).oneshot(get()).await.unwrap();
        assert_eq!(response.headers()["content-type"], "text/plain");
        assert_eq!(body(response).await, "plain");

        fn no_content() -> Response {
            status(StatusCode::NO_CONTENT)
        }
        let response = edge(no_content, Duration::ZERO, SECOND).oneshot(get()).await.unwrap();
        assert!(!response.headers().contains_key(header::CONTENT_TYPE));
        assert_eq!(body(response).await, "");
    }

    #[tokio::test]
    async fn a_handler_over_the_timeout_is_answered_408_json() {
        let response = edge(json_ok, Duration::from_secs(30), Duration::from_millis(20)).oneshot(get()).await.unwrap();
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert_eq!(response.headers()["x-request-id"], "0000000000000abc-0");
        assert_eq!(body(response).await, r#"{"msg":"Request Timeout"}"#);
    }

    #[tokio::test]
    async fn a_handler_that_waits_within_the_timeout_is_answered() {
        let response = edge(json_ok, Duration::from_millis(20), SECOND).oneshot(get()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(body(response).await, r#"{"ok":true}"#);
    }

    #[tokio::test]
    async fn panics_are_answered_500_json_with_the_headers() {
        fn panics() -> Response {
            panic!("handler bug")
        }
        // A panic while the handler's future runs.
        let response = edge(panics, Duration::ZERO, SECOND).oneshot(get()).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert_eq!(response.headers()["x-request-id"], "0000000000000abc-0");
        assert_eq!(body(response).await, r#"{"msg":"Internal server error"}"#);

        // A panic in the service's `call` itself.
        let service = EdgeLayer::new(Arc::new(RequestIds::with_prefix(1)), SECOND).layer(service_fn(
            |_request: Request<Body>| -> std::future::Ready<Result<Response, Infallible>> { panic!("service bug") },
        ));
        let response = service.oneshot(get()).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert_eq!(body(response).await, r#"{"msg":"Internal server error"}"#);
    }
}
