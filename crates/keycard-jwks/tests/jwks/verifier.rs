//! The verifier: discovery, checks, refetch throttling, failures of the provider.

use std::time::{Duration, Instant};

use keycard_jwks::{JwksError, JwksVerifier, JwksVerifierBuilder, OidcClaims};
use keycard_token::{Algorithm, TokenError};
use serde_json::json;

use crate::provider::{self, CLIENT_ID, Mode, Provider};

/// The verifier of `p`'s tokens, by discovery.
fn builder(p: &Provider) -> JwksVerifierBuilder {
    JwksVerifier::builder().issuer(&p.issuer).audience(CLIENT_ID)
}

async fn verify(v: &JwksVerifier, token: &str) -> Result<keycard_token::Claims<OidcClaims>, TokenError> {
    tokio::time::timeout(Duration::from_secs(20), v.verify::<OidcClaims>(token)).await.expect("verify hung")
}

#[tokio::test]
async fn discovery_finds_the_key_set_and_tokens_of_every_algorithm_verify() {
    let p = Provider::start(&[Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256]).await;
    let v = builder(&p).build().await.unwrap();
    assert_eq!((p.discovery_hits(), p.jwks_hits()), (1, 1));
    let mut kids = v.kids();
    kids.sort();
    let mut want = vec![p.kid(0), p.kid(1), p.kid(2)];
    want.sort();
    assert_eq!(kids, want);
    for i in 0..3 {
        let claims = verify(&v, &p.token_by(i, &p.claims("alice@example.com", &["staff"]))).await.unwrap();
        assert_eq!(claims.iss.as_deref(), Some(p.issuer.as_str()));
        assert_eq!(claims.extra["groups"], json!(["staff"]));
    }
    assert_eq!(p.jwks_hits(), 1, "known kids never refetch");
}

#[tokio::test]
async fn tokens_of_a_keycard_server_verify() {
    let p = Provider::start(&[Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256]).await;
    let v = builder(&p).build().await.unwrap();
    for i in 0..3 {
        let settings = keycard_token::TokenSettings {
            issuer: Some(p.issuer.clone()),
            audience: Some(CLIENT_ID.into()),
            ..Default::default()
        };
        let keycard = keycard_token::Tokens::new(
            keycard_token::Keys::signing(p.signing_key(i)),
            settings,
            std::sync::Arc::new(keycard_token::SystemClock),
        );
        let signed = keycard.access("alice").claims(json!({"roles": ["admin"]})).sign().unwrap();
        let claims = verify(&v, &signed.token).await.unwrap();
        assert_eq!((claims.sub.as_str(), &claims.extra["roles"]), ("alice", &json!(["admin"])));
        assert_eq!(claims.jti, signed.claims.jti);
    }
}

#[tokio::test]
async fn a_jwks_url_is_used_without_discovery() {
    let p = Provider::start(&[Algorithm::ES256]).await;
    let v = JwksVerifier::builder().issuer(&p.issuer).jwks_url(&p.jwks_url).audience(CLIENT_ID).build().await.unwrap();
    assert_eq!((p.discovery_hits(), p.jwks_hits()), (0, 1));
    assert!(verify(&v, &p.token(&p.claims("a@example.com", &[]))).await.is_ok());
}

#[tokio::test]
async fn a_discovery_document_naming_another_issuer_is_refused() {
    let p = Provider::start(&[Algorithm::ES256]).await;
    for other in [format!("{}/", p.issuer), "https://evil.example.com/realms/test".to_owned(), p.base.clone()] {
        p.set_discovery_issuer(&other);
        let err = builder(&p).build().await.unwrap_err();
        assert!(matches!(&err, JwksError::IssuerMismatch { found, .. } if *found == other), "{err}");
    }
    assert_eq!(p.jwks_hits(), 0, "the key set of a mismatching issuer is never fetched");
}

