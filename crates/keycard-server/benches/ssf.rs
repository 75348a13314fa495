//! Shared Signals, end to end (issue 15): a keycard transmitter (SQLite, ES256) and a resource
//! server on keycard-jwks's `RevocationFeed` (the `resource_server` example's stack), each on
//! its own port, over real HTTP.
//!
//! 1. Propagation: 200 logouts at keycard, each timed from keycard's answer (the revocation is
//!    committed) to the first 401 from the resource server on `/protected` with the revoked token
//!    (polled every 0.5 ms). Median, 90th percentile, maximum.
//! 2. Transmitter throughput: 5,000 sessions ended at once (`DELETE /logout?scope=global`), then
//!    drained by one receiver polling `maxEvents=1000` with acknowledgements: events per second,
//!    each an ES256-signed SET.
//!
//! ```text
//! cargo bench -p keycard-server --bench ssf
//! ```
//!
//! Prints figures; asserts nothing about time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use keycard_jwks::{JwksVerifier, OidcClaims, RevocationFeed};
use keycard_server::settings::Argon2Settings;
use keycard_server::{Application, Settings};
use keycard_token::Algorithm;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};

const REVOCATIONS: usize = 200;
const BULK_SESSIONS: usize = 5_000;
const SECRET: &str = "ssf-bench-secret-0123456789abcdef-0123";
const CREDENTIAL: &str = "ssf-bench-receiver-credential-0123456789";

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let mut settings = Settings::new("127.0.0.1:0", url, SecretString::from(SECRET));
    settings.argon2 = Argon2Settings { memory_kib: 1024, iterations: 1, parallelism: 1, concurrency: None };
    settings.rate_limit_per_minute = 0;
    settings.signing.algorithm = Algorithm::ES256;
    settings.resource_server_tokens = vec![SecretString::from(CREDENTIAL)];
    let app = Application::build(settings).await.unwrap();
    let keycard = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until_stopped(std::future::pending()));

    let resource_server = start_resource_server(&keycard).await;
    let client = reqwest::Client::new();
    let credentials = json!({ "username": "bench", "password": "correct horse battery" });
    let response = client.post(format!("{keycard}/register")).json(&credentials).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);

    let mut delays = Vec::with_capacity(REVOCATIONS);
    for _ in 0..REVOCATIONS {
        let login: Value =
            client.post(format!("{keycard}/login")).json(&credentials).send().await.unwrap().json().await.unwrap();
        let access = login["access_token"].as_str().unwrap().to_owned();
        let check = || client.get(format!("{resource_server}/protected")).bearer_auth(&access).send();
        assert_eq!(check().await.unwrap().status(), StatusCode::OK);
        let logout = client.delete(format!("{keycard}/logout")).bearer_auth(&access).send().await.unwrap();
        assert_eq!(logout.status(), StatusCode::OK);
        let committed = Instant::now();
        loop {
            if check().await.unwrap().status() == StatusCode::UNAUTHORIZED {
                delays.push(committed.elapsed());
                break;
            }
            assert!(committed.elapsed() < Duration::from_secs(10), "never propagated");
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    delays.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "logout at keycard -> first 401 at the resource server ({REVOCATIONS} logouts): median {:.2} ms, p90 {:.2} ms, max {:.2} ms",
        ms(delays[delays.len() / 2]),
        ms(delays[delays.len() * 9 / 10]),
        ms(delays[delays.len() - 1]),
    );

    // Throughput: a second receiver stream, drained after 5,000 sessions end at once.
    let stream: Value = client
        .post(format!("{keycard}/ssf/streams"))
        .bearer_auth(CREDENTIAL)
        .json(&json!({ "delivery": { "method": "urn:ietf:rfc:8936" }, "description": "throughput" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let endpoint = stream["delivery"]["endpoint_url"].as_str().unwrap().to_owned();
    drain(&client, &endpoint).await;
    let mut last = String::new();
    for _ in 0..BULK_SESSIONS {
        let login: Value =
            client.post(format!("{keycard}/login")).json(&credentials).send().await.unwrap().json().await.unwrap();
        last = login["access_token"].as_str().unwrap().to_owned();
    }
    let response = client.delete(format!("{keycard}/logout?scope=global")).bearer_auth(&last).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let start = Instant::now();
    let delivered = drain(&client, &endpoint).await;
    let elapsed = start.elapsed();
    println!(
        "transmitter: {delivered} session-revoked SETs (ES256) delivered and acknowledged in {:.2} s: {:.0} events/s",
        elapsed.as_secs_f64(),
        delivered as f64 / elapsed.as_secs_f64()
    );
}

/// Polls `endpoint` (returnImmediately, 1000 at a time, acknowledging) until it is empty.
async fn drain(client: &reqwest::Client, endpoint: &str) -> usize {
    let mut ack: Vec<String> = Vec::new();
    let mut total = 0;
    loop {
        let answer: Value = client
            .post(endpoint)
            .bearer_auth(CREDENTIAL)
            .json(&json!({ "ack": ack, "maxEvents": 1000, "returnImmediately": true }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let sets = answer["sets"].as_object().unwrap();
        ack = sets.keys().cloned().collect();
        total += ack.len();
        if ack.is_empty() {
            return total;
        }
    }
}

/// The `resource_server` example's stack on a port of its own; its base URL.
async fn start_resource_server(keycard: &str) -> String {
    let verifier = JwksVerifier::builder().issuer(keycard).no_audience().build().await.unwrap();
    let feed = RevocationFeed::builder(&verifier, CREDENTIAL).start().await.unwrap();
    let jwt = verifier.jwt_config_builder::<OidcClaims>().revocation(feed).build().unwrap();
    let app = axum::Router::new()
        .route(
            "/protected",
            axum::routing::get(|jwt: keycard_axum::Jwt<OidcClaims>| async move {
                axum::Json(json!({ "logged_in_as": jwt.sub }))
            }),
        )
        .layer(jwt.layer());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}
