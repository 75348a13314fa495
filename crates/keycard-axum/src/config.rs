//! One configuration per router: where tokens are read from, cookies and CSRF, hooks, errors.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, request::Parts};
use axum::response::{IntoResponseParts, ResponseParts};
use keycard_token::{Claims, Decoded, KeySource, Signed, TokenError, TokenType, Tokens};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cookies::CookieSettings;
use crate::locations::{self, Lookup};
use crate::{AuthError, AuthRejection, ErrorHandler};

/// An error a hook may return: the request is then answered 503 ([`AuthError::HookFailed`]).
///
/// ```
/// use keycard_axum::BoxError;
///
/// fn parse_id(sub: &str) -> Result<i64, BoxError> {
///     Ok(sub.parse::<i64>()?)
/// }
/// assert_eq!(parse_id("42").unwrap(), 42);
/// assert!(parse_id("alice").is_err());
/// ```
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The additional-claims hook: the application's claims of a new token for an identity.
type ClaimsFn<C> = Arc<dyn Fn(&str) -> C + Send + Sync>;

/// What an application's claims type needs: serde both ways, shareable across threads.
/// Implemented for every such type; `()` is the type of "no application claims".
///
/// ```
/// use keycard_axum::ClaimSet;
///
/// #[derive(Clone, serde::Serialize, serde::Deserialize)]
/// struct Roles { roles: Vec<String> }
///
/// fn is_claim_set<C: ClaimSet>() -> bool { true }
/// assert!(is_claim_set::<Roles>() && is_claim_set::<()>());
/// ```
pub trait ClaimSet: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {}

impl<T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static> ClaimSet for T {}

/// Where a token may be found, in the order configured (FJE's `JWT_TOKEN_LOCATION`).
///
/// ```
/// # use std::sync::Arc;
/// # let tokens = Arc::new(keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
/// #     Default::default(), Arc::new(keycard_token::SystemClock)));
/// use keycard_axum::{JwtConfig, Location};
/// let jwt = JwtConfig::<()>::builder(tokens).locations([Location::Headers, Location::QueryString]).build().unwrap();
/// assert_eq!(Location::QueryString.as_str(), "query_string");
/// # let _ = jwt;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Location {
    /// A request header, `Authorization: Bearer <JWT>` by default.
    Headers,
    /// The access (or refresh) cookie, with double-submit CSRF on state-changing methods.
    Cookies,
    /// A query parameter, `?jwt=<JWT>` by default.
    QueryString,
    /// A key of a JSON request body, `{"access_token": "<JWT>"}` by default.
    Json,
}

impl Location {
    /// FJE's name of the location (`headers`, `cookies`, `query_string`, `json`).
    ///
    /// ```
    /// assert_eq!(keycard_axum::Location::Cookies.as_str(), "cookies");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Location::Headers => "headers",
            Location::Cookies => "cookies",
            Location::QueryString => "query_string",
            Location::Json => "json",
        }
    }
}

/// Decides whether a verified token is revoked (FJE's `token_in_blocklist_loader`), on every
/// request, for access and refresh tokens. In memory ([`keycard_token::RevocationList`]), in
/// Redis or in SQL: implement it, or pass a closure to
/// [`JwtConfigBuilder::revocation_fn`]. An `Err` answers 503: a revocation store that cannot be
/// asked never lets a token through.
///
/// ```
/// use keycard_axum::{BoxError, Revocation};
/// use keycard_token::Decoded;
///
/// struct NothingRevoked;
/// impl<C: Sync> Revocation<C> for NothingRevoked {
///     async fn is_revoked(&self, _token: &Decoded<C>) -> Result<bool, BoxError> {
///         Ok(false)
///     }
/// }
/// ```
pub trait Revocation<C>: Send + Sync + 'static {
    /// Whether `token` is revoked.
    fn is_revoked(&self, token: &Decoded<C>) -> impl Future<Output = Result<bool, BoxError>> + Send;
}

impl<C: Sync> Revocation<C> for keycard_token::RevocationList {
    async fn is_revoked(&self, token: &Decoded<C>) -> Result<bool, BoxError> {
        Ok(keycard_token::RevocationList::is_revoked(self, &token.claims))
    }
}

impl<C: Sync, R: Revocation<C>> Revocation<C> for Arc<R> {
    fn is_revoked(&self, token: &Decoded<C>) -> impl Future<Output = Result<bool, BoxError>> + Send {
        (**self).is_revoked(token)
    }
}

/// Checks the claims of a verified token (FJE's `token_verification_loader`); `false` answers
/// 400 "User claims verification failed".
///
/// ```
/// use keycard_axum::{BoxError, ClaimsCheck};
/// use keycard_token::Decoded;
///
/// struct OnlyAlice;
/// impl ClaimsCheck<()> for OnlyAlice {
///     async fn check(&self, token: &Decoded<()>) -> Result<bool, BoxError> {
///         Ok(token.claims.sub == "alice")
///     }
/// }
/// ```
pub trait ClaimsCheck<C>: Send + Sync + 'static {
    /// Whether the token is acceptable.
    fn check(&self, token: &Decoded<C>) -> impl Future<Output = Result<bool, BoxError>> + Send;
}

/// Object-safe forms of the hooks, kept behind `Arc<dyn ..>` in the configuration.
trait DynRevocation<C>: Send + Sync {
    fn is_revoked<'a>(&'a self, token: &'a Decoded<C>) -> BoxFuture<'a, Result<bool, BoxError>>;
}

impl<C: Sync, R: Revocation<C>> DynRevocation<C> for R {
    fn is_revoked<'a>(&'a self, token: &'a Decoded<C>) -> BoxFuture<'a, Result<bool, BoxError>> {
        Box::pin(Revocation::is_revoked(self, token))
    }
}

trait DynClaimsCheck<C>: Send + Sync {
    fn check<'a>(&'a self, token: &'a Decoded<C>) -> BoxFuture<'a, Result<bool, BoxError>>;
}

impl<C: Sync, K: ClaimsCheck<C>> DynClaimsCheck<C> for K {
    fn check<'a>(&'a self, token: &'a Decoded<C>) -> BoxFuture<'a, Result<bool, BoxError>> {
        Box::pin(ClaimsCheck::check(self, token))
    }
}

/// A revocation hook from a closure returning a future (see [`JwtConfigBuilder::revocation_fn`]).
struct RevocationFn<F>(F);

