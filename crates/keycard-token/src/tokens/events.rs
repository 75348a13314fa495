//! Security Event Tokens (RFC 8417): signed and verified with the same pinned keys as access
//! tokens, but never interchangeable with them. A SET carries `typ: secevent+jwt` (SSF 1.0 §4.1
//! requires it), which the access-token path refuses; and an access token (`typ: JWT`) is refused
//! here. SETs have no `exp` and no `sub` (SSF 1.0: the subject is `sub_id`), so only the
//! signature, `iss`, `iat` and the presence of `jti` and `events` are checked: what an event
//! means is the receiver's business.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::{FORBIDDEN_HEADERS, Header, Tokens, check_signature, compact, decode_payload, parse_header, segments};
use crate::TokenError;
use crate::keys::b64;

/// The `typ` header of a Security Event Token.
pub const SECEVENT_TYP: &str = "secevent+jwt";

/// A verified Security Event Token.
#[derive(Debug, Clone, PartialEq)]
pub struct SecurityEvent {
    /// The protected header (`typ` is `secevent+jwt`).
    pub header: Arc<Header>,
    /// Every claim: `iss`, `jti`, `iat`, `events`, and the rest (`aud`, `sub_id`, `txn`, ...).
    pub claims: Map<String, Value>,
}

impl SecurityEvent {
    /// `jti`: the SET's identifier, acknowledged by it in RFC 8936 polling.
    pub fn jti(&self) -> &str {
        self.claims.get("jti").and_then(Value::as_str).unwrap_or_default()
    }

    /// The events (event type URI -> event object).
    pub fn events(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.claims.get("events").and_then(Value::as_object).into_iter().flatten().map(|(k, v)| (k.as_str(), v))
    }
}

impl Tokens {
    /// Signs `claims` as a Security Event Token: header `{alg, kid, typ: "secevent+jwt"}` with
    /// the signing key. The claims are the caller's: `iss`, `jti`, `iat` and `events` are
    /// required (RFC 8417 §2.2); `exp` and `sub` are refused (SSF 1.0 §4.1.7, §4.1.9).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use keycard_token::{Algorithm, Keys, SigningKey, SystemClock, TokenSettings, Tokens};
    /// let settings = TokenSettings { issuer: Some("https://auth.example.com".into()), ..Default::default() };
    /// let tokens = Tokens::new(Keys::signing(SigningKey::generate(Algorithm::ES256).unwrap()),
    ///     settings, Arc::new(SystemClock));
    /// let claims = serde_json::json!({
    ///     "iss": "https://auth.example.com", "jti": "17", "iat": 1_700_000_000,
    ///     "events": { "https://schemas.openid.net/secevent/caep/event-type/session-revoked": {} },
    /// });
    /// let set = tokens.sign_security_event(claims.as_object().unwrap()).unwrap();
    /// assert_eq!(tokens.verify_security_event(&set).unwrap().jti(), "17");
    /// assert!(tokens.verify::<()>(&set).is_err()); // never an access token
    /// ```
    pub fn sign_security_event(&self, claims: &Map<String, Value>) -> Result<String, TokenError> {
        check_set_claims(claims)?;
        let keys = self.keys.load();
        let key = keys.signing_key().ok_or(TokenError::NoSigningKey)?;
        let mut header = Map::new();
        header.insert("alg".into(), key.alg.as_str().into());
        if let Some(kid) = &key.kid {
            header.insert("kid".into(), kid.as_str().into());
        }
        header.insert("typ".into(), SECEVENT_TYP.into());
        let header = serde_json::to_vec(&header).map_err(|_| TokenError::Signing)?;
        let payload = serde_json::to_vec(claims).map_err(|_| TokenError::Signing)?;
        compact(&keys, &b64(&header), &payload)
    }

