//! Issuing token pairs and verifying tokens strictly.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use uuid::Uuid;

use crate::keys::Key;
use crate::{Claims, Clock, Keys, TokenError, TokenType};

/// Longest token accepted for decoding, in bytes, and longest token [`Tokens::encode`] issues:
/// what keycard signs, it also accepts. keycard's own tokens are well under 1 KiB, and under
/// 4 KiB with the most roles the server allows.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Largest accepted `NumericDate`: 9999-12-31T23:59:59Z. Keeps time arithmetic far from overflow.
pub const MAX_TIMESTAMP: i64 = 253_402_300_799;

/// Largest accepted leeway for `exp`/`nbf`/`iat` checks.
const MAX_LEEWAY: Duration = Duration::from_secs(300);

/// Lifetimes and clock tolerance of issued tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenSettings {
    /// Lifetime of access tokens (default 15 minutes).
    pub access_ttl: Duration,
    /// Lifetime of refresh tokens (default 30 days).
    pub refresh_ttl: Duration,
    /// Tolerance for clock skew on `exp`, `nbf` and `iat` (default 0, capped at 5 minutes).
    pub leeway: Duration,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            leeway: Duration::ZERO,
        }
    }
}

/// What a new token pair is issued for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// The `sub` claim: the username.
    pub subject: String,
    /// The `roles` claim.
    pub roles: Vec<String>,
    /// `true` for a password login, `false` for a refresh.
    pub fresh: bool,
    /// The session id; a new one for a login, the existing one for a refresh.
    pub session_id: Uuid,
}

impl NewSession {
    /// A fresh pair for a password login, in a new session.
    pub fn login(subject: impl Into<String>, roles: Vec<String>) -> Self {
        Self { subject: subject.into(), roles, fresh: true, session_id: Uuid::now_v7() }
    }

    /// A non-fresh pair continuing session `session_id`.
    pub fn refresh(subject: impl Into<String>, roles: Vec<String>, session_id: Uuid) -> Self {
        Self { subject: subject.into(), roles, fresh: false, session_id }
    }
}

/// An access token and a refresh token of one session, with their claims.
#[derive(Debug, Clone)]
pub struct IssuedPair {
    /// The encoded access token.
    pub access_token: String,
    /// The encoded refresh token.
    pub refresh_token: String,
    /// Claims of the access token.
    pub access: Claims,
    /// Claims of the refresh token.
    pub refresh: Claims,
}

/// Issues and verifies keycard tokens with one [`Keys`] set.
pub struct Tokens {
    keys: Keys,
    settings: TokenSettings,
    leeway: i64,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens").field("keys", &self.keys).field("settings", &self.settings).finish()
    }
}

/// The protected header, parsed only when it is not byte-equal to the one keycard writes.
/// Anything beyond `alg`, `typ` and `kid` is refused: `jwk`, `jku`, `x5u`, `x5c` would carry keys
/// or key locations (never used), and `crit` names extensions keycard does not implement
/// (RFC 7515 §4.1.11). Duplicate names are refused by the derived deserializer.
/// `typ` and `kid` may be absent but, when present, must be strings (`null` is refused).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    alg: String,
    #[serde(default, deserialize_with = "present")]
    typ: Option<String>,
    #[serde(default, deserialize_with = "present")]
    kid: Option<String>,
}

/// A header parameter that is there must be a string: `null` is not "absent".
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    String::deserialize(d).map(Some)
}

