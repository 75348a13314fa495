//! The attack suite of issue 3: every known way of getting a forged or non-conforming JWT past a
//! verifier, thrown at the running server over HTTP (RFC 8725, RFC 7515/7519, OWASP ASVS 5.0 V9).
//!
//! Each test names the item of issue 3 it covers. The tests know the server's [`SECRET`], so most
//! forgeries carry a *valid* HMAC-SHA256 signature over exactly the bytes sent: what refuses them
//! is the strictness of the verifier, not a signature that happens not to match. The control test
//! [`the_forging_harness_produces_tokens_the_server_accepts`] proves the harness itself is sound.
//!
//! Every refusal must be a 401 whose `WWW-Authenticate` challenge names `invalid_token` (or
//! `invalid_request` for a malformed `Authorization` header, RFC 6750 §3.1), with a JSON body that
//! is exactly `{"msg": ...}` and never echoes a forged value.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use keycard_token::{Clock, Uuid};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::*;

/// The header keycard writes; a token with exactly this header takes the verifier's fast path.
const OUR_HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// A marker put in forged claims and headers: it must never come back in a response.
const FORGED_SUB: &str = "forged-sub-3f9c";

/// The challenge code of a refused token.
const INVALID_TOKEN: &str = "invalid_token";
/// The challenge code of a malformed `Authorization` header.
const INVALID_REQUEST: &str = "invalid_request";

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The base64url MAC of `signing_input` with `alg` and `secret`.
fn mac(alg: Algorithm, secret: &[u8], signing_input: &str) -> String {
    jsonwebtoken::crypto::sign(signing_input.as_bytes(), &EncodingKey::from_secret(secret), alg).unwrap()
}

/// `signing_input` as-is (whatever its encoding), signed HS256 with the server's own secret.
fn sign_input(signing_input: &str) -> String {
    format!("{signing_input}.{}", mac(Algorithm::HS256, SECRET.as_bytes(), signing_input))
}

/// A compact JWS of raw `header` and `payload` bytes, signed HS256 with the server's own secret.
fn forge(header: impl AsRef<[u8]>, payload: impl AsRef<[u8]>) -> String {
    sign_input(&format!("{}.{}", b64(header), b64(payload)))
}

/// Claims the server would accept in an access token right now by its (manual) clock.
fn valid_claims(app: &TestApp) -> Value {
    let now = app.clock.now();
    json!({
        "sub": "alice",
        "iat": now,
        "nbf": now,
        "exp": now + 900,
        "jti": Uuid::new_v4().to_string(),
        "type": "access",
        "fresh": true,
        "roles": [],
        "sid": Uuid::new_v4().to_string(),
    })
}

/// [`valid_claims`] with `sub` set to [`FORGED_SUB`], as JSON text.
fn forged_claims(app: &TestApp) -> String {
    let mut claims = valid_claims(app);
    claims["sub"] = json!(FORGED_SUB);
    claims.to_string()
}

/// Sends `token` as a bearer token to `GET /protected`.
async fn present(app: &TestApp, token: &str) -> Response {
    app.get("/protected", Some(token)).await
}

/// Asserts a refusal with challenge code `code` that echoes none of `forged`, and returns its message.
async fn refused_with(response: Response, code: &str, forged: &[&str]) -> String {
    let status = response.status();
    let challenge =
        response.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let body = response.text().await.unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(challenge.contains(&format!("error=\"{code}\"")), "{challenge}");
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json.as_object().map(|o| o.len()), Some(1), "{body}");
    let msg = json["msg"].as_str().unwrap().to_owned();
    for value in forged.iter().filter(|v| v.len() >= 4) {
        assert!(!body.contains(value), "the body echoes a forged value {value:?}: {body}");
        assert!(!challenge.contains(value), "the challenge echoes a forged value {value:?}: {challenge}");
    }
    msg
}

/// [`refused_with`] for a refused token (`error="invalid_token"`).
async fn refused(response: Response, forged: &[&str]) -> String {
    refused_with(response, INVALID_TOKEN, forged).await
}

/// An Ed25519 key of the attacker's (PKCS#8 v1 of a fixed seed: no key generation needed).
fn attacker_ed25519() -> EncodingKey {
    let mut der = hex("302e020100300506032b657004220420");
    der.extend_from_slice(&[0x42; 32]);
    EncodingKey::from_ed_der(&der)
}