    /// Verifies a Security Event Token: `typ` must be `secevent+jwt`, the key is chosen from the
    /// configured set by `kid` and must match `alg` (never `jku`/`jwk`/`x5u`), the signature must
    /// verify, `iss` must be the configured issuer (when one is configured), `iat` must not be in
    /// the future, `jti` and `events` must be there, `exp` and `sub` must not.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use keycard_token::{Algorithm, Keys, SigningKey, SystemClock, TokenError, Tokens};
    /// # let tokens = Tokens::new(Keys::signing(SigningKey::generate(Algorithm::EdDSA).unwrap()),
    /// #     Default::default(), Arc::new(SystemClock));
    /// let access = tokens.access("alice").sign().unwrap().token;
    /// assert_eq!(tokens.verify_security_event(&access).unwrap_err(), TokenError::InvalidHeader);
    /// ```
    pub fn verify_security_event(&self, token: &str) -> Result<SecurityEvent, TokenError> {
        let (header_b64, payload_b64, signature_b64) = segments(token)?;
        let header = parse_header(header_b64)?;
        let is_set =
            |typ: &str| typ.eq_ignore_ascii_case(SECEVENT_TYP) || typ.eq_ignore_ascii_case("application/secevent+jwt");
        if !header.typ.as_deref().is_some_and(is_set) {
            return Err(TokenError::InvalidHeader);
        }
        if header.extra.keys().any(|k| FORBIDDEN_HEADERS.contains(&k.as_str())) {
            return Err(TokenError::InvalidHeader);
        }
        let keys = self.keys.load();
        let key = keys.lookup(header.kid.as_deref()).ok_or(TokenError::UnknownKey)?;
        if header.alg != key.alg.as_str() {
            return Err(TokenError::AlgorithmNotAllowed);
        }
        check_signature(key, token, header_b64, payload_b64, signature_b64)?;
        let payload = decode_payload(payload_b64)?;
        let claims: Map<String, Value> = serde_json::from_slice(&payload).map_err(|_| TokenError::InvalidPayload)?;
        check_set_claims(&claims)?;
        if let Some(issuer) = &self.settings.issuer
            && claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str())
        {
            return Err(TokenError::InvalidIssuer);
        }
        let iat = claims.get("iat").and_then(Value::as_i64).ok_or(TokenError::InvalidClaims)?;
        if iat > self.clock.now().saturating_add(self.leeway) {
            return Err(TokenError::IssuedInFuture);
        }
        let header = Header { alg: key.alg, typ: header.typ, kid: header.kid, extra: header.extra };
        Ok(SecurityEvent { header: Arc::new(header), claims })
    }
}

