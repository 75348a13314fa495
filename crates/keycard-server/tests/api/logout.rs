use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn logout_revokes_the_access_token_and_the_sessions_refresh_token() {
    let app = spawn_app().await;
    let tokens = app.user_with_tokens("alice").await;

    let response = app.logout(&tokens.access).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<serde_json::Value>().await.unwrap(), json!({"msg": "Token revoked"}));

    assert_401(app.get("/protected", Some(&tokens.access)).await, "Token has been revoked").await;
    assert_401(app.refresh(&tokens.refresh).await, "Token has been revoked").await;
    assert_401(app.logout(&tokens.access).await, "Token has been revoked").await;
}

#[tokio::test]
async fn logout_needs_an_access_token() {
    let app = spawn_app().await;
    let tokens = app.user_with_tokens("alice").await;
    assert_401(app.logout(&tokens.refresh).await, "Only non-refresh tokens are allowed").await;
    let none = app.client.delete(app.url("/logout")).send().await.unwrap();
    assert_401(none, "Missing Authorization Header").await;
}

#[tokio::test]
async fn revocation_survives_a_restart() {
    let app = spawn_app().await;
    let revoked = app.user_with_tokens("alice").await;
    let kept = app.login_tokens("alice", PASSWORD).await;
    assert_eq!(app.logout(&revoked.access).await.status(), StatusCode::OK);

    let app = app.restart().await;

    assert_401(app.get("/protected", Some(&revoked.access)).await, "Token has been revoked").await;
    assert_401(app.refresh(&revoked.refresh).await, "Token has been revoked").await;
    assert_eq!(app.get("/protected", Some(&kept.access)).await.status(), StatusCode::OK);
    assert_eq!(app.refresh(&kept.refresh).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn refresh_reuse_detection_survives_a_restart() {
    let app = spawn_app().await;
    let first = app.user_with_tokens("alice").await;
    let second = TokenPair::from_body(&app.refresh(&first.refresh).await.json().await.unwrap());
    let app = app.restart().await;
    assert_401(app.refresh(&first.refresh).await, "Refresh token reused: the session has been ended").await;
    assert_401(app.get("/protected", Some(&second.access)).await, "Token has been revoked").await;
}