impl<C, F, Fut> Revocation<C> for RevocationFn<F>
where
    C: Sync,
    F: Fn(&Decoded<C>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<bool, BoxError>> + Send + 'static,
{
    fn is_revoked(&self, token: &Decoded<C>) -> impl Future<Output = Result<bool, BoxError>> + Send {
        (self.0)(token)
    }
}

/// A claims check from a plain function (see [`JwtConfigBuilder::claims_check_fn`]).
struct ClaimsCheckFn<F>(F);

impl<C, F> ClaimsCheck<C> for ClaimsCheckFn<F>
where
    C: Sync,
    F: Fn(&Decoded<C>) -> bool + Send + Sync + 'static,
{
    async fn check(&self, token: &Decoded<C>) -> Result<bool, BoxError> {
        Ok((self.0)(token))
    }
}

/// A configuration refused at start.
///
/// ```
/// # use std::sync::Arc;
/// # let tokens = Arc::new(keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
/// #     Default::default(), Arc::new(keycard_token::SystemClock)));
/// let err = keycard_axum::JwtConfig::<()>::builder(tokens).header_type("Two words").build().unwrap_err();
/// assert_eq!(err.to_string(), "invalid keycard-axum configuration: the header type must be one word (or empty)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid keycard-axum configuration: {0}")]
pub struct ConfigError(String);

/// Which tokens a route accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    Access,
    Refresh,
    Any,
}

#[derive(Clone)]
pub(crate) struct Inner<C> {
    pub(crate) tokens: Arc<Tokens>,
    pub(crate) locations: Vec<Location>,
    header_name: HeaderName,
    header_display: String,
    header_type: String,
    query_name: String,
    query_prefix: String,
    json_key: String,
    refresh_json_key: String,
    pub(crate) cookies: CookieSettings,
    error_key: Arc<str>,
    revocation: Option<Arc<dyn DynRevocation<C>>>,
    claims_check: Option<Arc<dyn DynClaimsCheck<C>>>,
    error_handler: Option<Arc<dyn ErrorHandler>>,
    pub(crate) implicit_refresh: Option<Duration>,
    pub(crate) json_body_limit: usize,
    additional_claims: Option<ClaimsFn<C>>,
    key_source: Option<Arc<dyn KeySource>>,
}

/// Everything the extractors of one router need: the token verifier, where tokens are read
/// from, cookie and CSRF settings, hooks and error responses. Cheap to clone.
///
/// Built once with [`JwtConfig::builder`] (every setting is checked there, so a bad
/// configuration stops the program at start, not on the first request), installed with
/// `router.layer(config.layer())`. Two routers of one app can have different configurations
/// (cookies + CSRF for the browser, bearer headers for the API); a single route can override
/// its router's with `get(handler).layer(other.layer())`.
///
/// ```
/// use std::sync::Arc;
/// use axum::{Json, Router, routing::get};
/// use keycard_axum::{Jwt, JwtConfig, Location};
/// use keycard_token::{Keys, SystemClock, TokenSettings, Tokens};
///
/// async fn protected(jwt: Jwt) -> Json<serde_json::Value> {
///     Json(serde_json::json!({ "logged_in_as": jwt.sub }))
/// }
///
/// let keys = Keys::hmac_sha256(b"an example secret of at least 32 bytes!!").unwrap();
/// let tokens = Arc::new(Tokens::new(keys, TokenSettings::default(), Arc::new(SystemClock)));
/// let jwt = JwtConfig::<()>::builder(tokens).locations([Location::Headers, Location::Cookies]).build().unwrap();
/// let only_headers = jwt.with_locations([Location::Headers]).unwrap();
/// let app: Router = Router::new()
///     .route("/protected", get(protected))
///     .route("/only_headers", get(protected).layer(only_headers.layer()))
///     .layer(jwt.layer());
/// ```
pub struct JwtConfig<C = ()> {
    pub(crate) inner: Arc<Inner<C>>,
}

impl<C> Clone for JwtConfig<C> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone() }
    }
}

impl<C> std::fmt::Debug for JwtConfig<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtConfig")
            .field("tokens", &self.inner.tokens)
            .field("locations", &self.inner.locations)
            .field("revocation", &self.inner.revocation.is_some())
            .finish_non_exhaustive()
    }
}

/// Builds a [`JwtConfig`]; every option has FJE's default unless noted.
///
/// ```
/// # use std::sync::Arc;
/// # let tokens = Arc::new(keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
/// #     Default::default(), Arc::new(keycard_token::SystemClock)));
/// use std::time::Duration;
/// use keycard_axum::{CookieSettings, JwtConfig, Location};
///
/// let jwt = JwtConfig::<()>::builder(tokens)
///     .locations([Location::Cookies, Location::Headers])
///     .cookies(CookieSettings { refresh_cookie_path: "/token/refresh".into(), ..CookieSettings::default() })
///     .implicit_refresh(Duration::from_secs(30 * 60))
///     .error_key("error")
///     .build()
///     .unwrap();
/// assert_eq!(jwt.cookie_settings().refresh_cookie_path, "/token/refresh");
/// ```
#[must_use = "finish with .build()"]
pub struct JwtConfigBuilder<C = ()> {
    tokens: Arc<Tokens>,
    locations: Vec<Location>,
    header_name: String,
    header_type: String,
    query_name: String,
    query_prefix: String,
    json_key: String,
    refresh_json_key: String,
    cookies: CookieSettings,
    error_key: String,
    revocation: Option<Arc<dyn DynRevocation<C>>>,
    claims_check: Option<Arc<dyn DynClaimsCheck<C>>>,
    error_handler: Option<Arc<dyn ErrorHandler>>,
    implicit_refresh: Option<Duration>,
    json_body_limit: usize,
    additional_claims: Option<ClaimsFn<C>>,
    key_source: Option<Arc<dyn KeySource>>,
}

impl<C: ClaimSet> JwtConfig<C> {
    /// Starts a configuration verifying with `tokens`: headers only, `Authorization: Bearer`.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # let tokens = Arc::new(keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
    /// #     Default::default(), Arc::new(keycard_token::SystemClock)));
    /// let jwt = keycard_axum::JwtConfig::<()>::builder(tokens).build().unwrap();
    /// assert_eq!(jwt.cookie_settings().access_cookie_name, "access_token_cookie");
    /// ```
    pub fn builder(tokens: Arc<Tokens>) -> JwtConfigBuilder<C> {
        JwtConfigBuilder {
            tokens,
            locations: vec![Location::Headers],
            header_name: "Authorization".into(),
            header_type: "Bearer".into(),
            query_name: "jwt".into(),
            query_prefix: String::new(),
            json_key: "access_token".into(),
            refresh_json_key: "refresh_token".into(),
            cookies: CookieSettings::default(),
            error_key: "msg".into(),
            revocation: None,
            claims_check: None,
            error_handler: None,
            key_source: None,
            implicit_refresh: None,
            json_body_limit: 64 * 1024,
            additional_claims: None,
        }
    }

