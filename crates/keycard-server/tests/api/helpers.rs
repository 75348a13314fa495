//! Test harness: a real keycard on port 0 with a fresh database, driven over HTTP.
//!
//! The database is a fresh SQLite file, or, with `KEYCARD_TEST_DATABASE=postgres`, a fresh schema
//! on the PostgreSQL server of `KEYCARD_TEST_POSTGRES_URL` (default: the CI machine's). With
//! `KEYCARD_TEST_REDIS_URL` set, every server also uses that Redis (keys under a prefix of its own).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keycard_server::settings::Argon2Settings;
use keycard_server::{Application, Settings};
use keycard_store::testing::PgSchema;
use keycard_token::ManualClock;
use reqwest::{Response, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const SECRET: &str = "integration-test-secret-0123456789abcdef";
pub const PASSWORD: &str = "correct horse battery";

/// Cheap Argon2 parameters so the suite stays fast; one test uses the defaults.
pub fn cheap_argon2() -> Argon2Settings {
    Argon2Settings { memory_kib: 1024, iterations: 1, parallelism: 1, concurrency: None }
}

/// Which database the suite runs on (`KEYCARD_TEST_DATABASE`: `sqlite`, the default, or `postgres`).
pub fn on_postgres() -> bool {
    match std::env::var("KEYCARD_TEST_DATABASE").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Err(_) => false,
        Ok(other) => panic!("KEYCARD_TEST_DATABASE={other}: use sqlite or postgres"),
    }
}

/// The Redis the suite uses, if any.
pub fn test_redis_url() -> Option<String> {
    std::env::var("KEYCARD_TEST_REDIS_URL").ok().filter(|url| !url.is_empty())
}

/// A database of the test's own: a file in `dir`, or a PostgreSQL schema (kept alive by the
/// returned handle, dropped with it).
pub async fn test_database(dir: &Path) -> (String, Option<Arc<PgSchema>>) {
    if on_postgres() {
        let schema = PgSchema::create().await.expect("KEYCARD_TEST_DATABASE=postgres needs a reachable PostgreSQL");
        (schema.url.clone(), Some(Arc::new(schema)))
    } else {
        (format!("sqlite://{}", dir.join("keycard.db").display()), None)
    }
}

pub fn settings(database_url: String) -> Settings {
    let mut settings = Settings::new("127.0.0.1:0", database_url, SecretString::from(SECRET));
    settings.argon2 = cheap_argon2();
    // Per-address limits are tested on their own; the rest of the suite logs in freely.
    settings.rate_limit_per_minute = 0;
    if let Some(url) = test_redis_url() {
        settings.redis_url = Some(SecretString::from(url));
        settings.redis_prefix = format!("keycard-test:{}:", uuid::Uuid::new_v4().simple());
    }
    settings
}

/// A running server and what it needs to be restarted on the same database.
pub struct TestApp {
    pub address: String,
    /// `http://` and the metrics listener's address, when `settings.metrics_bind` is set.
    pub metrics_address: Option<String>,
    pub client: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub dir: Arc<TempDir>,
    pub settings: Settings,
    pub schema: Option<Arc<PgSchema>>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let (database_url, schema) = test_database(dir.path()).await;
    let mut settings = settings(database_url);
    configure(&mut settings);
    start(settings, dir, schema, Arc::new(ManualClock::starting_now())).await
}

/// Another instance on the same database (and Redis), secret and clock as `app`: for
/// multi-instance tests.
pub async fn spawn_sibling(app: &TestApp, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = app.settings.clone();
    configure(&mut settings);
    start(settings, app.dir.clone(), app.schema.clone(), app.clock.clone()).await
}

/// A server on exactly `settings`, in `dir` (which may hold its SQLite database).
pub async fn spawn_in(settings: Settings, dir: Arc<TempDir>) -> TestApp {
    start(settings, dir, None, Arc::new(ManualClock::starting_now())).await
}

