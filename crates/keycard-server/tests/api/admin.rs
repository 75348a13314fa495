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