    /// Starts an access token for `identity` carrying the claims of the
    /// [`additional_claims`](JwtConfigBuilder::additional_claims) hook (FJE's
    /// `additional_claims_loader`), or `C::default()` without one. Refine it with the
    /// [`Issue`](keycard_token::Issue) methods, then `.sign()`.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # let tokens = Arc::new(keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[1; 32]).unwrap(),
    /// #     Default::default(), Arc::new(keycard_token::SystemClock)));
    /// #[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
    /// struct Extra { is_admin: bool }
    ///
    /// let config = keycard_axum::JwtConfig::<Extra>::builder(tokens)
    ///     .additional_claims(|identity| Extra { is_admin: identity == "root" })
    ///     .build()
    ///     .unwrap();
    /// let signed = config.access_token("root").fresh(true).sign().unwrap();
    /// assert!(signed.claims.is_admin);
    /// ```
    pub fn access_token(&self, identity: impl std::fmt::Display) -> keycard_token::Issue<'_, C>
    where
        C: Default,
    {
        let identity = identity.to_string();
        let extra = self.app_claims(&identity);
        self.inner.tokens.access(identity).claims(extra)
    }

    /// Starts a refresh token for `identity`, with the claims of the hook like
    /// [`JwtConfig::access_token`].
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # let tokens = Arc::new(keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
    /// #     Default::default(), Arc::new(keycard_token::SystemClock)));
    /// #[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
    /// struct Extra { is_admin: bool }
    ///
    /// let config = keycard_axum::JwtConfig::<Extra>::builder(tokens)
    ///     .additional_claims(|identity| Extra { is_admin: identity == "root" })
    ///     .build()
    ///     .unwrap();
    /// let signed = config.refresh_token("root").sign().unwrap();
    /// assert_eq!(signed.claims.token_type, keycard_token::TokenType::Refresh);
    /// assert!(signed.claims.is_admin);
    /// ```
    pub fn refresh_token(&self, identity: impl std::fmt::Display) -> keycard_token::Issue<'_, C>
    where
        C: Default,
    {
        let identity = identity.to_string();
        let extra = self.app_claims(&identity);
        self.inner.tokens.refresh(identity).claims(extra)
    }

    /// The claims of the additional-claims hook for `identity`, or `C::default()` without one.
    fn app_claims(&self, identity: &str) -> C
    where
        C: Default,
    {
        self.inner.additional_claims.as_ref().map_or_else(C::default, |f| f(identity))
    }

    /// The token issuer and verifier.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # let tokens = Arc::new(keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
    /// #     Default::default(), Arc::new(keycard_token::SystemClock)));
    /// let jwt = keycard_axum::JwtConfig::<()>::builder(tokens.clone()).build().unwrap();
    /// assert!(Arc::ptr_eq(jwt.tokens(), &tokens));
    /// ```
    pub fn tokens(&self) -> &Arc<Tokens> {
        &self.inner.tokens
    }

    /// The cookie settings.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # let tokens = Arc::new(keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
    /// #     Default::default(), Arc::new(keycard_token::SystemClock)));
    /// let jwt = keycard_axum::JwtConfig::<()>::builder(tokens).build().unwrap();
    /// assert!(jwt.cookie_settings().secure);
    /// ```
    pub fn cookie_settings(&self) -> &CookieSettings {
        &self.inner.cookies
    }

    /// Where tokens are looked for, in order (FJE's `JWT_TOKEN_LOCATION`): what
    /// [`JwtConfigBuilder::locations`] or [`JwtConfig::with_locations`] set. An application
    /// answering logins reads it to decide whether to set cookies as well as return tokens.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # let tokens = Arc::new(keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
    /// #     Default::default(), Arc::new(keycard_token::SystemClock)));
    /// use keycard_axum::{JwtConfig, Location};
    /// let jwt = JwtConfig::<()>::builder(tokens).locations([Location::Headers, Location::Cookies]).build().unwrap();
    /// assert_eq!(jwt.locations(), [Location::Headers, Location::Cookies]);
    /// assert!(jwt.locations().contains(&Location::Cookies));
    /// assert_eq!(jwt.with_locations([Location::Json]).unwrap().locations(), [Location::Json]);
    /// ```
    pub fn locations(&self) -> &[Location] {
        &self.inner.locations
    }

    /// The same configuration reading tokens from `locations` only (FJE's per-route
    /// `@jwt_required(locations=[...])`).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # let tokens = Arc::new(keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
    /// #     Default::default(), Arc::new(keycard_token::SystemClock)));
    /// use keycard_axum::{JwtConfig, Location};
    /// let jwt = JwtConfig::<()>::builder(tokens).locations([Location::Headers, Location::Cookies]).build().unwrap();
    /// let only_cookies = jwt.with_locations([Location::Cookies]).unwrap();
    /// assert!(jwt.with_locations([Location::Json, Location::Json]).is_err());
    /// # let _ = only_cookies;
    /// ```
    pub fn with_locations(&self, locations: impl IntoIterator<Item = Location>) -> Result<Self, ConfigError> {
        let locations: Vec<Location> = locations.into_iter().collect();
        check_locations(&locations)?;
        let mut inner = (*self.inner).clone();
        inner.locations = locations;
        Ok(Self { inner: Arc::new(inner) })
    }

    /// The rejection for `error`, answered as this configuration says.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # let tokens = Arc::new(keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
    /// #     Default::default(), Arc::new(keycard_token::SystemClock)));
    /// use axum::response::IntoResponse;
    /// use keycard_axum::AuthError;
    /// let jwt = keycard_axum::JwtConfig::<()>::builder(tokens).build().unwrap();
    /// let response = jwt.reject(AuthError::Revoked).into_response();
    /// assert_eq!(response.status(), 401);
    /// assert_eq!(
    ///     response.headers()["www-authenticate"],
    ///     r#"Bearer error="invalid_token", error_description="Token has been revoked""#
    /// );
    /// ```
    pub fn reject(&self, error: AuthError) -> AuthRejection {
        AuthRejection::new(error, self.inner.error_handler.clone(), self.inner.error_key.clone())
    }

