//! Request extractors that answer in keycard's `{"msg": ...}` format: the JSON body, the
//! caller ([`ClientInfo`], defined in [`crate::client`]) and the per-address [`RateLimit`].

use std::marker::PhantomData;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts};
use serde::de::DeserializeOwned;

pub use crate::client::ClientInfo;
use crate::error::ApiError;
use crate::security::Endpoint;
use crate::state::AppState;

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// A JSON body: `Content-Type: application/json` (or `+json`) is required (415), the body is
/// bounded (413), and malformed JSON or a missing or mistyped field is a 400 whose message names
/// the field.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // The library's extractor, with the server's messages for the same refusals.
        let keycard_axum::Json(value) = keycard_axum::Json::from_request(req, state).await?;
        Ok(Json(value))
    }
}

/// Parses a JSON request body into `T`, describing any failure in a client-facing message
/// (keycard-axum's parser; see [`keycard_axum::parse_json`]).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    Ok(keycard_axum::parse_json(bytes)?)
}

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip());
        let addr = state.client_ip.client_ip(peer, &parts.headers);
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(256).collect());
        Ok(Self { addr, user_agent })
    }
}

/// Names the endpoint a [`RateLimit`] extractor guards.
pub trait LimitedEndpoint: Send + Sync + 'static {
    /// The endpoint.
    const ENDPOINT: Endpoint;
}

/// Marker for `POST /login`.
pub struct LoginEndpoint;
impl LimitedEndpoint for LoginEndpoint {
    const ENDPOINT: Endpoint = Endpoint::Login;
}
/// Marker for `POST /register`.
pub struct RegisterEndpoint;
impl LimitedEndpoint for RegisterEndpoint {
    const ENDPOINT: Endpoint = Endpoint::Register;
}
/// Marker for `POST /token/refresh`.
pub struct RefreshEndpoint;
impl LimitedEndpoint for RefreshEndpoint {
    const ENDPOINT: Endpoint = Endpoint::Refresh;
}

/// Put first in a handler's arguments: answers 429 with `Retry-After` when the client address
/// is over its limit for endpoint `E`, before the body is read or a token checked.
pub struct RateLimit<E>(PhantomData<E>);

impl<E: LimitedEndpoint> FromRequestParts<AppState> for RateLimit<E> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Ok(client) = ClientInfo::from_request_parts(parts, state).await;
        if let Some(ip) = client.addr
            && let Err(wait) = state.rate_limits.check(ip, E::ENDPOINT)
        {
            tracing::warn!(client = %ip, endpoint = ?E::ENDPOINT, "rate limit exceeded");
            return Err(ApiError::TooManyRequests { retry_after: wait.as_secs().max(1), msg: "Too many requests" });
        }
        Ok(Self(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped like the private `RegisterRequest` of the routes: the body parser's hardest client.
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RegisterShaped {
        username: String,
        password: String,
        #[serde(default)]
        email: Option<String>,
    }

    /// A valid register body for these fields.
    fn register_body(username: &str, password: &str, email: Option<&str>) -> Vec<u8> {
        serde_json::json!({ "username": username, "password": password, "email": email }).to_string().into_bytes()
    }

    /// Any failure of the parser is a 400 (never a panic, never another status).
    fn is_ok_or_bad_request<T>(result: Result<T, ApiError>) -> bool {
        matches!(result, Ok(_) | Err(ApiError::BadRequest(_)))
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        #[test]
        fn arbitrary_bytes_never_panic_and_fail_as_400(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            proptest::prop_assert!(is_ok_or_bad_request(parse_json::<RegisterShaped>(&bytes)));
            proptest::prop_assert!(is_ok_or_bad_request(parse_json::<serde_json::Value>(&bytes)));
        }

        #[test]
        fn json_shaped_text_never_panics_and_fails_as_400(text in r#"[{}\[\]":,\\ 0-9a-z.eE+-]{0,300}"#) {
            proptest::prop_assert!(is_ok_or_bad_request(parse_json::<RegisterShaped>(text.as_bytes())));
            proptest::prop_assert!(is_ok_or_bad_request(parse_json::<serde_json::Value>(text.as_bytes())));
        }

        #[test]
        fn a_valid_body_with_one_byte_changed_never_panics(
            username in "\\PC{0,24}",
            password in "\\PC{0,24}",
            email in proptest::option::of("\\PC{0,24}"),
            index in proptest::prelude::any::<proptest::sample::Index>(),
            byte in proptest::prelude::any::<u8>(),
        ) {
            let mut body = register_body(&username, &password, email.as_deref());
            let parsed = parse_json::<RegisterShaped>(&body);
            proptest::prop_assert!(parsed.is_ok(), "{:?}", parsed.err().map(|e| e.to_string()));
            let i = index.index(body.len());
            body[i] = byte;
            proptest::prop_assert!(is_ok_or_bad_request(parse_json::<RegisterShaped>(&body)));
        }

        #[test]
        fn valid_bodies_parse_to_exactly_their_fields(
            username in "\\PC{0,40}",
            password in "\\PC{0,40}",
            email in proptest::option::of("\\PC{0,40}"),
        ) {
            let parsed = parse_json::<RegisterShaped>(&register_body(&username, &password, email.as_deref()));
            let parsed = parsed.map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            proptest::prop_assert_eq!(parsed.username, username);
            proptest::prop_assert_eq!(parsed.password, password);
            proptest::prop_assert_eq!(parsed.email, email);
        }

        #[test]
        fn an_unknown_field_is_always_refused(field in "[a-z_]{1,12}") {
            proptest::prop_assume!(!["username", "password", "email"].contains(&field.as_str()));
            let body = serde_json::json!({ "username": "alice", "password": "pw", field.clone(): 1 }).to_string();
            let result = parse_json::<RegisterShaped>(body.as_bytes());
            proptest::prop_assert!(matches!(result, Err(ApiError::BadRequest(_))));
        }
    }
}
