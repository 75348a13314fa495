//! The `keycard` binary: CLI commands, defaults, secret handling, logs, shutdown.

use std::os::unix::fs::PermissionsExt;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[test]
fn gen_secret_prints_a_fresh_256_bit_secret() {
    let a = run_cli(&["gen-secret"], "", &[]);
    let b = run_cli(&["gen-secret"], "", &[]);
    assert!(a.status.success());
    let (a, b) = (String::from_utf8(a.stdout).unwrap(), String::from_utf8(b.stdout).unwrap());
    assert_eq!(a.trim().len(), 43, "{a}");
    assert_ne!(a, b);
}

#[test]
fn help_is_available_on_every_command() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["gen-secret", "--help"],
        &["user", "--help"],
        &["user", "add", "--help"],
        &["user", "grant", "--help"],
        &["user", "list", "--help"],
        &["keys", "--help"],
        &["keys", "list", "--help"],
        &["keys", "rotate", "--help"],
        &["user", "import", "--help"],
        &["config", "check", "--help"],
        &["completions", "--help"],
        &["man", "--help"],
    ] {
        let out = run_cli(args, "", &[]);
        assert!(out.status.success(), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"), "{args:?}");
    }
    let help = String::from_utf8(run_cli(&["--help"], "", &[]).stdout).unwrap();
    assert!(help.replace('\n', " ").contains("on SQLite or PostgreSQL"), "{help}");
    let serve = String::from_utf8(run_cli(&["serve", "--help"], "", &[]).stdout).unwrap();
    for var in [
        "KEYCARD_BIND",
        "KEYCARD_DATABASE_URL",
        "KEYCARD_ACCESS_TTL",
        "KEYCARD_REFRESH_TTL",
        "KEYCARD_JWT_SECRET",
        "KEYCARD_JWT_ALGORITHM",
        "KEYCARD_PUBLIC_URL",
        "KEYCARD_ISSUER",
        "KEYCARD_AUDIENCE",
        "KEYCARD_KEY_ENCRYPTION_KEY",
        "KEYCARD_KEY_ROTATION",
        "RUST_LOG",
    ] {
        assert!(serve.contains(var), "{var} missing from serve --help");
    }
}

#[test]
fn user_commands_manage_accounts_and_refuse_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("k.db").display());
    let out = run_cli(
        &["user", "add", "Dana", "--role", "admin", "--role", "ops", "--database-url", &db],
        "dana password\n",
        &[],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let again = run_cli(&["user", "add", "dana", "--database-url", &db], "dana password\n", &[]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let short = run_cli(&["user", "add", "eve", "--database-url", &db], "short\n", &[]);
    assert!(String::from_utf8_lossy(&short.stderr).contains("password must be at least 8"));
    let grant = run_cli(&["user", "grant", "nobody", "admin", "--database-url", &db], "", &[]);
    assert!(String::from_utf8_lossy(&grant.stderr).contains("no user named nobody"));

    let list = run_cli(&["user", "list", "--json", "--database-url", &db], "", &[]);
    let users: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(users[0]["username"], "Dana");
    assert_eq!(users[0]["roles"], json!(["admin", "ops"]));
    let table = String::from_utf8(run_cli(&["user", "list", "--database-url", &db], "", &[]).stdout).unwrap();
    assert!(table.contains("Dana") && table.contains("admin,ops"), "{table}");
}

#[tokio::test]
async fn serve_with_no_configuration_creates_its_database_and_a_private_secret() {
    let dir = tempfile::tempdir().unwrap();
    let server = Process::serve(dir.path(), &[]);
    let secret_file = dir.path().join("keycard.secret");
    assert!(dir.path().join("keycard.db").exists());
    assert_eq!(std::fs::metadata(&secret_file).unwrap().permissions().mode() & 0o777, 0o600);
    let secret = std::fs::read_to_string(&secret_file).unwrap();
    assert!(secret.trim().len() >= 43);
    let logs = server.logs();
    assert!(logs.contains("WARN") && logs.contains("keycard.secret"), "{logs}");
    assert!(!logs.contains(secret.trim()), "the secret was logged");
    assert!(logs.contains("database ready") && logs.contains("backend=sqlite"), "{logs}");

    let client = reqwest::Client::new();
    let body = json!({"username": "user", "password": "correct horse battery"});
    let response = client.post(format!("{}/register", server.address)).json(&body).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let (status, _) = server.terminate();
    assert!(status.success(), "exit status {status}");

    // Restarted in the same directory, it reuses the secret: old tokens stay valid.
    let server = Process::serve(dir.path(), &[]);
    assert_eq!(std::fs::read_to_string(&secret_file).unwrap(), secret);
    let logs = server.logs();
    assert!(logs.contains("using the JWT secret stored in the file"), "{logs}");
}

#[test]
fn a_short_secret_is_refused_at_start_without_being_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(keycard_bin())
        .args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env("KEYCARD_JWT_SECRET", "too-short-secret")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("at least 32"), "{stderr}");
    assert!(!stderr.contains("too-short-secret"), "{stderr}");
}

