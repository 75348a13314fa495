//! Faults: PostgreSQL stopped or unreachable while serving, Redis down, an instance killed in the
//! middle of a refresh storm. The database and Redis are reached through a [`FaultyProxy`], so a
//! test can break them without disturbing the servers the other tests share.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};

use crate::helpers::*;
use crate::proxy::{FaultyProxy, Mode};

const POSTGRES: &str = "127.0.0.1:5432";
const REDIS: &str = "127.0.0.1:6379";
const DB_TIMEOUT: Duration = Duration::from_secs(1);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// One instance whose database connections go through a proxy.
async fn instance_behind_a_database_proxy() -> Option<(TestApp, FaultyProxy)> {
    let proxy = FaultyProxy::start(POSTGRES).await;
    let app = spawn_on_postgres(false, |s| {
        s.database_url = proxy.url_for(&s.database_url, POSTGRES);
        s.database_timeout = DB_TIMEOUT;
        s.request_timeout = REQUEST_TIMEOUT;
    })
    .await?;
    Some((app, proxy))
}

/// While the database is away: every request that needs it answers 503 with the JSON message
/// within the request timeout, never a token that was not stored; what needs no database (a
/// valid access token, liveness) keeps working.
async fn requests_during_an_outage(app: &TestApp, session: &TokenPair) {
    for (name, response) in [
        ("login", app.login("alice", PASSWORD).await),
        ("register", app.register("newcomer", PASSWORD).await),
        ("refresh", app.refresh(&session.refresh).await),
        ("logout", app.logout(&session.access).await),
        ("user", app.get("/user", Some(&session.access)).await),
    ] {
        let started = Instant::now();
        let (status, msg) = msg_of(response).await;
        assert_eq!(
            (status, msg.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "Service temporarily unavailable"),
            "{name}"
        );
        assert!(started.elapsed() < REQUEST_TIMEOUT, "{name}");
    }
    let started = Instant::now();
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() < REQUEST_TIMEOUT);
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
    assert_eq!(app.get("/protected", Some(&session.access)).await.status(), StatusCode::OK);
}

