//! Issuing token pairs and verifying tokens strictly.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::claims::RESERVED_CLAIMS;
use arc_swap::ArcSwap;

use crate::keys::{Key, b64};
use crate::{Algorithm, Audience, Claims, Clock, Fresh, Keys, TokenError, TokenType};

/// Longest token accepted for decoding, in bytes, and longest token [`Tokens::encode`] issues:
/// what keycard signs, it also accepts. keycard's own tokens are well under 1 KiB, and under
/// 4 KiB with the most roles the server allows.
///
/// ```
/// # let tokens = keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
/// #     Default::default(), std::sync::Arc::new(keycard_token::SystemClock));
/// use keycard_token::{MAX_TOKEN_LEN, TokenError};
/// let too_long = "a".repeat(MAX_TOKEN_LEN + 1);
/// assert_eq!(tokens.verify::<()>(&too_long).unwrap_err(), TokenError::TooLarge);
/// let big_claims = serde_json::json!({ "blob": "x".repeat(MAX_TOKEN_LEN) });
/// assert_eq!(tokens.access("alice").claims(big_claims).sign().unwrap_err(), TokenError::TooLarge);
/// ```
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Largest accepted `NumericDate`: 9999-12-31T23:59:59Z. Keeps time arithmetic far from overflow.
///
/// ```
/// # let tokens = keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
/// #     Default::default(), std::sync::Arc::new(keycard_token::SystemClock));
/// use std::time::Duration;
/// use keycard_token::MAX_TIMESTAMP;
/// let signed = tokens.access("alice").expires_in(Duration::MAX).sign().unwrap();
/// assert_eq!(signed.claims.exp, MAX_TIMESTAMP);
/// assert!(tokens.verify::<()>(&signed.token).is_ok());
/// ```
pub const MAX_TIMESTAMP: i64 = 253_402_300_799;

/// Largest accepted leeway for `exp`/`nbf`/`iat` checks.
const MAX_LEEWAY: Duration = Duration::from_secs(300);

/// Lifetimes, clock tolerance and the optional claims written into (and demanded from) tokens.
///
/// ```
/// use std::time::Duration;
/// use keycard_token::TokenSettings;
///
/// let settings = TokenSettings {
///     access_ttl: Duration::from_secs(5 * 60),
///     issuer: Some("https://auth.example.com".into()),
///     ..TokenSettings::default()
/// };
/// assert_eq!(settings.refresh_ttl, Duration::from_secs(30 * 24 * 3600));
/// assert!(settings.encode_nbf && settings.csrf_claim);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSettings {
    /// Lifetime of access tokens (default 15 minutes, as in FJE).
    pub access_ttl: Duration,
    /// Lifetime of refresh tokens (default 30 days, as in FJE).
    pub refresh_ttl: Duration,
    /// Tolerance for clock skew on `exp`, `nbf` and `iat` (default 0, capped at 5 minutes).
    pub leeway: Duration,
    /// `iss` written into every token and required of every token (default none).
    pub issuer: Option<String>,
    /// `aud` written into every token; a token is accepted only if its `aud` names one of these
    /// (default none: `aud` is then neither written nor checked, as in FJE).
    pub audience: Option<Audience>,
    /// Whether to write `nbf` (default true, FJE's `JWT_ENCODE_NBF`).
    pub encode_nbf: bool,
    /// Whether to write a `csrf` claim, the double-submit value of cookie mode (default true,
    /// FJE's `JWT_COOKIE_CSRF_PROTECT`, which writes it into every token).
    pub csrf_claim: bool,
    /// When verifying: take the identity (`sub` of the decoded claims) from this claim instead,
    /// such as `email` or `preferred_username` of an OIDC provider's tokens (default none: `sub`).
    /// The claim itself stays readable among the application's claims; the token's own `sub` is
    /// replaced.
    /// A token without it, or with a non-string value, is refused with
    /// [`TokenError::MissingIdentity`]. Issuing is unaffected.
    pub identity_claim: Option<String>,
    /// Whether a token must carry a UUID `jti`, as keycard and FJE always write (default true:
    /// a token without one is refused with `Token is missing the "jti" claim`, one of another
    /// form as an invalid payload). Turn it off to verify other issuers' tokens, which often
    /// carry no `jti` or one that is not a UUID.
    pub require_jti: bool,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            leeway: Duration::ZERO,
            issuer: None,
            audience: None,
            encode_nbf: true,
            csrf_claim: true,
            identity_claim: None,
            require_jti: true,
        }
    }
}

