//! The one error type of the crate: why a verifier could not be built or its keys not fetched.

/// Why a [`JwksVerifier`](crate::JwksVerifier) could not be built, or why fetching its keys
/// failed. Key material never appears in these messages; URLs (which are public) do.
///
/// At start ([`JwksVerifierBuilder::build`](crate::JwksVerifierBuilder::build)) every variant
/// is fatal. Once running, a failed refresh is only logged (a warning) and the keys fetched
/// before keep verifying; [`JwksVerifier::refresh`](crate::JwksVerifier::refresh) returns it.
///
/// ```
/// use keycard_jwks::{JwksError, JwksVerifier};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let err = JwksVerifier::builder().issuer("http://idp.example.com").audience("api").build().await.unwrap_err();
/// assert!(matches!(err, JwksError::InvalidUrl { .. }));
/// assert_eq!(
///     err.to_string(),
///     "invalid URL http://idp.example.com: http:// is accepted for loopback hosts only \
///      (127.0.0.0/8, ::1, localhost); use https://"
/// );
/// # });
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// The builder is missing something it needs (an issuer or JWKS URL, an audience).
    #[error("invalid keycard-jwks configuration: {0}")]
    Config(&'static str),
    /// A URL that is not `https://` (or `http://` on a loopback host), does not parse, or
    /// carries credentials or a fragment.
    #[error("invalid URL {url}: {reason}")]
    InvalidUrl {
        /// The URL as given (or as found in the discovery document).
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The HTTP client could not be created (no TLS roots, ...).
    #[error("cannot create the HTTP client")]
    Client(#[source] reqwest::Error),
    /// The request failed: connection refused, TLS, DNS, or a body cut short.
    #[error("GET {url} failed")]
    Http {
        /// The URL requested.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The provider did not answer (discovery and key set together) within the HTTP timeout.
    #[error("GET {url}: no answer within {timeout:?}")]
    Timeout {
        /// The URL requested.
        url: String,
        /// The configured bound ([`JwksVerifierBuilder::http_timeout`](crate::JwksVerifierBuilder::http_timeout)).
        timeout: std::time::Duration,
    },
    /// The provider answered with a status other than 200 (redirects are not followed).
    #[error("GET {url}: HTTP status {status}{}", if (300..400).contains(status) { " (redirects are not followed)" } else { "" })]
    Status {
        /// The URL requested.
        url: String,
        /// The status code received.
        status: u16,
    },
    /// The answer is larger than [`MAX_BODY_LEN`](crate::MAX_BODY_LEN).
    #[error("GET {url}: the answer is larger than {limit} bytes")]
    TooLarge {
        /// The URL requested.
        url: String,
        /// The limit.
        limit: usize,
    },
    /// The discovery document is not JSON with string `issuer` and `jwks_uri` members.
    #[error("GET {url}: not an OpenID Provider configuration document")]
    InvalidDiscovery {
        /// The discovery URL.
        url: String,
        /// What did not parse.
        #[source]
        source: serde_json::Error,
    },
    /// The discovery document names another issuer than the configured one (OpenID Connect
    /// Discovery §4.3: they must be identical, character for character).
    #[error("the discovery document of {expected} names the issuer {found:?}: they must be identical")]
    IssuerMismatch {
        /// The configured issuer.
        expected: String,
        /// The issuer the document names.
        found: String,
    },
    /// The key set is not a JWK Set (RFC 7517 §5): malformed JSON, or no `keys` array.
    #[error("GET {url}: not a JWK Set: {reason}")]
    InvalidJwks {
        /// The JWKS URL.
        url: String,
        /// What is wrong: the JSON syntax error (line and column), or the missing `keys` array.
        reason: String,
    },
    /// The key set parsed, but has no key this verifier can use (all skipped: encryption keys,
    /// symmetric keys, unsupported or not allowed algorithms, bad sizes, duplicate kids).
    #[error("GET {url}: the JWK Set has no usable signature verification key ({skipped} skipped)")]
    NoUsableKeys {
        /// The JWKS URL.
        url: String,
        /// How many keys were skipped.
        skipped: usize,
    },
    /// The Shared Signals transmitter is missing, misconfigured or answered something that is
    /// not SSF (see [`RevocationFeed`](crate::RevocationFeed)).
    #[error("Shared Signals: {0}")]
    Ssf(String),
}

impl JwksError {
    /// Whether the provider could not be reached or did not answer in time (as opposed to an
    /// answer that was wrong): a transport error, a timeout or a 5xx.
    ///
    /// ```
    /// use keycard_jwks::JwksError;
    /// assert!(JwksError::Status { url: "https://idp.example.com/jwks".into(), status: 503 }.is_unavailable());
    /// assert!(!JwksError::Status { url: "https://idp.example.com/jwks".into(), status: 404 }.is_unavailable());
    /// ```
    pub fn is_unavailable(&self) -> bool {
        match self {
            JwksError::Http { .. } | JwksError::Timeout { .. } => true,
            JwksError::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }
}