/// After the database is back: keycard recovers by itself, without a restart.
async fn recovers(app: &TestApp, session: &TokenPair) {
    let started = Instant::now();
    while app.get("/readyz", None).await.status() != StatusCode::OK {
        assert!(started.elapsed() < Duration::from_secs(30), "not ready 30 s after the database came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The logout attempted during the outage did not happen; the session still works.
    let refreshed = app.refresh(&session.refresh).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    assert_eq!(app.login("alice", PASSWORD).await.status(), StatusCode::OK);
    assert_eq!(app.register("newcomer", PASSWORD).await.status(), StatusCode::CREATED);
}

/// One outage of the database (`mode`) while serving, and the recovery after it.
async fn database_outage(mode: Mode) {
    let Some((app, proxy)) = instance_behind_a_database_proxy().await else { return };
    let session = app.user_with_tokens("alice").await;
    proxy.set(mode);
    requests_during_an_outage(&app, &session).await;
    proxy.set(Mode::Up);
    recovers(&app, &session).await;
}

#[tokio::test]
async fn postgres_stopped_while_serving_answers_503_and_recovers_without_a_restart() {
    database_outage(Mode::Stopped).await;
}

#[tokio::test]
async fn postgres_unreachable_while_serving_answers_503_within_the_timeout_and_recovers() {
    database_outage(Mode::Unreachable).await;
}

#[tokio::test]
async fn with_redis_down_keycard_works_on_the_database_and_revocations_still_propagate() {
    let Some(a) = spawn_on_postgres(true, |_| {}).await else { return };
    let redis_url = a.settings.redis_url.as_ref().unwrap().expose_secret().to_owned();
    let proxy = FaultyProxy::start(REDIS).await;
    let through_proxy = SecretString::from(proxy.url_for(&redis_url, REDIS));
    let b = spawn_sibling(&a, |s| s.redis_url = Some(through_proxy.clone())).await;
    // The binary too, to see what it logs.
    let dir = tempfile::tempdir().unwrap();
    let c = Process::serve(
        dir.path(),
        &[
            ("KEYCARD_JWT_SECRET", SECRET),
            ("KEYCARD_DATABASE_URL", a.database_url()),
            ("KEYCARD_REDIS_URL", through_proxy.expose_secret()),
            ("KEYCARD_REDIS_PREFIX", &a.settings.redis_prefix),
            ("KEYCARD_RATE_LIMIT", "0"),
        ],
    );
    proxy.set(Mode::Stopped);

    // B and C work on the database alone: register, login, refresh, logout.
    let alice = b.user_with_tokens("alice").await;
    let on_c = c_login(&c, "alice").await;
    assert_eq!(b.refresh(&alice.refresh).await.status(), StatusCode::OK);
    // Throttling does not fail open: failures are counted in the database meanwhile.
    for _ in 0..5 {
        assert_401(b.login("alice", "wrong password").await, "Bad username or password").await;
    }
    assert_eq!(b.login("alice", PASSWORD).await.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(a.login("alice", PASSWORD).await.status(), StatusCode::TOO_MANY_REQUESTS);

    // A revocation made on A (publishing to a healthy Redis that B and C cannot hear) and one
    // made on B (which cannot publish) still reach everyone, by the periodic read.
    assert_eq!(a.logout(&alice.access).await.status(), StatusCode::OK);
    refused_within(&b, &alice.access, Duration::from_secs(2)).await;
    let response =
        reqwest::Client::new().delete(format!("{}/logout", c.address)).bearer_auth(&on_c).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    refused_within(&a, &on_c, Duration::from_secs(2)).await;
    refused_within(&b, &on_c, Duration::from_secs(2)).await;

    let ready: serde_json::Value = b.get("/readyz", None).await.json().await.unwrap();
    assert_eq!(ready["redis"], "down");
    let logs = c.logs();
    assert!(logs.contains("WARN") && logs.contains("redis is unreachable"), "{logs}");
    assert!(logs.contains("backend=postgres") && logs.contains("redis=true"), "{logs}");
    proxy.set(Mode::Up);
}

async fn c_login(c: &Process, username: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{}/login", c.address))
        .json(&serde_json::json!({ "username": username, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// What one storm worker knows about its session.
struct Session {
    refresh: String,
    /// A request was in flight to the killed instance: its outcome is unknown to the client.
    in_doubt: bool,
}

#[tokio::test]
async fn an_instance_killed_during_a_refresh_storm_leaves_no_session_half_rotated() {
    let Some(schema) = keycard_store::testing::PgSchema::create().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let envs =
        [("KEYCARD_JWT_SECRET", SECRET), ("KEYCARD_DATABASE_URL", schema.url.as_str()), ("KEYCARD_RATE_LIMIT", "0")];
    let victim = Process::serve(dir.path(), &envs);
    let survivor = Process::serve(dir.path(), &envs);
    let client = reqwest::Client::new();
    // No kept-alive connections: after the kill a request fails to connect (so it surely never
    // arrived) instead of failing on a pooled socket (outcome unknown). Without this, on a busy
    // machine every worker's next request went down a dead pooled connection before `dead` was
    // set, all 16 sessions ended in doubt and the test proved nothing.
    let fresh_connections = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let (victim_url, survivor_url) = (victim.address.clone(), survivor.address.clone());

    // 32 sessions, each refreshed in a loop by its own worker, alternating instances (enough that
    // some are surely not in flight at the victim when it dies).
    let mut sessions = Vec::new();
    for i in 0..32 {
        let name = format!("storm{i}");
        let body = serde_json::json!({ "username": name, "password": PASSWORD });
        let response = client.post(format!("{survivor_url}/register")).json(&body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let response = client.post(format!("{survivor_url}/login")).json(&body).send().await.unwrap();
        let pair = TokenPair::from_body(&response.json().await.unwrap());
        sessions.push(Arc::new(tokio::sync::Mutex::new(Session { refresh: pair.refresh, in_doubt: false })));
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let survivor_failures = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let rotations = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // Set once the victim has died: a request sent after that never reached it.
    let dead = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for session in &sessions {
        let (session, client, stop, failures) =
            (session.clone(), fresh_connections.clone(), stop.clone(), survivor_failures.clone());
        let (rotations, dead) = (rotations.clone(), dead.clone());
        let urls = [victim_url.clone(), survivor_url.clone()];
        workers.push(tokio::spawn(async move {
            let mut turn = 0usize;
            let mut victim_gone = false;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut s = session.lock().await;
                if s.in_doubt {
                    return;
                }
                let url = if victim_gone { &urls[1] } else { &urls[turn % 2] };
                turn += 1;
                let after_death = dead.load(std::sync::atomic::Ordering::SeqCst);
                let sent = client.post(format!("{url}/token/refresh")).bearer_auth(&s.refresh).send().await;
                match sent {
                    Ok(response) if response.status() == StatusCode::OK => {
                        match response.json::<serde_json::Value>().await {
                            Ok(body) => {
                                s.refresh = TokenPair::from_body(&body).refresh;
                                rotations.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                            // The connection died after the status line: outcome unknown.
                            Err(_) => s.in_doubt = true,
                        }
                    }
                    Ok(response) => {
                        panic!("{url} answered {} to a refresh with the current token", response.status())
                    }
                    // Sent to a process already dead, or no connection could be made: it never arrived.
                    Err(e) if *url == urls[0] && (after_death || e.is_connect()) => victim_gone = true,
                    // In flight when the process died: the client cannot know what happened.
                    Err(_) if *url == urls[0] => s.in_doubt = true,
                    Err(e) => {
                        failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        panic!("the surviving instance failed a request: {e}");
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut victim = victim;
    victim.child.kill().unwrap(); // SIGKILL
    victim.child.wait().unwrap();
    dead.store(true, std::sync::atomic::Ordering::SeqCst);
    // The storm goes on against the survivor alone for a while (alternate turns now fail fast
    // on the dead instance and mark their sessions in doubt).
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    assert_eq!(survivor_failures.load(std::sync::atomic::Ordering::Relaxed), 0);

    // Every session is whole: its current refresh token is the last one its client received
    // (which rotates), or, for a request cut off by the kill, either that one (the kill came
    // before the commit) or the one the dead instance stored and never delivered (then the old
    // one is a reuse, refused) -- never a 5xx, never a session that accepts both or neither
    // without saying why.
    let mut in_doubt = 0;
    for session in &sessions {
        let s = session.lock().await;
        let response =
            client.post(format!("{survivor_url}/token/refresh")).bearer_auth(&s.refresh).send().await.unwrap();
        if s.in_doubt {
            in_doubt += 1;
            assert!([StatusCode::OK, StatusCode::UNAUTHORIZED].contains(&response.status()), "{}", response.status());
        } else {
            assert_eq!(response.status(), StatusCode::OK, "a session the client saw rotate is broken");
        }
    }
    let rotations = rotations.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("refresh storm: {rotations} rotations, {in_doubt} of {} sessions in doubt at the kill", sessions.len());
    assert!(rotations > 100, "the storm was too weak to mean anything: {rotations} rotations");
    assert!(in_doubt < sessions.len(), "every session was in doubt: the test proves nothing");
    let ready = client.get(format!("{survivor_url}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    drop(schema);
}