/// The protected header of a verified token.
///
/// `alg` is the configured key's (the token's own `alg` was checked against it); `jku`, `jwk`,
/// `x5u`, `x5c`, `x5t#S256` and `crit` are never accepted, so nothing in `extra` can select a key.
///
/// ```
/// # let tokens = keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
/// #     Default::default(), std::sync::Arc::new(keycard_token::SystemClock));
/// use keycard_token::Algorithm;
/// let token = tokens.access("alice").header("x-app", "web").sign().unwrap().token;
/// let header = tokens.decode::<()>(&token).unwrap().header;
/// assert_eq!(header.alg, Algorithm::HS256);
/// assert_eq!(header.typ.as_deref(), Some("JWT"));
/// assert_eq!(header.extra["x-app"], "web");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// The algorithm of the key that verified the token.
    pub alg: Algorithm,
    /// `typ`, when present (`JWT`, or RFC 9068's `at+jwt`; compared case-insensitively).
    pub typ: Option<String>,
    /// `kid`, when present.
    pub kid: Option<String>,
    /// Any other header parameter (FJE's `additional_headers`).
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A verified token: its header and its claims.
///
/// ```
/// # let tokens = keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
/// #     Default::default(), std::sync::Arc::new(keycard_token::SystemClock));
/// let token = tokens.access("alice").sign().unwrap().token;
/// let decoded = tokens.decode::<()>(&token).unwrap();
/// assert_eq!(decoded.claims.sub, "alice");
/// assert_eq!(decoded.header.kid, None);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded<C = ()> {
    /// The protected header.
    pub header: Arc<Header>,
    /// The claims.
    pub claims: Claims<C>,
}

/// An issued token with the claims it carries.
///
/// ```
/// # let tokens = keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
/// #     Default::default(), std::sync::Arc::new(keycard_token::SystemClock));
/// let signed = tokens.refresh("alice").sign().unwrap();
/// assert_eq!(tokens.verify::<()>(&signed.token).unwrap(), signed.claims);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Signed<C = ()> {
    /// The compact JWS.
    pub token: String,
    /// Its claims.
    pub claims: Claims<C>,
}

/// A token whose signature verified under the key set of `generation`, for `ttl` more.
#[derive(Clone, Copy)]
struct Verified {
    generation: u64,
    ttl: Duration,
}

struct VerifiedExpiry;

impl moka::Expiry<[u8; 32], Verified> for VerifiedExpiry {
    fn expire_after_create(&self, _: &[u8; 32], value: &Verified, _: std::time::Instant) -> Option<Duration> {
        Some(value.ttl)
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut out = [0; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// `typ` values accepted (case-insensitively): a JWT, or an RFC 9068 access token. Others (a
/// security event token's `secevent+jwt`, say) are not tokens to authenticate with.
const ACCEPTED_TYP: [&str; 3] = ["JWT", "at+jwt", "application/at+jwt"];

/// Header parameters that carry keys or key locations, or extensions: never accepted.
const FORBIDDEN_HEADERS: [&str; 7] = ["jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256", "crit"];

/// The protected header as it arrives, parsed only when it is not byte-equal to the one keycard
/// writes. Duplicate `alg`/`typ`/`kid` are refused by the derived deserializer; `typ` and `kid`
/// may be absent but, when present, must be strings (`null` is refused).
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default, deserialize_with = "present")]
    typ: Option<String>,
    #[serde(default, deserialize_with = "present")]
    kid: Option<String>,
    #[serde(flatten)]
    extra: serde_json::Map<String, serde_json::Value>,
}

/// A header parameter that is there must be a string: `null` is not "absent".
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    String::deserialize(d).map(Some)
}

/// Whether `json` starts (after whitespace) with `{`: an object, not an array or a scalar.
fn is_json_object(json: &[u8]) -> bool {
    json.iter().find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r')) == Some(&b'{')
}

/// A token being issued: built by [`Tokens::access`] or [`Tokens::refresh`], finished by
/// [`Issue::sign`].
///
/// ```
/// use std::{sync::Arc, time::Duration};
/// use keycard_token::{Keys, SystemClock, TokenSettings, Tokens};
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Extra { is_administrator: bool }
///
/// let tokens = Tokens::new(Keys::hmac_sha256(&[7; 32]).unwrap(), TokenSettings::default(), Arc::new(SystemClock));
/// let signed = tokens
///     .access(42)                                 // any Display identity: `sub` is "42"
///     .fresh(true)
///     .expires_in(Duration::from_secs(3600))
///     .claims(Extra { is_administrator: true })
///     .sign()
///     .unwrap();
/// let claims = tokens.verify::<Extra>(&signed.token).unwrap();
/// assert_eq!(claims.identity::<u32>().unwrap(), 42);
/// assert!(claims.is_administrator);
/// ```
#[must_use = "a token is issued by .sign()"]
pub struct Issue<'t, C = ()> {
    tokens: &'t Tokens,
    sub: String,
    kind: TokenType,
    fresh: FreshSpec,
    ttl: Duration,
    jti: Option<String>,
    aud: Option<Audience>,
    headers: serde_json::Map<String, serde_json::Value>,
    extra: C,
}

#[derive(Clone, Copy)]
enum FreshSpec {
    Bool(bool),
    For(Duration),
}