    /// `Set-Cookie`s for an access token (FJE's `set_access_cookies`): the HttpOnly token cookie
    /// and the readable CSRF cookie holding its `csrf` claim, `Max-Age` the token's remaining
    /// lifetime. Returned as response parts: `(jwt.access_cookies(&signed), Json(body))`.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # let clock = Arc::new(keycard_token::ManualClock::new(1_700_000_000));
    /// # let tokens = Arc::new(keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
    /// #     Default::default(), clock.clone()));
    /// use axum::response::IntoResponse;
    /// use keycard_axum::{Json, JwtConfig, Location};
    ///
    /// let jwt = JwtConfig::<()>::builder(tokens).locations([Location::Cookies]).build().unwrap();
    /// let signed = jwt.tokens().access("alice").sign().unwrap();
    /// let response = (jwt.access_cookies(&signed), Json(serde_json::json!({"login": true}))).into_response();
    /// let set: Vec<_> = response.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect();
    /// assert_eq!(set.len(), 2);
    /// assert!(set[0].starts_with(&format!("access_token_cookie={}; Max-Age=900; Secure; HttpOnly", signed.token)));
    /// assert!(set[1].starts_with(&format!("csrf_access_token={}; Max-Age=900;", signed.claims.csrf.unwrap())));
    /// ```
    pub fn access_cookies<T>(&self, signed: &Signed<T>) -> SetCookies {
        let max_age = (signed.claims.exp - self.inner.tokens.now()).max(0);
        SetCookies(self.inner.cookies.access_cookies(&signed.token, signed.claims.csrf.as_deref(), Some(max_age)))
    }

    /// `Set-Cookie`s for a refresh token (FJE's `set_refresh_cookies`).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # let clock = Arc::new(keycard_token::ManualClock::new(1_700_000_000));
    /// # let tokens = Arc::new(keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
    /// #     Default::default(), clock.clone()));
    /// use axum::response::IntoResponse;
    /// use keycard_axum::{Json, JwtConfig};
    ///
    /// let jwt = JwtConfig::<()>::builder(tokens).build().unwrap();
    /// let access = jwt.tokens().access("alice").sign().unwrap();
    /// let refresh = jwt.tokens().refresh("alice").sign().unwrap();
    /// let cookies = jwt.access_cookies(&access).and(jwt.refresh_cookies(&refresh));
    /// let response = (cookies, Json(serde_json::json!({"login": true}))).into_response();
    /// let set: Vec<_> = response.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect();
    /// assert_eq!(set.len(), 4);
    /// assert!(set[2].starts_with("refresh_token_cookie=") && set[2].contains("; Max-Age=2592000;"));
    /// ```
    pub fn refresh_cookies<T>(&self, signed: &Signed<T>) -> SetCookies {
        let max_age = (signed.claims.exp - self.inner.tokens.now()).max(0);
        SetCookies(self.inner.cookies.refresh_cookies(&signed.token, signed.claims.csrf.as_deref(), Some(max_age)))
    }

    /// `Set-Cookie`s expiring the access and refresh cookies and their CSRF cookies (FJE's
    /// `unset_jwt_cookies`).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # let tokens = Arc::new(keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
    /// #     Default::default(), Arc::new(keycard_token::SystemClock)));
    /// use axum::response::IntoResponse;
    /// use keycard_axum::Json;
    ///
    /// let jwt = keycard_axum::JwtConfig::<()>::builder(tokens).build().unwrap();
    /// let response = (jwt.unset_cookies(), Json(serde_json::json!({"logout": true}))).into_response();
    /// let set: Vec<_> = response.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect();
    /// assert_eq!(set.len(), 4);
    /// assert!(set.iter().all(|c| c.contains("; Max-Age=0;")));
    /// ```
    pub fn unset_cookies(&self) -> SetCookies {
        SetCookies(self.inner.cookies.unset_jwt_cookies())
    }

    /// `Set-Cookie`s expiring the access cookies only.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # let tokens = Arc::new(keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
    /// #     Default::default(), Arc::new(keycard_token::SystemClock)));
    /// let jwt = keycard_axum::JwtConfig::<()>::builder(tokens).build().unwrap();
    /// let cookies = jwt.unset_access_cookies();
    /// assert_eq!(cookies.0.len(), 2);
    /// assert!(cookies.0[0].to_str().unwrap().starts_with("access_token_cookie=;"));
    /// ```
    pub fn unset_access_cookies(&self) -> SetCookies {
        SetCookies(self.inner.cookies.unset_access_cookies())
    }

    /// `Set-Cookie`s expiring the refresh cookies only.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # let tokens = Arc::new(keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
    /// #     Default::default(), Arc::new(keycard_token::SystemClock)));
    /// let jwt = keycard_axum::JwtConfig::<()>::builder(tokens).build().unwrap();
    /// let cookies = jwt.unset_refresh_cookies();
    /// assert!(cookies.0[0].to_str().unwrap().starts_with("refresh_token_cookie=;"));
    /// assert!(cookies.0[1].to_str().unwrap().starts_with("csrf_refresh_token=;"));
    /// ```
    pub fn unset_refresh_cookies(&self) -> SetCookies {
        SetCookies(self.inner.cookies.unset_refresh_cookies())
    }

