//! A JSON body extractor whose every failure is a `{"msg": ...}` answer, not axum's text/plain.

use axum::Json as AxumJson;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

/// A JSON request body: `Content-Type: application/json` (or `+json`) is required (415),
/// the body is bounded by axum's `DefaultBodyLimit` (413), and malformed JSON or a missing or
/// mistyped field is a 400 whose message names the field. As a response, it is axum's `Json`.
///
/// ```
/// use keycard_axum::Json;
///
/// #[derive(serde::Deserialize)]
/// struct Login { username: String, password: String }
///
/// async fn login(Json(body): Json<Login>) -> String {
///     format!("{} sent {} bytes of password", body.username, body.password.len())
/// }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

/// Why a JSON body was refused.
///
/// ```
/// use keycard_axum::{JsonRejection, parse_json};
///
/// #[derive(Debug, serde::Deserialize)]
/// struct Login { username: String }
///
/// let err = parse_json::<Login>(br#"{"user": "alice"}"#).unwrap_err();
/// assert_eq!(err, JsonRejection::BadRequest("Invalid request body: missing field `username`".into()));
/// assert_eq!(err.status(), 400);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonRejection {
    /// 415: not a JSON content type.
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,
    /// 413: larger than the body limit.
    #[error("Request body is too large")]
    TooLarge,
    /// 400: unreadable, malformed, or not the expected shape; the message says where.
    #[error("{0}")]
    BadRequest(String),
}

impl JsonRejection {
    /// The status of the response.
    ///
    /// ```
    /// use keycard_axum::JsonRejection;
    /// assert_eq!(JsonRejection::UnsupportedMediaType.status(), 415);
    /// assert_eq!(JsonRejection::TooLarge.status(), 413);
    /// ```
    pub fn status(&self) -> StatusCode {
        match self {
            JsonRejection::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            JsonRejection::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            JsonRejection::BadRequest(_) => StatusCode::BAD_REQUEST,
        }
    }
}

impl IntoResponse for JsonRejection {
    fn into_response(self) -> Response {
        (self.status(), AxumJson(serde_json::json!({ "msg": self.to_string() }))).into_response()
    }
}

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = JsonRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(JsonRejection::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                JsonRejection::TooLarge
            } else {
                JsonRejection::BadRequest("Failed to read the request body".into())
            }
        })?;
        parse_json(&bytes).map(Json)
    }
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        AxumJson(self.0).into_response()
    }
}

/// Parses a JSON request body into `T`, describing any failure in a client-facing message.
///
/// ```
/// use keycard_axum::parse_json;
///
/// #[derive(Debug, serde::Deserialize)]
/// struct Login { username: String }
///
/// assert_eq!(parse_json::<Login>(br#"{"username": "alice"}"#).unwrap().username, "alice");
/// let err = parse_json::<Login>(br#"{"username": 5}"#).unwrap_err();
/// assert_eq!(err.to_string(), "Invalid request body: field `username`: invalid type: integer `5`, expected a string");
/// ```
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, JsonRejection> {
    // Request bodies are objects; serde would also map a JSON array onto a struct.
    let first = bytes.iter().find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    if first == Some(&b'[') {
        return Err(JsonRejection::BadRequest("Invalid request body: expected a JSON object".into()));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        JsonRejection::BadRequest(describe(&path, &inner))
    })?;
    de.end().map_err(|e| JsonRejection::BadRequest(describe(".", &e)))?;
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

/// Whether the request says its body is JSON (`application/json` or any `+json` type).
pub(crate) fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mime = value.split(';').next().unwrap_or("").trim();
    let Some((kind, subtype)) = mime.split_once('/') else { return false };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json") || subtype.to_ascii_lowercase().ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
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
        let deep =
            |field: &str| format!("{{\"username\":\"a\",\"{field}\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        // An unknown field is skipped without recursion; a known one hits serde_json's depth limit.
        assert!(parse_json::<Body>(deep("x").as_bytes()).is_ok());
        assert!(parse_json::<Body>(deep("email").as_bytes()).is_err());
        let array = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse_json::<serde_json::Value>(array.as_bytes()).is_err());
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
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_fail_as_400(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let result = parse_json::<Body>(&bytes);
            proptest::prop_assert!(matches!(result, Ok(_) | Err(JsonRejection::BadRequest(_))));
        }
    }
}