impl<'t, C: Serialize> Issue<'t, C> {
    /// Marks the token fresh (a password login) or not (the default).
    ///
    /// ```
    /// # let tokens = keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
    /// #     Default::default(), std::sync::Arc::new(keycard_token::SystemClock));
    /// use keycard_token::Fresh;
    /// let signed = tokens.access("alice").fresh(true).sign().unwrap();
    /// assert_eq!(signed.claims.fresh, Fresh::Bool(true));
    /// ```
    pub fn fresh(mut self, fresh: bool) -> Self {
        self.fresh = FreshSpec::Bool(fresh);
        self
    }

    /// Fresh for `duration` from now, then not (FJE's `fresh=timedelta`: written as a timestamp).
    ///
    /// ```
    /// # let clock = std::sync::Arc::new(keycard_token::ManualClock::new(1_700_000_000));
    /// # let tokens = keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
    /// #     Default::default(), clock.clone());
    /// use std::time::Duration;
    /// let signed = tokens.access("alice").fresh_for(Duration::from_secs(600)).sign().unwrap();
    /// assert!(signed.claims.is_fresh_at(1_700_000_600));
    /// assert!(!signed.claims.is_fresh_at(1_700_000_601));
    /// ```
    pub fn fresh_for(mut self, duration: Duration) -> Self {
        self.fresh = FreshSpec::For(duration);
        self
    }