#[tokio::test]
async fn issuer_and_audience_are_always_checked() {
    let p = Provider::start(&[Algorithm::ES256]).await;
    let v = builder(&p).build().await.unwrap();
    let base = p.claims("a@example.com", &[]);
    let with = |key: &str, value: serde_json::Value| {
        let mut claims = base.clone();
        claims[key] = value;
        claims
    };
    let without = |key: &str| {
        let mut claims = base.clone();
        claims.as_object_mut().unwrap().remove(key);
        claims
    };
    let table = [
        (with("aud", json!("another-client")), TokenError::InvalidAudience),
        (with("aud", json!(["another-client", "account"])), TokenError::InvalidAudience),
        (without("aud"), TokenError::MissingClaim("aud")),
        (with("iss", json!("https://evil.example.com/realms/test")), TokenError::InvalidIssuer),
        (with("iss", json!(format!("{}/", p.issuer))), TokenError::InvalidIssuer),
        (without("iss"), TokenError::MissingClaim("iss")),
        (with("exp", json!(provider::now() - 10)), TokenError::Expired),
        (without("exp"), TokenError::MissingClaim("exp")),
        (with("nbf", json!(provider::now() + 600)), TokenError::NotYetValid),
    ];
    for (claims, want) in table {
        assert_eq!(verify(&v, &p.token(&claims)).await.unwrap_err(), want, "{claims}");
    }
    for jti in [json!("not-a-uuid"), json!("0d6f1a4e-9e4c-4d62-8d40-6d9f4f1f3b1e")] {
        let claims = verify(&v, &p.token(&with("jti", jti.clone()))).await.unwrap();
        assert_eq!(claims.jti.as_deref(), jti.as_str(), "foreign jti values are kept as they are");
    }
    let several = with("aud", json!(["account", CLIENT_ID]));
    assert!(verify(&v, &p.token(&several)).await.is_ok(), "one matching audience of several suffices");
}

#[tokio::test]
async fn the_audience_is_required_unless_explicitly_waived() {
    let p = Provider::start(&[Algorithm::ES256]).await;
    let err = JwksVerifier::builder().issuer(&p.issuer).build().await.unwrap_err();
    assert!(matches!(err, JwksError::Config(_)), "{err}");
    let err = JwksVerifier::builder().jwks_url(&p.jwks_url).audience(CLIENT_ID).build().await.unwrap_err();
    assert!(matches!(err, JwksError::Config(_)), "an issuer is required with a JWKS URL too: {err}");

    let any = JwksVerifier::builder().issuer(&p.issuer).no_audience().build().await.unwrap();
    let mut claims = p.claims("a@example.com", &[]);
    claims["aud"] = json!("another-client");
    assert!(verify(&any, &p.token(&claims)).await.is_ok());
    claims.as_object_mut().unwrap().remove("aud");
    assert!(verify(&any, &p.token(&claims)).await.is_ok());
}

#[tokio::test]
async fn the_identity_claim_replaces_sub() {
    let p = Provider::start(&[Algorithm::EdDSA]).await;
    let v = builder(&p).identity_claim("email").build().await.unwrap();
    let claims = verify(&v, &p.token(&p.claims("alice@example.com", &[]))).await.unwrap();
    assert_eq!(claims.sub, "alice@example.com");

    let mut no_email = p.claims("alice@example.com", &[]);
    no_email.as_object_mut().unwrap().remove("email");
    assert!(verify(&v, &p.token(&no_email)).await.is_err(), "a token without the identity claim is refused");
}

#[tokio::test]
async fn a_rotation_at_the_provider_is_picked_up_on_the_first_unknown_kid() {
    let p = Provider::start(&[Algorithm::ES256]).await;
    let v = builder(&p).build().await.unwrap();
    let old = p.token(&p.claims("a@example.com", &[]));
    let new_kid = p.rotate();
    let new = p.token(&p.claims("a@example.com", &[]));
    assert_eq!(verify(&v, &new).await.unwrap().extra["email"], "a@example.com");
    assert_eq!(p.jwks_hits(), 2);
    assert_eq!(v.kids(), [new_kid]);
    assert_eq!(verify(&v, &old).await.unwrap_err(), TokenError::UnknownKey, "the old key is no longer published");
    assert_eq!(p.jwks_hits(), 2, "within the refetch interval: no second fetch");
}

#[tokio::test]
async fn a_flood_of_unknown_kids_costs_one_fetch_per_interval() {
    let p = Provider::start(&[Algorithm::ES256]).await;
    let v = builder(&p).min_refetch_interval(Duration::from_millis(1500)).build().await.unwrap();
    let claims = p.claims("a@example.com", &[]);
    let forged = |i: usize| {
        p.token_with_header(0, &json!({"alg": "ES256", "typ": "JWT", "kid": format!("made-up-{i}")}), &claims)
    };

    let wave = |from: usize| {
        let tasks: Vec<_> = (from..from + 300)
            .map(|i| {
                let (v, token) = (v.clone(), forged(i));
                tokio::spawn(async move { verify(&v, &token).await })
            })
            .collect();
        async move {
            for task in tasks {
                assert_eq!(task.await.unwrap().unwrap_err(), TokenError::UnknownKey);
            }
        }
    };
    wave(0).await;
    assert_eq!(p.jwks_hits(), 2, "300 concurrent unknown kids: one fetch");
    wave(300).await;
    assert_eq!(p.jwks_hits(), 2, "and none more within the interval");
    tokio::time::sleep(Duration::from_millis(1600)).await;
    wave(600).await;
    assert_eq!(p.jwks_hits(), 3, "one more after the interval");
    // Known kids are never held up.
    assert!(verify(&v, &p.token(&claims)).await.is_ok());
}

