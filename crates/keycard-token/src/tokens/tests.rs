//! Unit and property tests of issuing and strict verification.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;

use super::*;
use crate::{Algorithm, ManualClock};

const SECRET: &[u8] = b"test-secret-test-secret-test-secret!";
const NOW: i64 = 1_800_000_000;

fn tokens_at(now: i64) -> (Tokens, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(now));
    let tokens = Tokens::new(Keys::hmac_sha256(SECRET).unwrap(), TokenSettings::default(), clock.clone());
    (tokens, clock)
}

fn tokens() -> Tokens {
    tokens_at(NOW).0
}

/// Signs arbitrary header and payload JSON with the test secret, as an attacker who knows the
/// secret could not but a buggy issuer might.
fn forge(tokens: &Tokens, header: &str, payload: &str) -> String {
    let signed = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    let tag = tokens.keys().sign(signed.as_bytes()).unwrap();
    format!("{signed}.{}", b64(&tag))
}

/// The payload Flask-JWT-Extended 4.7 writes (its claim order), with `exp` as given.
fn payload_with(exp: &str) -> String {
    format!(
        r#"{{"fresh":false,"iat":{NOW},"jti":"{}","type":"access","sub":"alice","nbf":{NOW},"csrf":"{}","exp":{exp}}}"#,
        Uuid::new_v4(),
        Uuid::new_v4()
    )
}

/// Application claims shaped like the server's.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Session {
    roles: Vec<String>,
    sid: Uuid,
}

fn session(roles: &[&str]) -> Session {
    Session { roles: roles.iter().map(|r| (*r).to_owned()).collect(), sid: Uuid::now_v7() }
}

/// An access token for alice with the server-shaped claims.
fn access(tokens: &Tokens) -> Signed<Session> {
    tokens.access("alice").fresh(true).claims(session(&["admin"])).sign().unwrap()
}

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

#[test]
fn an_issued_token_verifies_with_its_own_claims() {
    let tokens = tokens();
    let access = access(&tokens);
    let refresh = tokens.refresh("alice").claims(access.claims.extra.clone()).sign().unwrap();
    let a = tokens.verify::<Session>(&access.token).unwrap();
    let r = tokens.verify::<Session>(&refresh.token).unwrap();
    assert_eq!(a, access.claims);
    assert_eq!(r, refresh.claims);
    assert_eq!(a.token_type, TokenType::Access);
    assert_eq!(r.token_type, TokenType::Refresh);
    assert_eq!(a.sid, r.sid);
    assert_ne!(a.jti, r.jti);
    assert_eq!(a.exp - a.iat, 15 * 60);
    assert_eq!(r.exp - r.iat, 30 * 24 * 3600);
    assert!(a.is_fresh_at(NOW) && a.roles == ["admin"]);
    assert_eq!(r.fresh, Fresh::Bool(false));
}

#[test]
fn tokens_carry_exactly_flask_jwt_extendeds_claims_by_default() {
    let tokens = tokens();
    let signed = tokens.access("alice").sign().unwrap();
    let payload: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(signed.token.split('.').nth(1).unwrap()).unwrap()).unwrap();
    let mut names: Vec<&str> = payload.as_object().unwrap().keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["csrf", "exp", "fresh", "iat", "jti", "nbf", "sub", "type"]);
    assert_eq!(payload["fresh"], false);
    assert_eq!(payload["type"], "access");
    assert!(payload["jti"].as_str().unwrap().parse::<Uuid>().is_ok());
    assert!(payload["csrf"].as_str().unwrap().parse::<Uuid>().is_ok());
    let header = URL_SAFE_NO_PAD.decode(signed.token.split('.').next().unwrap()).unwrap();
    assert_eq!(header, br#"{"alg":"HS256","typ":"JWT"}"#, "PyJWT's header, byte for byte");

    let bare = Tokens::new(
        Keys::hmac_sha256(SECRET).unwrap(),
        TokenSettings { encode_nbf: false, csrf_claim: false, ..TokenSettings::default() },
        Arc::new(ManualClock::new(NOW)),
    );
    let claims = bare.access("alice").build().unwrap();
    assert_eq!((claims.nbf, claims.csrf), (None, None));
}