    /// Finds, verifies and checks the token of a request, in FJE's order: locations (only a
    /// missing token falls through), signature and claims, CSRF, type, freshness, revocation,
    /// claims check. `Ok(None)` when no location had a token and `optional`.
    pub(crate) async fn authenticate(
        &self,
        parts: &Parts,
        want: Want,
        fresh: bool,
        optional: bool,
    ) -> Result<Option<(Decoded<C>, Location)>, AuthError> {
        let inner = &*self.inner;
        let refresh = want == Want::Refresh;
        let mut tried: Vec<(&str, String)> = Vec::new();
        let mut found = None;
        for &location in &inner.locations {
            let lookup = match location {
                Location::Headers => locations::from_header(
                    &parts.headers,
                    &inner.header_name,
                    &inner.header_display,
                    &inner.header_type,
                ),
                Location::Cookies => {
                    let name =
                        if refresh { &inner.cookies.refresh_cookie_name } else { &inner.cookies.access_cookie_name };
                    locations::from_cookie(&parts.headers, name)
                }
                Location::QueryString => {
                    locations::from_query(parts.uri.query(), &inner.query_name, &inner.query_prefix)
                }
                Location::Json => {
                    let key = if refresh { &inner.refresh_json_key } else { &inner.json_key };
                    match parts.extensions.get::<crate::layer::JsonBody>() {
                        Some(body) => locations::from_json(&body.0, true, key),
                        None => locations::from_json(b"", false, key),
                    }
                }
            };
            match lookup {
                Lookup::Found(token) => {
                    found = Some((token, location));
                    break;
                }
                Lookup::Missing(msg) => tried.push((location.as_str(), msg)),
                Lookup::Malformed(msg) => return Err(AuthError::Malformed(msg)),
            }
        }
        let Some((token, location)) = found else {
            if optional {
                return Ok(None);
            }
            return Err(AuthError::Missing(locations::missing_message(&tried)));
        };

        // A cookie on a state-changing method needs the double-submit header, before anything else.
        let csrf = if location == Location::Cookies && inner.cookies.needs_csrf(&parts.method) {
            let header = if refresh { &inner.cookies.refresh_csrf_header } else { &inner.cookies.access_csrf_header };
            match locations::csrf_from_header(&parts.headers, header) {
                Ok(Some(value)) => Some(value),
                Ok(None) => return Err(AuthError::CsrfMissing),
                Err(msg) => return Err(AuthError::Malformed(msg)),
            }
        } else {
            None
        };

        let decoded = match inner.tokens.decode::<C>(&token) {
            Ok(decoded) => decoded,
            // A key the set does not hold yet (rotated in at the issuer): ask once, retry once.
            Err(TokenError::UnknownKey) if inner.key_source.is_some() => {
                let kid = keycard_token::unverified_kid(&token);
                let changed = match &inner.key_source {
                    Some(source) => source.unknown_key(kid.as_deref()).await,
                    None => false,
                };
                if !changed {
                    return Err(AuthError::InvalidToken(TokenError::UnknownKey));
                }
                inner.tokens.decode::<C>(&token).map_err(AuthError::InvalidToken)?
            }
            Err(e) => return Err(AuthError::InvalidToken(e)),
        };
        if let Some(presented) = csrf {
            let claim = decoded
                .claims
                .csrf
                .as_deref()
                .ok_or(AuthError::InvalidToken(keycard_token::TokenError::MissingClaim("csrf")))?;
            if !locations::csrf_matches(claim, presented) {
                return Err(AuthError::CsrfMismatch);
            }
        }
        match (want, decoded.claims.token_type) {
            (Want::Access, TokenType::Refresh) => {
                return Err(AuthError::WrongTokenType { expected: TokenType::Access });
            }
            (Want::Refresh, TokenType::Access) => {
                return Err(AuthError::WrongTokenType { expected: TokenType::Refresh });
            }
            _ => {}
        }
        if fresh && !decoded.claims.is_fresh_at(inner.tokens.now()) {
            return Err(AuthError::FreshTokenRequired);
        }
        if let Some(revocation) = &inner.revocation {
            match revocation.is_revoked(&decoded).await {
                Ok(false) => {}
                Ok(true) => return Err(AuthError::Revoked),
                Err(e) => {
                    tracing::error!(error = %e, "the revocation check failed; refusing the token");
                    return Err(AuthError::HookFailed);
                }
            }
        }
        if let Some(check) = &inner.claims_check {
            match check.check(&decoded).await {
                Ok(true) => {}
                Ok(false) => return Err(AuthError::ClaimsVerificationFailed),
                Err(e) => {
                    tracing::error!(error = %e, "the claims check failed; refusing the token");
                    return Err(AuthError::HookFailed);
                }
            }
        }
        Ok(Some((decoded, location)))
    }
}

fn check_locations(locations: &[Location]) -> Result<(), ConfigError> {
    if locations.is_empty() {
        return Err(ConfigError("at least one token location is needed".into()));
    }
    for (i, l) in locations.iter().enumerate() {
        if locations[..i].contains(l) {
            return Err(ConfigError(format!("token location `{}` is listed twice", l.as_str())));
        }
    }
    Ok(())
}

impl<C: ClaimSet> JwtConfigBuilder<C> {
    /// Where tokens are looked for, in order (default: headers only). Only a missing token
    /// falls through to the next location; a malformed or invalid one is refused there.
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
    /// let jwt = JwtConfig::<()>::builder(tokens.clone()).locations([Location::QueryString, Location::Headers]).build().unwrap();
    /// let app = Router::new().route("/", get(|jwt: Jwt| async move { jwt.sub.clone() })).layer(jwt.layer());
    /// let token = tokens.access("alice").sign().unwrap().token;
    /// // No `jwt` parameter: on to the header.
    /// let req = Request::get("/").header("Authorization", format!("Bearer {token}")).body(Body::empty()).unwrap();
    /// assert_eq!(send(&app, req).await, (200, "alice".to_owned()));
    /// // A malformed value stops the search there.
    /// let req = Request::get("/?jwt=junk").header("Authorization", format!("Bearer {token}")).body(Body::empty()).unwrap();
    /// assert_eq!(send(&app, req).await, (401, r#"{"msg":"Not enough segments"}"#.to_owned()));
    /// # });
    /// ```
    pub fn locations(mut self, locations: impl IntoIterator<Item = Location>) -> Self {
        self.locations = locations.into_iter().collect();
        self
    }

    /// The header holding the token (default `Authorization`, FJE's `JWT_HEADER_NAME`).
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
    /// use keycard_axum::{Jwt, JwtConfig};
    ///
    /// let jwt = JwtConfig::<()>::builder(tokens.clone()).header_name("X-Api-Token").build().unwrap();
    /// let app = Router::new().route("/", get(|jwt: Jwt| async move { jwt.sub.clone() })).layer(jwt.layer());
    /// let req = Request::get("/").body(Body::empty()).unwrap();
    /// assert_eq!(send(&app, req).await, (401, r#"{"msg":"Missing X-Api-Token Header"}"#.to_owned()));
    /// # });
    /// ```
    pub fn header_name(mut self, name: impl Into<String>) -> Self {
        self.header_name = name.into();
        self
    }

    /// The word before the token in that header (default `Bearer`, compared case-sensitively as
    /// FJE does; empty: the header holds the bare token). FJE's `JWT_HEADER_TYPE`.
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
    /// use keycard_axum::{Jwt, JwtConfig};
    ///
    /// let jwt = JwtConfig::<()>::builder(tokens.clone()).header_name("X-Api-Token").header_type("").build().unwrap();
    /// let app = Router::new().route("/", get(|jwt: Jwt| async move { jwt.sub.clone() })).layer(jwt.layer());
    /// let token = tokens.access("alice").sign().unwrap().token;
    /// let req = Request::get("/").header("X-Api-Token", token).body(Body::empty()).unwrap();
    /// assert_eq!(send(&app, req).await, (200, "alice".to_owned()));
    /// # });
    /// ```
    pub fn header_type(mut self, kind: impl Into<String>) -> Self {
        self.header_type = kind.into();
        self
    }

