//! Errors of key configuration and token verification.

/// Why a token was refused. The messages are fixed text: they never echo a value taken from the
/// token, so a forged token cannot inject content into responses or logs.
///
/// ```
/// # let tokens = keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
/// #     Default::default(), std::sync::Arc::new(keycard_token::SystemClock));
/// use keycard_token::TokenError;
/// let err = tokens.verify::<()>("not-a-jwt").unwrap_err();
/// assert_eq!(err, TokenError::NotEnoughSegments);
/// assert_eq!(err.to_string(), "Not enough segments");
/// assert_eq!(TokenError::MissingClaim("csrf").to_string(), "Missing claim: csrf");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token is longer than [`crate::MAX_TOKEN_LEN`]; it was not decoded at all (or, when
    /// issuing, was not issued).
    #[error("Token is too large")]
    TooLarge,
    /// Not three base64url segments of a JWS compact serialisation.
    #[error("Not enough segments")]
    NotEnoughSegments,
    /// More than three segments (a JWE, or garbage).
    #[error("Too many segments")]
    TooManySegments,
    /// The header is not a JSON object keycard understands.
    #[error("Invalid header string")]
    InvalidHeader,
    /// The header is not strict base64url (PyJWT's wording).
    #[error("Invalid header padding")]
    HeaderPadding,
    /// The header names an algorithm other than the configured one.
    #[error("The specified alg value is not allowed")]
    AlgorithmNotAllowed,
    /// The header names a `kid` that is not in keycard's key set.
    #[error("Unknown key id")]
    UnknownKey,
    /// The signature is not strict base64url or does not match.
    #[error("Signature verification failed")]
    InvalidSignature,
    /// The payload is not strict base64url of a JSON object with keycard's claims, well typed
    /// (claims neither keycard nor the application's type knows are ignored).
    #[error("Invalid payload string")]
    InvalidPayload,
    /// A claim has a value out of range or empty.
    #[error("Invalid claims")]
    InvalidClaims,
    /// `exp` is past.
    #[error("Token has expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("The token is not yet valid (nbf)")]
    NotYetValid,
    /// `iat` is in the future.
    #[error("The token is not yet valid (iat)")]
    IssuedInFuture,
    /// Signing failed (a broken key): only when issuing.
    #[error("Token signing failed")]
    Signing,
    /// A required claim is absent (FJE's wording for `sub` and `csrf`, PyJWT's for the others).
    #[error("{}", missing_claim_message(.0))]
    MissingClaim(&'static str),
    /// `sub` is not a string (PyJWT's wording; FJE 4.7 refuses such tokens too).
    #[error("Subject must be a string")]
    SubjectNotString,
    /// `aud` names none of the configured audiences (PyJWT's wording).
    #[error("Audience doesn't match")]
    InvalidAudience,
    /// `iss` is not the configured issuer (PyJWT's wording).
    #[error("Invalid issuer")]
    InvalidIssuer,
    /// When issuing: the application's claims use a name keycard writes itself
    /// ([`crate::RESERVED_CLAIMS`]), or are not a JSON object; or an extra header names a
    /// parameter keycard manages (`alg`, `typ`, `kid`) or never writes (`jku`, `jwk`, `x5u`,
    /// `x5c`, `x5t#S256`, `crit`).
    #[error("Additional claims or headers would overwrite reserved ones")]
    Reserved,
    /// When issuing: the identity is empty once converted to text.
    #[error("The identity must not be empty")]
    EmptyIdentity,
    /// When issuing: the key set only verifies (a JWKS of another issuer).
    #[error("No signing key is configured")]
    NoSigningKey,
    /// The claim configured as the identity ([`crate::TokenSettings::identity_claim`]) is absent
    /// or not a string.
    #[error("Missing identity claim")]
    MissingIdentity,
}

/// Why a key configuration was refused.
///
/// ```
/// use keycard_token::{KeyError, Keys};
/// let err = Keys::hmac_sha256(b"too short").unwrap_err();
/// assert!(matches!(err, KeyError::SecretTooShort { len: 9, min: 32 }));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// An HMAC secret shorter than [`crate::MIN_HMAC_SECRET_LEN`] bytes.
    #[error("the JWT secret must be at least {min} bytes long (got {len}); generate one with `keycard gen-secret`")]
    SecretTooShort {
        /// Length of the refused secret.
        len: usize,
        /// Required minimum.
        min: usize,
    },
    /// An algorithm keycard does not implement.
    #[error(
        "unsupported JWT algorithm for this key (supported: HS256, HS384, HS512, ES256, ES384, EdDSA, RS256, RS384, RS512, PS256, PS384, PS512)"
    )]
    UnsupportedAlgorithm,
    /// Two keys with the same `kid`, or an empty `kid`.
    #[error("every additional key needs a distinct, non-empty kid")]
    DuplicateKid,
    /// A JWK keycard cannot verify with; the text names the member at fault (never its value).
    #[error("unusable JWK: {0}")]
    InvalidJwk(&'static str),
    /// A JWK whose `use` is not `sig` or whose `key_ops` do not include `verify` (an encryption
    /// key, which providers such as Keycloak publish beside their signing keys).
    #[error("the JWK is not for verifying signatures")]
    NotForSignatures,
    /// A document that is not a JWK Set (`{"keys": [...]}`).
    #[error("not a JWK Set")]
    InvalidJwks,
    /// An RSA key under [`crate::MIN_RSA_BITS`] bits.
    #[error("RSA keys must have at least 2048 bits")]
    KeyTooSmall,
    /// A private key that is not PKCS#8 DER of the algorithm's key type.
    #[error("the private key is not PKCS#8 DER for this algorithm")]
    InvalidPrivateKey,
    /// The crypto library failed to generate a key or a signature.
    #[error("key generation or signing failed")]
    Generation,
}

fn missing_claim_message(name: &str) -> String {
    match name {
        "sub" | "csrf" => format!("Missing claim: {name}"),
        _ => format!("Token is missing the \"{name}\" claim"),
    }
}
