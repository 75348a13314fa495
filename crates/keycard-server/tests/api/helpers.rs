//! Test harness: a real keycard on port 0 with a fresh SQLite file, driven over HTTP.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keycard_server::settings::Argon2Settings;
use keycard_server::{Application, Settings};
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

pub fn settings(dir: &Path) -> Settings {
    let mut settings = Settings::new(
        "127.0.0.1:0",
        format!("sqlite://{}", dir.join("keycard.db").display()),
        SecretString::from(SECRET),
    );
    settings.argon2 = cheap_argon2();
    // Per-address limits are tested on their own; the rest of the suite logs in freely.
    settings.rate_limit_per_minute = 0;
    settings
}

/// A running server and what it needs to be restarted on the same database.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub dir: Arc<TempDir>,
    pub settings: Settings,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut settings = settings(dir.path());
    configure(&mut settings);
    start(settings, dir, Arc::new(ManualClock::starting_now())).await
}

async fn start(settings: Settings, dir: Arc<TempDir>, clock: Arc<ManualClock>) -> TestApp {
    let app = Application::build_with_clock(settings.clone(), clock.clone()).await.unwrap();
    let address = format!("http://{}", app.local_addr());
    let (tx, rx) = oneshot::channel();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    TestApp {
        address,
        client: reqwest::Client::builder().build().unwrap(),
        clock,
        dir,
        settings,
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
        start(self.settings.clone(), self.dir.clone(), self.clock.clone()).await
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
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}
