//! The extractors: FJE's decorators as handler arguments.

use std::future::Future;
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use keycard_token::{Claims, Header};

use crate::config::{BoxError, ClaimSet, Want};
use crate::layer::RefreshSlot;
use crate::{AuthError, AuthRejection, JwtConfig, Location};

/// A valid access token (FJE's `@jwt_required()`): add it as a handler argument to protect the
/// route. `Option<Jwt<C>>` is `@jwt_required(optional=True)`: no token at all gives `None`; an
/// invalid, expired or revoked one is still refused.
///
/// Dereferences to [`Claims<C>`], which dereferences to `C`: `jwt.sub`, `jwt.jti`, and your
/// own `jwt.is_administrator`.
///
/// ```
/// use axum::Json;
/// use keycard_axum::Jwt;
///
/// async fn protected(jwt: Jwt) -> Json<serde_json::Value> {
///     Json(serde_json::json!({ "logged_in_as": jwt.sub }))
/// }
///
/// async fn optionally_protected(jwt: Option<Jwt>) -> String {
///     jwt.map_or("anonymous user".to_owned(), |jwt| jwt.sub.clone())
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Jwt<C = ()> {
    /// The verified claims (FJE's `get_jwt()`).
    pub claims: Claims<C>,
    /// The protected header (FJE's `get_jwt_header()`).
    pub header: Arc<Header>,
    /// Where the token was found (FJE's `get_jwt_request_location()`).
    pub location: Location,
}

impl<C> Jwt<C> {
    /// The identity (FJE's `get_jwt_identity()`), parsed into any [`FromStr`](std::str::FromStr) type.
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
    /// let jwt = JwtConfig::<()>::builder(tokens.clone()).build().unwrap();
    /// let app = Router::new()
    ///     .route("/", get(|jwt: Jwt| async move { (jwt.identity::<i64>().unwrap() + 1).to_string() }))
    ///     .layer(jwt.layer());
    /// let token = tokens.access(41).sign().unwrap().token;
    /// let req = Request::get("/").header("Authorization", format!("Bearer {token}")).body(Body::empty()).unwrap();
    /// assert_eq!(send(&app, req).await, (200, "42".to_owned()));
    /// # });
    /// ```
    pub fn identity<I: std::str::FromStr>(&self) -> Result<I, I::Err> {
        self.claims.identity()
    }
}

impl<C> Deref for Jwt<C> {
    type Target = Claims<C>;

    fn deref(&self) -> &Claims<C> {
        &self.claims
    }
}

/// A valid access token that is fresh (FJE's `@jwt_required(fresh=True)`), for sensitive
/// operations such as changing a password.
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
/// use keycard_axum::{FreshJwt, JwtConfig};
///
/// async fn change_password(jwt: FreshJwt) -> String {
///     format!("password of {} changed", jwt.sub)
/// }
///
/// let jwt = JwtConfig::<()>::builder(tokens.clone()).build().unwrap();
/// let app = Router::new().route("/", get(change_password)).layer(jwt.layer());
/// let bearer = |token: String| Request::get("/").header("Authorization", format!("Bearer {token}"));
/// let stale = tokens.access("alice").sign().unwrap().token;
/// let fresh = tokens.access("alice").fresh(true).sign().unwrap().token;
/// assert_eq!(send(&app, bearer(stale).body(Body::empty()).unwrap()).await, (401, r#"{"msg":"Fresh token required"}"#.to_owned()));
/// assert_eq!(send(&app, bearer(fresh).body(Body::empty()).unwrap()).await.0, 200);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct FreshJwt<C = ()>(pub Jwt<C>);