    /// Lifetime of this token instead of the configured one (FJE's `expires_delta`). There is no
    /// "never expires": `exp` is always written.
    ///
    /// ```
    /// # let clock = std::sync::Arc::new(keycard_token::ManualClock::new(1_700_000_000));
    /// # let tokens = keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
    /// #     Default::default(), clock.clone());
    /// use std::time::Duration;
    /// let signed = tokens.access("alice").expires_in(Duration::from_secs(3600)).sign().unwrap();
    /// assert_eq!(signed.claims.exp, 1_700_003_600);
    /// ```
    pub fn expires_in(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The audience of this token instead of the configured one (FJE's `additional_claims`
    /// `{"aud": ...}`).
    ///
    /// ```
    /// # let tokens = keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
    /// #     Default::default(), std::sync::Arc::new(keycard_token::SystemClock));
    /// use keycard_token::Audience;
    /// let signed = tokens.access("alice").audience("mobile").sign().unwrap();
    /// assert_eq!(signed.claims.aud, Some(Audience::One("mobile".into())));
    /// ```
    pub fn audience(mut self, aud: impl Into<Audience>) -> Self {
        self.aud = Some(aud.into());
        self
    }

    /// The `jti` to use instead of a random one.
    ///
    /// ```
    /// # let tokens = keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
    /// #     Default::default(), std::sync::Arc::new(keycard_token::SystemClock));
    /// let jti = keycard_token::Uuid::new_v4();
    /// let claims = tokens.access("alice").jti(jti).sign().unwrap().claims;
    /// assert_eq!(claims.jti_uuid(), Some(jti));
    /// ```
    pub fn jti(mut self, jti: impl std::fmt::Display) -> Self {
        self.jti = Some(jti.to_string());
        self
    }

    /// An extra protected-header parameter (FJE's `additional_headers`). `alg`, `typ` and `kid`
    /// are keycard's, and `jku`, `jwk`, `x5u`, `x5c`, `x5t#S256`, `crit` are never written: signing fails
    /// with [`TokenError::Reserved`].
    ///
    /// ```
    /// # let tokens = keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
    /// #     Default::default(), std::sync::Arc::new(keycard_token::SystemClock));
    /// use keycard_token::TokenError;
    /// let token = tokens.access("alice").header("x-app", "web").sign().unwrap().token;
    /// assert_eq!(tokens.decode::<()>(&token).unwrap().header.extra["x-app"], "web");
    /// assert_eq!(tokens.access("alice").header("kid", "mine").sign().unwrap_err(), TokenError::Reserved);
    /// ```
    pub fn header(mut self, name: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// The application's claims (FJE's `additional_claims`), flattened beside the registered
    /// ones; they may not use a reserved name ([`crate::RESERVED_CLAIMS`]).
    ///
    /// ```
    /// # let tokens = keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
    /// #     Default::default(), std::sync::Arc::new(keycard_token::SystemClock));
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Roles { roles: Vec<String> }
    ///
    /// let signed = tokens.access("alice").claims(Roles { roles: vec!["admin".into()] }).sign().unwrap();
    /// assert_eq!(tokens.verify::<Roles>(&signed.token).unwrap().roles, ["admin"]);
    /// ```
    pub fn claims<D: Serialize>(self, extra: D) -> Issue<'t, D> {
        Issue {
            tokens: self.tokens,
            sub: self.sub,
            kind: self.kind,
            fresh: self.fresh,
            ttl: self.ttl,
            jti: self.jti,
            aud: self.aud,
            headers: self.headers,
            extra,
        }
    }

    /// The claims the token will carry, without signing it (to record the `jti` first); sign
    /// them with [`Tokens::encode`]. Parameters added with [`Issue::header`] are not part of the
    /// claims: pass them again to [`Tokens::encode_with_headers`].
    ///
    /// ```
    /// # let tokens = keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
    /// #     Default::default(), std::sync::Arc::new(keycard_token::SystemClock));
    /// let claims = tokens.refresh("alice").build().unwrap();
    /// // ... record `claims.jti` first, then sign:
    /// let token = tokens.encode(&claims).unwrap();
    /// assert_eq!(tokens.verify::<()>(&token).unwrap(), claims);
    /// ```
    pub fn build(self) -> Result<Claims<C>, TokenError> {
        Ok(self.build_with_headers()?.0)
    }

    fn build_with_headers(self) -> Result<(Claims<C>, serde_json::Map<String, serde_json::Value>), TokenError> {
        if self.sub.is_empty() {
            return Err(TokenError::EmptyIdentity);
        }
        let settings = &self.tokens.settings;
        let now = self.tokens.clock.now();
        let fresh = match self.fresh {
            FreshSpec::Bool(b) => Fresh::Bool(b),
            FreshSpec::For(d) => Fresh::Until(now.saturating_add(secs(d)).min(MAX_TIMESTAMP) as f64),
        };
        let claims = Claims {
            sub: self.sub,
            iat: now,
            nbf: settings.encode_nbf.then_some(now),
            exp: now.saturating_add(secs(self.ttl)).min(MAX_TIMESTAMP),
            jti: Some(self.jti.unwrap_or_else(|| Uuid::new_v4().to_string())),
            token_type: self.kind,
            fresh,
            csrf: settings.csrf_claim.then(|| Uuid::new_v4().to_string()),
            iss: settings.issuer.clone(),
            aud: self.aud.or_else(|| settings.audience.clone()),
            extra: self.extra,
        };
        Ok((claims, self.headers))
    }

    /// Signs the token.
    ///
    /// ```
    /// # let tokens = keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
    /// #     Default::default(), std::sync::Arc::new(keycard_token::SystemClock));
    /// let signed = tokens.access("alice").sign().unwrap();
    /// assert_eq!(signed.token.split('.').count(), 3);
    /// assert_eq!(signed.claims.sub, "alice");
    /// ```
    pub fn sign(self) -> Result<Signed<C>, TokenError> {
        let tokens = self.tokens;
        let (claims, headers) = self.build_with_headers()?;
        let token = tokens.encode_with_headers(&claims, &headers)?;
        Ok(Signed { token, claims })
    }
}

/// Issues and verifies tokens with one [`Keys`] set.
///
/// ```
/// use std::sync::Arc;
/// use keycard_token::{Keys, SystemClock, TokenSettings, TokenType, Tokens};
///
/// let tokens = Tokens::new(Keys::hmac_sha256(&[7; 32]).unwrap(), TokenSettings::default(), Arc::new(SystemClock));
/// let refresh = tokens.refresh("alice").sign().unwrap();
/// assert_eq!(tokens.verify::<()>(&refresh.token).unwrap().token_type, TokenType::Refresh);
/// ```
pub struct Tokens {
    keys: ArcSwap<Keys>,
    /// SHA-256 of tokens whose signature verified, with the key set generation it verified
    /// under; only for asymmetric keys, whose verification costs 20-50 HMACs.
    verified: Option<moka::sync::Cache<[u8; 32], Verified>>,
    settings: TokenSettings,
    leeway: i64,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens").field("keys", &*self.keys.load()).field("settings", &self.settings).finish()
    }
}

impl Tokens {
    /// Tokens signed with `keys`, with `settings` (leeway capped at 5 minutes), reading `clock`.
    ///
    /// ```
    /// use std::{sync::Arc, time::Duration};
    /// use keycard_token::{Keys, SystemClock, TokenSettings, Tokens};
    ///
    /// let settings = TokenSettings { leeway: Duration::from_secs(3600), ..TokenSettings::default() };
    /// let tokens = Tokens::new(Keys::hmac_sha256(&[7; 32]).unwrap(), settings, Arc::new(SystemClock));
    /// assert_eq!(tokens.settings().leeway, Duration::from_secs(300));
    /// ```
    pub fn new(keys: Keys, settings: TokenSettings, clock: Arc<dyn Clock>) -> Self {
        let settings = TokenSettings { leeway: settings.leeway.min(MAX_LEEWAY), ..settings };
        let leeway = secs(settings.leeway);
        Self { keys: ArcSwap::from_pointee(keys), verified: None, settings, leeway, clock }
    }

