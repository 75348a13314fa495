//! The tower layer that installs a [`JwtConfig`] on a router or a route.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::future::Either;
use keycard_token::Claims;
use parking_lot::Mutex;
use tower::{Layer, Service};

use crate::config::{ClaimSet, refreshed_cookies};
use crate::{JwtConfig, locations};

/// The buffered body of a JSON request, for the JSON token location.
#[derive(Clone)]
pub(crate) struct JsonBody(pub(crate) Bytes);

/// Where an extractor leaves the claims it accepted from the access cookie, for the implicit
/// refresh done after the handler answered.
pub(crate) struct RefreshSlot<C>(pub(crate) Mutex<Option<Claims<C>>>);

/// Installs a [`JwtConfig`]: `router.layer(config.layer())`. See [`JwtConfig::layer`].
///
/// ```
/// # use std::sync::Arc;
/// # let tokens = Arc::new(keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
/// #     Default::default(), Arc::new(keycard_token::SystemClock)));
/// use axum::{Router, routing::get};
/// use keycard_axum::{Jwt, JwtConfig, JwtLayer};
///
/// let jwt = JwtConfig::<()>::builder(tokens).build().unwrap();
/// let layer: JwtLayer<()> = jwt.layer();
/// let app: Router = Router::new().route("/", get(|jwt: Jwt| async move { jwt.sub.clone() })).layer(layer);
/// # let _ = app;
/// ```
pub struct JwtLayer<C> {
    config: JwtConfig<C>,
}

impl<C> Clone for JwtLayer<C> {
    fn clone(&self) -> Self {
        Self { config: self.config.clone() }
    }
}

impl<C: ClaimSet> JwtConfig<C> {
    /// The layer that makes this configuration the one the extractors of the wrapped routes
    /// use (the innermost layer wins, so a route can override its router). It also reads JSON
    /// bodies when the JSON location is configured, and does the implicit refresh when
    /// configured.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # let tokens = Arc::new(keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
    /// #     Default::default(), Arc::new(keycard_token::SystemClock)));
    /// # async fn send(app: &axum::Router, req: axum::http::Request<axum::body::Body>) -> (u16, String) {
    /// #     let response = tower::ServiceExt::oneshot(app.clone(), req).await.unwrap();
    /// #     let status = response.status().as_u16();
    /// #     let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
    /// #     (status, String::from_utf8(body.to_vec()).unwrap())
    /// # }
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use axum::{Router, body::Body, http::Request, routing::get};
    /// use keycard_axum::{Jwt, JwtConfig, Location};
    ///
    /// let jwt = JwtConfig::<()>::builder(tokens.clone()).build().unwrap();
    /// let query_only = jwt.with_locations([Location::QueryString]).unwrap();
    /// let app = Router::new()
    ///     .route("/", get(|jwt: Jwt| async move { jwt.sub.clone() }))
    ///     .route("/download", get(|jwt: Jwt| async move { jwt.sub.clone() }).layer(query_only.layer()))
    ///     .layer(jwt.layer());
    /// let token = tokens.access("alice").sign().unwrap().token;
    /// let req = Request::get(format!("/download?jwt={token}")).body(Body::empty()).unwrap();
    /// assert_eq!(send(&app, req).await, (200, "alice".to_owned()));
    /// let req = Request::get(format!("/?jwt={token}")).body(Body::empty()).unwrap();
    /// assert_eq!(send(&app, req).await.0, 401);
    /// # });
    /// ```
    pub fn layer(&self) -> JwtLayer<C> {
        JwtLayer { config: self.clone() }
    }
}

impl<S, C> Layer<S> for JwtLayer<C> {
    type Service = JwtService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        JwtService { inner, config: self.config.clone() }
    }
}

/// The service of [`JwtLayer`].
///
/// ```
/// # use std::sync::Arc;
/// # let tokens = Arc::new(keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
/// #     Default::default(), Arc::new(keycard_token::SystemClock)));
/// use axum::{Router, routing::get};
/// use keycard_axum::JwtConfig;
/// use tower::Layer;
///
/// let jwt = JwtConfig::<()>::builder(tokens).build().unwrap();
/// let service = jwt.layer().layer(Router::new().route("/", get(|| async { "ok" })));
/// let _: keycard_axum::JwtService<Router, ()> = service;
/// ```
pub struct JwtService<S, C> {
    inner: S,
    config: JwtConfig<C>,
}

impl<S: Clone, C> Clone for JwtService<S, C> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone(), config: self.config.clone() }
    }
}

impl<S, C> Service<Request> for JwtService<S, C>
where
    S: Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    C: ClaimSet,
{
    type Response = Response;
    type Error = S::Error;
    /// The inner service's own future when there is nothing to do around it (no JSON body to
    /// read, no implicit refresh): no box on the common path.
    type Future = Either<S::Future, Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let config = self.config.clone();
        if !config.needs_json_body() && config.inner.implicit_refresh.is_none() {
            req.extensions_mut().insert(config);
            return Either::Left(self.inner.call(req));
        }
        // The clone that was polled ready serves this request (tower's usual dance).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Either::Right(Box::pin(async move {
            let read_json = config.needs_json_body()
                && req.extensions().get::<JsonBody>().is_none()
                && locations::is_json_content_type(req.headers());
            if read_json {
                let (parts, body) = req.into_parts();
                let bytes = match axum::body::to_bytes(body, config.inner.json_body_limit).await {
                    Ok(bytes) => bytes,
                    Err(_) => return Ok(body_error(&config, "Request body is too large or could not be read")),
                };
                req = Request::from_parts(parts, Body::from(bytes.clone()));
                req.extensions_mut().insert(JsonBody(bytes));
            }
            let slot = config.inner.implicit_refresh.map(|_| Arc::new(RefreshSlot::<C>(Mutex::new(None))));
            if let Some(slot) = &slot {
                req.extensions_mut().insert(slot.clone());
            }
            req.extensions_mut().insert(config.clone());
            let mut response = inner.call(req).await?;
            if let Some(claims) = slot.and_then(|slot| slot.0.lock().take())
                && let Some(cookies) = refreshed_cookies(&config, claims)
            {
                cookies.apply(response.headers_mut());
            }
            Ok(response)
        }))
    }
}

fn body_error<C>(config: &JwtConfig<C>, msg: &str) -> Response {
    let mut body = serde_json::Map::new();
    body.insert(config.error_key().to_owned(), msg.into());
    (StatusCode::PAYLOAD_TOO_LARGE, axum::Json(serde_json::Value::Object(body))).into_response()
}
