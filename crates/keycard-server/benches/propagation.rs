//! How long a revocation made on one instance takes to be refused by another: two keycard
//! instances on one PostgreSQL (a fresh schema), 100 logouts on instance A, each timed from A's
//! answer (the revocation is committed) to the first 401 from instance B on `/protected` with
//! the revoked token (B is polled over HTTP every 0.5 ms).
//!
//! Three ways, each measured: PostgreSQL `LISTEN`/`NOTIFY`; Redis pub/sub; and the periodic
//! re-read alone (the safety net when notifications are lost: Redis configured but unreachable).
//!
//! ```text
//! cargo bench -p keycard-server --bench propagation
//! ```
//!
//! Needs PostgreSQL (`KEYCARD_TEST_POSTGRES_URL`, default the CI machine's) and Redis
//! (`KEYCARD_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`). Prints median, 90th percentile
//! and maximum; asserts nothing about time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use keycard_server::settings::Argon2Settings;
use keycard_server::{Application, Settings};
use keycard_store::testing::PgSchema;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};

const REVOCATIONS: usize = 100;
const SECRET: &str = "propagation-bench-secret-0123456789abcdef";

#[derive(Clone, Copy)]
enum Path {
    ListenNotify,
    RedisPubSub,
    ResyncOnly,
}

impl Path {
    fn name(self) -> &'static str {
        match self {
            Path::ListenNotify => "PostgreSQL LISTEN/NOTIFY",
            Path::RedisPubSub => "Redis pub/sub",
            Path::ResyncOnly => "periodic re-read only (notifications lost)",
        }
    }
}

#[tokio::main]
async fn main() {
    println!("revocation propagation, {REVOCATIONS} logouts each, instance A -> instance B:");
    for path in [Path::ListenNotify, Path::RedisPubSub, Path::ResyncOnly] {
        let delays = measure(path).await;
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "  {:<44} median {:>7.2} ms   p90 {:>7.2} ms   max {:>7.2} ms",
            path.name(),
            ms(delays[delays.len() / 2]),
            ms(delays[delays.len() * 9 / 10]),
            ms(delays[delays.len() - 1]),
        );
    }
}

async fn start(settings: Settings) -> String {
    let app = Application::build(settings).await.unwrap();
    let address = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    address
}

/// Sorted delays of [`REVOCATIONS`] revocations along `path`.
async fn measure(path: Path) -> Vec<Duration> {
    let schema = PgSchema::create().await.expect("PostgreSQL");
    let redis = std::env::var("KEYCARD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let mut settings = Settings::new("127.0.0.1:0", schema.url.clone(), SecretString::from(SECRET));
    settings.argon2 = Argon2Settings { memory_kib: 1024, iterations: 1, parallelism: 1, concurrency: None };
    settings.rate_limit_per_minute = 0;
    settings.redis_prefix = format!("keycard-bench:{}:", uuid::Uuid::new_v4().simple());
    match path {
        Path::ListenNotify => {}
        Path::RedisPubSub => settings.redis_url = Some(SecretString::from(redis)),
        // A Redis nobody listens on: no notification ever arrives, only the re-read works.
        Path::ResyncOnly => settings.redis_url = Some(SecretString::from("redis://127.0.0.1:1".to_owned())),
    }
    let a = start(settings.clone()).await;
    let b = start(settings).await;
    let client = reqwest::Client::new();
    let credentials = json!({ "username": "bench", "password": "correct horse battery" });
    let response = client.post(format!("{a}/register")).json(&credentials).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);

    let mut delays = Vec::with_capacity(REVOCATIONS);
    for _ in 0..REVOCATIONS {
        let login: Value =
            client.post(format!("{a}/login")).json(&credentials).send().await.unwrap().json().await.unwrap();
        let access = login["access_token"].as_str().unwrap().to_owned();
        let check = || client.get(format!("{b}/protected")).bearer_auth(&access).send();
        assert_eq!(check().await.unwrap().status(), StatusCode::OK);
        let logout = client.delete(format!("{a}/logout")).bearer_auth(&access).send().await.unwrap();
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
        // Spread the logouts over the re-read period so its phase does not bias the figures.
        tokio::time::sleep(Duration::from_millis(37)).await;
    }
    delays.sort();
    delays
}