#[test]
fn a_set_but_empty_secret_variable_refuses_to_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(keycard_bin())
        .args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env("KEYCARD_JWT_SECRET", "")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("KEYCARD_JWT_SECRET is set but empty"), "{stderr}");
    assert!(!dir.path().join("keycard.secret").exists(), "a secret was generated");
}

/// Runs `keycard ARGS`, reads `keep` bytes of its output and closes the pipe, as `| head -c`
/// does; returns the exit status and stderr.
fn run_into_closing_pipe(args: &[&str], keep: usize) -> (std::process::ExitStatus, String) {
    use std::io::Read;
    let mut child = std::process::Command::new(keycard_bin())
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut head = vec![0; keep];
    stdout.read_exact(&mut head).unwrap();
    drop(stdout);
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    (child.wait().unwrap(), stderr)
}

#[tokio::test]
async fn a_closed_stdout_ends_the_cli_quietly_with_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("k.db").display());
    // Far more output than a pipe holds (64 KiB), so writes fail after the reader has gone.
    let store = keycard_store::Store::connect(&db).await.unwrap();
    let events: Vec<keycard_store::AuditEvent> = (0..1000)
        .map(|i| keycard_store::AuditEvent {
            username: Some(format!("user-{i}")),
            detail: Some(json!({ "padding": "x".repeat(200) })),
            ..keycard_store::AuditEvent::new(keycard_store::AuditKind::LoginFailed, i)
        })
        .collect();
    store.record_audit_batch(&events).await.unwrap();
    for i in 0..600 {
        let name = keycard_store::Username::parse(&format!("user-{i:04}-{}", "x".repeat(40))).unwrap();
        let new = keycard_store::NewUser {
            username: &name,
            email: None,
            password_hash: "$argon2id$fake",
            roles: &keycard_store::Roles::default(),
            now: i,
        };
        store.create_user(&new).await.unwrap();
    }
    store.close().await;
    for args in [
        &["audit", "--limit", "1000", "--database-url", &db][..],
        &["audit", "--json", "--limit", "1000", "--database-url", &db],
        &["user", "list", "--json", "--database-url", &db],
        &["user", "list", "--database-url", &db],
    ] {
        for _ in 0..3 {
            let (status, stderr) = run_into_closing_pipe(args, 300);
            assert!(status.success(), "{args:?}: {status}: {stderr}");
            assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{args:?}: {stderr}");
        }
    }
}

#[tokio::test]
async fn secrets_tokens_and_passwords_never_reach_the_logs_even_at_debug() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "log-test-secret-log-test-secret-log-test-secret";
    let server = Process::serve(dir.path(), &[("KEYCARD_JWT_SECRET", secret), ("RUST_LOG", "debug")]);
    let client = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", server.address);
    let password = "a very secret password";
    let body = json!({"username": "logger", "password": password});
    client.post(url("/register")).json(&body).send().await.unwrap();
    let tokens: serde_json::Value = client.post(url("/login")).json(&body).send().await.unwrap().json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    client.get(url("/protected")).bearer_auth(access).send().await.unwrap();
    client.post(url("/token/refresh")).bearer_auth(refresh).send().await.unwrap();
    client
        .post(url("/login"))
        .json(&json!({"username": "logger", "password": "wrong password!"}))
        .send()
        .await
        .unwrap();
    let (status, logs) = server.terminate();
    assert!(status.success());
    assert!(logs.contains("login failed") && logs.contains("logger"), "failed login must be logged with the username");
    assert!(logs.contains("127.0.0.1"), "failed login must be logged with the client address");
    let request_lines =
        logs.lines().filter(|l| l.contains("DEBUG") && l.contains("path=/protected") && l.contains("status=200"));
    assert_eq!(request_lines.count(), 1, "one DEBUG line per request: {logs}");
    for needle in [secret, password, "wrong password!", access, refresh, access.split('.').nth(2).unwrap()] {
        assert!(!logs.contains(needle), "logs contain a secret value: {needle}");
    }
}

#[tokio::test]
async fn the_cli_works_on_the_database_of_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Process::serve(dir.path(), &[]);
    let db = format!("sqlite://{}", dir.path().join("keycard.db").display());
    let out = run_cli(&["user", "add", "ops", "--role", "admin", "--database-url", &db], "ops password\n", &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let client = reqwest::Client::new();
    let body = json!({"username": "ops", "password": "ops password"});
    let response = client.post(format!("{}/login", server.address)).json(&body).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