async fn start(
    settings: Settings,
    dir: Arc<TempDir>,
    schema: Option<Arc<PgSchema>>,
    clock: Arc<ManualClock>,
) -> TestApp {
    let app = Application::build_with_clock(settings.clone(), clock.clone()).await.unwrap();
    let address = format!("http://{}", app.local_addr());
    let metrics_address = app.metrics_addr().map(|addr| format!("http://{addr}"));
    let (tx, rx) = oneshot::channel();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    TestApp {
        address,
        metrics_address,
        client: reqwest::Client::builder().build().unwrap(),
        clock,
        dir,
        settings,
        schema,
        shutdown: Some(tx),
        server: Some(server),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Stops this server and starts a new one on the same database, secret and clock.
    pub async fn restart(mut self) -> TestApp {
        self.stop().await;
        start(self.settings.clone(), self.dir.clone(), self.schema.clone(), self.clock.clone()).await
    }

    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }

    pub fn database_url(&self) -> &str {
        &self.settings.database_url
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client.post(self.url(path)).json(body).send().await.unwrap()
    }

    pub async fn register(&self, username: &str, password: &str) -> Response {
        self.post_json("/register", &json!({ "username": username, "password": password })).await
    }

    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.post_json("/login", &json!({ "username": username, "password": password })).await
    }

    /// Registers `username` with [`PASSWORD`] and logs in.
    pub async fn user_with_tokens(&self, username: &str) -> TokenPair {
        assert_eq!(self.register(username, PASSWORD).await.status(), StatusCode::CREATED);
        self.login_tokens(username, PASSWORD).await
    }

    pub async fn login_tokens(&self, username: &str, password: &str) -> TokenPair {
        let response = self.login(username, password).await;
        assert_eq!(response.status(), StatusCode::OK);
        TokenPair::from_body(&response.json().await.unwrap())
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.client.post(self.url("/token/refresh")).bearer_auth(refresh_token).send().await.unwrap()
    }

    pub async fn logout(&self, access_token: &str) -> Response {
        self.client.delete(self.url("/logout")).bearer_auth(access_token).send().await.unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

#[derive(Debug, Clone)]
pub struct TokenPair {
    pub access: String,
    pub refresh: String,
}

impl TokenPair {
    pub fn from_body(body: &Value) -> Self {
        assert_eq!(body["token_type"], "Bearer");
        Self {
            access: body["access_token"].as_str().unwrap().to_owned(),
            refresh: body["refresh_token"].as_str().unwrap().to_owned(),
        }
    }
}

/// The claims of a token, decoded without verification (to look, never to trust).
pub fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// Asserts a 401 with a `WWW-Authenticate: Bearer` challenge and the given message.
pub async fn assert_401(response: Response, msg: &str) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers().get("www-authenticate").expect("WWW-Authenticate").to_str().unwrap().to_owned();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["msg"], msg);
}

pub async fn msg_of(response: Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    (status, body["msg"].as_str().unwrap_or_default().to_owned())
}

/// The `keycard` binary built for this test run.
pub fn keycard_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_keycard"))
}

/// `keycard` run as a process, with its stderr collected.
pub struct Process {
    pub child: Child,
    pub stderr: Arc<Mutex<String>>,
    pub address: String,
}

impl Process {
    /// Starts `keycard serve` in `dir` with `envs` (bind defaults to port 0) and waits until it
    /// listens.
    pub fn serve(dir: &Path, envs: &[(&str, &str)]) -> Process {
        let mut command = Command::new(keycard_bin());
        command
            .arg("serve")
            .current_dir(dir)
            .env_remove("KEYCARD_JWT_SECRET")
            .env_remove("RUST_LOG")
            .env("KEYCARD_BIND", "127.0.0.1:0")
            .env("KEYCARD_ARGON2_MEMORY_KIB", "1024")
            .env("KEYCARD_ARGON2_ITERATIONS", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            command.env(k, v);
        }
        let mut child = command.spawn().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = BufReader::new(child.stderr.take().unwrap());
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in reader.lines().map_while(Result::ok) {
                if let Some(addr) = line.split("addr=").nth(1) {
                    let _ = tx.send(addr.trim().to_owned());
                }
                let mut all = sink.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        let address = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => format!("http://{addr}"),
            Err(_) => {
                let _ = child.kill();
                panic!("keycard did not start: {}", stderr.lock().unwrap());
            }
        };
        Process { child, stderr, address }
    }