    /// The query parameter (default `jwt`) and the prefix its value must start with (default
    /// none). FJE's `JWT_QUERY_STRING_NAME` and `JWT_QUERY_STRING_VALUE_PREFIX`.
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
    /// let jwt = JwtConfig::<()>::builder(tokens.clone())
    ///     .locations([Location::QueryString])
    ///     .query_string("token", "Bearer ")
    ///     .build()
    ///     .unwrap();
    /// let app = Router::new().route("/", get(|jwt: Jwt| async move { jwt.sub.clone() })).layer(jwt.layer());
    /// let token = tokens.access("alice").sign().unwrap().token;
    /// let req = Request::get(format!("/?token=Bearer%20{token}")).body(Body::empty()).unwrap();
    /// assert_eq!(send(&app, req).await, (200, "alice".to_owned()));
    /// # });
    /// ```
    pub fn query_string(mut self, name: impl Into<String>, prefix: impl Into<String>) -> Self {
        self.query_name = name.into();
        self.query_prefix = prefix.into();
        self
    }

    /// The JSON body keys of access and refresh tokens (default `access_token`,
    /// `refresh_token`). FJE's `JWT_JSON_KEY` and `JWT_REFRESH_JSON_KEY`.
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
    /// use axum::{Router, body::Body, http::Request, routing::post};
    /// use keycard_axum::{Jwt, JwtConfig, Location};
    ///
    /// let jwt = JwtConfig::<()>::builder(tokens.clone()).locations([Location::Json]).json_keys("jwt", "refresh").build().unwrap();
    /// let app = Router::new().route("/", post(|jwt: Jwt| async move { jwt.sub.clone() })).layer(jwt.layer());
    /// let token = tokens.access("alice").sign().unwrap().token;
    /// let body = serde_json::json!({ "jwt": token }).to_string();
    /// let req = Request::post("/").header("Content-Type", "application/json").body(Body::from(body)).unwrap();
    /// assert_eq!(send(&app, req).await, (200, "alice".to_owned()));
    /// # });
    /// ```
    pub fn json_keys(mut self, access: impl Into<String>, refresh: impl Into<String>) -> Self {
        self.json_key = access.into();
        self.refresh_json_key = refresh.into();
        self
    }

    /// Largest JSON body read for the JSON location (default 64 KiB; larger bodies answer 413).
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
    /// use axum::{Router, body::Body, http::Request, routing::post};
    /// use keycard_axum::{Jwt, JwtConfig, Location};
    ///
    /// let jwt = JwtConfig::<()>::builder(tokens.clone()).locations([Location::Json]).json_body_limit(1024).build().unwrap();
    /// let app = Router::new().route("/", post(|jwt: Jwt| async move { jwt.sub.clone() })).layer(jwt.layer());
    /// let body = serde_json::json!({ "access_token": "a".repeat(2048) }).to_string();
    /// let req = Request::post("/").header("Content-Type", "application/json").body(Body::from(body)).unwrap();
    /// assert_eq!(send(&app, req).await.0, 413);
    /// # });
    /// ```
    pub fn json_body_limit(mut self, bytes: usize) -> Self {
        self.json_body_limit = bytes;
        self
    }

    /// Cookie names, paths, attributes and CSRF settings (default FJE's names, with `Secure`
    /// and `SameSite=Lax` on).
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
    /// use keycard_axum::{CookieSettings, Jwt, JwtConfig, Location};
    ///
    /// let cookies = CookieSettings { access_cookie_name: "session".into(), ..CookieSettings::default() };
    /// let jwt = JwtConfig::<()>::builder(tokens.clone()).locations([Location::Cookies]).cookies(cookies).build().unwrap();
    /// let app = Router::new().route("/", get(|jwt: Jwt| async move { jwt.sub.clone() })).layer(jwt.layer());
    /// let token = tokens.access("alice").sign().unwrap().token;
    /// let req = Request::get("/").header("Cookie", format!("session={token}")).body(Body::empty()).unwrap();
    /// assert_eq!(send(&app, req).await, (200, "alice".to_owned()));
    /// # });
    /// ```
    pub fn cookies(mut self, cookies: CookieSettings) -> Self {
        self.cookies = cookies;
        self
    }

    /// The key of the default error bodies (default `msg`, FJE's `JWT_ERROR_MESSAGE_KEY`).
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
    /// use keycard_axum::{Jwt, JwtConfig};
    ///
    /// let jwt = JwtConfig::<()>::builder(tokens).error_key("error").build().unwrap();
    /// let app = Router::new().route("/", get(|jwt: Jwt| async move { jwt.sub.clone() })).layer(jwt.layer());
    /// let req = Request::get("/").body(Body::empty()).unwrap();
    /// assert_eq!(send(&app, req).await, (401, r#"{"error":"Missing Authorization Header"}"#.to_owned()));
    /// # });
    /// ```
    pub fn error_key(mut self, key: impl Into<String>) -> Self {
        self.error_key = key.into();
        self
    }

    /// The revocation hook, asked about every token that verifies and passes the route's CSRF,
    /// type and freshness checks.
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
    /// use keycard_axum::{Jwt, JwtConfig};
    /// use keycard_token::RevocationList;
    ///
    /// let revoked = Arc::new(RevocationList::new());
    /// let jwt = JwtConfig::<()>::builder(tokens.clone()).revocation(revoked.clone()).build().unwrap();
    /// let app = Router::new().route("/", get(|jwt: Jwt| async move { jwt.sub.clone() })).layer(jwt.layer());
    /// let signed = tokens.access("alice").sign().unwrap();
    /// revoked.revoke_token(&signed.claims);
    /// let req = Request::get("/").header("Authorization", format!("Bearer {}", signed.token)).body(Body::empty()).unwrap();
    /// assert_eq!(send(&app, req).await, (401, r#"{"msg":"Token has been revoked"}"#.to_owned()));
    /// # });
    /// ```
    pub fn revocation(mut self, revocation: impl Revocation<C>) -> Self
    where
        C: Sync,
    {
        self.revocation = Some(Arc::new(revocation));
        self
    }