    /// Remembers up to `capacity` tokens whose signature verified, so that a token presented
    /// again skips the public-key signature check (an ECDSA, Ed25519 or RSA verification costs
    /// 20-50 times an HMAC). Only the signature is skipped: the header is still matched to the
    /// key set, the claims are still parsed and checked (`exp`, `nbf`, issuer, audience) and
    /// revocation is still asked by the caller, on every request. Entries are keyed by the
    /// SHA-256 of the whole token, forgotten when the token expires or the key set changes, and
    /// evicted least-used first beyond `capacity` (0: no cache). HMAC tokens are never cached.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use keycard_token::{Algorithm, Keys, SigningKey, SystemClock, Tokens};
    /// let tokens = Tokens::new(Keys::signing(SigningKey::generate(Algorithm::ES256).unwrap()),
    ///     Default::default(), Arc::new(SystemClock)).cache_verified(10_000);
    /// let token = tokens.access("alice").sign().unwrap().token;
    /// assert!(tokens.verify::<()>(&token).is_ok()); // verified and remembered
    /// assert!(tokens.verify::<()>(&token).is_ok()); // signature check skipped
    /// ```
    pub fn cache_verified(mut self, capacity: u64) -> Self {
        self.verified = (capacity > 0)
            .then(|| moka::sync::Cache::builder().max_capacity(capacity).expire_after(VerifiedExpiry).build());
        self
    }

    /// Replaces the key set (a rotation, a refetched JWK Set). Tokens being verified finish with
    /// the set they started with; the next ones use `keys`.
    ///
    /// ```
    /// use keycard_token::{Algorithm, Keys, SigningKey, TokenError};
    /// # let tokens = keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
    /// #     Default::default(), std::sync::Arc::new(keycard_token::SystemClock));
    /// let old = tokens.access("alice").sign().unwrap().token;
    /// let key = SigningKey::generate(Algorithm::ES256).unwrap();
    /// tokens.set_keys(Keys::signing(key.clone()));
    /// // The old HS256 token now meets an ES256 key: refused, whatever its signature.
    /// assert_eq!(tokens.verify::<()>(&old).unwrap_err(), TokenError::AlgorithmNotAllowed);
    /// let new = tokens.decode::<()>(&tokens.access("alice").sign().unwrap().token).unwrap();
    /// assert_eq!(new.header.kid.as_deref(), Some(key.kid()));
    /// ```
    pub fn set_keys(&self, keys: Keys) {
        self.keys.store(Arc::new(keys));
    }

    /// The key set in force.
    pub fn keys(&self) -> Arc<Keys> {
        self.keys.load_full()
    }

    /// The settings in force.
    ///
    /// ```
    /// # let tokens = keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
    /// #     Default::default(), std::sync::Arc::new(keycard_token::SystemClock));
    /// assert_eq!(tokens.settings().access_ttl, std::time::Duration::from_secs(15 * 60));
    /// ```
    pub fn settings(&self) -> &TokenSettings {
        &self.settings
    }

    /// The clock tokens are issued and checked against.
    ///
    /// ```
    /// # let clock = std::sync::Arc::new(keycard_token::ManualClock::new(1_700_000_000));
    /// # let tokens = keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
    /// #     Default::default(), clock.clone());
    /// assert_eq!(tokens.clock().now(), 1_700_000_000);
    /// ```
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The current time of [`Tokens::clock`].
    ///
    /// ```
    /// # let clock = std::sync::Arc::new(keycard_token::ManualClock::new(1_700_000_000));
    /// # let tokens = keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
    /// #     Default::default(), clock.clone());
    /// clock.advance(5);
    /// assert_eq!(tokens.now(), 1_700_000_005);
    /// ```
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Starts an access token for `identity` (anything [`Display`](std::fmt::Display): a
    /// username, an integer id), with the configured lifetime, not fresh.
    ///
    /// ```
    /// # let clock = std::sync::Arc::new(keycard_token::ManualClock::new(1_700_000_000));
    /// # let tokens = keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
    /// #     Default::default(), clock.clone());
    /// use keycard_token::{Fresh, TokenType};
    /// let claims = tokens.access(42).sign().unwrap().claims;
    /// assert_eq!(claims.sub, "42");
    /// assert_eq!(claims.token_type, TokenType::Access);
    /// assert_eq!(claims.fresh, Fresh::Bool(false));
    /// assert_eq!(claims.exp, 1_700_000_000 + 15 * 60);
    /// ```
    pub fn access(&self, identity: impl std::fmt::Display) -> Issue<'_, ()> {
        self.issue_of(identity.to_string(), TokenType::Access, self.settings.access_ttl)
    }

    /// Starts a refresh token for `identity`, with the configured lifetime.
    ///
    /// ```
    /// # let clock = std::sync::Arc::new(keycard_token::ManualClock::new(1_700_000_000));
    /// # let tokens = keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
    /// #     Default::default(), clock.clone());
    /// use keycard_token::TokenType;
    /// let claims = tokens.refresh("alice").sign().unwrap().claims;
    /// assert_eq!(claims.token_type, TokenType::Refresh);
    /// assert_eq!(claims.exp, 1_700_000_000 + 30 * 24 * 3600);
    /// ```
    pub fn refresh(&self, identity: impl std::fmt::Display) -> Issue<'_, ()> {
        self.issue_of(identity.to_string(), TokenType::Refresh, self.settings.refresh_ttl)
    }