/// A valid refresh token (FJE's `@jwt_required(refresh=True)`), for the refresh endpoint.
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
/// use keycard_axum::{IssueError, Json, JwtConfig, RefreshJwt};
///
/// let jwt = JwtConfig::<()>::builder(tokens.clone()).build().unwrap();
/// let config = jwt.clone();
/// let refresh = move |old: RefreshJwt| async move {
///     let signed = config.tokens().access(&old.sub).sign()?;
///     Ok::<_, IssueError>(Json(serde_json::json!({ "access_token": signed.token })))
/// };
/// let app = Router::new().route("/refresh", post(refresh)).layer(jwt.layer());
/// let bearer = |token: String| Request::post("/refresh").header("Authorization", format!("Bearer {token}"));
/// let access = tokens.access("alice").sign().unwrap().token;
/// let (status, body) = send(&app, bearer(access).body(Body::empty()).unwrap()).await;
/// assert_eq!((status, body.as_str()), (401, r#"{"msg":"Only refresh tokens are allowed"}"#));
/// let refresh = tokens.refresh("alice").sign().unwrap().token;
/// assert_eq!(send(&app, bearer(refresh).body(Body::empty()).unwrap()).await.0, 200);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct RefreshJwt<C = ()>(pub Jwt<C>);

/// A valid token of either type (FJE's `@jwt_required(verify_type=False)`).
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
/// use keycard_axum::{AnyJwt, JwtConfig};
///
/// let jwt = JwtConfig::<()>::builder(tokens.clone()).build().unwrap();
/// let app = Router::new()
///     .route("/", get(|jwt: AnyJwt| async move { jwt.token_type.as_str() }))
///     .layer(jwt.layer());
/// let refresh = tokens.refresh("alice").sign().unwrap().token;
/// let req = Request::get("/").header("Authorization", format!("Bearer {refresh}")).body(Body::empty()).unwrap();
/// assert_eq!(send(&app, req).await, (200, "refresh".to_owned()));
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct AnyJwt<C = ()>(pub Jwt<C>);

macro_rules! deref_to_jwt {
    ($($t:ident),*) => {$(
        impl<C> Deref for $t<C> {
            type Target = Jwt<C>;
            fn deref(&self) -> &Jwt<C> {
                &self.0
            }
        }
    )*};
}
deref_to_jwt!(FreshJwt, RefreshJwt, AnyJwt);

fn config_of<C: ClaimSet>(parts: &Parts) -> Result<JwtConfig<C>, AuthRejection> {
    parts.extensions.get::<JwtConfig<C>>().cloned().ok_or_else(|| AuthRejection::plain(AuthError::NotConfigured))
}

async fn extract<C: ClaimSet>(
    parts: &Parts,
    want: Want,
    fresh: bool,
    optional: bool,
) -> Result<Option<Jwt<C>>, AuthRejection> {
    let config = config_of::<C>(parts)?;
    match config.authenticate(parts, want, fresh, optional).await {
        Ok(None) => Ok(None),
        Ok(Some((decoded, location))) => {
            if location == Location::Cookies
                && want != Want::Refresh
                && let Some(slot) = parts.extensions.get::<Arc<RefreshSlot<C>>>()
            {
                *slot.0.lock() = Some(decoded.claims.clone());
            }
            Ok(Some(Jwt { claims: decoded.claims, header: decoded.header, location }))
        }
        Err(e) => Err(config.reject(e)),
    }
}

impl<S: Send + Sync, C: ClaimSet> FromRequestParts<S> for Jwt<C> {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        extract(parts, Want::Access, false, false).await?.ok_or_else(|| AuthRejection::plain(AuthError::NotConfigured))
    }
}

impl<S: Send + Sync, C: ClaimSet> OptionalFromRequestParts<S> for Jwt<C> {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Self::Rejection> {
        extract(parts, Want::Access, false, true).await
    }
}

impl<S: Send + Sync, C: ClaimSet> FromRequestParts<S> for FreshJwt<C> {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let jwt = extract(parts, Want::Access, true, false).await?;
        jwt.map(Self).ok_or_else(|| AuthRejection::plain(AuthError::NotConfigured))
    }
}

impl<S: Send + Sync, C: ClaimSet> FromRequestParts<S> for RefreshJwt<C> {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let jwt = extract(parts, Want::Refresh, false, false).await?;
        jwt.map(Self).ok_or_else(|| AuthRejection::plain(AuthError::NotConfigured))
    }
}

