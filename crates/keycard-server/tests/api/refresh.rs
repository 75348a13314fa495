use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn refresh_rotates_the_refresh_token_and_keeps_the_session() {
    let app = spawn_app().await;
    let first = app.user_with_tokens("alice").await;

    let response = app.refresh(&first.refresh).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let second = TokenPair::from_body(&response.json().await.unwrap());
    assert_ne!(second.refresh, first.refresh);
    let (old, new) = (claims_of(&first.refresh), claims_of(&second.refresh));
    assert_eq!(old["sid"], new["sid"]);
    assert_ne!(old["jti"], new["jti"]);
    assert_eq!(claims_of(&second.access)["fresh"], false);
    assert_eq!(app.get("/protected", Some(&second.access)).await.status(), StatusCode::OK);

    // The new refresh token rotates again.
    let third = TokenPair::from_body(&app.refresh(&second.refresh).await.json().await.unwrap());
    assert_eq!(app.get("/protected", Some(&third.access)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_the_whole_session() {
    let app = spawn_app().await;
    let first = app.user_with_tokens("alice").await;
    let second = TokenPair::from_body(&app.refresh(&first.refresh).await.json().await.unwrap());

    assert_401(app.refresh(&first.refresh).await, "Refresh token reused: the session has been ended").await;

    // Everything of that session is dead: the newest refresh token and its access token.
    assert_401(app.refresh(&second.refresh).await, "Token has been revoked").await;
    assert_401(app.get("/protected", Some(&second.access)).await, "Token has been revoked").await;
    assert_401(app.get("/protected", Some(&first.access)).await, "Token has been revoked").await;
    // A new login works.
    let again = app.login_tokens("alice", PASSWORD).await;
    assert_eq!(app.get("/protected", Some(&again.access)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn refresh_accepts_only_refresh_tokens() {
    let app = spawn_app().await;
    let tokens = app.user_with_tokens("alice").await;
    assert_401(app.refresh(&tokens.access).await, "Only refresh tokens are allowed").await;
    let none = app.client.post(app.url("/token/refresh")).send().await.unwrap();
    assert_401(none, "Missing Authorization Header").await;
    // The refused attempts did not burn the refresh token.
    assert_eq!(app.refresh(&tokens.refresh).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn concurrent_refreshes_with_one_token_let_at_most_one_succeed() {
    let app = spawn_app().await;
    let tokens = app.user_with_tokens("alice").await;
    let responses = futures::future::join_all((0..20).map(|_| app.refresh(&tokens.refresh))).await;
    let ok = responses.iter().filter(|r| r.status() == StatusCode::OK).count();
    assert!(ok <= 1, "{ok} refreshes succeeded");
    assert!(responses.iter().all(|r| matches!(r.status(), StatusCode::OK | StatusCode::UNAUTHORIZED)));
}

#[tokio::test]
async fn a_role_granted_meanwhile_appears_at_the_next_refresh() {
    let app = spawn_app().await;
    let tokens = app.user_with_tokens("alice").await;
    assert_eq!(claims_of(&tokens.access)["roles"], serde_json::json!([]));
    let out = run_cli(&["user", "grant", "alice", "admin", "--database-url", app.database_url()], "", &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let refreshed = TokenPair::from_body(&app.refresh(&tokens.refresh).await.json().await.unwrap());
    assert_eq!(claims_of(&refreshed.access)["roles"], serde_json::json!(["admin"]));
    assert_eq!(app.get("/admin/users", Some(&refreshed.access)).await.status(), StatusCode::OK);
}