    fn issue_of(&self, sub: String, kind: TokenType, ttl: Duration) -> Issue<'_, ()> {
        Issue {
            tokens: self,
            sub,
            kind,
            fresh: FreshSpec::Bool(false),
            ttl,
            jti: None,
            aud: None,
            headers: serde_json::Map::new(),
            extra: (),
        }
    }

    /// Signs `claims` with the signing key into a compact JWS. [`TokenError::TooLarge`] when the
    /// token would be longer than [`MAX_TOKEN_LEN`] (so [`Tokens::verify`] would refuse it):
    /// nothing is issued that keycard itself would not accept.
    ///
    /// ```
    /// # let tokens = keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
    /// #     Default::default(), std::sync::Arc::new(keycard_token::SystemClock));
    /// let mut claims = tokens.access("alice").build().unwrap();
    /// claims.fresh = keycard_token::Fresh::Bool(true);
    /// let token = tokens.encode(&claims).unwrap();
    /// assert!(tokens.verify::<()>(&token).unwrap().is_fresh_at(tokens.now()));
    /// ```
    pub fn encode<C: Serialize>(&self, claims: &Claims<C>) -> Result<String, TokenError> {
        self.encode_with_headers(claims, &serde_json::Map::new())
    }

    /// [`Tokens::encode`] with extra protected-header parameters.
    ///
    /// ```
    /// # let tokens = keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
    /// #     Default::default(), std::sync::Arc::new(keycard_token::SystemClock));
    /// let claims = tokens.access("alice").build().unwrap();
    /// let mut headers = serde_json::Map::new();
    /// headers.insert("x-app".into(), "web".into());
    /// let token = tokens.encode_with_headers(&claims, &headers).unwrap();
    /// assert_eq!(tokens.decode::<()>(&token).unwrap().header.extra["x-app"], "web");
    /// ```
    pub fn encode_with_headers<C: Serialize>(
        &self,
        claims: &Claims<C>,
        headers: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<String, TokenError> {
        check_extra_claims(&claims.extra)?;
        let keys = self.keys.load();
        let key = keys.signing_key().ok_or(TokenError::NoSigningKey)?;
        let payload = serde_json::to_vec(claims).map_err(|_| TokenError::Signing)?;
        let header_b64 = if headers.is_empty() {
            std::borrow::Cow::Borrowed(key.header_b64.as_str())
        } else {
            if headers
                .keys()
                .any(|k| matches!(k.as_str(), "alg" | "typ" | "kid") || FORBIDDEN_HEADERS.contains(&k.as_str()))
            {
                return Err(TokenError::Reserved);
            }
            // Sorted keys, as PyJWT writes them.
            let mut all: std::collections::BTreeMap<&str, serde_json::Value> =
                headers.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            all.insert("alg", key.alg.as_str().into());
            all.insert("typ", "JWT".into());
            if let Some(kid) = &key.kid {
                all.insert("kid", kid.as_str().into());
            }
            let json = serde_json::to_vec(&all).map_err(|_| TokenError::Signing)?;
            std::borrow::Cow::Owned(b64(&json))
        };
        compact(&keys, &header_b64, &payload)
    }

    /// Verifies `token` and returns its claims, or says exactly why it was refused.
    ///
    /// Order: size, shape, header (algorithm and key pinned by our configuration), signature,
    /// then claims; the payload JSON of a token with a bad signature is never parsed.
    ///
    /// ```
    /// # let clock = std::sync::Arc::new(keycard_token::ManualClock::new(1_700_000_000));
    /// # let tokens = keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
    /// #     Default::default(), clock.clone());
    /// use keycard_token::TokenError;
    /// let token = tokens.access("alice").sign().unwrap().token;
    /// assert_eq!(tokens.verify::<()>(&token).unwrap().sub, "alice");
    /// let tampered = format!("{token}x");
    /// assert_eq!(tokens.verify::<()>(&tampered).unwrap_err(), TokenError::InvalidSignature);
    /// clock.advance(15 * 60);
    /// assert_eq!(tokens.verify::<()>(&token).unwrap_err(), TokenError::Expired);
    /// ```
    pub fn verify<C: DeserializeOwned>(&self, token: &str) -> Result<Claims<C>, TokenError> {
        self.decode(token).map(|d| d.claims)
    }

    /// [`Tokens::verify`], also returning the protected header.
    ///
    /// ```
    /// # let tokens = keycard_token::Tokens::new(keycard_token::Keys::hmac_sha256(&[7; 32]).unwrap(),
    /// #     Default::default(), std::sync::Arc::new(keycard_token::SystemClock));
    /// let token = tokens.access("alice").header("x-app", "web").sign().unwrap().token;
    /// let decoded = tokens.decode::<()>(&token).unwrap();
    /// assert_eq!(decoded.claims.sub, "alice");
    /// assert_eq!(decoded.header.extra["x-app"], "web");
    /// ```
    pub fn decode<C: DeserializeOwned>(&self, token: &str) -> Result<Decoded<C>, TokenError> {
        let (header_b64, payload_b64, signature_b64) = segments(token)?;
        let keys = self.keys.load();
        let (key, header) = key_for(&keys, header_b64)?;

        let cache = self.verified.as_ref().filter(|_| !key.alg.is_symmetric());
        let hash = cache.map(|_| sha256(token.as_bytes()));
        let cached = match (cache, &hash) {
            (Some(cache), Some(hash)) => cache.get(hash).is_some_and(|v| v.generation == keys.generation),
            _ => false,
        };
        if !cached {
            check_signature(key, token, header_b64, payload_b64, signature_b64)?;
        }
        let payload = decode_payload(payload_b64)?;
        let claims: Claims<C> = match &self.settings.identity_claim {
            None => serde_json::from_slice(&payload).map_err(|e| classify(&e))?,
            Some(name) => {
                let mut map: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_slice(&payload).map_err(|_| TokenError::InvalidPayload)?;
                // The claim stays where it is too (for the application's claims type); only
                // `sub` is replaced.
                match map.get(name.as_str()) {
                    Some(serde_json::Value::String(id)) if !id.is_empty() => {
                        let id = id.clone();
                        map.insert("sub".into(), id.into());
                    }
                    _ => return Err(TokenError::MissingIdentity),
                }
                serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| classify(&e))?
            }
        };
        self.validate(&claims)?;
        if let (Some(cache), Some(hash), false) = (cache, hash, cached) {
            let ttl = claims.exp.saturating_add(self.leeway).saturating_sub(self.clock.now());
            let ttl = Duration::from_secs(u64::try_from(ttl).unwrap_or(0));
            cache.insert(hash, Verified { generation: keys.generation, ttl });
        }
        Ok(Decoded { header, claims })
    }

    fn validate<C>(&self, claims: &Claims<C>) -> Result<(), TokenError> {
        if self.settings.require_jti {
            match &claims.jti {
                None => return Err(TokenError::MissingClaim("jti")),
                Some(jti) if Uuid::try_parse(jti).is_err() => return Err(TokenError::InvalidPayload),
                Some(_) => {}
            }
        }
        let in_range = |t: i64| (0..=MAX_TIMESTAMP).contains(&t);
        if !(in_range(claims.exp) && claims.nbf.is_none_or(in_range) && in_range(claims.iat)) {
            return Err(TokenError::InvalidClaims);
        }
        if claims.sub.is_empty() {
            return Err(TokenError::InvalidClaims);
        }
        let now = self.clock.now();
        if now >= claims.exp.saturating_add(self.leeway) {
            return Err(TokenError::Expired);
        }
        if claims.nbf.is_some_and(|nbf| nbf > now.saturating_add(self.leeway)) {
            return Err(TokenError::NotYetValid);
        }
        if claims.iat > now.saturating_add(self.leeway) {
            return Err(TokenError::IssuedInFuture);
        }
        if let Some(issuer) = &self.settings.issuer {
            match &claims.iss {
                None => return Err(TokenError::MissingClaim("iss")),
                Some(iss) if iss != issuer => return Err(TokenError::InvalidIssuer),
                Some(_) => {}
            }
        }
        if let Some(audience) = &self.settings.audience {
            match &claims.aud {
                None => return Err(TokenError::MissingClaim("aud")),
                Some(aud) if !aud.iter().any(|a| audience.contains(a)) => return Err(TokenError::InvalidAudience),
                Some(_) => {}
            }
        }
        Ok(())
    }
}

