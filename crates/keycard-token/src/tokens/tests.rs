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
    let tag = tokens.keys.signing().sign(signed.as_bytes());
    format!("{signed}.{}", b64(tag.as_ref()))
}

fn payload_with(exp: &str) -> String {
    format!(
        r#"{{"sub":"alice","iat":{NOW},"nbf":{NOW},"exp":{exp},"jti":"{}","type":"access","fresh":true,"roles":[],"sid":"{}"}}"#,
        Uuid::new_v4(),
        Uuid::now_v7()
    )
}

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

#[test]
fn an_issued_pair_verifies_with_its_own_claims() {
    let tokens = tokens();
    let pair = tokens.issue_pair(&NewSession::login("alice", vec!["admin".into()])).unwrap();
    let access = tokens.verify(&pair.access_token).unwrap();
    let refresh = tokens.verify(&pair.refresh_token).unwrap();
    assert_eq!(access, pair.access);
    assert_eq!(refresh, pair.refresh);
    assert_eq!(access.token_type, TokenType::Access);
    assert_eq!(refresh.token_type, TokenType::Refresh);
    assert_eq!(access.sid, refresh.sid);
    assert_ne!(access.jti, refresh.jti);
    assert_eq!(access.exp - access.iat, 15 * 60);
    assert_eq!(refresh.exp - refresh.iat, 30 * 24 * 3600);
    assert!(access.fresh && access.has_role("admin"));
}

#[test]
fn tokens_interoperate_with_the_jsonwebtoken_crate() {
    let tokens = tokens_at(jsonwebtoken::get_current_timestamp() as i64).0;
    let pair = tokens.issue_pair(&NewSession::login("alice", vec![])).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.validate_nbf = true;
    let theirs = jsonwebtoken::decode::<Claims>(
        &pair.access_token,
        &jsonwebtoken::DecodingKey::from_secret(SECRET),
        &validation,
    )
    .unwrap();
    assert_eq!(theirs.claims, pair.access);

    let encoded = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &pair.refresh,
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    assert_eq!(tokens.verify(&encoded).unwrap(), pair.refresh);
}

#[test]
fn expiry_is_checked_against_the_injected_clock() {
    let (tokens, clock) = tokens_at(NOW);
    let pair = tokens.issue_pair(&NewSession::login("alice", vec![])).unwrap();
    clock.advance(15 * 60 - 1);
    assert!(tokens.verify(&pair.access_token).is_ok());
    clock.advance(1);
    assert_eq!(tokens.verify(&pair.access_token), Err(TokenError::Expired));
    assert!(tokens.verify(&pair.refresh_token).is_ok());
}

#[test]
fn leeway_extends_expiry_and_is_capped_at_five_minutes() {
    let clock = Arc::new(ManualClock::new(NOW));
    let settings = TokenSettings { leeway: Duration::from_secs(3600), ..TokenSettings::default() };
    let tokens = Tokens::new(Keys::hmac_sha256(SECRET).unwrap(), settings, clock.clone());
    assert_eq!(tokens.settings().leeway, Duration::from_secs(300));
    let (token, _) = tokens.issue(&NewSession::login("a", vec![]), TokenType::Access).unwrap();
    clock.advance(15 * 60 + 299);
    assert!(tokens.verify(&token).is_ok());
    clock.advance(1);
    assert_eq!(tokens.verify(&token), Err(TokenError::Expired));
}