/// RFC 8417 §2.2 and SSF 1.0 §4.1: `iss`, `jti` (a non-empty string), `iat` (an integer) and
/// `events` (an object) are required; `exp` and `sub` are refused.
fn check_set_claims(claims: &Map<String, Value>) -> Result<(), TokenError> {
    for name in ["iss", "jti", "iat", "events"] {
        if !claims.contains_key(name) {
            return Err(TokenError::MissingClaim(match name {
                "iss" => "iss",
                "jti" => "jti",
                "iat" => "iat",
                _ => "events",
            }));
        }
    }
    let ok = claims.get("iss").and_then(Value::as_str).is_some_and(|s| !s.is_empty())
        && claims.get("jti").and_then(Value::as_str).is_some_and(|s| !s.is_empty())
        && claims.get("iat").and_then(Value::as_i64).is_some_and(|t| (0..=super::MAX_TIMESTAMP).contains(&t))
        && claims.get("events").is_some_and(Value::is_object)
        && !claims.contains_key("exp")
        && !claims.contains_key("sub");
    if ok { Ok(()) } else { Err(TokenError::InvalidClaims) }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use crate::{Algorithm, Keys, ManualClock, SigningKey, TokenError, TokenSettings, Tokens};

    const ISS: &str = "https://auth.example.com";
    const SESSION_REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";

    fn tokens(alg: Algorithm) -> (Tokens, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(1_700_000_000));
        let settings = TokenSettings { issuer: Some(ISS.into()), ..Default::default() };
        let key = SigningKey::generate(alg).unwrap();
        (Tokens::new(Keys::signing(key), settings, clock.clone()), clock)
    }

    fn claims() -> serde_json::Map<String, serde_json::Value> {
        json!({
            "iss": ISS, "jti": "42", "iat": 1_700_000_000, "aud": "rs",
            "sub_id": { "format": "opaque", "id": "s1" },
            "events": { SESSION_REVOKED: { "event_timestamp": 1_700_000_000 } },
        })
        .as_object()
        .cloned()
        .unwrap()
    }

    #[test]
    fn a_set_round_trips_with_every_asymmetric_algorithm_and_an_hmac_key() {
        for alg in Algorithm::ALL {
            let (tokens, _) = if alg.is_symmetric() {
                let settings = TokenSettings { issuer: Some(ISS.into()), ..Default::default() };
                let clock = Arc::new(ManualClock::new(1_700_000_000));
                (Tokens::new(Keys::hmac(alg, &[7; 64]).unwrap(), settings, clock.clone()), clock)
            } else {
                tokens(alg)
            };
            let set = tokens.sign_security_event(&claims()).unwrap();
            let event = tokens.verify_security_event(&set).unwrap();
            assert_eq!(event.jti(), "42", "{alg:?}");
            assert_eq!(event.header.typ.as_deref(), Some("secevent+jwt"));
            assert_eq!(event.events().map(|(k, _)| k).collect::<Vec<_>>(), [SESSION_REVOKED]);
        }
    }

    #[test]
    fn sets_and_access_tokens_are_not_interchangeable() {
        let (tokens, _) = tokens(Algorithm::ES256);
        let set = tokens.sign_security_event(&claims()).unwrap();
        assert_eq!(tokens.verify::<()>(&set).unwrap_err(), TokenError::InvalidHeader);
        let access = tokens.access("alice").sign().unwrap().token;
        assert_eq!(tokens.verify_security_event(&access).unwrap_err(), TokenError::InvalidHeader);
    }

    #[test]
    fn wrong_issuer_key_signature_and_claims_are_refused() {
        let (tokens, clock) = tokens(Algorithm::EdDSA);
        let (other, _) = tokens_with_issuer("https://evil.example");
        let foreign = other.sign_security_event(&{
            let mut c = claims();
            c.insert("iss".into(), "https://evil.example".into());
            c
        });
        assert_eq!(tokens.verify_security_event(&foreign.unwrap()).unwrap_err(), TokenError::UnknownKey);

        let mut wrong_iss = claims();
        wrong_iss.insert("iss".into(), "https://evil.example".into());
        let set = tokens.sign_security_event(&wrong_iss).unwrap();
        assert_eq!(tokens.verify_security_event(&set).unwrap_err(), TokenError::InvalidIssuer);

        let set = tokens.sign_security_event(&claims()).unwrap();
        let mut tampered = set.clone();
        tampered.pop();
        tampered.push(if set.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(tokens.verify_security_event(&tampered).unwrap_err(), TokenError::InvalidSignature);

        for (name, value) in [("exp", json!(1)), ("sub", json!("alice")), ("events", json!([])), ("jti", json!(""))] {
            let mut c = claims();
            c.insert(name.into(), value);
            assert_eq!(tokens.sign_security_event(&c).unwrap_err(), TokenError::InvalidClaims, "{name}");
        }
        let mut c = claims();
        c.remove("events");
        assert_eq!(tokens.sign_security_event(&c).unwrap_err(), TokenError::MissingClaim("events"));

        let mut future = claims();
        future.insert("iat".into(), json!(1_700_000_100));
        let set = tokens.sign_security_event(&future).unwrap();
        assert_eq!(tokens.verify_security_event(&set).unwrap_err(), TokenError::IssuedInFuture);
        clock.advance(100);
        assert!(tokens.verify_security_event(&set).is_ok());
    }

    fn tokens_with_issuer(iss: &str) -> (Tokens, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(1_700_000_000));
        let settings = TokenSettings { issuer: Some(iss.into()), ..Default::default() };
        let key = SigningKey::generate(Algorithm::EdDSA).unwrap();
        (Tokens::new(Keys::signing(key), settings, clock.clone()), clock)
    }

    #[test]
    fn garbage_is_refused_without_a_panic() {
        let (tokens, _) = tokens(Algorithm::ES256);
        for garbage in ["", ".", "..", "a.b.c", "a.b.c.d", "eyJhbGciOiJub25lIn0.e30.", &"x".repeat(20_000)] {
            assert!(tokens.verify_security_event(garbage).is_err(), "{garbage:.20}");
        }
    }
}
