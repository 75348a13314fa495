//! Account security: throttling, rate limits, password and username policy, sessions, password
//! change, disabling, roles, audit, TLS.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

async fn audit(app: &TestApp, admin: &TokenPair, query: &str) -> Vec<Value> {
    let response = app.get(&format!("/admin/audit{query}"), Some(&admin.access)).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["kind"].as_str().unwrap()).collect()
}

// ---- brute force and abuse ----

#[tokio::test]
async fn five_failed_logins_throttle_that_account_only_and_a_success_resets() {
    let app = spawn_app().await;
    app.register("alice", PASSWORD).await;
    app.register("bob", PASSWORD).await;
    for _ in 0..5 {
        assert_401(app.login("alice", "wrong password").await, "Bad username or password").await;
    }
    // Locked: even the right password is not checked.
    let response = app.login("alice", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    assert!(
        response.json::<Value>().await.unwrap()["msg"].as_str().unwrap().contains("Too many failed login attempts")
    );
    // Other accounts are unaffected; the name is matched canonically.
    assert_eq!(app.login("bob", PASSWORD).await.status(), StatusCode::OK);
    assert_eq!(app.login("ALICE", PASSWORD).await.status(), StatusCode::TOO_MANY_REQUESTS);

    app.clock.advance(30);
    assert_eq!(app.login("alice", PASSWORD).await.status(), StatusCode::OK);
    // The success reset the count: four more failures do not lock.
    for _ in 0..4 {
        assert_eq!(app.login("alice", "wrong password").await.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(app.login("alice", PASSWORD).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_back_off_grows_and_expires() {
    let app = spawn_app().await;
    app.register("carol", PASSWORD).await;
    for _ in 0..5 {
        app.login("carol", "wrong password").await;
    }
    app.clock.advance(30);
    app.login("carol", "wrong password").await; // the sixth failure: 60 s
    let response = app.login("carol", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((31..=60).contains(&retry), "{retry}");
    app.clock.advance(3600);
    assert_eq!(app.login("carol", PASSWORD).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_names_are_throttled_like_real_ones() {
    let app = spawn_app().await;
    for _ in 0..5 {
        assert_eq!(app.login("ghost", PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(app.login("ghost", PASSWORD).await.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn per_address_rate_limits_answer_429_with_retry_after() {
    let app = spawn_app_with(|s| s.rate_limit_per_minute = 3).await;
    for _ in 0..3 {
        assert_ne!(app.login("nobody", PASSWORD).await.status(), StatusCode::TOO_MANY_REQUESTS);
    }
    let response = app.login("nobody2", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    // Each endpoint has its own budget; other routes are not limited.
    assert_eq!(app.register("dave", PASSWORD).await.status(), StatusCode::CREATED);
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_configured_header_names_the_client() {
    let app = spawn_app_with(|s| {
        s.rate_limit_per_minute = 2;
        s.client_ip.header = Some(reqwest::header::HeaderName::from_static("x-forwarded-for"));
        s.client_ip.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let login = |ip: &'static str| {
        app.client
            .post(app.url("/login"))
            .header("x-forwarded-for", format!("203.0.113.9, {ip}"))
            .json(&json!({"username": "x", "password": PASSWORD}))
            .send()
    };
    for _ in 0..2 {
        assert_eq!(login("198.51.100.1").await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(login("198.51.100.1").await.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(login("198.51.100.2").await.unwrap().status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn login_time_does_not_reveal_whether_a_username_exists() {
    // Real Argon2 cost: without the dummy hash an unknown user would answer ~100x faster.
    let app = spawn_app_with(|s| {
        s.argon2 = Default::default();
        s.throttle.max_failures = 0;
    })
    .await;
    app.register("timing", PASSWORD).await;
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for i in 0..9 {
        for (name, samples) in [("timing", &mut known), (format!("nobody{i}").leak() as &str, &mut unknown)] {
            let start = Instant::now();
            assert_eq!(app.login(name, "wrong password!").await.status(), StatusCode::UNAUTHORIZED);
            samples.push(start.elapsed());
        }
    }
    known.sort();
    unknown.sort();
    // Other tests share the cores and noise only ever adds time, so the minimums are the robust
    // comparison; the medians get a looser bound. Without the dummy hash both ratios are ~0.01.
    let min_ratio = unknown[0].as_secs_f64() / known[0].as_secs_f64();
    let median_ratio = unknown[4].as_secs_f64() / known[4].as_secs_f64();
    assert!(
        (0.5..2.0).contains(&min_ratio),
        "fastest unknown/known = {min_ratio:.2} ({:?} vs {:?})",
        unknown[0],
        known[0]
    );
    assert!(
        (0.25..4.0).contains(&median_ratio),
        "median unknown/known = {median_ratio:.2} ({:?} vs {:?})",
        unknown[4],
        known[4]
    );
}

// ---- passwords and usernames ----

#[tokio::test]
async fn common_passwords_and_the_username_are_refused() {
    let app = spawn_app().await;
    for (password, rule) in
        [("password123", "too common"), ("iloveyou", "too common"), ("Frank-the-tank", "must not be the username")]
    {
        let (status, msg) = msg_of(app.register("frank-the-tank", password).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{password}");
        assert!(msg.contains(rule), "{password}: {msg}");
    }
    assert_eq!(app.register("frank", "🔑 four words with spaces 🔑").await.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn passwords_are_compared_after_nfkc_and_never_truncated() {
    let app = spawn_app().await;
    assert_eq!(app.register("gina", "ｆｕｌｌｗｉｄｔｈ ｐａｓｓ").await.status(), StatusCode::CREATED);
    assert_eq!(app.login("gina", "fullwidth pass").await.status(), StatusCode::OK);
    let long = "x".repeat(100) + "yz";
    assert_eq!(app.register("hank", &long).await.status(), StatusCode::CREATED);
    assert_eq!(app.login("hank", &("x".repeat(100) + "y!")).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn fullwidth_and_case_variants_are_one_account() {
    let app = spawn_app().await;
    assert_eq!(app.register("alice", PASSWORD).await.status(), StatusCode::CREATED);
    assert_eq!(app.register("ａｌｉｃｅ", PASSWORD).await.status(), StatusCode::CONFLICT);
    assert_eq!(app.register("ALICE", PASSWORD).await.status(), StatusCode::CONFLICT);
    let tokens = app.login_tokens("ＡＬＩＣＥ", PASSWORD).await;
    assert_eq!(claims_of(&tokens.access)["sub"], "alice");
    let (status, msg) = msg_of(app.register("al\u{200B}ice", PASSWORD).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(msg.contains("invisible"), "{msg}");
}

// ---- sessions ----

#[tokio::test]
async fn sessions_are_listed_with_the_current_one_marked_and_can_be_ended() {
    let app = spawn_app().await;
    let first = app.user_with_tokens("ivy").await;
    let second = app.login_tokens("ivy", PASSWORD).await;
    let sessions: Vec<Value> = app.get("/user/sessions", Some(&second.access)).await.json().await.unwrap();
    assert_eq!(sessions.len(), 2);
    let current: Vec<bool> = sessions.iter().map(|s| s["current"].as_bool().unwrap()).collect();
    assert_eq!(current.iter().filter(|c| **c).count(), 1);
    let mine = sessions.iter().find(|s| s["current"] == true).unwrap();
    assert_eq!(mine["id"], claims_of(&second.access)["sid"]);
    assert_eq!(mine["client_addr"], "127.0.0.1");
    for field in ["created_at", "last_used_at", "expires_at"] {
        assert!(mine[field].as_str().unwrap().ends_with('Z'), "{field}");
    }

    let other_sid = claims_of(&first.access)["sid"].as_str().unwrap().to_owned();
    let ended = app
        .client
        .delete(app.url(&format!("/user/sessions/{other_sid}")))
        .bearer_auth(&second.access)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), StatusCode::OK);
    assert_401(app.get("/protected", Some(&first.access)).await, "Token has been revoked").await;
    assert_401(app.refresh(&first.refresh).await, "Token has been revoked").await;
    assert_eq!(app.get("/protected", Some(&second.access)).await.status(), StatusCode::OK);

    // Someone else's session, or a made-up one, is 404.
    let mallory = app.user_with_tokens("mallory").await;
    let mine_now = claims_of(&second.access)["sid"].as_str().unwrap().to_owned();
    for id in [mine_now.as_str(), "not-a-uuid", "01a208e9-85ac-73cc-9e60-2d2cd15f9b5b"] {
        let r = app
            .client
            .delete(app.url(&format!("/user/sessions/{id}")))
            .bearer_auth(&mallory.access)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{id}");
    }
}

#[tokio::test]
async fn logout_scopes_end_this_all_or_all_other_sessions() {
    let app = spawn_app().await;
    let a = app.user_with_tokens("jack").await;
    let b = app.login_tokens("jack", PASSWORD).await;
    let c = app.login_tokens("jack", PASSWORD).await;
    let logout = |token: &str, query: &str| {
        app.client.delete(app.url(&format!("/logout{query}"))).bearer_auth(token.to_owned()).send()
    };

    let response = logout(&c.access, "?scope=others").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["sessions_ended"], 2);
    assert_401(app.get("/protected", Some(&a.access)).await, "Token has been revoked").await;
    assert_401(app.refresh(&b.refresh).await, "Token has been revoked").await;
    assert_eq!(app.get("/protected", Some(&c.access)).await.status(), StatusCode::OK);

    let d = app.login_tokens("jack", PASSWORD).await;
    assert_eq!(logout(&d.access, "?scope=global").await.unwrap().status(), StatusCode::OK);
    assert_401(app.get("/protected", Some(&c.access)).await, "Token has been revoked").await;
    assert_401(app.get("/protected", Some(&d.access)).await, "Token has been revoked").await;

    let e = app.login_tokens("jack", PASSWORD).await;
    let (status, msg) = msg_of(logout(&e.access, "?scope=everything").await.unwrap()).await;
    assert_eq!((status, msg.as_str()), (StatusCode::BAD_REQUEST, "scope must be local, global or others"));
    assert_eq!(app.get("/protected", Some(&e.access)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn changing_the_password_needs_a_fresh_token_and_ends_other_sessions() {
    let app = spawn_app().await;
    let other = app.user_with_tokens("kate").await;
    let current = app.login_tokens("kate", PASSWORD).await;
    let change =
        |token: String, body: Value| app.client.put(app.url("/user/password")).bearer_auth(token).json(&body).send();
    let new_password = "a brand new passphrase";

    let refreshed = TokenPair::from_body(&app.refresh(&other.refresh).await.json().await.unwrap());
    let body = json!({"current_password": PASSWORD, "new_password": new_password});
    assert_401(change(refreshed.access.clone(), body.clone()).await.unwrap(), "Fresh token required").await;
    let wrong = json!({"current_password": "not it at all", "new_password": new_password});
    assert_401(change(current.access.clone(), wrong).await.unwrap(), "Current password is incorrect").await;
    let common = json!({"current_password": PASSWORD, "new_password": "password1"});
    assert_eq!(change(current.access.clone(), common).await.unwrap().status(), StatusCode::BAD_REQUEST);

    let response = change(current.access.clone(), body).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["msg"], "Password changed");
    assert_401(app.get("/protected", Some(&refreshed.access)).await, "Token has been revoked").await;
    assert_eq!(app.get("/protected", Some(&current.access)).await.status(), StatusCode::OK);
    assert_eq!(app.login("kate", PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.login("kate", new_password).await.status(), StatusCode::OK);
}

// ---- disabling, roles, audit ----

#[tokio::test]
async fn an_admin_can_disable_and_enable_an_account() {
    let app = spawn_app().await;
    let admin = admin_tokens(&app).await;
    let victim = app.user_with_tokens("leo").await;
    let post = |path: String| app.client.post(app.url(&path)).bearer_auth(admin.access.clone()).send();

    let response = post("/admin/users/LEO/disable".into()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["status"], "disabled");
    assert_401(app.get("/protected", Some(&victim.access)).await, "Token has been revoked").await;
    assert_401(app.refresh(&victim.refresh).await, "Token has been revoked").await;
    assert_401(app.login("leo", PASSWORD).await, "Bad username or password").await;

    assert_eq!(post("/admin/users/leo/enable".into()).await.unwrap().status(), StatusCode::OK);
    assert_eq!(app.login("leo", PASSWORD).await.status(), StatusCode::OK);
    assert_eq!(post("/admin/users/nobody/disable".into()).await.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(post("/admin/users/root/disable".into()).await.unwrap().status(), StatusCode::BAD_REQUEST);
    let user = app.user_with_tokens("notadmin").await;
    let r = app.client.post(app.url("/admin/users/leo/disable")).bearer_auth(&user.access).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn disabling_from_the_cli_reaches_the_running_server_within_a_second() {
    let app = spawn_app().await;
    let victim = app.user_with_tokens("mia").await;
    assert_eq!(app.get("/protected", Some(&victim.access)).await.status(), StatusCode::OK);
    let out = run_cli(&["user", "disable", "mia", "--database-url", app.database_url()], "", &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let done = Instant::now();
    loop {
        let status = app.get("/protected", Some(&victim.access)).await.status();
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(done.elapsed() < Duration::from_secs(1), "still accepted after {:?}", done.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.login("mia", PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
    let out = run_cli(&["user", "enable", "mia", "--database-url", app.database_url()], "", &[]);
    assert!(out.status.success());
    assert_eq!(app.login("mia", PASSWORD).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn changed_roles_take_effect_at_the_next_refresh() {
    let app = spawn_app().await;
    let admin = admin_tokens(&app).await;
    let user = app.user_with_tokens("ned").await;
    let set = |roles: Value| {
        app.client
            .put(app.url("/admin/users/ned/roles"))
            .bearer_auth(admin.access.clone())
            .json(&json!({"roles": roles}))
            .send()
    };
    let response = set(json!(["admin", "ops"])).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["roles"], json!(["admin", "ops"]));
    assert_eq!(app.get("/admin/users", Some(&user.access)).await.status(), StatusCode::FORBIDDEN);
    let refreshed = TokenPair::from_body(&app.refresh(&user.refresh).await.json().await.unwrap());
    assert_eq!(claims_of(&refreshed.access)["roles"], json!(["admin", "ops"]));
    assert_eq!(app.get("/admin/users", Some(&refreshed.access)).await.status(), StatusCode::OK);
    assert_eq!(set(json!(["Not A Role"])).await.unwrap().status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn security_events_are_audited_without_secrets() {
    let app = spawn_app().await;
    let admin = admin_tokens(&app).await;
    app.register("olga", PASSWORD).await;
    app.login("olga", "wrong password").await;
    let tokens = app
        .client
        .post(app.url("/login"))
        .header("user-agent", "audit-test/1.0")
        .json(&json!({"username": "olga", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let tokens = TokenPair::from_body(&tokens.json().await.unwrap());
    let refreshed = TokenPair::from_body(&app.refresh(&tokens.refresh).await.json().await.unwrap());
    app.refresh(&tokens.refresh).await; // reuse
    let again = app.login_tokens("olga", PASSWORD).await;
    app.client.delete(app.url("/logout?scope=global")).bearer_auth(&again.access).send().await.unwrap();
    for _ in 0..5 {
        app.login("olga", "wrong again!").await;
    }

    let events = audit(&app, &admin, "?user=olga").await;
    assert_eq!(
        kinds(&events),
        [
            "throttling_started",
            "login_failed",
            "login_failed",
            "login_failed",
            "login_failed",
            "login_failed",
            "logout",
            "login_succeeded",
            "refresh_reuse",
            "refresh",
            "login_succeeded",
            "login_failed",
            "user_registered"
        ]
    );
    let login = events.iter().find(|e| e["user_agent"] == "audit-test/1.0").unwrap();
    assert_eq!(login["kind"], "login_succeeded");
    assert_eq!(login["client_addr"], "127.0.0.1");
    assert_eq!(login["session_id"], claims_of(&tokens.access)["sid"]);
    let logout = events.iter().find(|e| e["kind"] == "logout").unwrap();
    assert_eq!(logout["detail"]["scope"], "global");

    let failed = audit(&app, &admin, "?kind=login_failed&limit=2").await;
    assert_eq!(failed.len(), 2);
    assert!(audit(&app, &admin, "?since=2999-01-01T00:00:00Z").await.is_empty());
    assert_eq!(app.get("/admin/audit?kind=nonsense", Some(&admin.access)).await.status(), StatusCode::BAD_REQUEST);

    let text = app.get("/admin/audit?limit=1000", Some(&admin.access)).await.text().await.unwrap();
    for secret in [PASSWORD, "wrong password", &tokens.access, &refreshed.refresh, &again.access] {
        assert!(!text.contains(secret), "audit log contains a secret");
    }
    let cli = run_cli(
        &["audit", "--user", "olga", "--kind", "logout", "--json", "--database-url", app.database_url()],
        "",
        &[],
    );
    assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
    let from_cli: Vec<Value> = serde_json::from_slice(&cli.stdout).unwrap();
    assert_eq!(kinds(&from_cli), ["logout"]);
}

// ---- TLS ----

#[tokio::test]
async fn keycard_serves_https_with_hsts_when_given_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let app = spawn_app_with(|s| s.tls = Some(keycard_server::settings::TlsFiles { cert, key })).await;
    let port = app.address.rsplit(':').next().unwrap().to_owned();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let base = format!("https://localhost:{port}");
    let response = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["strict-transport-security"], "max-age=63072000; includeSubDomains");
    let body = json!({"username": "tls-user", "password": PASSWORD});
    assert_eq!(client.post(format!("{base}/register")).json(&body).send().await.unwrap().status(), StatusCode::CREATED);
    assert_eq!(client.post(format!("{base}/login")).json(&body).send().await.unwrap().status(), StatusCode::OK);
    // Plain HTTP to the TLS port gets no answer it could mistake for success.
    assert!(
        reqwest::get(format!("http://localhost:{port}/healthz"))
            .await
            .map(|r| r.status() != StatusCode::OK)
            .unwrap_or(true)
    );
}