#[test]
fn tokens_from_the_future_are_refused() {
    let (tokens, clock) = tokens_at(NOW + 60);
    let pair = tokens.issue_pair(&NewSession::login("alice", vec![])).unwrap();
    clock.set(NOW);
    assert_eq!(tokens.verify(&pair.access_token), Err(TokenError::NotYetValid));
    let future_iat =
        payload_with(&(NOW + 900).to_string()).replace(&format!(r#""iat":{NOW}"#), &format!(r#""iat":{}"#, NOW + 60));
    assert_eq!(tokens.verify(&forge(&tokens, HEADER, &future_iat)), Err(TokenError::IssuedInFuture));
}

#[test]
fn another_secret_fails_signature_verification() {
    let other =
        Tokens::new(Keys::hmac_sha256(&[9u8; 32]).unwrap(), TokenSettings::default(), Arc::new(ManualClock::new(NOW)));
    let (token, _) = other.issue(&NewSession::login("alice", vec![]), TokenType::Access).unwrap();
    assert_eq!(tokens().verify(&token), Err(TokenError::InvalidSignature));
}

#[test]
fn a_tampered_payload_fails_signature_verification() {
    let tokens = tokens();
    let (token, _) = tokens.issue(&NewSession::login("alice", vec![]), TokenType::Access).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let evil = b64(payload.replace("\"roles\":[]", "\"roles\":[\"admin\"]").as_bytes());
    let tampered = format!("{}.{}.{}", parts[0], evil, parts[2]);
    assert_eq!(tokens.verify(&tampered), Err(TokenError::InvalidSignature));
}

#[test]
fn the_algorithm_is_never_taken_from_the_token() {
    let tokens = tokens();
    let payload = payload_with(&(NOW + 60).to_string());
    for alg in ["none", "None", "NONE", "nOnE", "HS384", "HS512", "hs256", "RS256", "ES256", "PS256", "EdDSA", ""] {
        let header = format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#);
        let unsigned = format!("{}.{}.", b64(header.as_bytes()), b64(payload.as_bytes()));
        assert!(tokens.verify(&unsigned).is_err(), "{alg} unsigned");
        let signed = forge(&tokens, &header, &payload);
        assert_eq!(tokens.verify(&signed), Err(TokenError::AlgorithmNotAllowed), "{alg} signed");
    }
}

#[test]
fn header_parameters_beyond_alg_typ_kid_are_refused() {
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
        assert_eq!(tokens.verify(&forge(&tokens, &header, &payload)), Err(TokenError::InvalidHeader), "{extra}");
    }
}

#[test]
fn header_and_claims_must_be_json_objects_and_null_is_not_absent() {
    let tokens = tokens();
    let payload = payload_with(&(NOW + 60).to_string());
    assert_eq!(tokens.verify(&forge(&tokens, r#"["HS256"]"#, &payload)), Err(TokenError::InvalidHeader));
    for header in [r#"{"alg":"HS256","kid":null}"#, r#"{"alg":"HS256","typ":null}"#] {
        assert!(tokens.verify(&forge(&tokens, header, &payload)).is_err(), "{header}");
    }
    let claims: serde_json::Value = serde_json::from_str(&payload).unwrap();
    let order = ["sub", "iat", "nbf", "exp", "jti", "type", "fresh", "roles", "sid"];
    let as_array = serde_json::Value::Array(order.iter().map(|k| claims[*k].clone()).collect()).to_string();
    assert_eq!(tokens.verify(&forge(&tokens, HEADER, &as_array)), Err(TokenError::InvalidPayload));
    assert!(tokens.verify(&forge(&tokens, r#"{"alg":"HS256"}"#, &payload)).is_ok(), "control");
}

#[test]
fn kid_is_only_a_lookup_in_our_own_key_set() {
    let tokens = tokens();
    let payload = payload_with(&(NOW + 60).to_string());
    for kid in ["", "../../dev/null", "' OR 1=1 --", "0", "default"] {
        let header = format!(r#"{{"alg":"HS256","typ":"JWT","kid":{}}}"#, serde_json::json!(kid));
        assert_eq!(tokens.verify(&forge(&tokens, &header, &payload)), Err(TokenError::UnknownKey), "{kid}");
    }
}

#[test]
fn claims_must_be_exactly_keycards_and_well_typed() {
    let tokens = tokens();
    for exp in ["\"1900000000\"", "1900000000.0", "1.9e9", "1e300", "null", "-1", "true", "[1]", "253402300800"] {
        let result = tokens.verify(&forge(&tokens, HEADER, &payload_with(exp)));
        assert!(matches!(result, Err(TokenError::InvalidPayload | TokenError::InvalidClaims)), "exp={exp}: {result:?}");
    }
    let good = payload_with(&(NOW + 60).to_string());
    assert!(tokens.verify(&forge(&tokens, HEADER, &good)).is_ok());
    let cases = [
        good.replacen('{', r#"{"admin":true,"#, 1),
        good.replacen('{', r#"{"sub":"mallory","#, 1),
        good.replacen('{', r#"{"exp":9999999999,"#, 1),
        good.replace(r#""sub":"alice""#, r#""sub":"""#),
        good.replace(r#""type":"access""#, r#""type":"ACCESS""#),
        good.replace(r#""type":"access""#, r#""type":"""#),
        good.replace(r#","sid""#, r#","nosid""#),
        r#"{"sub":"alice"}"#.to_owned(),
        "[]".to_owned(),
    ];
    for payload in cases {
        let result = tokens.verify(&forge(&tokens, HEADER, &payload));
        assert!(matches!(result, Err(TokenError::InvalidPayload | TokenError::InvalidClaims)), "{payload}: {result:?}");
    }
}

#[test]
fn segments_must_be_strict_base64url() {
    let tokens = tokens();
    let (token, _) = tokens.issue(&NewSession::login("alice", vec![]), TokenType::Access).unwrap();
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
        assert!(tokens.verify(&token).is_err(), "{token:?}");
    }
}

#[test]
fn oversized_tokens_are_refused_before_decoding() {
    let big = "a".repeat(MAX_TOKEN_LEN + 1);
    assert_eq!(tokens().verify(&big), Err(TokenError::TooLarge));
}

#[test]
fn a_token_the_verifier_would_refuse_as_too_large_is_never_issued() {
    let tokens = tokens();
    // 1,000 roles: the 9.5 KB token of issue 11.
    let roles: Vec<String> = (0..1000).map(|i| format!("role-{i}")).collect();
    assert_eq!(tokens.issue_pair(&NewSession::login("alice", roles)).unwrap_err(), TokenError::TooLarge);
    // Just under the limit is issued and verifies.
    let (token, _) = tokens.issue(&NewSession::login("alice", vec!["r".repeat(5000)]), TokenType::Access).unwrap();
    assert!(token.len() <= MAX_TOKEN_LEN);
    assert!(tokens.verify(&token).is_ok());
}

#[test]
fn a_rotated_out_key_still_verifies_under_its_kid_and_only_there() {
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(NOW));
    let old = Tokens::new(Keys::hmac_sha256(&[1u8; 32]).unwrap(), TokenSettings::default(), clock.clone());
    let keys = Keys::hmac_sha256(&[2u8; 32]).unwrap().with_hmac_key("old", Algorithm::HS256, &[1u8; 32]).unwrap();
    let new = Tokens::new(keys, TokenSettings::default(), clock);
    let payload = payload_with(&(NOW + 60).to_string());
    let with_kid = forge(&old, r#"{"alg":"HS256","typ":"JWT","kid":"old"}"#, &payload);
    assert!(new.verify(&with_kid).is_ok());
    let without_kid = forge(&old, HEADER, &payload);
    assert_eq!(new.verify(&without_kid), Err(TokenError::InvalidSignature));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_never_panic_and_never_verify(s in "\\PC{0,600}") {
        prop_assert!(tokens().verify(&s).is_err());
    }

    #[test]
    fn arbitrary_three_segment_tokens_never_verify(
        h in proptest::collection::vec(any::<u8>(), 0..80),
        p in proptest::collection::vec(any::<u8>(), 0..300),
        s in proptest::collection::vec(any::<u8>(), 0..70),
    ) {
        let token = format!("{}.{}.{}", b64(&h), b64(&p), b64(&s));
        prop_assert!(tokens().verify(&token).is_err());
    }

    #[test]
    fn flipping_any_character_of_a_valid_token_breaks_it(index in 0usize..400, replacement in "[A-Za-z0-9_.=+/-]") {
        let tokens = tokens();
        let (token, _) = tokens.issue(&NewSession::login("alice", vec!["r".into()]), TokenType::Access).unwrap();
        let index = index % token.len();
        let mut bytes = token.clone().into_bytes();
        bytes[index] = replacement.as_bytes()[0];
        let mutated = String::from_utf8(bytes).unwrap();
        prop_assume!(mutated != token);
        prop_assert!(tokens.verify(&mutated).is_err());
    }
}