/// The key that may verify a token with this header, by our configuration alone.
fn key_for<'k>(keys: &'k Keys, header_b64: &str) -> Result<(&'k Key, Arc<Header>), TokenError> {
    // Fast path: the exact header keycard writes.
    if let Some(key) = keys.keys.iter().find(|k| k.header_b64 == header_b64) {
        return Ok((key, key.header.clone()));
    }
    let header = parse_header(header_b64)?;
    if header.typ.as_ref().is_some_and(|typ| !ACCEPTED_TYP.iter().any(|t| typ.eq_ignore_ascii_case(t))) {
        return Err(TokenError::InvalidHeader);
    }
    if header.extra.keys().any(|k| FORBIDDEN_HEADERS.contains(&k.as_str())) {
        return Err(TokenError::InvalidHeader);
    }
    let key = keys.lookup(header.kid.as_deref()).ok_or(TokenError::UnknownKey)?;
    if header.alg != key.alg.as_str() {
        return Err(TokenError::AlgorithmNotAllowed);
    }
    let parsed = Header { alg: key.alg, typ: header.typ, kid: header.kid, extra: header.extra };
    Ok((key, Arc::new(parsed)))
}

/// The three segments of a compact JWS no longer than [`MAX_TOKEN_LEN`].
fn segments(token: &str) -> Result<(&str, &str, &str), TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::TooLarge);
    }
    let (header_b64, rest) = token.split_once('.').ok_or(TokenError::NotEnoughSegments)?;
    let (payload_b64, signature_b64) = rest.split_once('.').ok_or(TokenError::NotEnoughSegments)?;
    if signature_b64.contains('.') {
        return Err(TokenError::TooManySegments);
    }
    Ok((header_b64, payload_b64, signature_b64))
}

