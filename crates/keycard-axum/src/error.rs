//! The one error type of authentication, and its HTTP form.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header::WWW_AUTHENTICATE};
use axum::response::{IntoResponse, Response};
use keycard_token::{TokenError, TokenType};

/// Why a request was not authenticated or not authorised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// 401: no `Authorization` header.
    MissingHeader,
    /// 401: not `Bearer <token>`, or more than one `Authorization` header.
    BadHeader,
    /// 401: `Authorization` longer than [`crate::MAX_AUTHORIZATION_LEN`].
    HeaderTooLarge,
    /// 401: the token did not verify.
    InvalidToken(TokenError),
    /// 401: a refresh token where an access token is required, or the reverse.
    WrongTokenType {
        /// The type the route requires.
        expected: TokenType,
    },
    /// 401: the token or its session was revoked.
    Revoked,
    /// 401: a refresh token that was already rotated away was presented again; the session
    /// has been ended (RFC 9700 §4.14.2 reuse detection).
    RefreshReused,
    /// 401: the route requires a token from a password login.
    FreshTokenRequired,
    /// 403: the token lacks a required role; the message is the route's.
    Forbidden(&'static str),
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for AuthError {}

impl AuthError {
    /// The human-readable message sent as `{"msg": ...}`.
    pub fn message(&self) -> &'static str {
        match self {
            AuthError::MissingHeader => "Missing Authorization Header",
            AuthError::BadHeader => "Bad Authorization header. Expected 'Authorization: Bearer <JWT>'",
            AuthError::HeaderTooLarge => "Authorization header is too large",
            AuthError::InvalidToken(e) => token_message(*e),
            AuthError::WrongTokenType { expected: TokenType::Access } => "Only access tokens are allowed",
            AuthError::WrongTokenType { expected: TokenType::Refresh } => "Only refresh tokens are allowed",
            AuthError::Revoked => "Token has been revoked",
            AuthError::RefreshReused => "Refresh token reused: the session has been ended",
            AuthError::FreshTokenRequired => "Fresh token required",
            AuthError::Forbidden(msg) => msg,
        }
    }

    /// 401, or 403 for [`AuthError::Forbidden`].
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::Forbidden(_) => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The `WWW-Authenticate` challenge (RFC 6750 §3): no error code when no credentials were
    /// sent, `invalid_request` for a malformed header, `invalid_token` for a refused token and
    /// `insufficient_scope` for a missing role.
    pub fn challenge(&self) -> HeaderValue {
        let code = match self {
            AuthError::MissingHeader => return HeaderValue::from_static("Bearer"),
            AuthError::BadHeader | AuthError::HeaderTooLarge => "invalid_request",
            AuthError::Forbidden(_) => "insufficient_scope",
            _ => "invalid_token",
        };
        let value =
            format!("Bearer error=\"{code}\", error_description=\"{}\"", self.message().replace(['"', '\\'], "'"));
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("Bearer error=\"invalid_token\""))
    }
}

fn token_message(e: TokenError) -> &'static str {
    match e {
        TokenError::Expired => "Token has expired",
        TokenError::InvalidSignature => "Signature verification failed",
        TokenError::NotEnoughSegments => "Not enough segments",
        TokenError::TooManySegments => "Too many segments",
        TokenError::InvalidHeader => "Invalid header string",
        TokenError::AlgorithmNotAllowed => "The specified alg value is not allowed",
        TokenError::UnknownKey => "Unknown key id",
        TokenError::InvalidPayload => "Invalid payload string",
        TokenError::InvalidClaims => "Invalid claims",
        TokenError::NotYetValid => "Token is not yet valid",
        TokenError::IssuedInFuture => "Token was issued in the future",
        TokenError::TooLarge => "Token is too large",
        _ => "Invalid token",
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let mut response = (self.status(), Json(serde_json::json!({ "msg": self.message() }))).into_response();
        response.headers_mut().insert(WWW_AUTHENTICATE, self.challenge());
        response
    }
}