#[tokio::test]
async fn a_provider_that_is_down_leaves_the_cached_keys_in_use() {
    let p = Provider::start(&[Algorithm::RS256]).await;
    let v = builder(&p).min_refetch_interval(Duration::ZERO).build().await.unwrap();
    let token = p.token(&p.claims("a@example.com", &[]));
    p.set_mode(Mode::Down);
    let err = v.refresh().await.unwrap_err();
    assert!(matches!(err, JwksError::Status { status: 503, .. }) && err.is_unavailable(), "{err}");
    assert!(verify(&v, &token).await.is_ok(), "cached keys keep verifying");
    let forged = p.token_with_header(0, &json!({"alg": "RS256", "kid": "rotated?"}), &p.claims("a@example.com", &[]));
    assert_eq!(verify(&v, &forged).await.unwrap_err(), TokenError::UnknownKey);
    p.set_mode(Mode::Up);
    let new_kid = p.add_key(Algorithm::ES256);
    let new = p.token(&p.claims("a@example.com", &[]));
    assert!(verify(&v, &new).await.is_ok(), "back up: the new key {new_kid} is fetched");
}

#[tokio::test]
async fn a_slow_provider_costs_at_most_the_http_timeout_and_never_delays_known_kids() {
    let p = Provider::start(&[Algorithm::ES256]).await;
    let v = builder(&p)
        .http_timeout(Duration::from_millis(400))
        .min_refetch_interval(Duration::ZERO)
        .build()
        .await
        .unwrap();
    let known = p.token(&p.claims("a@example.com", &[]));
    p.set_mode(Mode::Slow(Duration::from_secs(30)));
    let forged = p.token_with_header(0, &json!({"alg": "ES256", "kid": "new"}), &p.claims("a@example.com", &[]));

    let started = Instant::now();
    let waiting = tokio::spawn({
        let (v, forged) = (v.clone(), forged.clone());
        async move { verify(&v, &forged).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let quick = Instant::now();
    assert!(verify(&v, &known).await.is_ok());
    assert!(quick.elapsed() < Duration::from_millis(200), "a known kid is answered while a fetch hangs");
    assert_eq!(waiting.await.unwrap().unwrap_err(), TokenError::UnknownKey);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(350) && waited < Duration::from_secs(3), "{waited:?}");

    let err = v.refresh().await.unwrap_err();
    assert!(matches!(err, JwksError::Timeout { .. }) && err.is_unavailable(), "{err}");
    let started = Instant::now();
    let err = JwksVerifier::builder()
        .issuer(&p.issuer)
        .audience(CLIENT_ID)
        .http_timeout(Duration::from_millis(300))
        .build()
        .await
        .unwrap_err();
    assert!(matches!(err, JwksError::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3), "discovery and JWKS together are bounded");
}

#[tokio::test]
async fn a_malformed_key_set_is_a_clear_error_at_start_and_keeps_the_old_keys_later() {
    let p = Provider::start(&[Algorithm::ES256]).await;
    let v = builder(&p).build().await.unwrap();
    let token = p.token(&p.claims("a@example.com", &[]));

    p.set_mode(Mode::Malformed);
    let err = builder(&p).build().await.unwrap_err();
    assert!(matches!(err, JwksError::InvalidJwks { .. }), "{err}");
    assert!(err.to_string().starts_with(&format!("GET {}: not a JWK Set", p.jwks_url)), "{err}");
    assert!(v.refresh().await.is_err());
    assert!(verify(&v, &token).await.is_ok());

    for mode in [Mode::Empty, Mode::Unusable] {
        p.set_mode(mode);
        let err = builder(&p).build().await.unwrap_err();
        assert!(matches!(err, JwksError::NoUsableKeys { .. }), "{mode:?}: {err}");
        assert!(v.refresh().await.is_err());
        assert!(verify(&v, &token).await.is_ok(), "{mode:?}: an unusable key set never replaces a usable one");
    }
}

#[tokio::test]
async fn bad_keys_and_duplicate_kids_are_skipped_and_the_good_keys_used() {
    let p = Provider::start(&[Algorithm::ES256, Algorithm::EdDSA]).await;
    p.set_mode(Mode::Mixed);
    let v = builder(&p).build().await.unwrap();
    let mut kids = v.kids();
    kids.sort();
    let mut want = vec![p.kid(0), p.kid(1)];
    want.sort();
    assert_eq!(kids, want, "only the good keys, once each");
    for i in 0..2 {
        assert!(verify(&v, &p.token_by(i, &p.claims("a@example.com", &[]))).await.is_ok());
    }
    let claims = p.claims("a@example.com", &[]);
    for kid in ["hmac", "enc", "short", "off-curve", "rsa-1024", "x25519", "ec-as-hmac", "xyz"] {
        let token = provider::sign_hs256(&[7; 32], &json!({"alg": "HS256", "kid": kid}), &claims);
        assert_eq!(verify(&v, &token).await.unwrap_err(), TokenError::UnknownKey, "{kid}");
    }
}

#[tokio::test]
async fn oversized_answers_and_redirects_are_refused() {
    let p = Provider::start(&[Algorithm::ES256]).await;
    p.set_mode(Mode::Huge);
    let err = builder(&p).build().await.unwrap_err();
    assert!(matches!(err, JwksError::TooLarge { limit: 1048576, .. }), "{err}");
    p.set_mode(Mode::Redirect);
    let err = builder(&p).build().await.unwrap_err();
    assert!(matches!(err, JwksError::Status { status: 302, .. }), "{err}");
    assert!(err.to_string().contains("redirects are not followed"), "{err}");
    assert_eq!(p.other_hits(), 0, "the redirect was not followed");
}

#[tokio::test]
async fn plain_http_is_refused_except_on_loopback_hosts() {
    for (issuer, jwks) in [
        ("http://idp.example.com/realms/test", None),
        ("https://idp.example.com", Some("http://idp.example.com/jwks")),
        ("https://idp.example.com", Some("http://10.1.2.3/jwks")),
        ("ftp://idp.example.com", None),
    ] {
        let mut b = JwksVerifier::builder().issuer(issuer).audience(CLIENT_ID);
        if let Some(jwks) = jwks {
            b = b.jwks_url(jwks);
        }
        let err = b.build().await.unwrap_err();
        assert!(matches!(err, JwksError::InvalidUrl { .. }), "{issuer} {jwks:?}: {err}");
    }
    let p = Provider::start(&[Algorithm::ES256]).await;
    let localhost = p.jwks_url.replace("127.0.0.1", "localhost");
    let v = JwksVerifier::builder().issuer(&p.issuer).jwks_url(localhost).audience(CLIENT_ID).build().await;
    assert!(v.is_ok(), "http://localhost is loopback: {v:?}");
}

#[tokio::test]
async fn an_unreachable_provider_fails_the_build_but_not_build_lazy() {
    let p = Provider::start(&[Algorithm::ES256]).await;
    let token = p.token(&p.claims("a@example.com", &[]));
    p.set_mode(Mode::Down);
    let err = builder(&p).build().await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");

    let lazy = builder(&p).min_refetch_interval(Duration::ZERO).build_lazy().unwrap();
    assert_eq!(verify(&lazy, &token).await.unwrap_err(), TokenError::UnknownKey);
    p.set_mode(Mode::Up);
    assert!(verify(&lazy, &token).await.is_ok(), "the first token after the provider is back fetches the keys");

    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/realms/x", listener.local_addr().unwrap())
    };
    let err = JwksVerifier::builder().issuer(closed).audience(CLIENT_ID).build().await.unwrap_err();
    assert!(matches!(err, JwksError::Http { .. }) && err.is_unavailable(), "{err}");
}

#[tokio::test]
async fn algorithm_confusion_with_the_public_key_as_hmac_secret_is_refused() {
    let p = Provider::start(&[Algorithm::RS256, Algorithm::ES256]).await;
    let v = builder(&p).build().await.unwrap();
    let claims = p.claims("a@example.com", &[]);
    for i in 0..2 {
        let jwk = p.public_jwk(i);
        let mut secrets = vec![jwk.to_string().into_bytes(), serde_json::to_vec_pretty(&jwk).unwrap()];
        for member in ["n", "x"] {
            if let Some(b64) = jwk[member].as_str() {
                secrets.push(b64.as_bytes().to_vec());
            }
        }
        for secret in secrets {
            for header in
                [json!({"alg": "HS256", "typ": "JWT", "kid": p.kid(i)}), json!({"alg": "HS256", "typ": "JWT"})]
            {
                let token = provider::sign_hs256(&secret, &header, &claims);
                let err = verify(&v, &token).await.unwrap_err();
                assert!(matches!(err, TokenError::AlgorithmNotAllowed | TokenError::UnknownKey), "{header}: {err:?}");
            }
        }
    }
    let none = format!("{}.{}.", provider::b64(br#"{"alg":"none"}"#), provider::b64(claims.to_string().as_bytes()));
    assert!(verify(&v, &none).await.is_err());
}

#[tokio::test]
async fn key_location_headers_are_refused_and_never_fetched() {
    let p = Provider::start(&[Algorithm::ES256]).await;
    let v = builder(&p).min_refetch_interval(Duration::ZERO).build().await.unwrap();
    let claims = p.claims("a@example.com", &[]);
    let evil = format!("{}/evil", p.base);
    for (name, value) in
        [("jku", json!(evil)), ("x5u", json!(evil)), ("jwk", p.public_jwk(0)), ("x5c", json!(["MIIB"]))]
    {
        let mut header = json!({"alg": "ES256", "typ": "JWT", "kid": p.kid(0)});
        header[name] = value.clone();
        assert_eq!(
            verify(&v, &p.token_with_header(0, &header, &claims)).await.unwrap_err(),
            TokenError::InvalidHeader,
            "{name}"
        );
        header.as_object_mut().unwrap().remove("kid");
        assert!(verify(&v, &p.token_with_header(0, &header, &claims)).await.is_err(), "{name} without kid");
    }
    assert_eq!(p.other_hits(), 0, "no header URL was ever requested");
}

#[tokio::test]
async fn the_algorithm_allow_list_skips_other_keys() {
    let p = Provider::start(&[Algorithm::ES256, Algorithm::RS256]).await;
    let v = builder(&p).algorithms([Algorithm::ES256]).min_refetch_interval(Duration::ZERO).build().await.unwrap();
    assert_eq!(v.kids(), [p.kid(0)]);
    assert!(verify(&v, &p.token_by(0, &p.claims("a@example.com", &[]))).await.is_ok());
    assert_eq!(verify(&v, &p.token_by(1, &p.claims("a@example.com", &[]))).await.unwrap_err(), TokenError::UnknownKey);

    let err = builder(&p).algorithms([Algorithm::HS256]).build().await.unwrap_err();
    assert!(matches!(err, JwksError::Config(_)), "{err}");
    let err = builder(&p).algorithms([Algorithm::EdDSA]).build().await.unwrap_err();
    assert!(matches!(err, JwksError::NoUsableKeys { skipped: 2, .. }), "{err}");
}

/// Waits until `cond` holds, at most 5 s.
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_background_refresh_follows_cache_control_and_stops_with_the_verifier() {
    let p = Provider::start(&[Algorithm::ES256]).await;
    p.set_cache_control(Some("public, max-age=1"));
    let v = builder(&p).refresh_floor(Duration::from_millis(100)).build().await.unwrap();
    let started = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(p.jwks_hits(), 1, "max-age=1: not refreshed after 0.5 s");
    let new_kid = p.rotate();
    eventually("the rotation is picked up without an unknown kid", || v.kids() == [new_kid.clone()]).await;
    assert!(started.elapsed() >= Duration::from_secs(1), "not before max-age ran out");
    assert_eq!(p.jwks_hits(), 2);

    p.set_cache_control(None);
    v.refresh().await.unwrap();
    let hits = p.jwks_hits();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(p.jwks_hits(), hits, "no Cache-Control: 15 minutes");

    p.set_cache_control(Some("no-cache"));
    v.refresh().await.unwrap();
    eventually("no-cache refreshes at the floor", || p.jwks_hits() >= hits + 4).await;
    drop(v);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let hits = p.jwks_hits();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(p.jwks_hits(), hits, "the background task stopped with the verifier");
}

#[tokio::test]
async fn a_failed_background_refresh_keeps_the_keys_and_retries() {
    let p = Provider::start(&[Algorithm::EdDSA]).await;
    p.set_cache_control(Some("max-age=0"));
    let v = builder(&p).refresh_floor(Duration::from_millis(100)).build().await.unwrap();
    let token = p.token(&p.claims("a@example.com", &[]));
    p.set_mode(Mode::Malformed);
    eventually("failed refreshes are retried", || p.jwks_hits() >= 4).await;
    assert!(verify(&v, &token).await.is_ok());
    p.set_mode(Mode::Up);
    let kid = p.rotate();
    eventually("the provider's new key is fetched", || v.kids() == [kid.clone()]).await;
}