/// A P-256 key of the attacker's (PKCS#8 of a fixed scalar; the public point is derived).
fn attacker_p256() -> EncodingKey {
    let mut der = hex("3041020100301306072a8648ce3d020106082a8648ce3d030107042730250201010420");
    der.extend_from_slice(&[0x42; 32]);
    EncodingKey::from_ec_der(&der)
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

#[tokio::test]
async fn the_forging_harness_produces_tokens_the_server_accepts() {
    // Arrange
    let app = spawn_app().await;
    let claims = valid_claims(&app);

    // Act: the harness signs with the server's secret, in our header and in equivalent ones.
    let ours = forge(OUR_HEADER, claims.to_string());
    let reordered = forge(r#"{"typ":"JWT","alg":"HS256"}"#, claims.to_string());
    let no_typ = forge(r#"{"alg":"HS256"}"#, claims.to_string());

    // Assert: without this, every refusal below could be a harness bug.
    for token in [ours, reordered, no_typ] {
        let response = present(&app, &token).await;
        assert_eq!(response.status(), StatusCode::OK, "{}", response.text().await.unwrap());
    }
}

/// Issue 3, item 1: `alg` never chooses the verifier.
#[tokio::test]
async fn the_algorithm_is_never_taken_from_the_token() {
    let app = spawn_app().await;
    let claims = forged_claims(&app);
    let payload = b64(&claims);

    // `none` in every case, unsigned, with a junk signature and with our real HS256 tag.
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = b64(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
        let input = format!("{header}.{payload}");
        for token in [format!("{input}."), format!("{input}.c2ln"), sign_input(&input)] {
            let msg = refused(present(&app, &token).await, &[FORGED_SUB]).await;
            assert_eq!(msg, "The specified alg value is not allowed", "{alg}");
        }
    }

    // Another HMAC size, keyed with the very same secret; and case games on the name.
    for (name, alg) in [("HS384", Algorithm::HS384), ("HS512", Algorithm::HS512), ("hs256", Algorithm::HS256)] {
        let input = format!("{}.{payload}", b64(format!(r#"{{"alg":"{name}","typ":"JWT"}}"#)));
        let token = format!("{input}.{}", mac(alg, SECRET.as_bytes(), &input));
        let msg = refused(present(&app, &token).await, &[FORGED_SUB]).await;
        assert_eq!(msg, "The specified alg value is not allowed", "{name}");
    }

    // Asymmetric algorithms with genuine signatures by the attacker's own keys...
    let claims_value: Value = serde_json::from_str(&claims).unwrap();
    for (alg, key) in [(Algorithm::EdDSA, attacker_ed25519()), (Algorithm::ES256, attacker_p256())] {
        let token = jsonwebtoken::encode(&Header::new(alg), &claims_value, &key).unwrap();
        let msg = refused(present(&app, &token).await, &[FORGED_SUB]).await;
        assert_eq!(msg, "The specified alg value is not allowed", "{alg:?}");
    }
    // ...and the rest with signatures of the right length (keycard holds no key to check them).
    for (alg, len) in [
        ("RS256", 256),
        ("RS384", 256),
        ("RS512", 512),
        ("PS256", 256),
        ("PS384", 384),
        ("PS512", 512),
        ("ES384", 96),
        ("ES512", 132),
        ("ES256K", 64),
        ("Ed25519", 64),
    ] {
        let token = format!("{}.{payload}.{}", b64(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#)), b64(vec![7u8; len]));
        let msg = refused(present(&app, &token).await, &[FORGED_SUB]).await;
        assert_eq!(msg, "The specified alg value is not allowed", "{alg}");
    }

    // A missing or non-string `alg`, even correctly signed.
    for header in [r#"{"typ":"JWT"}"#, r#"{"alg":null,"typ":"JWT"}"#, r#"{"alg":["HS256"]}"#, r#"{"alg":256}"#, "{}"] {
        let msg = refused(present(&app, &forge(header, &claims)).await, &[FORGED_SUB]).await;
        assert_eq!(msg, "Invalid header string", "{header}");
    }

    // Algorithm confusion: HS256 keyed with a public key the attacker knows. keycard holds no
    // asymmetric key yet; once it does, key this with the server's own public key (PEM and DER).
    let public_jwk = Jwk::from_encoding_key(&attacker_ed25519(), Algorithm::EdDSA).unwrap();
    let public_json = serde_json::to_string(&public_jwk).unwrap();
    let input = format!("{}.{payload}", b64(OUR_HEADER));
    for key in [public_json.as_bytes(), b"", b"secret"] {
        let token = format!("{input}.{}", mac(Algorithm::HS256, key, &input));
        let msg = refused(present(&app, &token).await, &[FORGED_SUB]).await;
        assert_eq!(msg, "Signature verification failed");
    }
}

/// Issue 3, item 2: keys and key locations in the header are never used, never fetched.
#[tokio::test]
async fn embedded_keys_and_key_urls_are_refused_without_any_outbound_request() {
    // Arrange: a listener standing in for the attacker's key server.
    let app = spawn_app().await;
    let trap = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/.well-known/jwks.json", trap.local_addr().unwrap());
    let claims = forged_claims(&app);
    let claims_value: Value = serde_json::from_str(&claims).unwrap();

    let ed_jwk = Jwk::from_encoding_key(&attacker_ed25519(), Algorithm::EdDSA).unwrap();
    let ec_jwk = Jwk::from_encoding_key(&attacker_p256(), Algorithm::ES256).unwrap();
    let oct_jwk = json!({"kty": "oct", "k": b64("attacker-key-attacker-key-attacker-key")});
    let x5c = json!([STANDARD.encode([0x30u8; 300])]);

    let mut tokens = Vec::new();
    // Signed by the attacker's keys, pointing at (or embedding) those keys: CVE-2018-0114 & co.
    for (alg, key, jwk) in
        [(Algorithm::EdDSA, attacker_ed25519(), ed_jwk.clone()), (Algorithm::ES256, attacker_p256(), ec_jwk.clone())]
    {
        let mut header = Header::new(alg);
        header.jwk = Some(jwk);
        tokens.push(jsonwebtoken::encode(&header, &claims_value, &key).unwrap());
        let mut header = Header::new(alg);
        header.jku = Some(url.clone());
        header.kid = Some("attacker".into());
        tokens.push(jsonwebtoken::encode(&header, &claims_value, &key).unwrap());
        let mut header = Header::new(alg);
        header.x5u = Some(url.clone());
        tokens.push(jsonwebtoken::encode(&header, &claims_value, &key).unwrap());
    }
    let oct_header = json!({"alg": "HS256", "typ": "JWT", "jwk": oct_jwk}).to_string();
    let input = format!("{}.{}", b64(&oct_header), b64(&claims));
    tokens.push(format!("{input}.{}", mac(Algorithm::HS256, b"attacker-key-attacker-key-attacker-key", &input)));
    // Even correctly signed with the server's secret, these parameters are refused.
    for (name, value) in [
        ("jku", json!(url)),
        ("x5u", json!(url)),
        ("jwk", oct_jwk.clone()),
        ("jwk", serde_json::to_value(&ed_jwk).unwrap()),
        ("x5c", x5c),
        ("x5t", json!(b64([1u8; 20]))),
    ] {
        let header = json!({"alg": "HS256", "typ": "JWT", name: value}).to_string();
        tokens.push(forge(header, &claims));
    }

    // Act + Assert
    for token in &tokens {
        let msg = refused(present(&app, token).await, &[FORGED_SUB, &url, "attacker"]).await;
        assert_eq!(msg, "Invalid header string", "{token}");
    }
    // Any fetch would have happened while the server handled the request, so a connection would
    // already sit in the accept queue (the kernel completes the handshake without `accept`).
    let connection = tokio::time::timeout(Duration::from_millis(500), trap.accept()).await;
    assert!(connection.is_err(), "the server connected to the jku/x5u URL");
}

/// Issue 3, item 3: `kid` is only a lookup in keycard's own key set.
#[tokio::test]
async fn a_kid_is_only_looked_up_in_our_own_key_set() {
    let app = spawn_app().await;
    let claims = forged_claims(&app);
    let kids = [
        "../../dev/null",
        "../../../../../../etc/passwd",
        "/dev/null",
        "' OR 1=1 --",
        "x' UNION SELECT 'secret",
        "",
        "kid-not-in-our-set",
        "\u{0000}",
        "http://127.0.0.1:1/key",
    ];
    // Empty (what /dev/null holds), guessable, and even the server's real secret.
    let keys: [&[u8]; 5] = [b"", b"secret", b"null", b"\0", SECRET.as_bytes()];
    for kid in kids {
        let header = json!({"alg": "HS256", "typ": "JWT", "kid": kid}).to_string();
        let input = format!("{}.{}", b64(&header), b64(&claims));
        for key in keys {
            let token = format!("{input}.{}", mac(Algorithm::HS256, key, &input));
            let msg = refused(present(&app, &token).await, &[FORGED_SUB, kid]).await;
            assert_eq!(msg, "Unknown key id", "kid={kid:?} key={key:?}");
        }
    }
    // A `kid` that is not a string at all.
    for kid in [json!(0), json!(["a"]), json!({"path": "/dev/null"}), json!(true)] {
        let header = json!({"alg": "HS256", "typ": "JWT", "kid": kid}).to_string();
        let msg = refused(present(&app, &forge(header, &claims)).await, &[FORGED_SUB]).await;
        assert_eq!(msg, "Invalid header string", "kid={kid}");
    }
}

/// Issue 3, item 4: `crit` names extensions keycard does not implement (RFC 7515 §4.1.11).
#[tokio::test]
async fn any_crit_header_is_refused() {
    let app = spawn_app().await;
    let claims = forged_claims(&app);
    let mut tokens: Vec<String> = [
        r#"{"alg":"HS256","typ":"JWT","crit":[]}"#,
        r#"{"alg":"HS256","typ":"JWT","crit":["exp"]}"#,
        r#"{"alg":"HS256","typ":"JWT","crit":["kid"],"kid":"x"}"#,
        r#"{"alg":"HS256","typ":"JWT","crit":["forged-ext"],"forged-ext":1}"#,
        r#"{"alg":"HS256","typ":"JWT","crit":"b64"}"#,
        r#"{"alg":"HS256","typ":"JWT","crit":null}"#,
    ]
    .iter()
    .map(|header| forge(header, &claims))
    .collect();
    // RFC 7797 unencoded payload: the signature covers the raw claims, not their base64url.
    let header = b64(r#"{"alg":"HS256","b64":false,"crit":["b64"]}"#);
    let raw_input = format!("{header}.{claims}");
    tokens.push(format!("{header}.{}.{}", b64(&claims), mac(Algorithm::HS256, SECRET.as_bytes(), &raw_input)));
    for token in tokens {
        let msg = refused(present(&app, &token).await, &[FORGED_SUB, "forged-ext"]).await;
        assert_eq!(msg, "Invalid header string", "{token}");
    }
}

/// Issue 3, item 5: claims are type-checked; `exp` is required; `nbf`/`iat` not in the future.
#[tokio::test]
async fn claims_are_type_checked_even_under_a_valid_signature() {
    let app = spawn_app().await;
    let now = app.clock.now();
    let cases: Vec<(&str, Value, &str)> = vec![
        ("exp", json!((now + 900).to_string()), "Invalid payload string"),
        ("exp", json!(now as f64 + 900.5), "Invalid payload string"),
        ("exp", json!(now as f64 + 900.0), "Invalid payload string"),
        ("exp", Value::Null, "Invalid payload string"),
        ("exp", json!(1e300), "Invalid payload string"),
        ("exp", json!(u64::MAX), "Invalid payload string"),
        ("exp", json!(true), "Invalid payload string"),
        ("exp", json!([now + 900]), "Invalid payload string"),
        ("exp", json!(-1), "Invalid claims"),
        ("exp", json!(i64::MAX), "Invalid claims"),
        ("exp", json!(keycard_token::MAX_TIMESTAMP + 1), "Invalid claims"),
        ("nbf", json!(now.to_string()), "Invalid payload string"),
        ("nbf", json!(-1), "Invalid claims"),
        ("nbf", json!(now as f64), "Invalid payload string"),
        ("iat", Value::Null, "Invalid payload string"),
        ("iat", json!(-86_400), "Invalid claims"),
        ("iat", json!(1e300), "Invalid payload string"),
        ("sub", json!(""), "Invalid claims"),
        ("sub", Value::Null, "Subject must be a string"),
        ("sub", json!(42), "Subject must be a string"),
        ("jti", json!(""), "Invalid payload string"),
        ("jti", json!("forged-jti-1"), "Invalid payload string"),
        ("jti", json!(1), "Invalid payload string"),
        ("type", json!(""), "Invalid payload string"),
        ("type", json!("admin"), "Invalid payload string"),
        ("type", json!("ACCESS"), "Invalid payload string"),
        ("fresh", json!("true"), "Invalid payload string"),
        ("roles", json!("admin"), "Invalid payload string"),
        ("roles", json!([""]), "Invalid payload string"),
        ("roles", json!([1]), "Invalid payload string"),
        ("sid", json!("forged-sid-1"), "Invalid payload string"),
        ("nbf", json!(now + 60), "The token is not yet valid (nbf)"),
        ("iat", json!(now + 60), "The token is not yet valid (iat)"),
        ("exp", json!(now), "Token has expired"),
    ];
    for (claim, value, expected) in cases {
        let mut claims = valid_claims(&app);
        if claim != "sub" {
            claims["sub"] = json!(FORGED_SUB);
        }
        claims[claim] = value.clone();
        let msg = refused(present(&app, &forge(OUR_HEADER, claims.to_string())).await, &[FORGED_SUB, "forged-"]).await;
        assert_eq!(msg, expected, "{claim} = {value}");
    }

    // Missing claims: `exp` above all. FJE's optional ones (`nbf`, `type`, `fresh`) default as in
    // FJE (no not-before, access, not fresh); the server's own (`roles`, `sid`) are required.
    for (claim, expected) in [
        ("exp", "Token is missing the \"exp\" claim"),
        ("iat", "Token is missing the \"iat\" claim"),
        ("jti", "Token is missing the \"jti\" claim"),
        ("sub", "Missing claim: sub"),
        ("roles", "Invalid payload string"),
        ("sid", "Invalid payload string"),
    ] {
        let mut claims = valid_claims(&app);
        claims.as_object_mut().unwrap().remove(claim);
        let msg = refused(present(&app, &forge(OUR_HEADER, claims.to_string())).await, &[]).await;
        assert_eq!(msg, expected, "without {claim}");
    }
    for claim in ["nbf", "type", "fresh"] {
        let mut claims = valid_claims(&app);
        claims.as_object_mut().unwrap().remove(claim);
        assert_eq!(present(&app, &forge(OUR_HEADER, claims.to_string())).await.status(), StatusCode::OK, "{claim}");
    }
    // An unknown claim (a Flask service may add its own) is ignored: it grants nothing.
    let mut claims = valid_claims(&app);
    claims["admin"] = json!(true);
    claims["roles"] = json!([]);
    let token = forge(OUR_HEADER, claims.to_string());
    assert_eq!(present(&app, &token).await.status(), StatusCode::OK);
    assert_eq!(app.get("/admin/users", Some(&token)).await.status(), StatusCode::FORBIDDEN);
}

/// Issue 3, item 5: the leeway (`KEYCARD_LEEWAY`) tolerates that much clock skew and no more.
#[tokio::test]
async fn the_leeway_tolerates_configured_skew_and_no_more() {
    let app = spawn_app_with(|s| s.tokens.leeway = Duration::from_secs(30)).await;
    let tokens = app.user_with_tokens("alice").await;

    app.clock.advance(15 * 60 + 10);
    assert_eq!(present(&app, &tokens.access).await.status(), StatusCode::OK, "expired 10 s ago, leeway 30 s");
    app.clock.advance(21);
    assert_eq!(refused(present(&app, &tokens.access).await, &[]).await, "Token has expired");

    // `nbf` in the future: within the leeway accepted, beyond it refused.
    let now = app.clock.now();
    let mut claims = valid_claims(&app);
    claims["nbf"] = json!(now + 20);
    assert_eq!(present(&app, &forge(OUR_HEADER, claims.to_string())).await.status(), StatusCode::OK);
    claims["nbf"] = json!(now + 31);
    let msg = refused(present(&app, &forge(OUR_HEADER, claims.to_string())).await, &[]).await;
    assert_eq!(msg, "The token is not yet valid (nbf)");
}

#[tokio::test]
async fn the_leeway_is_zero_by_default_and_capped_at_five_minutes() {
    let default = spawn_app().await;
    let tokens = default.user_with_tokens("alice").await;
    default.clock.advance(15 * 60);
    assert_eq!(refused(present(&default, &tokens.access).await, &[]).await, "Token has expired");

    let lax = spawn_app_with(|s| s.tokens.leeway = Duration::from_secs(3600)).await;
    let tokens = lax.user_with_tokens("alice").await;
    lax.clock.advance(15 * 60 + 299);
    assert_eq!(present(&lax, &tokens.access).await.status(), StatusCode::OK);
    lax.clock.advance(1);
    assert_eq!(refused(present(&lax, &tokens.access).await, &[]).await, "Token has expired");
}

/// Issue 3, item 6: duplicate names in the header or claims (RFC 7519 §4), even validly signed.
#[tokio::test]
async fn duplicate_keys_are_refused_even_with_a_valid_signature() {
    let app = spawn_app().await;
    let claims = valid_claims(&app).to_string();
    let body = claims.strip_suffix('}').unwrap();
    assert_eq!(present(&app, &forge(OUR_HEADER, &claims)).await.status(), StatusCode::OK);

    for header in [
        r#"{"alg":"HS256","typ":"JWT","alg":"HS256"}"#,
        r#"{"alg":"none","typ":"JWT","alg":"HS256"}"#,
        r#"{"alg":"HS256","alg":"none","typ":"JWT"}"#,
        r#"{"alg":"HS256","typ":"JWT","typ":"JWT"}"#,
        r#"{"alg":"HS256","typ":"JWT","kid":"forged-kid","kid":null}"#,
    ] {
        let msg = refused(present(&app, &forge(header, &claims)).await, &["forged-kid"]).await;
        assert_eq!(msg, "Invalid header string", "{header}");
    }
    for duplicate in [
        format!(r#","sub":"{FORGED_SUB}""#),
        r#","roles":["admin"]"#.to_owned(),
        format!(r#","exp":{}"#, keycard_token::MAX_TIMESTAMP),
        r#","type":"refresh""#.to_owned(),
        format!(r#","jti":"{}""#, Uuid::new_v4()),
    ] {
        let payload = format!("{body}{duplicate}}}");
        let msg = refused(present(&app, &forge(OUR_HEADER, &payload)).await, &[FORGED_SUB]).await;
        assert_eq!(msg, "Invalid payload string", "{payload}");
    }
}

/// Issue 3, items 5–6 (found by fuzzing): header and claims must be JSON objects. serde maps an
/// array onto a struct's fields in order, so `["HS256"]` once passed for a header; and a header
/// parameter that is present must be a string, `null` is not "absent".
#[tokio::test]
async fn arrays_are_not_objects_and_null_is_not_absent() {
    let app = spawn_app().await;
    let claims = valid_claims(&app);
    let order = ["sub", "iat", "nbf", "exp", "jti", "type", "fresh", "roles", "sid"];
    let as_array = serde_json::Value::Array(order.iter().map(|k| claims[*k].clone()).collect()).to_string();
    let claims = claims.to_string();
    let msg = refused(present(&app, &forge(r#"["HS256"]"#, &claims)).await, &[]).await;
    assert_eq!(msg, "Invalid header string");
    let msg = refused(present(&app, &forge(OUR_HEADER, &as_array)).await, &[]).await;
    assert_eq!(msg, "Invalid payload string");
    for header in [r#"{"alg":"HS256","kid":null}"#, r#"{"alg":"HS256","typ":null}"#] {
        let msg = refused(present(&app, &forge(header, &claims)).await, &[]).await;
        assert_eq!(msg, "Invalid header string", "{header}");
    }
}

/// Issue 3, item 7: segments are strict base64url of UTF-8 JSON, exactly three of them.
#[tokio::test]
async fn only_strict_base64url_compact_tokens_are_accepted() {
    let app = spawn_app().await;

    // Claims whose base64url uses `-` or `_` and whose length needs padding, with a signature that
    // uses `-` or `_` too (fresh ids until it does), so each re-encoding below changes the bytes.
    let (claims, signature) = (0..256)
        .map(|_| {
            let mut claims = valid_claims(&app);
            // ASCII text encodes to `-`/`_` only where `>`, `?`, `~` or DEL ends a 3-byte group.
            claims["sub"] = json!("alice???");
            let mut claims = claims.to_string();
            while claims.len().is_multiple_of(3) {
                claims.push(' ');
            }
            let signature = forge(OUR_HEADER, &claims).rsplit('.').next().unwrap().to_owned();
            (claims, signature)
        })
        .find(|(claims, signature)| b64(claims).contains(['-', '_']) && signature.contains(['-', '_']))
        .unwrap();
    let (header, payload) = (b64(OUR_HEADER), b64(&claims));
    assert_eq!(present(&app, &format!("{header}.{payload}.{signature}")).await.status(), StatusCode::OK);

    // Each signed over exactly the bytes sent, so only the encoding is wrong.
    let padded_header = URL_SAFE.encode(format!("{OUR_HEADER} "));
    let cases = [
        (sign_input(&format!("{header}.{}", URL_SAFE.encode(&claims))), "Invalid payload string"),
        (sign_input(&format!("{padded_header}.{payload}")), "Invalid header padding"),
        (format!("{header}.{payload}.{signature}="), "Signature verification failed"),
        (sign_input(&format!("{header}.{}", STANDARD_NO_PAD.encode(&claims))), "Invalid payload string"),
        // `+` and `/` always present (replacing `-`/`_` left the token valid whenever the
        // signature had neither).
        (format!("{header}.{payload}.+{}", &signature[1..]), "Signature verification failed"),
        (format!("{header}.{payload}./{}", &signature[1..]), "Signature verification failed"),
        // Non-UTF-8 and non-JSON payloads and headers.
        (forge(OUR_HEADER, claims.replacen("alice", "ali\u{0}ce", 1)), "Invalid payload string"),
        (forge(OUR_HEADER, claims.replacen("alice", r"ali\xffce", 1)), "Invalid payload string"),
        (forge(OUR_HEADER, [&[0xEF, 0xBB, 0xBF][..], claims.as_bytes()].concat()), "Invalid payload string"),
        (forge(OUR_HEADER, non_utf8(&claims, "alice")), "Invalid payload string"),
        (forge(OUR_HEADER, utf16(&claims)), "Invalid payload string"),
        (forge(non_utf8(OUR_HEADER, "JWT"), &claims), "Invalid header string"),
        (forge(utf16(OUR_HEADER), &claims), "Invalid header string"),
        // Not three segments.
        (format!("{header}.{payload}"), "Not enough segments"),
        (format!("{header}{payload}{signature}"), "Not enough segments"),
        (format!("{header}.{payload}."), "Signature verification failed"),
        (format!("{header}.{payload}.{signature}.{signature}"), "Too many segments"),
        (format!("{header}.{}.{payload}.{signature}.{signature}", b64("forged-cek")), "Too many segments"),
        (format!("{header}..{signature}"), "Signature verification failed"),
        ("..".to_owned(), "Invalid header string"),
        // JSON serialisation (RFC 7515 §7.2) instead of the compact one.
        (json!({"payload": payload, "protected": header, "signature": signature}).to_string(), "Not enough segments"),
        (
            json!({"payload": payload, "signatures": [{"protected": header, "signature": signature}]}).to_string(),
            "Not enough segments",
        ),
    ];
    for (token, expected) in cases {
        let msg = refused(present(&app, &token).await, &[&payload, &signature, "forged-cek"]).await;
        assert_eq!(msg, expected, "{token}");
    }

    // Whitespace inside the token never reaches the verifier: the header itself is malformed.
    for token in [format!("{header}.{payload} .{signature}"), format!("{header}.\t{payload}.{signature}")] {
        let msg = refused_with(present(&app, &token).await, INVALID_REQUEST, &[&payload]).await;
        assert_eq!(msg, "Bad Authorization header. Expected 'Authorization: Bearer <JWT>'");
    }
    // Line breaks cannot even be sent through an HTTP client: send them raw.
    let token = format!("{header}.{payload}.{signature}");
    for broken in [format!("{header}.{payload}\r\n .{signature}"), format!("{header}.{payload}\n.{signature}")] {
        let status = raw_get(&app, &format!("Authorization: Bearer {broken}\r\n")).await;
        assert!(status.starts_with("HTTP/1.1 4"), "{status}");
    }
    assert!(raw_get(&app, &format!("Authorization: Bearer {token}\r\n")).await.starts_with("HTTP/1.1 200"));
}

/// `text` with the first `marker` replaced by bytes that are not UTF-8.
fn non_utf8(text: &str, marker: &str) -> Vec<u8> {
    text.replacen(marker, "\u{1}", 1).into_bytes().into_iter().map(|b| if b == 1 { 0xFF } else { b }).collect()
}

fn utf16(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// Sends `GET /protected` with `headers` over a raw TCP connection and returns the status line.
async fn raw_get(app: &TestApp, headers: &str) -> String {
    let mut stream = TcpStream::connect(app.address.trim_start_matches("http://")).await.unwrap();
    let request = format!("GET /protected HTTP/1.1\r\nHost: keycard\r\nConnection: close\r\n{headers}\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    String::from_utf8_lossy(&response).lines().next().unwrap_or_default().to_owned()
}

/// Issue 3, item 8: the Authorization header, request headers and bodies are bounded.
#[tokio::test]
async fn oversized_authorization_headers_are_refused_before_decoding() {
    let app = spawn_app().await;
    let limit = keycard_axum::MAX_AUTHORIZATION_LEN;
    // Junk, and a correctly signed token whose only fault is its size.
    let mut claims = valid_claims(&app);
    claims["sub"] = json!("a".repeat(limit));
    for token in ["A".repeat(limit), forge(OUR_HEADER, claims.to_string())] {
        let msg = refused_with(present(&app, &token).await, INVALID_REQUEST, &[]).await;
        assert_eq!(msg, "Token is too large");
    }
}

#[tokio::test]
async fn huge_or_numerous_headers_get_a_4xx_and_the_server_keeps_serving() {
    let app = spawn_app().await;

    let mut many = app.client.get(app.url("/healthz"));
    for i in 0..500 {
        many = many.header(format!("x-forged-{i}"), "v");
    }
    let huge = app.client.get(app.url("/healthz")).header("x-forged", "a".repeat(1024 * 1024));
    for request in [many, huge] {
        // hyper answers 431; it may also drop the connection while the client is still sending.
        if let Ok(response) = request.send().await {
            assert_eq!(response.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        }
        assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn deeply_nested_or_oversized_bodies_are_refused_and_the_server_keeps_serving() {
    let app = spawn_app().await;
    let depth = 7_000; // deep enough to overflow a naive recursive parser, under the 16 KiB limit
    let nested = |prefix: &str| format!("{prefix}{}{}}}", "[".repeat(depth), "]".repeat(depth));
    for (path, body) in [
        ("/register", nested(r#"{"username":"alice","password":"#)),
        ("/register", nested(r#"{"username":"alice","password":"pw","x":"#)),
        ("/login", nested(r#"{"username":"#)),
        ("/register", format!("{}{}", "{\"a\":".repeat(2_500), "}".repeat(2_500))),
    ] {
        let response =
            app.client.post(app.url(path)).header("content-type", "application/json").body(body).send().await.unwrap();
        let (status, msg) = msg_of(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {msg}");
        assert!(msg.starts_with("Malformed JSON body") || msg.starts_with("Invalid request body"), "{msg}");
    }
    let oversized = json!({"username": "alice", "password": "a".repeat(20 * 1024)});
    let (status, msg) = msg_of(app.post_json("/register", &oversized).await).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{msg}");

    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
    assert_eq!(app.register("alice", PASSWORD).await.status(), StatusCode::CREATED);
}

/// Issue 3, item 9: revocation is keyed on `jti`, so a re-encoded token cannot dodge it.
#[tokio::test]
async fn a_revoked_token_stays_revoked_however_it_is_re_encoded() {
    let app = spawn_app().await;
    let tokens = app.user_with_tokens("alice").await;
    assert_eq!(app.logout(&tokens.access).await.status(), StatusCode::OK);
    let claims = claims_of(&tokens.access);
    let jti: Uuid = claims["jti"].as_str().unwrap().parse().unwrap();

    // Same claims, other key order and whitespace; then the same `jti` in every form a UUID
    // parser accepts, in a different session so the session revocation cannot be what refuses.
    let reordered = {
        let object = claims.as_object().unwrap();
        let members: Vec<String> = object.iter().rev().map(|(k, v)| format!("\n  {} :\t{v}", json!(k))).collect();
        format!("{{{}\n}}", members.join(" ,"))
    };
    let mut variants = vec![reordered, serde_json::to_string_pretty(&claims).unwrap()];
    for form in [
        jti.hyphenated().to_string().to_uppercase(),
        jti.simple().to_string(),
        jti.braced().to_string(),
        jti.urn().to_string(),
    ] {
        let mut claims = claims.clone();
        claims["jti"] = json!(form);
        claims["sid"] = json!(Uuid::new_v4().to_string());
        variants.push(claims.to_string());
    }
    for payload in variants {
        assert_401(present(&app, &forge(OUR_HEADER, &payload)).await, "Token has been revoked").await;
    }

    // Control: a new `jti` in a new session is accepted, so the refusals above are revocation's.
    let mut fresh = claims.clone();
    fresh["jti"] = json!(Uuid::new_v4().to_string());
    fresh["sid"] = json!(Uuid::new_v4().to_string());
    assert_eq!(present(&app, &forge(OUR_HEADER, fresh.to_string())).await.status(), StatusCode::OK);
}

/// Issue 3, item 10: token responses are never cached; no response is content-sniffed.
#[tokio::test]
async fn token_responses_are_not_cached_and_no_response_is_sniffed() {
    let app = spawn_app().await;
    assert_eq!(app.register("alice", PASSWORD).await.status(), StatusCode::CREATED);
    let login = app.login("alice", PASSWORD).await;
    assert_eq!(login.status(), StatusCode::OK);
    assert_eq!(login.headers()["cache-control"], "no-store");
    assert_eq!(login.headers()["pragma"], "no-cache");
    let headers = login.headers().clone();
    let tokens = TokenPair::from_body(&login.json().await.unwrap());
    let refresh = app.refresh(&tokens.refresh).await;
    assert_eq!(refresh.status(), StatusCode::OK);
    assert_eq!(refresh.headers()["cache-control"], "no-store");
    assert_eq!(refresh.headers()["pragma"], "no-cache");

    let json_post = |path: &str, body: &str, content_type: &str| {
        app.client.post(app.url(path)).header("content-type", content_type).body(body.to_owned()).send()
    };
    let responses = vec![
        app.get("/healthz", None).await,
        app.get("/protected", None).await,
        app.get("/protected", Some("forged.token.value")).await,
        app.get("/no/such/route", None).await,
        app.client.put(app.url("/login")).send().await.unwrap(),
        json_post("/login", "{", "application/json").await.unwrap(),
        json_post("/login", "{}", "text/plain").await.unwrap(),
        json_post("/login", &"a".repeat(20 * 1024), "application/json").await.unwrap(),
        app.login("alice", "wrong password").await,
        app.logout(&tokens.access).await,
        refresh,
    ];
    for response in std::iter::once(&headers).chain(responses.iter().map(Response::headers)) {
        assert_eq!(response.get("x-content-type-options").map(|v| v.to_str().unwrap()), Some("nosniff"));
    }
    for response in responses {
        let status = response.status();
        assert!(!status.is_server_error(), "{status}");
        if status.is_client_error() {
            let body: Value = response.json().await.unwrap();
            assert!(body["msg"].is_string(), "{status}: {body}");
        }
    }
}

/// Issue 3, item 11. `keycard gen-secret` (a fresh 43-character base64url secret) is tested in
/// `cli::gen_secret_prints_a_fresh_256_bit_secret`, the refusal of a short secret at start in
/// `cli::a_short_secret_is_refused_at_start_without_being_echoed`, and the secret's absence from
/// the logs of successful flows in `cli::secrets_tokens_and_passwords_never_reach_the_logs_even_at_debug`.
/// What is left: refusals, in responses and in the logs at debug level.
#[tokio::test]
async fn refused_tokens_reveal_neither_the_secret_nor_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "attack-suite-secret-attack-suite-secret-0123";
    let server = Process::serve(dir.path(), &[("KEYCARD_JWT_SECRET", secret), ("RUST_LOG", "debug")]);
    let claims = json!({"sub": FORGED_SUB, "iat": 0, "nbf": 0, "exp": 1, "jti": Uuid::new_v4().to_string(),
        "type": "access", "fresh": true, "roles": [], "sid": Uuid::new_v4().to_string()})
    .to_string();
    let sign = |header: &str, key: &[u8]| {
        let input = format!("{}.{}", b64(header), b64(&claims));
        format!("{input}.{}", mac(Algorithm::HS256, key, &input))
    };
    let tokens = [
        sign(OUR_HEADER, secret.as_bytes()),                      // expired, validly signed
        sign(OUR_HEADER, b"secret"),                              // bad signature
        sign(r#"{"alg":"none","typ":"JWT"}"#, secret.as_bytes()), // alg none
        sign(r#"{"alg":"HS256","kid":"../../forged-kid\nINFO forged"}"#, b""), // traversal + log injection
        sign(r#"{"alg":"HS256","jku":"http://127.0.0.1:1/forged-jku"}"#, secret.as_bytes()),
        format!("{}.{}.", b64(OUR_HEADER), b64(secret)),
    ];
    let client = reqwest::Client::new();
    for token in &tokens {
        let response = client.get(format!("{}/protected", server.address)).bearer_auth(token).send().await.unwrap();
        let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_owned();
        let body = response.text().await.unwrap();
        for leaked in [secret, &b64(secret), FORGED_SUB, "forged-kid", "forged-jku"] {
            assert!(!body.contains(leaked) && !challenge.contains(leaked), "{leaked} in {challenge} {body}");
        }
    }
    let (status, logs) = server.terminate();
    assert!(status.success());
    assert!(logs.contains("/protected"), "requests are logged at debug: {logs}");
    let signatures: Vec<&str> = tokens.iter().filter_map(|t| t.rsplit('.').next()).filter(|s| !s.is_empty()).collect();
    for leaked in
        [secret, &b64(secret), FORGED_SUB, "forged-kid", "INFO forged", "forged-jku"].into_iter().chain(signatures)
    {
        assert!(!logs.contains(leaked), "the logs contain {leaked:?}");
    }
}
