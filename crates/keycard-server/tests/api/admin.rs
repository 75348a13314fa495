use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn admin_users_is_403_without_the_admin_role() {
    let app = spawn_app().await;
    let tokens = app.user_with_tokens("alice").await;
    let response = app.get("/admin/users", Some(&tokens.access)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.headers()["www-authenticate"].to_str().unwrap().contains("insufficient_scope"));
    assert_eq!(response.json::<serde_json::Value>().await.unwrap()["msg"], "Admins only");
    assert_401(app.get("/admin/users", None).await, "Missing Authorization Header").await;
}

#[tokio::test]
async fn an_admin_created_by_the_cli_lists_users_without_hashes() {
    let app = spawn_app().await;
    app.register("alice", PASSWORD).await;
    let out = run_cli(
        &[
            "user",
            "add",
            "root",
            "--role",
            "admin",
            "--email",
            "root@example.com",
            "--database-url",
            app.database_url(),
        ],
        "root password 123\n",
        &[],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let tokens = app.login_tokens("root", "root password 123").await;
    assert_eq!(claims_of(&tokens.access)["roles"], serde_json::json!(["admin"]));
    let response = app.get("/admin/users", Some(&tokens.access)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(!text.contains("argon2") && !text.contains("password"), "{text}");
    let users: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let names: Vec<&str> = users.iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["alice", "root"]);
    assert_eq!(users[1]["roles"], serde_json::json!(["admin"]));
    assert_eq!(users[1]["email"], "root@example.com");
}

#[tokio::test]
async fn user_shows_role_changes_made_here_at_once_and_made_elsewhere_within_the_cache_ttl() {
    let app = spawn_app().await;
    let admin = admin_tokens(&app).await;
    let alice = app.user_with_tokens("alice").await;
    let roles = || async {
        let body: serde_json::Value = app.get("/user", Some(&alice.access)).await.json().await.unwrap();
        body["roles"].clone()
    };
    assert_eq!(roles().await, serde_json::json!([]));

    // Through this instance: the cached answer is forgotten at once.
    let response = app
        .client
        .put(app.url("/admin/users/alice/roles"))
        .bearer_auth(&admin.access)
        .json(&serde_json::json!({ "roles": ["editor"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(roles().await, serde_json::json!(["editor"]));

    // Elsewhere (the CLI, another process): within the TTL (1 s by default).
    let out = run_cli(&["user", "grant", "alice", "auditor", "--database-url", app.database_url()], "", &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let started = std::time::Instant::now();
    while roles().await != serde_json::json!(["auditor", "editor"]) {
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "the CLI's grant never showed");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// `PUT /admin/users/{name}/roles` as `admin`.
async fn put_roles(app: &TestApp, admin: &TokenPair, name: &str, roles: serde_json::Value) -> reqwest::Response {
    app.client
        .put(app.url(&format!("/admin/users/{name}/roles")))
        .bearer_auth(&admin.access)
        .json(&serde_json::json!({ "roles": roles }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn roles_are_bounded_in_number_and_length_with_a_400_naming_the_rule() {
    let app = spawn_app().await;
    let admin = admin_tokens(&app).await;
    app.register("alice", PASSWORD).await;
    let many = |n: usize| serde_json::json!((0..n).map(|i| format!("role-{i}")).collect::<Vec<_>>());
    let cases = [
        (many(33), "roles must be at most 32 per account"),
        (many(1000), "roles must be at most 32 per account"),
        (serde_json::json!(["r".repeat(65)]), "role must be 1 to 64 characters"),
    ];
    for (roles, expected) in cases {
        let (status, msg) = msg_of(put_roles(&app, &admin, "alice", roles).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{msg}");
        assert!(msg.starts_with(expected), "{msg}");
    }
    // The CLI holds to the same bounds.
    let mut args = vec!["user", "add", "bob", "--database-url", app.database_url()];
    let names: Vec<String> = (0..33).map(|i| format!("role-{i}")).collect();
    for name in &names {
        args.extend(["--role", name.as_str()]);
    }
    let out = run_cli(&args, "bob password 123\n", &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at most 32"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(put_roles(&app, &admin, "alice", many(32)).await.status(), StatusCode::OK);
    let out = run_cli(&["user", "grant", "alice", "one-more", "--database-url", app.database_url()], "", &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("32 roles"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn the_largest_account_the_rules_allow_gets_tokens_that_work_everywhere() {
    let app = spawn_app().await;
    let admin = admin_tokens(&app).await;
    // 64 four-byte characters, and 32 roles of 64 bytes: the largest claims there can be.
    let name = "\u{20000}".repeat(64);
    assert_eq!(app.register(&name, PASSWORD).await.status(), StatusCode::CREATED);
    let roles: Vec<String> = (0..32).map(|i| format!("r{i:02}{}", "x".repeat(61))).collect();
    let path_name = url_escape(&name);
    assert_eq!(put_roles(&app, &admin, &path_name, serde_json::json!(roles)).await.status(), StatusCode::OK);

    let tokens = app.login_tokens(&name, PASSWORD).await;
    for token in [&tokens.access, &tokens.refresh] {
        assert!("Bearer ".len() + token.len() <= keycard_axum::MAX_AUTHORIZATION_LEN, "{}", token.len());
    }
    assert_eq!(claims_of(&tokens.access)["roles"].as_array().unwrap().len(), 32);
    assert_eq!(app.get("/protected", Some(&tokens.access)).await.status(), StatusCode::OK);
    assert_eq!(app.get("/user", Some(&tokens.access)).await.status(), StatusCode::OK);
    let refreshed = TokenPair::from_body(&app.refresh(&tokens.refresh).await.json().await.unwrap());
    assert_eq!(app.logout(&refreshed.access).await.status(), StatusCode::OK);
}

/// Percent-encodes every byte that is not ASCII alphanumeric, for a path segment.
fn url_escape(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

#[tokio::test]
async fn the_last_active_admin_cannot_drop_the_role_or_be_disabled_over_http_or_the_cli() {
    let app = spawn_app().await;
    let root = admin_tokens(&app).await;

    // Alone: root may not drop its own admin role.
    let (status, msg) = msg_of(put_roles(&app, &root, "root", serde_json::json!(["ops"])).await).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(msg.contains("last active admin"), "{msg}");
    let users: Vec<serde_json::Value> = app.get("/admin/users", Some(&root.access)).await.json().await.unwrap();
    assert_eq!(users[0]["roles"], serde_json::json!(["admin"]));
    let out = run_cli(&["user", "disable", "root", "--database-url", app.database_url()], "", &[]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("last active admin"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // With a second admin, root may step down; then ops is the last one. root's token still
    // says admin (until it refreshes), but disabling ops is refused.
    let out = run_cli(
        &["user", "add", "ops", "--role", "admin", "--database-url", app.database_url()],
        "ops password 123\n",
        &[],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(put_roles(&app, &root, "root", serde_json::json!([])).await.status(), StatusCode::OK);
    let disable = app.client.post(app.url("/admin/users/ops/disable")).bearer_auth(&root.access).send().await.unwrap();
    let (status, msg) = msg_of(disable).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(msg.contains("last active admin"), "{msg}");
    let ops = app.login_tokens("ops", "ops password 123").await;
    assert_eq!(app.get("/admin/users", Some(&ops.access)).await.status(), StatusCode::OK);
}