    /// The revocation hook as a closure returning a future. Copy what the future needs out of
    /// the token (`token.claims.jti`) before the `async move`.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # let tokens = Arc::new(keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[1; 32]).unwrap(),
    /// #     Default::default(), Arc::new(keycard_token::SystemClock)));
    /// let config = keycard_axum::JwtConfig::<()>::builder(tokens)
    ///     .revocation_fn(|token| {
    ///         let jti = token.claims.jti.clone();
    ///         async move { Ok(jti.is_none()) }
    ///     })
    ///     .build()
    ///     .unwrap();
    /// ```
    pub fn revocation_fn<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(&Decoded<C>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<bool, BoxError>> + Send + 'static,
    {
        self.revocation = Some(Arc::new(RevocationFn(f)));
        self
    }

    /// The claims check hook.
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
    /// use keycard_axum::{BoxError, ClaimsCheck, Jwt, JwtConfig};
    /// use keycard_token::Decoded;
    ///
    /// struct OnlyAlice;
    /// impl ClaimsCheck<()> for OnlyAlice {
    ///     async fn check(&self, token: &Decoded<()>) -> Result<bool, BoxError> {
    ///         Ok(token.claims.sub == "alice")
    ///     }
    /// }
    ///
    /// let jwt = JwtConfig::<()>::builder(tokens.clone()).claims_check(OnlyAlice).build().unwrap();
    /// let app = Router::new().route("/", get(|jwt: Jwt| async move { jwt.sub.clone() })).layer(jwt.layer());
    /// let token = tokens.access("bob").sign().unwrap().token;
    /// let req = Request::get("/").header("Authorization", format!("Bearer {token}")).body(Body::empty()).unwrap();
    /// assert_eq!(send(&app, req).await, (400, r#"{"msg":"User claims verification failed"}"#.to_owned()));
    /// # });
    /// ```
    pub fn claims_check(mut self, check: impl ClaimsCheck<C>) -> Self {
        self.claims_check = Some(Arc::new(check));
        self
    }

    /// The claims check as a plain function of the verified token.
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
    /// use keycard_axum::{Jwt, JwtConfig};
    ///
    /// let jwt = JwtConfig::<()>::builder(tokens.clone()).claims_check_fn(|token| token.claims.sub != "bob").build().unwrap();
    /// let app = Router::new().route("/", get(|jwt: Jwt| async move { jwt.sub.clone() })).layer(jwt.layer());
    /// let token = tokens.access("bob").sign().unwrap().token;
    /// let req = Request::get("/").header("Authorization", format!("Bearer {token}")).body(Body::empty()).unwrap();
    /// assert_eq!(send(&app, req).await.0, 400);
    /// # });
    /// ```
    pub fn claims_check_fn(mut self, f: impl Fn(&Decoded<C>) -> bool + Send + Sync + 'static) -> Self {
        self.claims_check = Some(Arc::new(ClaimsCheckFn(f)));
        self
    }

    /// Replaces error responses (see [`ErrorHandler`]).
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
    /// use axum::{http::StatusCode, response::IntoResponse};
    /// use keycard_axum::{AuthError, Json, Jwt, JwtConfig};
    ///
    /// let jwt = JwtConfig::<()>::builder(tokens)
    ///     .on_error(|e: &AuthError| {
    ///         e.is_missing().then(|| (StatusCode::UNAUTHORIZED, Json(serde_json::json!({"err": "log in"}))).into_response())
    ///     })
    ///     .build()
    ///     .unwrap();
    /// let app = Router::new().route("/", get(|jwt: Jwt| async move { jwt.sub.clone() })).layer(jwt.layer());
    /// let req = Request::get("/").body(Body::empty()).unwrap();
    /// assert_eq!(send(&app, req).await, (401, r#"{"err":"log in"}"#.to_owned()));
    /// # });
    /// ```
    pub fn on_error(mut self, handler: impl ErrorHandler) -> Self {
        self.error_handler = Some(Arc::new(handler));
        self
    }

    /// Sliding sessions (FJE's `implicit_refresh` recipe): when a route authenticated by the
    /// access cookie answers and that token expires within `within`, the layer sets a new access
    /// cookie (same identity and claims, not fresh). Needs the cookie location.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # let clock = Arc::new(keycard_token::ManualClock::new(1_700_000_000));
    /// # let tokens = Arc::new(keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
    /// #     Default::default(), clock.clone()));
    /// # async fn send(app: &axum::Router, req: axum::http::Request<axum::body::Body>) -> (u16, String) {
    /// #     let response = tower::ServiceExt::oneshot(app.clone(), req).await.unwrap();
    /// #     let status = response.status().as_u16();
    /// #     let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
    /// #     (status, String::from_utf8(body.to_vec()).unwrap())
    /// # }
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use axum::{Router, body::Body, http::Request, routing::get};
    /// use std::time::Duration;
    /// use keycard_axum::{Jwt, JwtConfig, Location};
    ///
    /// let jwt = JwtConfig::<()>::builder(tokens.clone())
    ///     .locations([Location::Cookies])
    ///     .implicit_refresh(Duration::from_secs(5 * 60))
    ///     .build()
    ///     .unwrap();
    /// let app = Router::new().route("/", get(|jwt: Jwt| async move { jwt.sub.clone() })).layer(jwt.layer());
    /// let token = tokens.access("alice").sign().unwrap().token; // 15 minutes
    /// clock.advance(11 * 60); // 4 minutes left
    /// let req = Request::get("/").header("Cookie", format!("access_token_cookie={token}")).body(Body::empty()).unwrap();
    /// let response = tower::ServiceExt::oneshot(app, req).await.unwrap();
    /// let set = response.headers()["set-cookie"].to_str().unwrap();
    /// assert!(set.starts_with("access_token_cookie=") && !set.contains(&token));
    /// # });
    /// ```
    pub fn implicit_refresh(mut self, within: Duration) -> Self {
        self.implicit_refresh = Some(within);
        self
    }

    /// The claims of new tokens as a function of the identity (FJE's
    /// `additional_claims_loader`), used by [`JwtConfig::access_token`] and
    /// [`JwtConfig::refresh_token`].
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # let tokens = Arc::new(keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
    /// #     Default::default(), Arc::new(keycard_token::SystemClock)));
    /// #[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
    /// struct Extra { is_admin: bool }
    ///
    /// let config = keycard_axum::JwtConfig::<Extra>::builder(tokens)
    ///     .additional_claims(|identity| Extra { is_admin: identity == "root" })
    ///     .build()
    ///     .unwrap();
    /// assert!(config.access_token("root").sign().unwrap().claims.is_admin);
    /// assert!(!config.access_token("alice").sign().unwrap().claims.is_admin);
    /// ```
    pub fn additional_claims(mut self, f: impl Fn(&str) -> C + Send + Sync + 'static) -> Self {
        self.additional_claims = Some(Arc::new(f));
        self
    }

    /// Where to get keys a token names but the key set lacks: asked once per such token, which
    /// is verified again when the source says the keys changed (a JWKS verifier refetching the
    /// issuer's keys after a rotation; keycard-jwks's `JwksVerifier` is one).
    ///
    /// ```
    /// # use std::{future::Future, pin::Pin, sync::Arc};
    /// # let tokens = Arc::new(keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
    /// #     Default::default(), Arc::new(keycard_token::SystemClock)));
    /// struct Never;
    /// impl keycard_token::KeySource for Never {
    ///     fn unknown_key<'a>(&'a self, _: Option<&'a str>) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>> {
    ///         Box::pin(async { false })
    ///     }
    /// }
    /// let jwt = keycard_axum::JwtConfig::<()>::builder(tokens).key_source(Arc::new(Never)).build().unwrap();
    /// ```
    pub fn key_source(mut self, source: Arc<dyn KeySource>) -> Self {
        self.key_source = Some(source);
        self
    }

    /// Checks everything and builds the configuration.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # let tokens = Arc::new(keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
    /// #     Default::default(), Arc::new(keycard_token::SystemClock)));
    /// use std::time::Duration;
    /// use keycard_axum::JwtConfig;
    ///
    /// assert!(JwtConfig::<()>::builder(tokens.clone()).build().is_ok());
    /// // The implicit refresh re-issues a cookie: without the cookie location it is a mistake.
    /// assert!(JwtConfig::<()>::builder(tokens).implicit_refresh(Duration::from_secs(60)).build().is_err());
    /// ```
    pub fn build(self) -> Result<JwtConfig<C>, ConfigError> {
        check_locations(&self.locations)?;
        let header_name = HeaderName::try_from(self.header_name.as_str())
            .map_err(|_| ConfigError(format!("`{}` is not a valid header name", self.header_name)))?;
        if self.header_type.chars().any(|c| c.is_whitespace() || c == ',') {
            return Err(ConfigError("the header type must be one word (or empty)".into()));
        }
        self.cookies.validate().map_err(ConfigError)?;
        if self.query_name.is_empty() || self.json_key.is_empty() || self.refresh_json_key.is_empty() {
            return Err(ConfigError("query parameter and JSON key names must not be empty".into()));
        }
        if self.error_key.is_empty() {
            return Err(ConfigError("the error key must not be empty".into()));
        }
        let cookies = self.locations.contains(&Location::Cookies);
        if cookies && self.cookies.csrf_protect && !self.tokens.settings().csrf_claim {
            return Err(ConfigError(
                "cookie CSRF protection needs tokens with a `csrf` claim (TokenSettings::csrf_claim)".into(),
            ));
        }
        if self.implicit_refresh.is_some() && !cookies {
            return Err(ConfigError("implicit refresh re-issues the access cookie: add Location::Cookies".into()));
        }
        Ok(JwtConfig {
            inner: Arc::new(Inner {
                tokens: self.tokens,
                locations: self.locations,
                header_name,
                header_display: self.header_name,
                header_type: self.header_type,
                query_name: self.query_name,
                query_prefix: self.query_prefix,
                json_key: self.json_key,
                refresh_json_key: self.refresh_json_key,
                cookies: self.cookies,
                error_key: Arc::from(self.error_key),
                revocation: self.revocation,
                claims_check: self.claims_check,
                error_handler: self.error_handler,
                key_source: self.key_source,
                implicit_refresh: self.implicit_refresh,
                json_body_limit: self.json_body_limit,
                additional_claims: self.additional_claims,
            }),
        })
    }
}

/// `Set-Cookie` headers, usable as response parts (`(cookies, Json(body))`) or applied to a
/// [`HeaderMap`] with [`SetCookies::apply`].
///
/// ```
/// # use std::sync::Arc;
/// # let tokens = Arc::new(keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
/// #     Default::default(), Arc::new(keycard_token::SystemClock)));
/// use axum::response::IntoResponse;
/// use keycard_axum::Json;
///
/// let jwt = keycard_axum::JwtConfig::<()>::builder(tokens).build().unwrap();
/// let signed = jwt.tokens().access("alice").sign().unwrap();
/// let response = (jwt.access_cookies(&signed), Json(serde_json::json!({"login": true}))).into_response();
/// assert_eq!(response.headers().get_all("set-cookie").iter().count(), 2);
/// ```
#[derive(Debug, Clone, Default)]
#[must_use = "add it to a response"]
pub struct SetCookies(pub Vec<HeaderValue>);

impl SetCookies {
    /// Appends the cookies to `headers`.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # let tokens = Arc::new(keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
    /// #     Default::default(), Arc::new(keycard_token::SystemClock)));
    /// use axum::http::HeaderMap;
    /// let jwt = keycard_axum::JwtConfig::<()>::builder(tokens).build().unwrap();
    /// let mut headers = HeaderMap::new();
    /// jwt.unset_cookies().apply(&mut headers);
    /// assert_eq!(headers.get_all("set-cookie").iter().count(), 4);
    /// ```
    pub fn apply(self, headers: &mut HeaderMap) {
        for value in self.0 {
            headers.append(axum::http::header::SET_COOKIE, value);
        }
    }

