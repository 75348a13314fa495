//! Prometheus metrics on their own listener (`KEYCARD_METRICS_BIND`): what a scrape shows after
//! real traffic, that the public port never serves them, that they are off when unset, start-up
//! errors, shutdown, and the Grafana dashboard's queries.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// A server with metrics on a port of their own.
async fn spawn_with_metrics(configure: impl FnOnce(&mut keycard_server::Settings)) -> TestApp {
    spawn_app_with(|s| {
        s.metrics_bind = Some("127.0.0.1:0".to_owned());
        configure(s);
    })
    .await
}

/// `GET /metrics` on the metrics listener: the text, after checking status and content type.
async fn scrape(app: &TestApp) -> String {
    let base = app.metrics_address.as_deref().expect("metrics are on");
    let response = app.client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    response.text().await.unwrap()
}

/// The value of the sample `series` (name and labels exactly as exposed), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn value(text: &str, series: &str) -> f64 {
    sample(text, series).unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
}

fn login_requests(text: &str, status: u16) -> f64 {
    value(text, &format!(r#"keycard_http_requests_total{{route="/login",method="POST",status="{status}"}}"#))
}

#[tokio::test]
async fn a_scrape_shows_requests_by_route_template_logins_throttling_and_the_gauges() {
    // Arrange: three logins a minute per address.
    let app = spawn_with_metrics(|s| s.rate_limit_per_minute = 3).await;
    assert_eq!(app.register("mira", PASSWORD).await.status(), StatusCode::CREATED);
    let first = app.login_tokens("mira", PASSWORD).await;
    let second = app.login_tokens("mira", PASSWORD).await;
    assert_eq!(app.login("mira", "not the password").await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.login("mira", PASSWORD).await.status(), StatusCode::TOO_MANY_REQUESTS);
    let sid = claims_of(&first.access)["sid"].as_str().unwrap().to_owned();
    let ended =
        app.client.delete(app.url(&format!("/user/sessions/{sid}"))).bearer_auth(&second.access).send().await.unwrap();
    assert_eq!(ended.status(), StatusCode::OK);
    assert_eq!(app.get("/no/such/route/zqxjv", None).await.status(), StatusCode::NOT_FOUND);

    // Act
    let text = scrape(&app).await;

    // Assert: requests by template, never the raw path.
    let session = r#"route="/user/sessions/{id}",method="DELETE""#;
    assert_eq!(value(&text, &format!("keycard_http_requests_total{{{session},status=\"200\"}}")), 1.0);
    assert!(!text.contains(&sid), "a raw path (the session id) is a label:\n{text}");
    assert!(!text.contains("zqxjv"), "an unmatched raw path is a label:\n{text}");
    assert_eq!(value(&text, r#"keycard_http_requests_total{route="unmatched",method="GET",status="404"}"#), 1.0);
    assert_eq!((login_requests(&text, 200), login_requests(&text, 401), login_requests(&text, 429)), (2.0, 1.0, 1.0));
    assert!(!text.contains(r#"route="/metrics""#), "scrapes are not requests of the server:\n{text}");

    // The latency histogram: every login in `+Inf`, the buckets cumulative.
    let login = r#"route="/login",method="POST""#;
    assert_eq!(value(&text, &format!("keycard_http_request_duration_seconds_count{{{login}}}")), 4.0);
    assert!(value(&text, &format!("keycard_http_request_duration_seconds_sum{{{login}}}")) > 0.0);
    let buckets: Vec<(f64, f64)> = text
        .lines()
        .filter(|line| line.starts_with("keycard_http_request_duration_seconds_bucket{") && line.contains(login))
        .map(|line| {
            let le = line.split("le=\"").nth(1).unwrap().split('"').next().unwrap();
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap() };
            (le, line.rsplit(' ').next().unwrap().parse().unwrap())
        })
        .collect();
    assert_eq!(buckets.len(), 15, "{text}");
    assert_eq!(buckets.last(), Some(&(f64::INFINITY, 4.0)));
    assert!(buckets.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1), "{buckets:?}");

    // Logins by outcome and throttling.
    assert_eq!(value(&text, r#"keycard_logins_total{outcome="success"}"#), 2.0);
    assert_eq!(value(&text, r#"keycard_logins_total{outcome="bad_credentials"}"#), 1.0);
    assert_eq!(value(&text, r#"keycard_logins_total{outcome="rate_limited"}"#), 1.0);
    assert_eq!(value(&text, r#"keycard_logins_total{outcome="disabled"}"#), 0.0);
    assert_eq!(value(&text, r#"keycard_throttled_requests_total{reason="rate_limit",endpoint="login"}"#), 1.0);
    assert_eq!(value(&text, r#"keycard_throttled_requests_total{reason="rate_limit",endpoint="register"}"#), 0.0);
    assert_eq!(value(&text, "keycard_refresh_token_reuse_total"), 0.0);

    // Gauges read at scrape time, and the build.
    assert!(value(&text, "keycard_revocations") >= 1.0, "the ended session is revoked:\n{text}");
    assert_eq!(value(&text, "keycard_password_hash_queue_depth"), 0.0);
    assert!(value(&text, "keycard_password_hash_slots") >= 1.0);
    let max = value(&text, "keycard_db_pool_max_connections");
    let in_use = value(&text, r#"keycard_db_pool_connections{state="in_use"}"#);
    let idle = value(&text, r#"keycard_db_pool_connections{state="idle"}"#);
    assert!(max >= 1.0 && in_use + idle >= 1.0 && in_use + idle <= max, "{max} {in_use} {idle}");
    assert_eq!(value(&text, &format!(r#"keycard_build_info{{version="{}"}}"#, env!("CARGO_PKG_VERSION"))), 1.0);
    assert!(text.contains("# TYPE keycard_http_request_duration_seconds histogram"), "{text}");
    assert!(text.contains("# TYPE keycard_logins_total counter"), "{text}");
}

#[tokio::test]
async fn lockouts_disabled_accounts_and_refresh_reuse_are_counted() {
    let app = spawn_with_metrics(|s| s.throttle.max_failures = 2).await;
    let admin = admin_tokens(&app).await;
    let tokens = app.user_with_tokens("otto").await;
    // Reuse: the first refresh token presented again after its rotation.
    assert_eq!(app.refresh(&tokens.refresh).await.status(), StatusCode::OK);
    assert_eq!(app.refresh(&tokens.refresh).await.status(), StatusCode::UNAUTHORIZED);
    // Two failures start a lock-out; the next login is refused without a password check.
    for _ in 0..2 {
        assert_eq!(app.login("otto", "not the password").await.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(app.login("otto", PASSWORD).await.status(), StatusCode::TOO_MANY_REQUESTS);
    // The right password of a disabled account.
    assert_eq!(app.register("pia", PASSWORD).await.status(), StatusCode::CREATED);
    let disabled =
        app.client.post(app.url("/admin/users/pia/disable")).bearer_auth(&admin.access).send().await.unwrap();
    assert_eq!(disabled.status(), StatusCode::OK);
    assert_eq!(app.login("pia", PASSWORD).await.status(), StatusCode::UNAUTHORIZED);

    let text = scrape(&app).await;
    assert_eq!(value(&text, "keycard_refresh_token_reuse_total"), 1.0);
    assert_eq!(value(&text, "keycard_login_lockouts_total"), 1.0);
    assert_eq!(value(&text, r#"keycard_logins_total{outcome="locked"}"#), 1.0);
    assert_eq!(value(&text, r#"keycard_throttled_requests_total{reason="lockout",endpoint="login"}"#), 1.0);
    assert_eq!(value(&text, r#"keycard_logins_total{outcome="bad_credentials"}"#), 2.0);
    assert_eq!(value(&text, r#"keycard_logins_total{outcome="disabled"}"#), 1.0);
    // root's and otto's logins.
    assert_eq!(value(&text, r#"keycard_logins_total{outcome="success"}"#), 2.0);
    let refresh = r#"route="/token/refresh",method="POST""#;
    assert_eq!(value(&text, &format!("keycard_http_requests_total{{{refresh},status=\"401\"}}")), 1.0);
}

#[tokio::test]
async fn metrics_are_never_served_on_the_public_port() {
    let app = spawn_with_metrics(|_| {}).await;
    let metrics = app.metrics_address.clone().unwrap();
    assert_ne!(metrics, app.address);
    for path in ["/metrics", "/metrics/"] {
        let (status, msg) = msg_of(app.get(path, None).await).await;
        assert_eq!((status, msg.as_str()), (StatusCode::NOT_FOUND, "Not found"), "{path}");
    }
    // And the metrics listener serves nothing else.
    let other = app.client.get(format!("{metrics}/login")).send().await.unwrap();
    assert_eq!(msg_of(other).await, (StatusCode::NOT_FOUND, "Not found".to_owned()));
    let post = app.client.post(format!("{metrics}/metrics")).send().await.unwrap();
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn metrics_are_off_when_unset() {
    let app = spawn_app().await;
    assert!(app.metrics_address.is_none());
    assert!(app.settings.metrics_bind.is_none());
    assert_eq!(app.get("/metrics", None).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn scrapes_during_load_do_not_disturb_serving() {
    let app = spawn_with_metrics(|_| {}).await;
    let tokens = app.user_with_tokens("lena").await;
    let load: Vec<_> = (0..8)
        .map(|_| {
            let (client, url, access) = (app.client.clone(), app.url("/protected"), tokens.access.clone());
            tokio::spawn(async move {
                for _ in 0..50 {
                    let response = client.get(&url).bearer_auth(&access).send().await.unwrap();
                    assert_eq!(response.status(), StatusCode::OK);
                }
            })
        })
        .collect();
    let mut scrapes = 0;
    while !load.iter().all(|task| task.is_finished()) {
        scrape(&app).await;
        scrapes += 1;
    }
    for task in load {
        task.await.unwrap();
    }
    let text = scrape(&app).await;
    assert_eq!(value(&text, r#"keycard_http_requests_total{route="/protected",method="GET",status="200"}"#), 400.0);
    assert!(scrapes >= 1);
}

/// Every `keycard_*` metric the dashboard queries is one the server exposes, and it has the
/// panels it promises.
#[tokio::test]
async fn the_grafana_dashboard_parses_and_queries_only_exposed_metrics() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/grafana/keycard.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    let titles: Vec<String> = panels.iter().map(|p| p["title"].as_str().unwrap().to_lowercase()).collect();
    for topic in ["request rate", "latency", "errors", "logins", "throttl", "reuse", "revocation", "hash queue", "pool"]
    {
        assert!(titles.iter().any(|t| t.contains(topic)), "no panel about {topic}: {titles:?}");
    }

    let app = spawn_with_metrics(|_| {}).await;
    // The request families appear with their first series.
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
    let text = scrape(&app).await;
    let exposed: BTreeSet<&str> =
        text.lines().filter(|l| l.starts_with("# TYPE ")).filter_map(|l| l.split(' ').nth(2)).collect();
    let mut queried = BTreeSet::new();
    for panel in panels {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            for (i, _) in expr.match_indices("keycard_") {
                let name: String = expr[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                queried.insert(name);
            }
        }
    }
    assert!(queried.len() >= 10, "{queried:?}");
    for name in &queried {
        let family = ["_bucket", "_count", "_sum"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
        assert!(exposed.contains(family), "the dashboard queries {name}, which is not exposed: {exposed:?}");
    }
}

/// Waits for `child` to exit within `limit` (killing it after).
fn exit_within(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("keycard still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn keycard_serve_serves_metrics_on_the_metrics_bind_and_stops_with_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Process::serve(dir.path(), &[("KEYCARD_METRICS_BIND", "127.0.0.1:0")]);
    let metrics = server.logged_value("address").expect("the metrics listener's address is logged");
    let client = reqwest::Client::new();
    let body = json!({"username": "quinn", "password": PASSWORD});
    assert_eq!(client.post(format!("{}/register", server.address)).json(&body).send().await.unwrap().status(), 201);
    let text = client.get(format!("http://{metrics}/metrics")).send().await.unwrap().text().await.unwrap();
    assert_eq!(
        sample(&text, r#"keycard_http_requests_total{route="/register",method="POST",status="201"}"#),
        Some(1.0),
        "{text}"
    );
    assert!(server.logs().contains("metrics=127.0.0.1:0"), "the configuration summary names it");
    let (status, logs) = server.terminate();
    assert!(status.success(), "{status}: {logs}");
    assert!(std::net::TcpStream::connect(&metrics).is_err(), "the metrics listener is closed");
}

#[tokio::test]
async fn without_metrics_bind_keycard_serve_opens_no_metrics_listener() {
    let dir = tempfile::tempdir().unwrap();
    // An empty value (an unexpanded `$VAR`) is unset too.
    let server = Process::serve(dir.path(), &[("KEYCARD_METRICS_BIND", "")]);
    assert!(server.logs().contains("metrics=off"), "{}", server.logs());
    assert!(!server.logs().contains("metrics listening"), "{}", server.logs());
}

#[tokio::test]
async fn a_metrics_bind_that_cannot_be_bound_stops_keycard_at_start_naming_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    for bind in [taken.as_str(), "not an address"] {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(keycard_bin())
            .arg("serve")
            .current_dir(dir.path())
            .env_remove("KEYCARD_JWT_SECRET")
            .env("KEYCARD_BIND", "127.0.0.1:0")
            .env("KEYCARD_METRICS_BIND", bind)
            .env("KEYCARD_ARGON2_MEMORY_KIB", "1024")
            .env("KEYCARD_ARGON2_ITERATIONS", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let status = exit_within(&mut child, Duration::from_secs(30));
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        assert!(!status.success(), "{bind}: {stderr}");
        assert!(stderr.contains(&format!("KEYCARD_METRICS_BIND={bind}")), "{bind}: {stderr}");
    }
}

#[tokio::test]
async fn the_metrics_listener_caps_connections_and_closes_silent_sockets() {
    use tokio::io::AsyncReadExt;

    async fn closed_within(socket: &mut tokio::net::TcpStream, limit: Duration) -> bool {
        let mut buf = [0u8; 64];
        matches!(tokio::time::timeout(limit, socket.read(&mut buf)).await, Ok(Ok(0) | Err(_)))
    }

    let app = spawn_with_metrics(|s| s.connections.header_read_timeout = Duration::from_secs(3)).await;
    let metrics = app.metrics_address.clone().unwrap();
    let addr = metrics.trim_start_matches("http://").to_owned();
    let started = Instant::now();
    // More silent sockets than the listener's cap of 64 (the public listener's is 10,000).
    let mut silent = Vec::new();
    for _ in 0..80 {
        silent.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    // The oldest made room for the newest, long before the header-read timeout.
    assert!(closed_within(&mut silent[0], Duration::from_secs(2)).await, "the cap did not close the oldest socket");
    assert!(started.elapsed() < Duration::from_secs(2));
    // A scrape on a fresh connection gets in: idle connections make room.
    let response = reqwest::Client::new().get(format!("{metrics}/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // And a socket that sends nothing is closed at the header-read timeout.
    let mut last = silent.pop().unwrap();
    assert!(closed_within(&mut last, Duration::from_secs(10)).await, "a silent socket is still open");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(2500) && took < Duration::from_secs(8), "closed after {took:?}");
}