impl<S: Send + Sync, C: ClaimSet> FromRequestParts<S> for AnyJwt<C> {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let jwt = extract(parts, Want::Any, false, false).await?;
        jwt.map(Self).ok_or_else(|| AuthRejection::plain(AuthError::NotConfigured))
    }
}

/// Loads the user a token belongs to (FJE's `user_lookup_loader`), for [`CurrentUser`].
/// Implement it on your user type; the application state gives access to the database.
/// `Ok(None)` (the user no longer exists) answers 401 "Error loading the user ...", an `Err`
/// 503: never a 500.
///
/// ```
/// use keycard_axum::{BoxError, CurrentUser, Jwt, LoadUser};
///
/// #[derive(Clone)]
/// struct AppState { users: Vec<(i64, String)> }
///
/// struct User { id: i64, name: String }
///
/// impl LoadUser<AppState> for User {
///     async fn load(jwt: &Jwt, state: &AppState) -> Result<Option<Self>, BoxError> {
///         let id: i64 = jwt.identity()?;
///         Ok(state.users.iter().find(|(i, _)| *i == id).map(|(id, name)| User { id: *id, name: name.clone() }))
///     }
/// }
///
/// async fn who_am_i(CurrentUser(user, _): CurrentUser<User>) -> String {
///     format!("{} ({})", user.name, user.id)
/// }
/// ```
pub trait LoadUser<S, C = ()>: Sized + Send + Sync + 'static {
    /// The user of `jwt`, if there is one.
    fn load(jwt: &Jwt<C>, state: &S) -> impl Future<Output = Result<Option<Self>, BoxError>> + Send;
}

/// The user of a valid access token (FJE's `current_user`), loaded by [`LoadUser`], with the
/// token.
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
/// use keycard_axum::{BoxError, CurrentUser, Jwt, JwtConfig, LoadUser};
///
/// #[derive(Clone)]
/// struct AppState { users: Vec<(i64, &'static str)> }
///
/// struct User { name: &'static str }
///
/// impl LoadUser<AppState> for User {
///     async fn load(jwt: &Jwt, state: &AppState) -> Result<Option<Self>, BoxError> {
///         let id: i64 = jwt.identity()?;
///         Ok(state.users.iter().find(|(i, _)| *i == id).map(|(_, name)| User { name }))
///     }
/// }
///
/// let jwt = JwtConfig::<()>::builder(tokens.clone()).build().unwrap();
/// let app = Router::new()
///     .route("/", get(|CurrentUser(user, _): CurrentUser<User>| async move { user.name }))
///     .layer(jwt.layer())
///     .with_state(AppState { users: vec![(1, "alice")] });
/// let bearer = |id: i64| {
///     let token = tokens.access(id).sign().unwrap().token;
///     Request::get("/").header("Authorization", format!("Bearer {token}")).body(Body::empty()).unwrap()
/// };
/// assert_eq!(send(&app, bearer(1)).await, (200, "alice".to_owned()));
/// assert_eq!(send(&app, bearer(2)).await, (401, r#"{"msg":"Error loading the user 2"}"#.to_owned()));
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct CurrentUser<U, C = ()>(pub U, pub Jwt<C>);

impl<S, U, C> FromRequestParts<S> for CurrentUser<U, C>
where
    S: Send + Sync,
    U: LoadUser<S, C>,
    C: ClaimSet,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let jwt = <Jwt<C> as FromRequestParts<S>>::from_request_parts(parts, state).await?;
        let config = config_of::<C>(parts)?;
        match U::load(&jwt, state).await {
            Ok(Some(user)) => Ok(CurrentUser(user, jwt)),
            Ok(None) => Err(config.reject(AuthError::UserLookupFailed { identity: jwt.sub.clone() })),
            Err(e) => {
                tracing::error!(error = %e, "the user lookup failed");
                Err(config.reject(AuthError::HookFailed))
            }
        }
    }
}

