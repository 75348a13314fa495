//! The one API error type, mapped to HTTP in one place: every error body is `{"msg": "..."}`.
//!
//! Internal errors answer fixed text; their cause chain is logged, never sent.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keycard_axum::AuthError;
use keycard_store::{StoreError, ValidationError};

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed; the message says how.
    #[error("{0}")]
    BadRequest(String),
    /// 400: a field breaks a rule; the message names the field and the rule.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// 401/403 from the token extractors or handlers.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// 401: login failed; identical for an unknown user and a wrong password.
    #[error("Bad username or password")]
    BadCredentials,
    /// 404.
    #[error("{0}")]
    NotFound(&'static str),
    /// 409: the username is taken.
    #[error("User already exists")]
    UserExists,
    /// 409: the change conflicts with the state of other accounts (it would remove the last
    /// active admin); the message says which rule.
    #[error("{0}")]
    Conflict(&'static str),
    /// 413: the body is over the limit.
    #[error("Request body is too large (limit 16 KiB)")]
    PayloadTooLarge,
    /// 415: the body is not declared as JSON.
    #[error("Expected a request with `Content-Type: application/json`")]
    UnsupportedMediaType,
    /// 429: too many attempts; retry after `retry_after` seconds (sent as `Retry-After`).
    #[error("{msg}")]
    TooManyRequests {
        /// Seconds to wait.
        retry_after: u64,
        /// The message.
        msg: &'static str,
    },
    /// 401: a resource-server endpoint without a valid receiver credential.
    #[error("A valid resource-server credential is required (Authorization: Bearer ...)")]
    ReceiverUnauthorized,
    /// 401: the current password given to a password change is wrong.
    #[error("Current password is incorrect")]
    WrongCurrentPassword,
    /// 503: the database is unreachable, overloaded, or refuses writes (a full disk).
    #[error("Service temporarily unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// 500: a bug or an unexpected fault.
    #[error("Internal server error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// The status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::Invalid(_) => StatusCode::BAD_REQUEST,
            ApiError::Auth(e) => e.status(),
            ApiError::BadCredentials | ApiError::WrongCurrentPassword | ApiError::ReceiverUnauthorized => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::UserExists | ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => ApiError::UserExists,
            StoreError::NotFound => ApiError::NotFound("Not found"),
            StoreError::TooManyRoles => ApiError::Invalid(ValidationError(keycard_store::TOO_MANY_ROLES)),
            StoreError::LastAdmin => ApiError::Conflict(LAST_ADMIN),
            StoreError::Unavailable | StoreError::WritesRefused(_) => ApiError::Unavailable(e.into()),
            e => ApiError::Internal(e.into()),
        }
    }
}

impl From<crate::password::HashError> for ApiError {
    fn from(e: crate::password::HashError) -> Self {
        ApiError::Internal(e.into())
    }
}

impl From<crate::password::LoginError> for ApiError {
    fn from(e: crate::password::LoginError) -> Self {
        match e {
            crate::password::LoginError::Hash(e) => e.into(),
            crate::password::LoginError::Store(e) => e.into(),
        }
    }
}

/// The 409 message when an account's roles (granted before roles were bounded) would make a
/// token larger than keycard accepts.
pub const TOKEN_TOO_LARGE: &str =
    "This account has more roles than a token can carry; an admin must reduce them (PUT /admin/users/{name}/roles)";

/// The 409 message when a change would leave no active admin.
pub const LAST_ADMIN: &str = "Refused: this is the last active admin; give another active account the admin role first";

impl From<keycard_axum::JsonRejection> for ApiError {
    fn from(e: keycard_axum::JsonRejection) -> Self {
        match e {
            keycard_axum::JsonRejection::UnsupportedMediaType => ApiError::UnsupportedMediaType,
            keycard_axum::JsonRejection::TooLarge => ApiError::PayloadTooLarge,
            keycard_axum::JsonRejection::BadRequest(msg) => ApiError::BadRequest(msg),
            e => ApiError::BadRequest(e.to_string()),
        }
    }
}

