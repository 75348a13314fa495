use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn protected_requires_a_valid_access_token() {
    let app = spawn_app().await;
    let tokens = app.user_with_tokens("alice").await;

    assert_eq!(app.get("/protected", Some(&tokens.access)).await.status(), StatusCode::OK);
    let missing = app.get("/protected", None).await;
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    assert_401(missing, "Missing Authorization Header").await;
    assert_401(app.get("/protected", Some(&tokens.refresh)).await, "Only non-refresh tokens are allowed").await;
    let basic = app.client.get(app.url("/protected")).header("authorization", "Basic YTpi").send().await.unwrap();
    assert_401(basic, "Missing 'Bearer' type in 'Authorization' header. Expected 'Authorization: Bearer <JWT>'").await;
    assert_401(app.get("/protected", Some("not-a-jwt")).await, "Not enough segments").await;
}

#[tokio::test]
async fn a_token_signed_with_another_secret_is_refused() {
    let app = spawn_app().await;
    let other = spawn_app_with(|s| s.jwt_secret = "another-secret-another-secret-another-secret".into()).await;
    let foreign = other.user_with_tokens("alice").await;
    app.register("alice", PASSWORD).await;
    let response = app.get("/protected", Some(&foreign.access)).await;
    let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert_401(response, "Signature verification failed").await;
}

#[tokio::test]
async fn a_tampered_payload_is_refused() {
    let app = spawn_app().await;
    let tokens = app.user_with_tokens("alice").await;
    let parts: Vec<&str> = tokens.access.split('.').collect();
    let mut claims = claims_of(&tokens.access);
    claims["roles"] = serde_json::json!(["admin"]);
    let forged = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(claims.to_string()), parts[2]);
    assert_401(app.get("/admin/users", Some(&forged)).await, "Signature verification failed").await;
}

#[tokio::test]
async fn alg_none_is_refused() {
    let app = spawn_app().await;
    let tokens = app.user_with_tokens("alice").await;
    let payload = tokens.access.split('.').nth(1).unwrap();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
        for token in [format!("{header}.{payload}."), format!("{header}.{payload}.c2ln")] {
            let response = app.get("/protected", Some(&token)).await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{alg}");
        }
    }
}

#[tokio::test]
async fn an_expired_access_token_is_refused_by_the_injected_clock() {
    let app = spawn_app().await;
    let tokens = app.user_with_tokens("alice").await;
    app.clock.advance(15 * 60 - 1);
    assert_eq!(app.get("/protected", Some(&tokens.access)).await.status(), StatusCode::OK);
    app.clock.advance(1);
    assert_401(app.get("/protected", Some(&tokens.access)).await, "Token has expired").await;
    // The refresh token still works and yields a working access token.
    let response = app.refresh(&tokens.refresh).await;
    assert_eq!(response.status(), StatusCode::OK);
    let fresh = TokenPair::from_body(&response.json().await.unwrap());
    assert_eq!(app.get("/protected", Some(&fresh.access)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_one_second_access_ttl_is_honoured() {
    let app = spawn_app_with(|s| s.tokens.access_ttl = std::time::Duration::from_secs(1)).await;
    let tokens = app.user_with_tokens("alice").await;
    assert_eq!(
        claims_of(&tokens.access)["exp"].as_i64().unwrap() - claims_of(&tokens.access)["iat"].as_i64().unwrap(),
        1
    );
    app.clock.advance(1);
    assert_401(app.get("/protected", Some(&tokens.access)).await, "Token has expired").await;
}