/// A protected header that is not byte-equal to one keycard writes: strict base64url of a JSON
/// object of at most 1 KiB, parsed (the caller checks `typ` and the forbidden parameters).
fn parse_header(header_b64: &str) -> Result<RawHeader, TokenError> {
    if header_b64.len() > 1024 {
        return Err(TokenError::InvalidHeader);
    }
    let raw = URL_SAFE_NO_PAD.decode(header_b64).map_err(|_| TokenError::HeaderPadding)?;
    if !is_json_object(&raw) {
        return Err(TokenError::InvalidHeader);
    }
    serde_json::from_slice(&raw).map_err(|_| TokenError::InvalidHeader)
}

/// Checks the signature of `token` (whose segments are given) with `key`.
fn check_signature(
    key: &Key,
    token: &str,
    header_b64: &str,
    payload_b64: &str,
    signature_b64: &str,
) -> Result<(), TokenError> {
    // The longest signature: RSA with an 8192-bit modulus.
    let mut signature = [0u8; 1024];
    let signature_len = decode_into(signature_b64, &mut signature).ok_or(TokenError::InvalidSignature)?;
    let signed = &token.as_bytes()[..header_b64.len() + 1 + payload_b64.len()];
    if key.verify(signed, &signature[..signature_len]) { Ok(()) } else { Err(TokenError::InvalidSignature) }
}

/// The payload's JSON bytes: strict base64url of a JSON object (RFC 7519 §7.2 step 10; serde
/// would also map an array).
fn decode_payload(payload_b64: &str) -> Result<Vec<u8>, TokenError> {
    let payload = URL_SAFE_NO_PAD.decode(payload_b64).map_err(|_| TokenError::InvalidPayload)?;
    if is_json_object(&payload) { Ok(payload) } else { Err(TokenError::InvalidPayload) }
}

/// `header_b64.payload` signed with the signing key of `keys`, as a compact JWS.
fn compact(keys: &Keys, header_b64: &str, payload: &[u8]) -> Result<String, TokenError> {
    let mut token = String::with_capacity(header_b64.len() + payload.len() * 4 / 3 + 90);
    token.push_str(header_b64);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut token);
    let signature = keys.sign(token.as_bytes()).ok_or(TokenError::Signing)?;
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::TooLarge);
    }
    Ok(token)
}

/// The application's claims must serialize to a JSON object (or nothing) without reserved names.
fn check_extra_claims<C: Serialize>(extra: &C) -> Result<(), TokenError> {
    match serde_json::to_value(extra).map_err(|_| TokenError::Signing)? {
        serde_json::Value::Null => Ok(()),
        serde_json::Value::Object(map) if !map.keys().any(|k| RESERVED_CLAIMS.contains(&k.as_str())) => Ok(()),
        _ => Err(TokenError::Reserved),
    }
}

/// Why a signed payload did not deserialize: a missing registered claim and a non-string `sub`
/// get PyJWT's messages; anything else is an invalid payload.
fn classify(e: &serde_json::Error) -> TokenError {
    let text = e.to_string();
    if text.starts_with(crate::claims::SUBJECT_NOT_STRING) {
        return TokenError::SubjectNotString;
    }
    if let Some(rest) = text.strip_prefix("missing field `")
        && let Some(name) = rest.split('`').next()
        && let Some(reserved) = RESERVED_CLAIMS.iter().find(|r| **r == name)
    {
        return TokenError::MissingClaim(reserved);
    }
    TokenError::InvalidPayload
}

/// Strict base64url (no padding, canonical trailing bits) of `input` into `out`; `None` when the
/// input is not strict base64url or does not fit.
fn decode_into(input: &str, out: &mut [u8]) -> Option<usize> {
    if base64::decoded_len_estimate(input.len()) > out.len() {
        return None;
    }
    URL_SAFE_NO_PAD.decode_slice(input, out).ok()
}

/// The `kid` a token's header names, read without verifying anything: to log it, or to pick
/// the issuer whose keys should verify it. `None` for a token without `kid` or a malformed one.
///
/// ```
/// use keycard_token::{Algorithm, Keys, SigningKey, Tokens, unverified_kid};
/// let key = SigningKey::generate(Algorithm::ES256).unwrap();
/// let tokens = Tokens::new(Keys::signing(key.clone()), Default::default(), std::sync::Arc::new(keycard_token::SystemClock));
/// let token = tokens.access("alice").sign().unwrap().token;
/// assert_eq!(unverified_kid(&token).as_deref(), Some(key.kid()));
/// assert_eq!(unverified_kid("garbage"), None);
/// ```
pub fn unverified_kid(token: &str) -> Option<String> {
    let (header_b64, _) = token.split_once('.')?;
    if header_b64.len() > 1024 {
        return None;
    }
    let raw = URL_SAFE_NO_PAD.decode(header_b64).ok()?;
    let header: RawHeader = serde_json::from_slice(&raw).ok()?;
    header.kid
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(MAX_TIMESTAMP)
}

mod events;
pub use events::{SECEVENT_TYP, SecurityEvent};

#[cfg(test)]
mod tests;