#[test]
fn a_token_in_flask_jwt_extendeds_format_verifies_and_defaults_apply() {
    let tokens = tokens();
    let claims = tokens.verify::<()>(&forge(&tokens, HEADER, &payload_with(&(NOW + 60).to_string()))).unwrap();
    assert_eq!(claims.sub, "alice");
    // Without `type`, `fresh` and `nbf` (FJE fills in access and false).
    let minimal = format!(r#"{{"sub":"alice","iat":{NOW},"exp":{},"jti":"{}"}}"#, NOW + 60, Uuid::new_v4());
    let claims = tokens.verify::<()>(&forge(&tokens, HEADER, &minimal)).unwrap();
    assert_eq!((claims.token_type, claims.fresh, claims.nbf), (TokenType::Access, Fresh::Bool(false), None));
    // Time-limited freshness is a float timestamp.
    let until = payload_with(&(NOW + 60).to_string()).replace(r#""fresh":false"#, &format!(r#""fresh":{}.25"#, NOW));
    let claims = tokens.verify::<()>(&forge(&tokens, HEADER, &until)).unwrap();
    assert_eq!(claims.fresh, Fresh::Until(NOW as f64 + 0.25));
    assert!(claims.is_fresh_at(NOW) && !claims.is_fresh_at(NOW + 1));
}

#[test]
fn application_claims_are_flattened_and_unknown_claims_ignored() {
    #[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
    struct Admin {
        is_administrator: bool,
    }
    let tokens = tokens();
    let signed = tokens.access(42).claims(Admin { is_administrator: true }).sign().unwrap();
    let claims = tokens.verify::<Admin>(&signed.token).unwrap();
    assert!(claims.is_administrator);
    assert_eq!(claims.identity::<i64>().unwrap(), 42);
    assert_eq!(claims.sub, "42", "an integer identity is written as a string sub");
    // A token with claims this app does not know still verifies (a Flask service may add its own).
    let with_extra = payload_with(&(NOW + 60).to_string()).replacen('{', r#"{"foo":"bar","n":[1,2],"#, 1);
    assert!(tokens.verify::<()>(&forge(&tokens, HEADER, &with_extra)).is_ok());
    // A claim the app needs is required.
    assert_eq!(tokens.verify::<Admin>(&forge(&tokens, HEADER, &with_extra)), Err(TokenError::InvalidPayload));
    // As a map, any claim can be read.
    let any =
        tokens.verify::<serde_json::Map<String, serde_json::Value>>(&forge(&tokens, HEADER, &with_extra)).unwrap();
    assert_eq!(any["foo"], "bar");
    assert!(!any.contains_key("sub"), "registered claims are not repeated in the map");
}

#[test]
fn application_claims_can_never_overwrite_registered_ones() {
    let tokens = tokens();
    for name in RESERVED_CLAIMS {
        let extra = serde_json::json!({ name: "x" });
        let result = tokens.access("alice").claims(extra).sign();
        assert_eq!(result.unwrap_err(), TokenError::Reserved, "{name}");
    }
    assert_eq!(tokens.access("alice").claims(vec![1, 2]).sign().unwrap_err(), TokenError::Reserved);
    assert_eq!(tokens.access("").sign().unwrap_err(), TokenError::EmptyIdentity);
}

#[test]
fn extra_headers_are_written_sorted_and_read_back() {
    let tokens = tokens();
    let signed = tokens.access("alice").header("foo", "bar").header("n", 1).sign().unwrap();
    let header = URL_SAFE_NO_PAD.decode(signed.token.split('.').next().unwrap()).unwrap();
    assert_eq!(header, br#"{"alg":"HS256","foo":"bar","n":1,"typ":"JWT"}"#);
    let decoded = tokens.decode::<()>(&signed.token).unwrap();
    assert_eq!(decoded.header.extra["foo"], "bar");
    assert_eq!(decoded.header.alg, Algorithm::HS256);
    for name in ["alg", "typ", "kid", "jku", "jwk", "x5u", "x5c", "crit"] {
        assert_eq!(tokens.access("a").header(name, "x").sign().unwrap_err(), TokenError::Reserved, "{name}");
    }
}

#[test]
fn fresh_for_writes_a_fresh_until_timestamp() {
    let (tokens, clock) = tokens_at(NOW);
    let signed = tokens.access("alice").fresh_for(Duration::from_secs(600)).sign().unwrap();
    assert!(signed.token.len() < 400);
    let claims = tokens.verify::<()>(&signed.token).unwrap();
    assert_eq!(claims.fresh, Fresh::Until((NOW + 600) as f64));
    clock.advance(600);
    assert!(tokens.verify::<()>(&signed.token).unwrap().is_fresh_at(tokens.now()));
    clock.advance(1);
    assert!(!tokens.verify::<()>(&signed.token).unwrap().is_fresh_at(tokens.now()));
}

#[test]
fn issuer_and_audience_are_written_and_always_checked_when_configured() {
    let clock = Arc::new(ManualClock::new(NOW));
    let make = |iss: Option<&str>, aud: Option<Audience>| {
        let settings = TokenSettings { issuer: iss.map(str::to_owned), audience: aud, ..TokenSettings::default() };
        Tokens::new(Keys::hmac_sha256(SECRET).unwrap(), settings, clock.clone())
    };
    let ours = make(Some("https://auth.example"), Some(Audience::Many(vec!["api".into(), "web".into()])));
    let token = ours.access("alice").sign().unwrap().token;
    assert!(ours.verify::<()>(&token).is_ok());
    let only_web = make(Some("https://auth.example"), Some("web".into()));
    assert!(only_web.verify::<()>(&token).is_ok(), "one audience in common is enough");
    assert_eq!(
        make(Some("https://auth.example"), Some("other".into())).verify::<()>(&token),
        Err(TokenError::InvalidAudience)
    );
    assert_eq!(make(Some("https://evil.example"), None).verify::<()>(&token), Err(TokenError::InvalidIssuer));
    let plain = make(None, None).access("alice").sign().unwrap().token;
    assert_eq!(ours.verify::<()>(&plain), Err(TokenError::MissingClaim("iss")));
    assert_eq!(make(None, Some("api".into())).verify::<()>(&plain), Err(TokenError::MissingClaim("aud")));
    assert!(make(None, None).verify::<()>(&token).is_ok(), "unconfigured: not checked, as in FJE");
    let per_token = make(None, None).access("alice").audience("some_audience").sign().unwrap();
    assert_eq!(per_token.claims.aud, Some(Audience::One("some_audience".into())));
    assert!(make(None, Some("some_audience".into())).verify::<()>(&per_token.token).is_ok());
}

#[test]
fn missing_claims_and_a_non_string_subject_get_pyjwts_messages() {
    let tokens = tokens();
    let good = payload_with(&(NOW + 60).to_string());
    let int_sub = good.replace(r#""sub":"alice""#, r#""sub":1"#);
    assert_eq!(tokens.verify::<()>(&forge(&tokens, HEADER, &int_sub)), Err(TokenError::SubjectNotString));
    assert_eq!(TokenError::SubjectNotString.to_string(), "Subject must be a string");
    let no_exp = good.replace(&format!(r#","exp":{}"#, NOW + 60), "");
    assert_eq!(tokens.verify::<()>(&forge(&tokens, HEADER, &no_exp)), Err(TokenError::MissingClaim("exp")));
    assert_eq!(TokenError::MissingClaim("exp").to_string(), r#"Token is missing the "exp" claim"#);
    let no_sub = good.replace(r#""sub":"alice","#, "");
    assert_eq!(tokens.verify::<()>(&forge(&tokens, HEADER, &no_sub)), Err(TokenError::MissingClaim("sub")));
    assert_eq!(TokenError::MissingClaim("sub").to_string(), "Missing claim: sub", "FJE's own check");
    assert_eq!(tokens.verify::<()>("a.b.c"), Err(TokenError::HeaderPadding));
    assert_eq!(TokenError::HeaderPadding.to_string(), "Invalid header padding");
    assert_eq!(TokenError::NotYetValid.to_string(), "The token is not yet valid (nbf)");
    assert_eq!(TokenError::IssuedInFuture.to_string(), "The token is not yet valid (iat)");
}

#[test]
fn tokens_interoperate_with_the_jsonwebtoken_crate() {
    let tokens = tokens_at(jsonwebtoken::get_current_timestamp() as i64).0;
    let access = access(&tokens);
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.validate_nbf = true;
    let theirs = jsonwebtoken::decode::<Claims<Session>>(
        &access.token,
        &jsonwebtoken::DecodingKey::from_secret(SECRET),
        &validation,
    )
    .unwrap();
    assert_eq!(theirs.claims, access.claims);

    let encoded = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &access.claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    assert_eq!(tokens.verify::<Session>(&encoded).unwrap(), access.claims);
}

#[test]
fn expiry_is_checked_against_the_injected_clock() {
    let (tokens, clock) = tokens_at(NOW);
    let access = tokens.access("alice").sign().unwrap();
    let refresh = tokens.refresh("alice").sign().unwrap();
    clock.advance(15 * 60 - 1);
    assert!(tokens.verify::<()>(&access.token).is_ok());
    clock.advance(1);
    assert_eq!(tokens.verify::<()>(&access.token), Err(TokenError::Expired));
    assert!(tokens.verify::<()>(&refresh.token).is_ok());
    let long = tokens.access("alice").expires_in(Duration::from_secs(3600)).sign().unwrap();
    assert_eq!(long.claims.exp - long.claims.iat, 3600);
}

#[test]
fn leeway_extends_expiry_and_is_capped_at_five_minutes() {
    let clock = Arc::new(ManualClock::new(NOW));
    let settings = TokenSettings { leeway: Duration::from_secs(3600), ..TokenSettings::default() };
    let tokens = Tokens::new(Keys::hmac_sha256(SECRET).unwrap(), settings, clock.clone());
    assert_eq!(tokens.settings().leeway, Duration::from_secs(300));
    let token = tokens.access("a").sign().unwrap().token;
    clock.advance(15 * 60 + 299);
    assert!(tokens.verify::<()>(&token).is_ok());
    clock.advance(1);
    assert_eq!(tokens.verify::<()>(&token), Err(TokenError::Expired));
}

#[test]
fn tokens_from_the_future_are_refused() {
    let (tokens, clock) = tokens_at(NOW + 60);
    let token = tokens.access("alice").sign().unwrap().token;
    clock.set(NOW);
    assert_eq!(tokens.verify::<()>(&token), Err(TokenError::NotYetValid));
    let future_iat =
        payload_with(&(NOW + 900).to_string()).replace(&format!(r#""iat":{NOW}"#), &format!(r#""iat":{}"#, NOW + 60));
    assert_eq!(tokens.verify::<()>(&forge(&tokens, HEADER, &future_iat)), Err(TokenError::IssuedInFuture));
}

#[test]
fn another_secret_fails_signature_verification() {
    let other =
        Tokens::new(Keys::hmac_sha256(&[9u8; 32]).unwrap(), TokenSettings::default(), Arc::new(ManualClock::new(NOW)));
    let token = other.access("alice").sign().unwrap().token;
    assert_eq!(tokens().verify::<()>(&token), Err(TokenError::InvalidSignature));
}

#[test]
fn a_tampered_payload_fails_signature_verification() {
    let tokens = tokens();
    let token = tokens.access("alice").claims(session(&[])).sign().unwrap().token;
    let parts: Vec<&str> = token.split('.').collect();
    let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let evil = b64(payload.replace("\"roles\":[]", "\"roles\":[\"admin\"]").as_bytes());
    let tampered = format!("{}.{}.{}", parts[0], evil, parts[2]);
    assert_eq!(tokens.verify::<Session>(&tampered), Err(TokenError::InvalidSignature));
}

#[test]
fn the_algorithm_is_never_taken_from_the_token() {
    let tokens = tokens();
    let payload = payload_with(&(NOW + 60).to_string());
    for alg in ["none", "None", "NONE", "nOnE", "HS384", "HS512", "hs256", "RS256", "ES256", "PS256", "EdDSA", ""] {
        let header = format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#);
        let unsigned = format!("{}.{}.", b64(header.as_bytes()), b64(payload.as_bytes()));
        assert!(tokens.verify::<()>(&unsigned).is_err(), "{alg} unsigned");
        let signed = forge(&tokens, &header, &payload);
        assert_eq!(tokens.verify::<()>(&signed), Err(TokenError::AlgorithmNotAllowed), "{alg} signed");
    }
}

#[test]
fn header_parameters_that_carry_keys_or_extensions_are_refused() {
    let tokens = tokens();
    let payload = payload_with(&(NOW + 60).to_string());
    for extra in [
        r#""crit":[]"#,
        r#""crit":["exp"]"#,
        r#""jku":"http://127.0.0.1:1/jwks""#,
        r#""x5u":"http://127.0.0.1:1/cert""#,
        r#""jwk":{"kty":"oct","k":"AAAA"}"#,
        r#""x5c":["AAAA"]"#,
        r#""alg":"HS256""#,
    ] {
        let header = format!(r#"{{"alg":"HS256","typ":"JWT",{extra}}}"#);
        assert_eq!(tokens.verify::<()>(&forge(&tokens, &header, &payload)), Err(TokenError::InvalidHeader), "{extra}");
    }
    // Other parameters (FJE's additional_headers) are accepted.
    let header = r#"{"alg":"HS256","foo":"bar","typ":"JWT"}"#;
    assert!(tokens.verify::<()>(&forge(&tokens, header, &payload)).is_ok());
}

#[test]
fn header_and_claims_must_be_json_objects_and_null_is_not_absent() {
    let tokens = tokens();
    let payload = payload_with(&(NOW + 60).to_string());
    assert_eq!(tokens.verify::<()>(&forge(&tokens, r#"["HS256"]"#, &payload)), Err(TokenError::InvalidHeader));
    for header in [r#"{"alg":"HS256","kid":null}"#, r#"{"alg":"HS256","typ":null}"#] {
        assert!(tokens.verify::<()>(&forge(&tokens, header, &payload)).is_err(), "{header}");
    }
    let claims: serde_json::Value = serde_json::from_str(&payload).unwrap();
    let order = ["sub", "iat", "nbf", "exp", "jti", "type", "fresh"];
    let as_array = serde_json::Value::Array(order.iter().map(|k| claims[*k].clone()).collect()).to_string();
    assert_eq!(tokens.verify::<()>(&forge(&tokens, HEADER, &as_array)), Err(TokenError::InvalidPayload));
    for null in ["nbf", "csrf", "iss", "aud"] {
        let with_null = payload.replacen('{', &format!(r#"{{"{null}":null,"#), 1);
        assert!(tokens.verify::<()>(&forge(&tokens, HEADER, &with_null)).is_err(), "{null}");
    }
    assert!(tokens.verify::<()>(&forge(&tokens, r#"{"alg":"HS256"}"#, &payload)).is_ok(), "control");
}

#[test]
fn kid_is_only_a_lookup_in_our_own_key_set() {
    let tokens = tokens();
    let payload = payload_with(&(NOW + 60).to_string());
    for kid in ["", "../../dev/null", "' OR 1=1 --", "0", "default"] {
        let header = format!(r#"{{"alg":"HS256","typ":"JWT","kid":{}}}"#, serde_json::json!(kid));
        assert_eq!(tokens.verify::<()>(&forge(&tokens, &header, &payload)), Err(TokenError::UnknownKey), "{kid}");
    }
}

#[test]
fn registered_claims_must_be_well_typed_and_unique() {
    let tokens = tokens();
    for exp in ["\"1900000000\"", "1900000000.0", "1.9e9", "1e300", "null", "-1", "true", "[1]", "253402300800"] {
        let result = tokens.verify::<()>(&forge(&tokens, HEADER, &payload_with(exp)));
        assert!(matches!(result, Err(TokenError::InvalidPayload | TokenError::InvalidClaims)), "exp={exp}: {result:?}");
    }
    let good = payload_with(&(NOW + 60).to_string());
    assert!(tokens.verify::<()>(&forge(&tokens, HEADER, &good)).is_ok());
    let cases = [
        good.replacen('{', r#"{"sub":"mallory","#, 1),
        good.replacen('{', r#"{"exp":9999999999,"#, 1),
        good.replace(r#""sub":"alice""#, r#""sub":"""#),
        good.replace(r#""type":"access""#, r#""type":"ACCESS""#),
        good.replace(r#""type":"access""#, r#""type":"""#),
        good.replace(r#""fresh":false"#, r#""fresh":"yes""#),
        good.replace(r#""jti":""#, r#""jti":"x"#),
        good.replace(r#""jti":""#, r#""jti":7,"x":""#),
        r#"{"sub":"alice"}"#.to_owned(),
        "[]".to_owned(),
    ];
    for payload in cases {
        let result = tokens.verify::<()>(&forge(&tokens, HEADER, &payload));
        assert!(
            matches!(result, Err(TokenError::InvalidPayload | TokenError::InvalidClaims | TokenError::MissingClaim(_))),
            "{payload}: {result:?}"
        );
    }
}

#[test]
fn segments_must_be_strict_base64url() {
    let tokens = tokens();
    let token = tokens.access("alice").sign().unwrap().token;
    let parts: Vec<&str> = token.split('.').collect();
    let bad = [
        format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
        format!("{}.{}=.{}", parts[0], parts[1], parts[2]),
        format!("{}.{}.{}=", parts[0], parts[1], parts[2]),
        // `+` and `/` (standard base64, not base64url), always present: replacing `-`/`_` would
        // leave the token valid whenever the signature happens to contain neither.
        format!("{}.{}.+{}", parts[0], parts[1], &parts[2][1..]),
        format!("{}.{}./{}", parts[0], parts[1], &parts[2][1..]),
        format!("{}+.{}.{}", &parts[0][..parts[0].len() - 1], parts[1], parts[2]),
        format!("{} .{}.{}", parts[0], parts[1], parts[2]),
        format!("{}.{}\n.{}", parts[0], parts[1], parts[2]),
        format!("{}.{}", parts[0], parts[1]),
        format!("{}.{}.{}.{}", parts[0], parts[1], parts[2], parts[2]),
        format!("{}..{}", parts[0], parts[2]),
        String::new(),
        "..".to_owned(),
    ];
    for token in bad {
        assert!(tokens.verify::<()>(&token).is_err(), "{token:?}");
    }
}

#[test]
fn oversized_tokens_are_refused_before_decoding() {
    let big = "a".repeat(MAX_TOKEN_LEN + 1);
    assert_eq!(tokens().verify::<()>(&big), Err(TokenError::TooLarge));
}

#[test]
fn a_token_the_verifier_would_refuse_as_too_large_is_never_issued() {
    let tokens = tokens();
    // 1,000 roles: the 9.5 KB token of issue 11.
    let roles: Vec<String> = (0..1000).map(|i| format!("role-{i}")).collect();
    let many = Session { roles, sid: Uuid::now_v7() };
    assert_eq!(tokens.access("alice").claims(many).sign().unwrap_err(), TokenError::TooLarge);
    // Just under the limit is issued and verifies.
    let big = Session { roles: vec!["r".repeat(5000)], sid: Uuid::now_v7() };
    let token = tokens.access("alice").claims(big).sign().unwrap().token;
    assert!(token.len() <= MAX_TOKEN_LEN);
    assert!(tokens.verify::<Session>(&token).is_ok());
}

#[test]
fn a_rotated_out_key_still_verifies_under_its_kid_and_only_there() {
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(NOW));
    let old = Tokens::new(Keys::hmac_sha256(&[1u8; 32]).unwrap(), TokenSettings::default(), clock.clone());
    let keys = Keys::hmac_sha256(&[2u8; 32]).unwrap().with_hmac_key("old", Algorithm::HS256, &[1u8; 32]).unwrap();
    let new = Tokens::new(keys, TokenSettings::default(), clock);
    let payload = payload_with(&(NOW + 60).to_string());
    let with_kid = forge(&old, r#"{"alg":"HS256","typ":"JWT","kid":"old"}"#, &payload);
    assert!(new.verify::<()>(&with_kid).is_ok());
    let without_kid = forge(&old, HEADER, &payload);
    assert_eq!(new.verify::<()>(&without_kid), Err(TokenError::InvalidSignature));
}

/// Tokens signed with asymmetric keys; the verifier holds only the public keys.
mod asymmetric {
    use super::*;
    use crate::SigningKey;

    const ASYMMETRIC: [Algorithm; 9] = [
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
    ];

    fn issuer(key: &SigningKey) -> Tokens {
        Tokens::new(Keys::signing(key.clone()), TokenSettings::default(), Arc::new(ManualClock::new(NOW)))
    }

    /// A verifier that knows only what the issuer publishes.
    fn verifier(issuer: &Tokens) -> Tokens {
        let json = serde_json::to_vec(&issuer.keys().jwks()).unwrap();
        let (keys, skipped) = Keys::from_jwks(&json).unwrap();
        assert!(skipped.is_empty(), "{skipped:?}");
        Tokens::new(keys, TokenSettings::default(), Arc::new(ManualClock::new(NOW)))
    }

    /// Signs header and payload with `key` directly, as a buggy issuer might.
    fn forge_with(key: &SigningKey, header: &str, payload: &str) -> String {
        let signed = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
        let tag = Keys::signing(key.clone()).sign(signed.as_bytes()).unwrap();
        format!("{signed}.{}", b64(&tag))
    }

    /// An HS256 token keyed with `secret`.
    fn hmac_token(secret: &[u8], header: &str, payload: &str) -> String {
        let signed = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
        format!("{signed}.{}", b64(aws_lc_rs::hmac::sign(&key, signed.as_bytes()).as_ref()))
    }

    #[test]
    fn every_algorithm_signs_with_its_kid_and_verifies_from_the_published_jwks_alone() {
        for alg in ASYMMETRIC {
            let key = SigningKey::generate(alg).unwrap();
            let issuer = issuer(&key);
            let signed = issuer.access("alice").claims(session(&["admin"])).sign().unwrap();
            let decoded = verifier(&issuer).decode::<Session>(&signed.token).unwrap();
            assert_eq!(decoded.claims, signed.claims, "{alg}");
            assert_eq!(decoded.header.alg, alg);
            assert_eq!(decoded.header.kid.as_deref(), Some(key.kid()));
            let other = issuer_of_same_alg(alg);
            assert_eq!(verifier(&other).verify::<()>(&signed.token), Err(TokenError::UnknownKey), "{alg}");
        }
    }

    fn issuer_of_same_alg(alg: Algorithm) -> Tokens {
        issuer(&SigningKey::generate(alg).unwrap())
    }

    #[test]
    fn a_flipped_signature_byte_fails_for_every_algorithm() {
        for alg in ASYMMETRIC {
            let issuer = issuer(&SigningKey::generate(alg).unwrap());
            let token = issuer.access("alice").sign().unwrap().token;
            let (signed, signature) = token.rsplit_once('.').unwrap();
            let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
            bytes[5] ^= 1;
            let tampered = format!("{signed}.{}", b64(&bytes));
            assert_eq!(verifier(&issuer).verify::<()>(&tampered), Err(TokenError::InvalidSignature), "{alg}");
            assert_eq!(issuer.verify::<()>(&format!("{signed}.")), Err(TokenError::InvalidSignature), "{alg}");
        }
    }

    #[test]
    fn tokens_interoperate_with_the_jsonwebtoken_crate() {
        let now = jsonwebtoken::get_current_timestamp() as i64;
        for (alg, theirs) in [
            (Algorithm::ES256, jsonwebtoken::Algorithm::ES256),
            (Algorithm::ES384, jsonwebtoken::Algorithm::ES384),
            (Algorithm::EdDSA, jsonwebtoken::Algorithm::EdDSA),
            (Algorithm::RS256, jsonwebtoken::Algorithm::RS256),
            (Algorithm::PS256, jsonwebtoken::Algorithm::PS256),
        ] {
            let key = SigningKey::generate(alg).unwrap();
            let ours =
                Tokens::new(Keys::signing(key.clone()), TokenSettings::default(), Arc::new(ManualClock::new(now)));
            let signed = ours.access("alice").claims(session(&[])).sign().unwrap();
            let jwk: jsonwebtoken::jwk::Jwk =
                serde_json::from_value(serde_json::to_value(key.public_jwk()).unwrap()).unwrap();
            let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
            let decoded = jsonwebtoken::decode::<Claims<Session>>(
                &signed.token,
                &decoding,
                &jsonwebtoken::Validation::new(theirs),
            );
            assert_eq!(decoded.unwrap().claims, signed.claims, "{alg}");

            let der = key.to_pkcs8().unwrap();
            let encoding = match alg {
                Algorithm::ES256 | Algorithm::ES384 => jsonwebtoken::EncodingKey::from_ec_der(&der),
                Algorithm::EdDSA => jsonwebtoken::EncodingKey::from_ed_der(&der),
                _ => {
                    let pem = pem("PRIVATE KEY", &der);
                    jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap()
                }
            };
            let mut header = jsonwebtoken::Header::new(theirs);
            header.kid = Some(key.kid().to_owned());
            let token = jsonwebtoken::encode(&header, &signed.claims, &encoding).unwrap();
            assert_eq!(ours.verify::<Session>(&token).unwrap(), signed.claims, "{alg}");
        }
    }

    fn pem(label: &str, der: &[u8]) -> String {
        let body = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
        format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
    }

    #[test]
    fn the_public_key_used_as_an_hmac_secret_is_refused() {
        for alg in [Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256] {
            let key = SigningKey::generate(alg).unwrap();
            let issuer = issuer(&key);
            let verifier = verifier(&issuer);
            let payload = payload_with(&(NOW + 60).to_string());
            let jwk = key.public_jwk();
            let jwk_json = serde_json::to_string(&jwk).unwrap();
            let mut secrets: Vec<Vec<u8>> = vec![jwk_json.clone().into_bytes(), key.kid().as_bytes().to_vec()];
            for text in [&jwk.x, &jwk.y, &jwk.n].into_iter().flatten() {
                secrets.push(text.clone().into_bytes());
                secrets.push(URL_SAFE_NO_PAD.decode(text).unwrap());
            }
            for secret in secrets {
                for header in [
                    format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{}"}}"#, key.kid()),
                    r#"{"alg":"HS256","typ":"JWT"}"#.to_owned(),
                ] {
                    let token = hmac_token(&secret, &header, &payload);
                    assert_eq!(verifier.verify::<()>(&token), Err(TokenError::AlgorithmNotAllowed), "{alg} {header}");
                }
            }
        }
    }

    #[test]
    fn the_header_alg_must_be_the_keys_and_none_is_never_accepted() {
        let key = SigningKey::generate(Algorithm::ES256).unwrap();
        let verifier = verifier(&issuer(&key));
        let payload = payload_with(&(NOW + 60).to_string());
        for alg in ["ES384", "RS256", "PS256", "EdDSA", "HS256", "none", "es256", ""] {
            let header = format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"{}"}}"#, key.kid());
            let token = forge_with(&key, &header, &payload);
            assert_eq!(verifier.verify::<()>(&token), Err(TokenError::AlgorithmNotAllowed), "{alg}");
            let unsigned = format!("{}.{}.", b64(header.as_bytes()), b64(payload.as_bytes()));
            assert!(verifier.verify::<()>(&unsigned).is_err(), "{alg} unsigned");
        }
        let good = format!(r#"{{"alg":"ES256","typ":"JWT","kid":"{}"}}"#, key.kid());
        assert!(verifier.verify::<()>(&forge_with(&key, &good, &payload)).is_ok(), "control");
    }

    #[test]
    fn key_carrying_headers_are_refused_even_when_they_carry_the_attackers_own_key() {
        let key = SigningKey::generate(Algorithm::ES256).unwrap();
        let attacker = SigningKey::generate(Algorithm::ES256).unwrap();
        let verifier = verifier(&issuer(&key));
        let payload = payload_with(&(NOW + 60).to_string());
        let attacker_jwk = serde_json::to_string(&attacker.public_jwk()).unwrap();
        for extra in [
            format!(r#""jwk":{attacker_jwk}"#),
            r#""jku":"http://127.0.0.1:1/jwks.json""#.to_owned(),
            r#""x5u":"http://127.0.0.1:1/cert.pem""#.to_owned(),
        ] {
            for kid in [key.kid(), attacker.kid()] {
                let header = format!(r#"{{"alg":"ES256","typ":"JWT","kid":"{kid}",{extra}}}"#);
                let token = forge_with(&attacker, &header, &payload);
                assert!(verifier.verify::<()>(&token).is_err(), "{extra}");
                let token = forge_with(&key, &header, &payload);
                assert_eq!(verifier.verify::<()>(&token), Err(TokenError::InvalidHeader), "{extra}");
            }
        }
        for kid in ["../../dev/null", "", attacker.kid()] {
            let header = format!(r#"{{"alg":"ES256","typ":"JWT","kid":"{kid}"}}"#);
            assert_eq!(verifier.verify::<()>(&forge_with(&attacker, &header, &payload)), Err(TokenError::UnknownKey));
        }
    }

    #[test]
    fn a_retired_key_keeps_verifying_after_a_rotation_and_a_kidless_token_needs_a_single_key() {
        let (old, new) =
            (SigningKey::generate(Algorithm::EdDSA).unwrap(), SigningKey::generate(Algorithm::EdDSA).unwrap());
        let tokens = issuer(&old);
        let before = tokens.access("alice").sign().unwrap().token;
        tokens.set_keys(Keys::signing(new.clone()).with_verification_key(&old).unwrap());
        let after = tokens.decode::<()>(&tokens.access("alice").sign().unwrap().token).unwrap();
        assert_eq!(after.header.kid.as_deref(), Some(new.kid()));
        assert!(tokens.verify::<()>(&before).is_ok());
        assert_eq!(tokens.keys().jwks().keys.len(), 2);

        let payload = payload_with(&(NOW + 60).to_string());
        let kidless = forge_with(&old, r#"{"alg":"EdDSA","typ":"JWT"}"#, &payload);
        assert_eq!(tokens.verify::<()>(&kidless), Err(TokenError::UnknownKey), "two keys: no guessing");
        let only_old = Tokens::new(
            Keys::verify_only().with_verification_key(&old).unwrap(),
            TokenSettings::default(),
            Arc::new(ManualClock::new(NOW)),
        );
        assert!(only_old.verify::<()>(&kidless).is_ok());
        assert_eq!(only_old.access("alice").sign().unwrap_err(), TokenError::NoSigningKey);
    }

    #[test]
    fn the_verified_token_cache_skips_only_the_signature_never_expiry_or_key_changes() {
        let key = SigningKey::generate(Algorithm::ES256).unwrap();
        let clock = Arc::new(ManualClock::new(NOW));
        let tokens =
            Tokens::new(Keys::signing(key.clone()), TokenSettings::default(), clock.clone()).cache_verified(100);
        let signed = tokens.access("alice").claims(session(&["admin"])).sign().unwrap();
        for _ in 0..3 {
            assert_eq!(tokens.verify::<Session>(&signed.token).unwrap(), signed.claims);
        }
        // A token differing in any byte is another entry, and verified.
        let (rest, signature) = signed.token.rsplit_once('.').unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
        bytes[0] ^= 1;
        assert_eq!(tokens.verify::<()>(&format!("{rest}.{}", b64(&bytes))), Err(TokenError::InvalidSignature));
        // Claims are checked on every hit.
        clock.advance(15 * 60);
        assert_eq!(tokens.verify::<Session>(&signed.token), Err(TokenError::Expired));
        clock.advance(-(15 * 60));
        assert!(tokens.verify::<Session>(&signed.token).is_ok());
        // A key rotated out takes its cached tokens with it.
        tokens.set_keys(Keys::signing(SigningKey::generate(Algorithm::ES256).unwrap()));
        assert_eq!(tokens.verify::<Session>(&signed.token), Err(TokenError::UnknownKey));
        // Back in a new set (a new generation): verified again, and accepted.
        tokens.set_keys(Keys::verify_only().with_verification_key(&key).unwrap());
        assert!(tokens.verify::<Session>(&signed.token).is_ok());
        // A key set that has the kid with other key material never accepts the cached token.
        let imposter = Keys::verify_only().with_hmac_key(key.kid(), Algorithm::HS256, &[9; 32]).unwrap();
        tokens.set_keys(imposter);
        assert_eq!(tokens.verify::<Session>(&signed.token), Err(TokenError::AlgorithmNotAllowed));
    }

    #[test]
    fn foreign_tokens_without_jti_and_with_rfc9068_typ_verify_and_the_identity_claim_is_configurable() {
        let key = SigningKey::generate(Algorithm::RS256).unwrap();
        let settings =
            TokenSettings { identity_claim: Some("email".into()), require_jti: false, ..TokenSettings::default() };
        let keys = Keys::verify_only().with_jwk(&key.public_jwk()).unwrap();
        let verifier = Tokens::new(keys, settings, Arc::new(ManualClock::new(NOW)));
        let payload = serde_json::json!({
            "iss": "https://idp.example", "sub": "f81d4fae", "aud": "api", "iat": NOW, "exp": NOW + 60,
            "email": "alice@example.com", "groups": ["api-access"],
        })
        .to_string();
        for typ in ["JWT", "at+jwt", "application/at+JWT"] {
            let header = format!(r#"{{"alg":"RS256","typ":"{typ}","kid":"{}"}}"#, key.kid());
            let claims = verifier.verify::<serde_json::Value>(&forge_with(&key, &header, &payload)).unwrap();
            assert_eq!(claims.sub, "alice@example.com");
            assert_eq!(claims.jti, None);
            assert_eq!(claims.extra["groups"][0], "api-access");
            assert_eq!(claims.extra["email"], "alice@example.com");
        }
        let header = format!(r#"{{"alg":"RS256","typ":"secevent+jwt","kid":"{}"}}"#, key.kid());
        assert_eq!(verifier.verify::<()>(&forge_with(&key, &header, &payload)), Err(TokenError::InvalidHeader));
        let header = format!(r#"{{"alg":"RS256","kid":"{}"}}"#, key.kid());
        let without_email = payload.replace("\"email\"", "\"mail\"");
        assert_eq!(verifier.verify::<()>(&forge_with(&key, &header, &without_email)), Err(TokenError::MissingIdentity));
        let numeric = payload.replace("\"alice@example.com\"", "7");
        assert_eq!(verifier.verify::<()>(&forge_with(&key, &header, &numeric)), Err(TokenError::MissingIdentity));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_never_panic_and_never_verify(s in "\\PC{0,600}") {
        prop_assert!(tokens().verify::<()>(&s).is_err());
    }

    #[test]
    fn arbitrary_three_segment_tokens_never_verify(
        h in proptest::collection::vec(any::<u8>(), 0..80),
        p in proptest::collection::vec(any::<u8>(), 0..300),
        s in proptest::collection::vec(any::<u8>(), 0..70),
    ) {
        let token = format!("{}.{}.{}", b64(&h), b64(&p), b64(&s));
        prop_assert!(tokens().verify::<()>(&token).is_err());
    }

    #[test]
    fn flipping_any_character_of_a_valid_token_breaks_it(index in 0usize..400, replacement in "[A-Za-z0-9_.=+/-]") {
        let tokens = tokens();
        let token = access(&tokens).token;
        let index = index % token.len();
        let mut bytes = token.clone().into_bytes();
        bytes[index] = replacement.as_bytes()[0];
        let mutated = String::from_utf8(bytes).unwrap();
        prop_assume!(mutated != token);
        prop_assert!(tokens.verify::<Session>(&mutated).is_err());
    }

    #[test]
    fn any_identity_and_claims_round_trip(sub in "\\PC{1,40}", n in any::<i64>(), text in "\\PC{0,40}") {
        let tokens = tokens();
        let extra = serde_json::json!({ "n": n, "text": text });
        let signed = tokens.access(&sub).claims(extra.clone()).sign().unwrap();
        let claims = tokens.verify::<serde_json::Value>(&signed.token).unwrap();
        prop_assert_eq!(claims.sub, sub);
        prop_assert_eq!(claims.extra, extra);
    }
}
