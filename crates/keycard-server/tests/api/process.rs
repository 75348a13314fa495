//! The `keycard` binary when its log cannot be written, and how fast it exits on SIGTERM.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

/// A port nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn sigterm(child: &std::process::Child) {
    let status = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    assert!(status.success());
}

/// Waits for `child` to exit, at most `limit`; returns the status and how long it took.
fn wait_exit(child: &mut std::process::Child, limit: Duration) -> (std::process::ExitStatus, Duration) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, start.elapsed());
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("keycard still running {limit:?} after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[tokio::test]
async fn with_stderr_on_a_full_device_keycard_starts_serves_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let mut child = Command::new(keycard_bin())
        .arg("serve")
        .current_dir(dir.path())
        .env_remove("KEYCARD_JWT_SECRET")
        // Every request logs a line too.
        .env("RUST_LOG", "debug")
        .env("KEYCARD_BIND", format!("127.0.0.1:{port}"))
        .env("KEYCARD_ARGON2_MEMORY_KIB", "1024")
        .env("KEYCARD_ARGON2_ITERATIONS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(full)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("keycard exited at start with {status}");
        }
        if let Ok(response) = client.get(format!("{base}/healthz")).send().await {
            assert_eq!(response.status(), StatusCode::OK);
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "keycard did not start listening");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let body = json!({"username": "quiet", "password": PASSWORD});
    let registered = client.post(format!("{base}/register")).json(&body).send().await.unwrap();
    assert_eq!(registered.status(), StatusCode::CREATED);
    let wrong = json!({"username": "quiet", "password": "not the password"});
    let refused = client.post(format!("{base}/login")).json(&wrong).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED); // a WARN line, dropped
    let tokens: serde_json::Value =
        client.post(format!("{base}/login")).json(&body).send().await.unwrap().json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let protected = client.get(format!("{base}/protected")).bearer_auth(access).send().await.unwrap();
    assert_eq!(protected.status(), StatusCode::OK);

    sigterm(&child);
    let (status, _) = wait_exit(&mut child, Duration::from_secs(10));
    assert!(status.success(), "exit status {status}");
}

#[tokio::test]
async fn an_idle_server_exits_within_a_second_of_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Process::serve(dir.path(), &[]);
    assert_eq!(reqwest::get(format!("{}/healthz", server.address)).await.unwrap().status(), StatusCode::OK);
    sigterm(&server.child);
    let (status, took) = wait_exit(&mut server.child, Duration::from_secs(10));
    assert!(status.success(), "exit status {status}");
    assert!(took < Duration::from_secs(1), "exited {took:?} after SIGTERM: {}", server.logs());
}