/// Whether `json` starts (after whitespace) with `{`: an object, not an array or a scalar.
fn is_json_object(json: &[u8]) -> bool {
    json.iter().find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r')) == Some(&b'{')
}

impl Tokens {
    /// Tokens signed with `keys`, with `settings` (leeway capped at 5 minutes), reading `clock`.
    pub fn new(keys: Keys, settings: TokenSettings, clock: Arc<dyn Clock>) -> Self {
        let settings = TokenSettings { leeway: settings.leeway.min(MAX_LEEWAY), ..settings };
        let leeway = secs(settings.leeway);
        Self { keys, settings, leeway, clock }
    }

    /// The lifetimes in force.
    pub fn settings(&self) -> &TokenSettings {
        &self.settings
    }

    /// The clock tokens are issued and checked against.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The current time of [`Tokens::clock`].
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Issues an access token and a refresh token for `session`, with fresh `jti`s.
    pub fn issue_pair(&self, session: &NewSession) -> Result<IssuedPair, TokenError> {
        let now = self.clock.now();
        let access = self.claims(session, TokenType::Access, now);
        let refresh = self.claims(session, TokenType::Refresh, now);
        Ok(IssuedPair { access_token: self.encode(&access)?, refresh_token: self.encode(&refresh)?, access, refresh })
    }

    /// Issues one token of `kind` for `session`.
    pub fn issue(&self, session: &NewSession, kind: TokenType) -> Result<(String, Claims), TokenError> {
        let claims = self.claims(session, kind, self.clock.now());
        Ok((self.encode(&claims)?, claims))
    }

    /// The claims a token of `kind` for `session` issued now would carry, with a fresh `jti`;
    /// sign them with [`Tokens::encode`]. Lets a caller record the `jti` before signing.
    pub fn claims_for(&self, session: &NewSession, kind: TokenType) -> Claims {
        self.claims(session, kind, self.clock.now())
    }

    fn claims(&self, session: &NewSession, kind: TokenType, now: i64) -> Claims {
        let ttl = match kind {
            TokenType::Access => self.settings.access_ttl,
            TokenType::Refresh => self.settings.refresh_ttl,
        };
        Claims {
            sub: session.subject.clone(),
            iat: now,
            nbf: now,
            exp: now.saturating_add(secs(ttl)),
            jti: Uuid::new_v4(),
            token_type: kind,
            fresh: session.fresh,
            roles: session.roles.clone(),
            sid: session.session_id,
        }
    }

    /// Signs `claims` with the signing key into a compact JWS. [`TokenError::TooLarge`] when the
    /// token would be longer than [`MAX_TOKEN_LEN`] (so [`Tokens::verify`] would refuse it):
    /// nothing is issued that keycard itself would not accept.
    pub fn encode(&self, claims: &Claims) -> Result<String, TokenError> {
        let key = self.keys.signing();
        let payload = serde_json::to_vec(claims).map_err(|_| TokenError::Signing)?;
        let mut token = String::with_capacity(key.header_b64.len() + payload.len() * 4 / 3 + 90);
        token.push_str(&key.header_b64);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let tag = key.sign(token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(tag.as_ref(), &mut token);
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLarge);
        }
        Ok(token)
    }

    /// Verifies `token` and returns its claims, or says exactly why it was refused.
    ///
    /// Order: size, shape, header (algorithm and key pinned by our configuration), signature,
    /// then claims; the payload JSON of a token with a bad signature is never parsed.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLarge);
        }
        let (header_b64, rest) = token.split_once('.').ok_or(TokenError::NotEnoughSegments)?;
        let (payload_b64, signature_b64) = rest.split_once('.').ok_or(TokenError::NotEnoughSegments)?;
        if signature_b64.contains('.') {
            return Err(TokenError::TooManySegments);
        }
        let key = self.key_for(header_b64)?;

        let mut signature = [0u8; 64];
        let signature_len = decode_into(signature_b64, &mut signature).ok_or(TokenError::InvalidSignature)?;
        let signed = &token.as_bytes()[..header_b64.len() + 1 + payload_b64.len()];
        if !key.verify(signed, &signature[..signature_len]) {
            return Err(TokenError::InvalidSignature);
        }

        let payload = URL_SAFE_NO_PAD.decode(payload_b64).map_err(|_| TokenError::InvalidPayload)?;
        // RFC 7519 §7.2 step 10: the claims are a JSON object (serde would also map an array).
        if !is_json_object(&payload) {
            return Err(TokenError::InvalidPayload);
        }
        let claims: Claims = serde_json::from_slice(&payload).map_err(|_| TokenError::InvalidPayload)?;
        self.validate(&claims)?;
        Ok(claims)
    }

    /// The key that may verify a token with this header, by our configuration alone.
    fn key_for(&self, header_b64: &str) -> Result<&Key, TokenError> {
        // Fast path: the exact header keycard writes.
        if let Some(key) = self.keys.keys.iter().find(|k| k.header_b64 == header_b64) {
            return Ok(key);
        }
        if header_b64.len() > 1024 {
            return Err(TokenError::InvalidHeader);
        }
        let raw = URL_SAFE_NO_PAD.decode(header_b64).map_err(|_| TokenError::InvalidHeader)?;
        if !is_json_object(&raw) {
            return Err(TokenError::InvalidHeader);
        }
        let header: Header = serde_json::from_slice(&raw).map_err(|_| TokenError::InvalidHeader)?;
        if header.typ.as_ref().is_some_and(|typ| !typ.eq_ignore_ascii_case("JWT")) {
            return Err(TokenError::InvalidHeader);
        }
        let key = self.keys.lookup(header.kid.as_deref()).ok_or(TokenError::UnknownKey)?;
        if header.alg != key.alg.as_str() {
            return Err(TokenError::AlgorithmNotAllowed);
        }
        Ok(key)
    }

    fn validate(&self, claims: &Claims) -> Result<(), TokenError> {
        let in_range = |t: i64| (0..=MAX_TIMESTAMP).contains(&t);
        if !(in_range(claims.exp) && in_range(claims.nbf) && in_range(claims.iat)) {
            return Err(TokenError::InvalidClaims);
        }
        if claims.sub.is_empty() || claims.roles.iter().any(String::is_empty) {
            return Err(TokenError::InvalidClaims);
        }
        let now = self.clock.now();
        if now >= claims.exp.saturating_add(self.leeway) {
            return Err(TokenError::Expired);
        }
        if claims.nbf > now.saturating_add(self.leeway) {
            return Err(TokenError::NotYetValid);
        }
        if claims.iat > now.saturating_add(self.leeway) {
            return Err(TokenError::IssuedInFuture);
        }
        Ok(())
    }
}

/// Strict base64url (no padding, canonical trailing bits) of `input` into `out`; `None` when the
/// input is not strict base64url or does not fit.
fn decode_into(input: &str, out: &mut [u8]) -> Option<usize> {
    if base64::decoded_len_estimate(input.len()) > out.len() {
        return None;
    }
    URL_SAFE_NO_PAD.decode_slice(input, out).ok()
}

/// Strict base64url without padding.
pub(crate) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(MAX_TIMESTAMP)
}

#[cfg(test)]
mod tests;
