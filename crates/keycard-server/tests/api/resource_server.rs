//! Issue 15, the receiving end: keycard-jwks's `resource_server` example (a JWKS verifier plus a
//! revocation set fed by keycard's Shared Signals stream) against a real keycard server: a
//! logout reaches it within milliseconds, both sides restart, a stale feed fails closed (or
//! open), a wrong credential is refused at start.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use keycard_jwks::{JwksVerifier, OidcClaims, RevocationFeed, WhenStale};
use keycard_token::Algorithm;
use secrecy::SecretString;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::helpers::*;

#[allow(dead_code)]
#[path = "../../../keycard-jwks/examples/resource_server.rs"]
mod example;

const CREDENTIAL: &str = "resource-server-example-credential-0123456789";

async fn call(app: &axum::Router, token: &str) -> (StatusCode, Value) {
    let request =
        Request::get("/protected").header("authorization", format!("Bearer {token}")).body(Body::empty()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// A keycard transmitter on a fixed port (so that it can restart under the same issuer).
async fn spawn_keycard() -> TestApp {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    spawn_app_with(|s| {
        s.bind = format!("127.0.0.1:{port}");
        s.signing.public_url = Some(format!("http://127.0.0.1:{port}"));
        s.signing.algorithm = Algorithm::ES256;
        s.resource_server_tokens = vec![SecretString::from(CREDENTIAL)];
    })
    .await
}

fn example_settings(keycard: &TestApp, staleness: &str) -> example::Settings {
    example::Settings::from_vars(|name| match name {
        "KEYCARD_ISSUER_URL" => Some(keycard.address.clone()),
        "KEYCARD_SSF_TOKEN" => Some(CREDENTIAL.into()),
        "KEYCARD_STALENESS" => Some(staleness.into()),
        _ => None,
    })
    .unwrap()
}

/// Calls until the answer's status is `want`; how long that took.
async fn status_within(app: &axum::Router, token: &str, want: StatusCode, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let (status, body) = call(app, token).await;
        if status == want {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "still {status} {body} after {limit:?}, want {want}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn a_logout_at_keycard_is_refused_by_the_resource_server_within_milliseconds() {
    let keycard = spawn_keycard().await;
    let example = example::app(&example_settings(&keycard, "30")).await.unwrap();
    let alice = keycard.user_with_tokens("alice").await;
    assert_eq!(call(&example, &alice.access).await, (StatusCode::OK, json!({ "logged_in_as": "alice" })));
    let (status, _) = call(&example, &alice.refresh).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a refresh token is no access token");

    let mut delays = Vec::new();
    for i in 0..5 {
        let tokens = keycard.user_with_tokens(&format!("user{i}")).await;
        assert_eq!(call(&example, &tokens.access).await.0, StatusCode::OK);
        let start = Instant::now();
        assert_eq!(keycard.logout(&tokens.access).await.status(), StatusCode::OK);
        status_within(&example, &tokens.access, StatusCode::UNAUTHORIZED, Duration::from_secs(1)).await;
        delays.push(start.elapsed());
    }
    delays.sort();
    eprintln!("logout to the first 401 at the resource server: {delays:?}");
    assert!(delays[2] < Duration::from_millis(500), "median {:?}", delays[2]);
    let (_, body) = call(&example, &keycard.login_tokens("user0", PASSWORD).await.access).await;
    assert_eq!(body, json!({ "logged_in_as": "user0" }), "a new session of the same user is not revoked");
}

#[tokio::test]
async fn both_sides_restart_and_nothing_revoked_meanwhile_is_forgotten() {
    let keycard = spawn_keycard().await;
    let settings = example_settings(&keycard, "1");
    let example = example::app(&settings).await.unwrap();
    let bob = keycard.user_with_tokens("bob").await;
    let carol = keycard.user_with_tokens("carol").await;
    assert_eq!(call(&example, &bob.access).await.0, StatusCode::OK);

    // keycard goes away: after the staleness limit, requests fail closed.
    let mut keycard = keycard;
    keycard.stop().await;
    let waited = status_within(&example, &bob.access, StatusCode::SERVICE_UNAVAILABLE, Duration::from_secs(5)).await;
    eprintln!("stale (fail closed) after {waited:?}");
    // While it is down, bob's account is disabled from the command line (straight into the database).
    let out = run_cli(&["user", "disable", "bob", "--database-url", keycard.database_url()], "", &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // keycard comes back on the same address: the feed reconnects and hears of bob.
    let keycard = keycard.restart().await;
    status_within(&example, &bob.access, StatusCode::UNAUTHORIZED, Duration::from_secs(10)).await;
    assert_eq!(call(&example, &carol.access).await.0, StatusCode::OK);

    // The resource server restarts: its new stream starts with every kept event.
    assert_eq!(keycard.logout(&carol.access).await.status(), StatusCode::OK);
    drop(example);
    let example = example::app(&settings).await.unwrap();
    assert_eq!(call(&example, &carol.access).await.0, StatusCode::UNAUTHORIZED, "caught up before the first request");
    assert_eq!(call(&example, &bob.access).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn failing_open_keeps_answering_and_a_wrong_credential_is_refused_at_start() {
    let mut keycard = spawn_keycard().await;
    let verifier = JwksVerifier::builder().issuer(&keycard.address).no_audience().build().await.unwrap();
    let wrong = RevocationFeed::builder(&verifier, "not-the-credential-0123456789abcdef").start().await;
    let error = wrong.expect_err("refused");
    assert!(error.to_string().contains("401"), "{error}");

    let feed = RevocationFeed::builder(&verifier, CREDENTIAL)
        .max_staleness(Duration::from_millis(500))
        .when_stale(WhenStale::FailOpen)
        .start()
        .await
        .unwrap();
    assert!(feed.is_fresh());
    let jwt = verifier.jwt_config_builder::<OidcClaims>().revocation(feed.clone()).build().unwrap();
    let app = axum::Router::new()
        .route(
            "/protected",
            axum::routing::get(|jwt: keycard_axum::Jwt<OidcClaims>| async move {
                axum::Json(json!({ "logged_in_as": jwt.sub }))
            }),
        )
        .layer(jwt.layer());
    let dan = keycard.user_with_tokens("dan").await;
    keycard.stop().await;
    let start = Instant::now();
    while feed.is_fresh() {
        assert!(start.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(call(&app, &dan.access).await, (StatusCode::OK, json!({ "logged_in_as": "dan" })));
}

#[test]
fn the_example_reads_its_verified_token_cache_size_and_refuses_a_bad_one() {
    let vars = |cache: Option<&'static str>| {
        move |name: &str| match name {
            "KEYCARD_ISSUER_URL" => Some("http://127.0.0.1:1".to_owned()),
            "KEYCARD_SSF_TOKEN" => Some(CREDENTIAL.to_owned()),
            "KEYCARD_VERIFIED_TOKEN_CACHE" => cache.map(str::to_owned),
            _ => None,
        }
    };
    let cache = |v| example::Settings::from_vars(vars(v)).map(|s| s.verified_token_cache);
    assert_eq!(cache(None), Ok(keycard_jwks::DEFAULT_CACHE_CAPACITY));
    assert_eq!(cache(Some("")), Ok(keycard_jwks::DEFAULT_CACHE_CAPACITY));
    assert_eq!(cache(Some("0")), Ok(0));
    assert_eq!(cache(Some("250")), Ok(250));
    for bad in ["lots", "-1", "1e4"] {
        let err = cache(Some(bad)).expect_err(bad);
        assert!(err.contains("KEYCARD_VERIFIED_TOKEN_CACHE") && err.contains(bad), "{err}");
    }
}