/// A check on a valid access token, written once and used as an extractor through
/// [`Require`] (FJE's custom decorators, such as `@admin_required()`). A refusal is an
/// [`AuthError`], usually [`AuthError::Forbidden`] (403 `{"msg": ...}`), answered like every
/// other error of the route's configuration (so [`JwtConfigBuilder::on_error`](crate::JwtConfigBuilder::on_error)
/// can change its body).
///
/// ```
/// use axum::Json;
/// use keycard_axum::{AuthError, Guard, Jwt, Require};
///
/// #[derive(Clone, serde::Serialize, serde::Deserialize)]
/// struct Claims { is_administrator: bool }
///
/// struct Admin;
/// impl Guard for Admin {
///     type Claims = Claims;
///     fn check(jwt: &Jwt<Claims>) -> Result<(), AuthError> {
///         if jwt.is_administrator { Ok(()) } else { Err(AuthError::Forbidden("Admins only!".into())) }
///     }
/// }
///
/// async fn protected(_: Require<Admin>) -> Json<serde_json::Value> {
///     Json(serde_json::json!({"foo": "bar"}))
/// }
/// ```
pub trait Guard: Send + Sync + 'static {
    /// The claims type of the tokens.
    type Claims: ClaimSet;

    /// `Ok` to let the request through, or why not.
    fn check(jwt: &Jwt<Self::Claims>) -> Result<(), AuthError>;
}

/// A valid access token that passes guard `G`.
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
/// use keycard_axum::{AuthError, Guard, Jwt, JwtConfig, Require};
///
/// #[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
/// struct Claims { is_administrator: bool }
///
/// struct Admin;
/// impl Guard for Admin {
///     type Claims = Claims;
///     fn check(jwt: &Jwt<Claims>) -> Result<(), AuthError> {
///         if jwt.is_administrator { Ok(()) } else { Err(AuthError::Forbidden("Admins only!".into())) }
///     }
/// }
///
/// let jwt = JwtConfig::<Claims>::builder(tokens.clone()).build().unwrap();
/// let app = Router::new().route("/", get(|admin: Require<Admin>| async move { admin.sub.clone() })).layer(jwt.layer());
/// let bearer = |is_administrator: bool| {
///     let token = tokens.access("alice").claims(Claims { is_administrator }).sign().unwrap().token;
///     Request::get("/").header("Authorization", format!("Bearer {token}")).body(Body::empty()).unwrap()
/// };
/// assert_eq!(send(&app, bearer(true)).await, (200, "alice".to_owned()));
/// assert_eq!(send(&app, bearer(false)).await, (403, r#"{"msg":"Admins only!"}"#.to_owned()));
/// # });
/// ```
pub struct Require<G: Guard>(pub Jwt<G::Claims>, pub PhantomData<G>);

impl<G: Guard> Deref for Require<G> {
    type Target = Jwt<G::Claims>;

    fn deref(&self) -> &Jwt<G::Claims> {
        &self.0
    }
}

impl<S: Send + Sync, G: Guard> FromRequestParts<S> for Require<G> {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let jwt = <Jwt<G::Claims> as FromRequestParts<S>>::from_request_parts(parts, state).await?;
        if let Err(e) = G::check(&jwt) {
            return Err(config_of::<G::Claims>(parts)?.reject(e));
        }
        Ok(Require(jwt, PhantomData))
    }
}

macro_rules! optional {
    ($($t:ident => $want:expr, $fresh:expr;)*) => {$(
        impl<S: Send + Sync, C: ClaimSet> OptionalFromRequestParts<S> for $t<C> {
            type Rejection = AuthRejection;

            async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Self::Rejection> {
                Ok(extract(parts, $want, $fresh, true).await?.map($t))
            }
        }
    )*};
}
optional! {
    FreshJwt => Want::Access, true;
    RefreshJwt => Want::Refresh, false;
    AnyJwt => Want::Any, false;
}
