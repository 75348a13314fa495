use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn login_returns_a_bearer_pair_that_is_never_cached() {
    let app = spawn_app().await;
    app.register("alice", PASSWORD).await;
    let response = app.login("alice", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    let tokens = TokenPair::from_body(&body);

    let access = claims_of(&tokens.access);
    let refresh = claims_of(&tokens.refresh);
    assert_eq!(access["sub"], "alice");
    assert_eq!(access["type"], "access");
    assert_eq!(refresh["type"], "refresh");
    assert_eq!(access["fresh"], true);
    assert_eq!(access["roles"], serde_json::json!([]));
    assert_eq!(access["sid"], refresh["sid"]);
    assert_ne!(access["jti"], refresh["jti"]);
    assert_eq!(access["exp"].as_i64().unwrap() - access["iat"].as_i64().unwrap(), 900);
    assert_eq!(refresh["exp"].as_i64().unwrap() - refresh["iat"].as_i64().unwrap(), 30 * 86_400);
    assert_eq!(access["nbf"], access["iat"]);
}

#[tokio::test]
async fn unknown_user_and_wrong_password_get_the_same_answer() {
    let app = spawn_app().await;
    app.register("alice", PASSWORD).await;
    let wrong_password = app.login("alice", "not the password").await;
    let unknown_user = app.login("mallory", PASSWORD).await;
    let invalid_name = app.login("has space", PASSWORD).await;
    for response in [wrong_password, unknown_user, invalid_name] {
        assert_401(response, "Bad username or password").await;
    }
}

#[tokio::test]
async fn login_is_case_insensitive_and_keeps_the_registered_spelling() {
    let app = spawn_app().await;
    app.register("Alice", PASSWORD).await;
    let tokens = app.login_tokens("aLiCe", PASSWORD).await;
    assert_eq!(claims_of(&tokens.access)["sub"], "Alice");
    let body: serde_json::Value = app.get("/protected", Some(&tokens.access)).await.json().await.unwrap();
    assert_eq!(body["logged_in_as"], "Alice");
}

#[tokio::test]
async fn each_login_is_a_new_session() {
    let app = spawn_app().await;
    let first = app.user_with_tokens("bob").await;
    let second = app.login_tokens("bob", PASSWORD).await;
    assert_ne!(claims_of(&first.access)["sid"], claims_of(&second.access)["sid"]);
    // Logging out of one session leaves the other alone.
    assert_eq!(app.logout(&first.access).await.status(), StatusCode::OK);
    assert_eq!(app.get("/protected", Some(&second.access)).await.status(), StatusCode::OK);
    assert_eq!(app.refresh(&second.refresh).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn user_returns_the_account_from_the_database() {
    let app = spawn_app().await;
    let tokens = app.user_with_tokens("carol").await;
    let response = app.get("/user", Some(&tokens.access)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let user: serde_json::Value = response.json().await.unwrap();
    assert_eq!(user["username"], "carol");
    assert_eq!(user["email"], serde_json::Value::Null);
    assert_eq!(user["status"], "active");
    assert_eq!(user["roles"], serde_json::json!([]));
    assert!(user["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(user.get("password_hash").is_none());
    assert_401(app.get("/user", None).await, "Missing Authorization Header").await;
}
