//! The one error type of authentication, and its HTTP form.

use std::borrow::Cow;
use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header::WWW_AUTHENTICATE};
use axum::response::{IntoResponse, Response};
use keycard_token::{TokenError, TokenType};

/// Why a request was not authenticated or not authorised.
///
/// The default responses are Flask-JWT-Extended's, except that FJE's 422 becomes 401: status
/// 401 (400 for [`AuthError::ClaimsVerificationFailed`], 403 for [`AuthError::Forbidden`], 503
/// for [`AuthError::HookFailed`], 500 for [`AuthError::NotConfigured`]), a JSON body
/// `{"msg": ...}` (the key is [`JwtConfigBuilder::error_key`](crate::JwtConfigBuilder::error_key))
/// and a `WWW-Authenticate: Bearer ...` challenge (RFC 6750 §3). Messages never echo anything
/// taken from an unverified token. Every response can be replaced with
/// [`JwtConfigBuilder::on_error`](crate::JwtConfigBuilder::on_error).
///
/// ```
/// use keycard_axum::AuthError;
/// use keycard_token::TokenError;
///
/// let e = AuthError::InvalidToken(TokenError::Expired);
/// assert!(e.is_expired());
/// assert_eq!(e.message(), "Token has expired");
/// assert_eq!(e.status(), 401);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// 401: no token in any configured location; the message says where it was looked for
    /// (`Missing Authorization Header`, `Missing cookie "access_token_cookie"`, ...).
    Missing(String),
    /// 401: a token location held something malformed (`Bad Authorization header. ...`, a
    /// wrong query prefix, a cookie set twice); the search stops there.
    Malformed(String),
    /// 401: the token did not verify (signature, expiry, claims, ...).
    InvalidToken(TokenError),
    /// 401: a refresh token where an access token is required, or the reverse.
    WrongTokenType {
        /// The type the route requires.
        expected: TokenType,
    },
    /// 401: cookie authentication of a state-changing method without the CSRF header.
    CsrfMissing,
    /// 401: the CSRF header does not match the token's `csrf` claim.
    CsrfMismatch,
    /// 401: the route requires a fresh token.
    FreshTokenRequired,
    /// 401: the revocation hook says the token is revoked.
    Revoked,
    /// 401: a refresh token that was already rotated away was presented again; the session has
    /// been ended (RFC 9700 §4.14.2 reuse detection).
    RefreshReused,
    /// 400: the claims check hook refused the token.
    ClaimsVerificationFailed,
    /// 401: the user lookup found no user for the token's identity.
    UserLookupFailed {
        /// The token's (verified) `sub`.
        identity: String,
    },
    /// 403: a guard refused the request; the message is the guard's.
    Forbidden(Cow<'static, str>),
    /// 503: a hook (revocation store, user lookup) failed, so the token could not be checked.
    HookFailed,
    /// 500: the route uses an extractor but no [`JwtConfig::layer`](crate::JwtConfig::layer) with
    /// that claims type is installed: a wiring mistake, logged loudly.
    NotConfigured,
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for AuthError {}

impl AuthError {
    /// The human-readable message sent as `{"msg": ...}`.
    ///
    /// ```
    /// use keycard_axum::AuthError;
    /// use keycard_token::TokenType;
    /// assert_eq!(AuthError::WrongTokenType { expected: TokenType::Refresh }.message(), "Only refresh tokens are allowed");
    /// ```
    pub fn message(&self) -> Cow<'_, str> {
        match self {
            AuthError::Missing(msg) | AuthError::Malformed(msg) => Cow::Borrowed(msg),
            AuthError::InvalidToken(e) => Cow::Owned(e.to_string()),
            AuthError::WrongTokenType { expected: TokenType::Access } => "Only non-refresh tokens are allowed".into(),
            AuthError::WrongTokenType { expected: TokenType::Refresh } => "Only refresh tokens are allowed".into(),
            AuthError::CsrfMissing => "Missing CSRF token".into(),
            AuthError::CsrfMismatch => "CSRF double submit tokens do not match".into(),
            AuthError::FreshTokenRequired => "Fresh token required".into(),
            AuthError::Revoked => "Token has been revoked".into(),
            AuthError::RefreshReused => "Refresh token reused: the session has been ended".into(),
            AuthError::ClaimsVerificationFailed => "User claims verification failed".into(),
            AuthError::UserLookupFailed { identity } => Cow::Owned(format!("Error loading the user {identity}")),
            AuthError::Forbidden(msg) => Cow::Borrowed(msg),
            AuthError::HookFailed => "Authentication is temporarily unavailable".into(),
            AuthError::NotConfigured => "Authentication is not configured for this route".into(),
        }
    }

    /// Whether this is an expired token (FJE's `expired_token_loader` case).
    ///
    /// ```
    /// use keycard_axum::AuthError;
    /// use keycard_token::TokenError;
    /// assert!(AuthError::InvalidToken(TokenError::Expired).is_expired());
    /// assert!(!AuthError::InvalidToken(TokenError::InvalidSignature).is_expired());
    /// ```
    pub fn is_expired(&self) -> bool {
        matches!(self, AuthError::InvalidToken(TokenError::Expired))
    }

    /// Whether no token was found at all (what an optional route tolerates).
    ///
    /// ```
    /// use keycard_axum::AuthError;
    /// assert!(AuthError::Missing("Missing Authorization Header".into()).is_missing());
    /// assert!(!AuthError::Malformed("Bad Authorization header".into()).is_missing());
    /// ```
    pub fn is_missing(&self) -> bool {
        matches!(self, AuthError::Missing(_))
    }

    /// The status of the default response.
    ///
    /// ```
    /// use keycard_axum::AuthError;
    /// assert_eq!(AuthError::ClaimsVerificationFailed.status(), 400);
    /// assert_eq!(AuthError::Forbidden("Admins only!".into()).status(), 403);
    /// assert_eq!(AuthError::HookFailed.status(), 503);
    /// ```
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::ClaimsVerificationFailed => StatusCode::BAD_REQUEST,
            AuthError::Forbidden(_) => StatusCode::FORBIDDEN,
            AuthError::HookFailed => StatusCode::SERVICE_UNAVAILABLE,
            AuthError::NotConfigured => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The `WWW-Authenticate` challenge (RFC 6750 §3): no error code when no credentials were
    /// sent, `invalid_request` for a malformed request, `invalid_token` for a refused token and
    /// `insufficient_scope` for a guard's refusal. `None` for the 5xx answers.
    ///
    /// ```
    /// use keycard_axum::AuthError;
    /// assert_eq!(AuthError::Missing("Missing Authorization Header".into()).challenge().unwrap(), "Bearer");
    /// assert_eq!(
    ///     AuthError::CsrfMissing.challenge().unwrap(),
    ///     r#"Bearer error="invalid_request", error_description="Missing CSRF token""#
    /// );
    /// assert!(AuthError::HookFailed.challenge().is_none());
    /// ```
    pub fn challenge(&self) -> Option<HeaderValue> {
        let code = match self {
            AuthError::Missing(_) => return Some(HeaderValue::from_static("Bearer")),
            AuthError::HookFailed | AuthError::NotConfigured => return None,
            AuthError::Malformed(_) | AuthError::CsrfMissing | AuthError::CsrfMismatch => "invalid_request",
            AuthError::Forbidden(_) => "insufficient_scope",
            _ => "invalid_token",
        };
        let description: String = self
            .message()
            .chars()
            .map(|c| if c == '"' || c == '\\' || !(' '..='~').contains(&c) { '\'' } else { c })
            .collect();
        let value = format!("Bearer error=\"{code}\", error_description=\"{description}\"");
        Some(
            HeaderValue::from_str(&value)
                .unwrap_or_else(|_| HeaderValue::from_static("Bearer error=\"invalid_token\"")),
        )
    }

    /// The default response with the message under `key`.
    ///
    /// ```
    /// use keycard_axum::AuthError;
    /// let response = AuthError::FreshTokenRequired.response_with_key("error");
    /// assert_eq!(response.status(), 401);
    /// assert_eq!(response.headers()["content-type"], "application/json");
    /// ```
    pub fn response_with_key(&self, key: &str) -> Response {
        let mut body = serde_json::Map::new();
        body.insert(key.to_owned(), self.message().into_owned().into());
        let mut response = (self.status(), axum::Json(serde_json::Value::Object(body))).into_response();
        if let Some(challenge) = self.challenge() {
            response.headers_mut().insert(WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

impl IntoResponse for AuthError {
    /// The default response, `{"msg": ...}`.
    fn into_response(self) -> Response {
        self.response_with_key("msg")
    }
}

/// Replaces the response of some or all [`AuthError`]s (FJE's `expired_token_loader`,
/// `invalid_token_loader`, `unauthorized_loader`, ... in one place). Return `None` to keep the
/// default. Any `Fn(&AuthError) -> Option<Response>` closure is one.
///
/// ```
/// use axum::{Json, http::StatusCode, response::IntoResponse};
/// use keycard_axum::{AuthError, ErrorHandler};
///
/// let handler = |e: &AuthError| {
///     e.is_expired().then(|| (StatusCode::UNAUTHORIZED, Json(serde_json::json!({"err": "expired"}))).into_response())
/// };
/// assert!(handler.response(&AuthError::InvalidToken(keycard_token::TokenError::Expired)).is_some());
/// assert!(handler.response(&AuthError::Revoked).is_none());
/// ```
pub trait ErrorHandler: Send + Sync + 'static {
    /// The response for `error`, or `None` for the default.
    fn response(&self, error: &AuthError) -> Option<Response>;
}

impl<F> ErrorHandler for F
where
    F: Fn(&AuthError) -> Option<Response> + Send + Sync + 'static,
{
    fn response(&self, error: &AuthError) -> Option<Response> {
        self(error)
    }
}

/// The rejection of every keycard extractor: the [`AuthError`] and how the route's
/// configuration answers it.
///
/// ```
/// use axum::response::IntoResponse;
/// use keycard_axum::{AuthError, AuthRejection};
///
/// let rejection = AuthRejection::from(AuthError::Revoked);
/// assert_eq!(rejection.error(), &AuthError::Revoked);
/// assert_eq!(rejection.into_response().status(), 401);
/// ```
#[derive(Clone)]
pub struct AuthRejection {
    error: AuthError,
    handler: Option<Arc<dyn ErrorHandler>>,
    key: Arc<str>,
}

impl std::fmt::Debug for AuthRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("AuthRejection").field(&self.error).finish()
    }
}

impl AuthRejection {
    pub(crate) fn new(error: AuthError, handler: Option<Arc<dyn ErrorHandler>>, key: Arc<str>) -> Self {
        Self { error, handler, key }
    }

    /// A rejection answered with the defaults.
    ///
    /// ```
    /// use axum::response::IntoResponse;
    /// use keycard_axum::{AuthError, AuthRejection};
    /// assert_eq!(AuthRejection::plain(AuthError::HookFailed).into_response().status(), 503);
    /// ```
    pub fn plain(error: AuthError) -> Self {
        Self { error, handler: None, key: Arc::from("msg") }
    }

    /// Why the request was refused.
    ///
    /// ```
    /// use keycard_axum::{AuthError, AuthRejection};
    /// assert!(AuthRejection::plain(AuthError::Revoked).error().status() == 401);
    /// ```
    pub fn error(&self) -> &AuthError {
        &self.error
    }

    /// The error, giving up the configured response.
    ///
    /// ```
    /// use keycard_axum::{AuthError, AuthRejection};
    /// assert_eq!(AuthRejection::plain(AuthError::CsrfMismatch).into_error(), AuthError::CsrfMismatch);
    /// ```
    pub fn into_error(self) -> AuthError {
        self.error
    }
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        if matches!(self.error, AuthError::NotConfigured) {
            tracing::error!(
                "a keycard extractor ran on a route without a matching JwtConfig layer: add `.layer(config.layer())` \
                 with the same claims type"
            );
        }
        if let Some(handler) = &self.handler
            && let Some(response) = handler.response(&self.error)
        {
            return response;
        }
        self.error.response_with_key(&self.key)
    }
}

impl From<AuthError> for AuthRejection {
    fn from(error: AuthError) -> Self {
        Self::plain(error)
    }
}

/// A token that could not be issued, as a response (500 `{"msg": ...}`, logged), so that a
/// handler can write `tokens.access(id).sign()?` with `Result<_, IssueError>`.
///
/// ```
/// use axum::Json;
/// use keycard_axum::IssueError;
/// use keycard_token::Tokens;
///
/// fn login(tokens: &Tokens) -> Result<Json<serde_json::Value>, IssueError> {
///     let signed = tokens.access("test").sign()?;
///     Ok(Json(serde_json::json!({ "access_token": signed.token })))
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Token could not be issued: {0}")]
pub struct IssueError(pub TokenError);

impl From<TokenError> for IssueError {
    fn from(e: TokenError) -> Self {
        IssueError(e)
    }
}

impl IntoResponse for IssueError {
    fn into_response(self) -> Response {
        tracing::error!(error = %self.0, "a token could not be issued");
        (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(serde_json::json!({ "msg": self.to_string() }))).into_response()
    }
}