impl From<keycard_token::TokenError> for ApiError {
    fn from(e: keycard_token::TokenError) -> Self {
        match e {
            // Only an account given more roles than today's bounds allow (before they existed)
            // can get here: issuing refuses what the verifier would refuse. Not a fault of the
            // server: a clear 409 naming the remedy, and a warning for the operator.
            keycard_token::TokenError::TooLarge => {
                tracing::warn!("an account's roles make a token larger than keycard accepts: reduce them");
                ApiError::Conflict(TOKEN_TOO_LARGE)
            }
            e => ApiError::Internal(e.into()),
        }
    }
}

impl ApiError {
    /// [`IntoResponse::into_response`] with a concrete body type, for middleware.
    pub fn into_response_owned(self) -> Response {
        self.into_response()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Auth(e) = self {
            return e.into_response();
        }
        match &self {
            ApiError::Internal(cause) => tracing::error!(error = ?cause, "internal error"),
            ApiError::Unavailable(cause) => tracing::warn!(error = ?cause, "service unavailable"),
            _ => {}
        }
        let mut response = (self.status(), Json(serde_json::json!({ "msg": self.to_string() }))).into_response();
        if self.status() == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let ApiError::TooManyRequests { retry_after, .. } = self {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_maps_to_its_documented_status() {
        let cases: Vec<(ApiError, StatusCode)> = vec![
            (ApiError::BadRequest("x".into()), StatusCode::BAD_REQUEST),
            (ApiError::Invalid(ValidationError("y")), StatusCode::BAD_REQUEST),
            (ApiError::Auth(AuthError::Missing("Missing Authorization Header".into())), StatusCode::UNAUTHORIZED),
            (ApiError::Auth(AuthError::Forbidden("Admins only".into())), StatusCode::FORBIDDEN),
            (ApiError::BadCredentials, StatusCode::UNAUTHORIZED),
            (ApiError::NotFound("Not found"), StatusCode::NOT_FOUND),
            (ApiError::UserExists, StatusCode::CONFLICT),
            (ApiError::Conflict(LAST_ADMIN), StatusCode::CONFLICT),
            (ApiError::PayloadTooLarge, StatusCode::PAYLOAD_TOO_LARGE),
            (ApiError::UnsupportedMediaType, StatusCode::UNSUPPORTED_MEDIA_TYPE),
            (ApiError::TooManyRequests { retry_after: 3, msg: "slow down" }, StatusCode::TOO_MANY_REQUESTS),
            (ApiError::WrongCurrentPassword, StatusCode::UNAUTHORIZED),
            (ApiError::ReceiverUnauthorized, StatusCode::UNAUTHORIZED),
            (ApiError::Unavailable(anyhow::anyhow!("db down")), StatusCode::SERVICE_UNAVAILABLE),
            (ApiError::Internal(anyhow::anyhow!("secret detail")), StatusCode::INTERNAL_SERVER_ERROR),
        ];
        for (error, status) in cases {
            assert_eq!(error.into_response().status(), status);
        }
    }

    #[test]
    fn store_errors_map_to_conflict_not_found_and_unavailable() {
        assert!(matches!(ApiError::from(StoreError::Conflict), ApiError::UserExists));
        assert!(matches!(ApiError::from(StoreError::NotFound), ApiError::NotFound(_)));
        assert!(matches!(ApiError::from(StoreError::Unavailable), ApiError::Unavailable(_)));
        assert!(matches!(ApiError::from(StoreError::WritesRefused("disk full")), ApiError::Unavailable(_)));
        assert!(matches!(ApiError::from(StoreError::LastAdmin), ApiError::Conflict(LAST_ADMIN)));
        assert!(matches!(ApiError::from(StoreError::TooManyRoles), ApiError::Invalid(_)));
        assert!(matches!(ApiError::from(keycard_token::TokenError::TooLarge), ApiError::Conflict(TOKEN_TOO_LARGE)));
        assert!(matches!(ApiError::from(StoreError::from(sqlx::Error::PoolTimedOut)), ApiError::Unavailable(_)));
        assert!(matches!(
            ApiError::from(StoreError::Database(sqlx::Error::Protocol("x".into()))),
            ApiError::Internal(_)
        ));
        assert!(matches!(ApiError::from(StoreError::Corrupt("x")), ApiError::Internal(_)));
    }

    #[tokio::test]
    async fn internal_errors_never_send_their_cause() {
        let response = ApiError::Internal(anyhow::anyhow!("connection string postgres://u:pw@h")).into_response();
        let body = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], br#"{"msg":"Internal server error"}"#);
    }
}