    /// These cookies followed by `other`'s.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # let tokens = Arc::new(keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
    /// #     Default::default(), Arc::new(keycard_token::SystemClock)));
    /// let jwt = keycard_axum::JwtConfig::<()>::builder(tokens).build().unwrap();
    /// let both = jwt.unset_access_cookies().and(jwt.unset_refresh_cookies());
    /// assert_eq!(both.0, jwt.unset_cookies().0);
    /// ```
    pub fn and(mut self, other: SetCookies) -> Self {
        self.0.extend(other.0);
        self
    }
}

impl IntoResponseParts for SetCookies {
    type Error = std::convert::Infallible;

    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        self.apply(res.headers_mut());
        Ok(res)
    }
}

impl<C> JwtConfig<C> {
    pub(crate) fn needs_json_body(&self) -> bool {
        self.inner.locations.contains(&Location::Json)
    }

    pub(crate) fn error_key(&self) -> &str {
        &self.inner.error_key
    }
}

/// Re-issues the access cookie for `claims` when it expires within the configured window.
pub(crate) fn refreshed_cookies<C: ClaimSet>(config: &JwtConfig<C>, claims: Claims<C>) -> Option<SetCookies> {
    let within = config.inner.implicit_refresh?;
    let now = config.inner.tokens.now();
    let within = i64::try_from(within.as_secs()).unwrap_or(i64::MAX);
    if claims.exp > now.saturating_add(within) {
        return None;
    }
    let signed = config.inner.tokens.access(&claims.sub).claims(claims.extra).sign().ok()?;
    Some(config.access_cookies(&signed))
}