    pub fn logs(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The value of the first `key=value` field logged, waiting up to 10 s for it.
    pub fn logged_value(&self, key: &str) -> Option<String> {
        let field = format!(" {key}=");
        for _ in 0..200 {
            let logs = self.logs();
            if let Some(rest) = logs.split(&field).nth(1) {
                return rest.split_whitespace().next().map(str::to_owned);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let status = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().unwrap();
        assert!(status.success());
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(50));
                return (status, self.logs());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        panic!("keycard did not stop on SIGTERM: {}", self.logs());
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `keycard serve` in `dir` with `envs` (port 0, no `KEYCARD_JWT_SECRET` unless given),
/// expecting it to exit by itself (a configuration it refuses); kills it and panics if it is
/// still running after `limit`.
pub fn serve_until_exit(dir: &Path, envs: &[(&str, &str)], limit: Duration) -> std::process::Output {
    let mut command = Command::new(keycard_bin());
    command
        .arg("serve")
        .current_dir(dir)
        .env_remove("KEYCARD_JWT_SECRET")
        .env("KEYCARD_BIND", "127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("keycard serve {envs:?} is still running after {limit:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Runs `keycard ARGS` to completion with `stdin` piped in.
pub fn run_cli(args: &[&str], stdin: &str, envs: &[(&str, &str)]) -> std::process::Output {
    use std::io::Write;
    let mut command = Command::new(keycard_bin());
    command
        .args(args)
        .env("KEYCARD_ARGON2_MEMORY_KIB", "1024")
        .env("KEYCARD_ARGON2_ITERATIONS", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    // A command that ends before reading its input (a refused argument, say) closes the pipe:
    // its exit status and output tell what happened, not the broken pipe.
    match child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => panic!("writing to keycard's stdin: {e}"),
        _ => {}
    }
    child.wait_with_output().unwrap()
}

/// The Redis for tests that need one: `KEYCARD_TEST_REDIS_URL`, else the CI machine's. `None`
/// (with a printed reason) when it does not answer and backends are not required.
pub async fn redis_for_tests() -> Option<String> {
    let url = test_redis_url().unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());
    let authority = url.trim_start_matches("redis://").split(['/', '?']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default().to_owned();
    match tokio::net::TcpStream::connect(&host_port).await {
        Ok(_) => Some(url),
        Err(e) if !keycard_store::testing::backends_required() => {
            eprintln!("skipped: Redis at {host_port} is unreachable ({e}); set CI=1 to fail instead");
            None
        }
        Err(e) => panic!("Redis at {host_port} is unreachable ({e}) and CI requires it"),
    }
}

/// A server on a fresh PostgreSQL schema whatever `KEYCARD_TEST_DATABASE` says, with Redis if
/// `redis`; `None` when a backend is unreachable locally (the test is then skipped).
pub async fn spawn_on_postgres(redis: bool, configure: impl FnOnce(&mut Settings)) -> Option<TestApp> {
    let schema = PgSchema::create().await?;
    let mut settings = settings(schema.url.clone());
    settings.redis_url = None;
    if redis {
        settings.redis_url = Some(SecretString::from(redis_for_tests().await?));
        settings.redis_prefix = format!("keycard-test:{}:", uuid::Uuid::new_v4().simple());
    }
    configure(&mut settings);
    let dir = Arc::new(tempfile::tempdir().unwrap());
    Some(start(settings, dir, Some(Arc::new(schema)), Arc::new(ManualClock::starting_now())).await)
}

/// Waits until `app` refuses `access` on `/protected` (401); returns how long that took. Panics
/// after `limit`.
pub async fn refused_within(app: &TestApp, access: &str, limit: Duration) -> Duration {
    let start = std::time::Instant::now();
    loop {
        let status = app.get("/protected", Some(access)).await.status();
        if status == StatusCode::UNAUTHORIZED {
            return start.elapsed();
        }
        assert_eq!(status, StatusCode::OK);
        assert!(start.elapsed() < limit, "{} still accepts the token after {limit:?}", app.address);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Creates `root` with the admin role through the CLI and logs it in.
pub async fn admin_tokens(app: &TestApp) -> TokenPair {
    let out = run_cli(
        &["user", "add", "root", "--role", "admin", "--database-url", app.database_url()],
        "root password 123\n",
        &[],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    app.login_tokens("root", "root password 123").await
}
