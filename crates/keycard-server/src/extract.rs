//! Request extractors that answer in keycard's `{"msg": ...}` format.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, header, request::Parts};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

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
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest("Failed to read the request body".into())
            }
        })?;
        parse_json(&bytes).map(Json)
    }
}

/// Parses a JSON request body into `T`, describing any failure in a client-facing message.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        ApiError::BadRequest(describe(&path, &inner))
    })?;
    de.end().map_err(|e| ApiError::BadRequest(describe(".", &e)))?;
    Ok(value)
}

fn describe(path: &str, e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            format!("Malformed JSON body at line {} column {}", e.line(), e.column())
        }
        Category::Data => {
            // serde_json appends " at line L column C"; the field path says more.
            let text = e.to_string();
            let text = text.split(" at line ").next().unwrap_or(&text);
            if path == "." {
                format!("Invalid request body: {text}")
            } else {
                format!("Invalid request body: field `{path}`: {text}")
            }
        }
    }
}

fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mime = value.split(';').next().unwrap_or("").trim();
    let Some((kind, subtype)) = mime.split_once('/') else { return false };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json") || subtype.to_ascii_lowercase().ends_with("+json"))
}

/// The address of the client connection (the peer of the TCP socket), if known.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip())))
    }
}

impl std::fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(ip) => write!(f, "{ip}"),
            None => f.write_str("unknown"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        username: String,
        email: Option<String>,
    }

    fn msg(bytes: &[u8]) -> String {
        parse_json::<Body>(bytes).unwrap_err().to_string()
    }

    #[test]
    fn messages_name_the_field_and_never_the_location_noise() {
        assert_eq!(msg(br#"{"email": null}"#), "Invalid request body: missing field `username`");
        assert_eq!(
            msg(br#"{"username": 5}"#),
            "Invalid request body: field `username`: invalid type: integer `5`, expected a string"
        );
        assert!(msg(b"{\"username\": ").starts_with("Malformed JSON body"));
        assert!(msg(br#"{"username": "a"} trailing"#).starts_with("Malformed JSON body"));
        assert!(msg(b"[]").starts_with("Invalid request body"));
    }

    #[test]
    fn deeply_nested_json_is_refused_without_overflowing_the_stack() {
        for field in ["x", "email"] {
            let deep = format!("{{\"username\":\"a\",\"{field}\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
            assert!(parse_json::<Body>(deep.as_bytes()).is_err(), "{field}");
        }
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse_json::<serde_json::Value>(deep.as_bytes()).is_err());
    }

    #[test]
    fn json_content_types_are_recognised() {
        let check = |v: &str| {
            let mut h = axum::http::HeaderMap::new();
            h.insert(header::CONTENT_TYPE, v.parse().unwrap());
            is_json(&h)
        };
        assert!(check("application/json"));
        assert!(check("Application/JSON; charset=utf-8"));
        assert!(check("application/merge-patch+json"));
        assert!(!check("text/plain"));
        assert!(!check("application/jsonx"));
        assert!(!check("application/x-www-form-urlencoded"));
    }
}
