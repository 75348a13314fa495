use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn the_readme_seed_flow_works_with_default_argon2_parameters() {
    let app = spawn_app_with(|s| s.argon2 = Default::default()).await;
    let body = json!({"username": "user", "password": "correct horse battery"});

    let response = app.post_json("/register", &body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.json::<serde_json::Value>().await.unwrap(), json!({"msg": "User created successfully"}));

    let response = app.post_json("/login", &body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let tokens = TokenPair::from_body(&response.json().await.unwrap());

    let response = app.get("/protected", Some(&tokens.access)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<serde_json::Value>().await.unwrap(), json!({"logged_in_as": "user"}));
}

#[tokio::test]
async fn registering_a_taken_username_in_any_case_is_409() {
    let app = spawn_app().await;
    assert_eq!(app.register("Alice", PASSWORD).await.status(), StatusCode::CREATED);
    for name in ["Alice", "alice", "ALICE"] {
        let (status, msg) = msg_of(app.register(name, PASSWORD).await).await;
        assert_eq!((status, msg.as_str()), (StatusCode::CONFLICT, "User already exists"), "{name}");
    }
}

#[tokio::test]
async fn invalid_registrations_are_400_naming_the_field_and_rule() {
    let app = spawn_app().await;
    let long_name = "x".repeat(65);
    let cases = [
        (json!({"password": PASSWORD}), "missing field `username`"),
        (json!({"username": "bob"}), "missing field `password`"),
        (json!({"username": 5, "password": PASSWORD}), "field `username`"),
        (json!({"username": "", "password": PASSWORD}), "username must be 1 to 64 characters"),
        (json!({"username": long_name, "password": PASSWORD}), "username must be 1 to 64 characters"),
        (json!({"username": "bob smith", "password": PASSWORD}), "username must not contain whitespace"),
        (json!({"username": "bob\u{7}", "password": PASSWORD}), "username must not contain whitespace"),
        (json!({"username": "bob", "password": "short"}), "password must be at least 8 characters"),
        (json!({"username": "bob", "password": "p".repeat(129)}), "password must be at most 128 characters"),
        (json!({"username": "bob", "password": PASSWORD, "email": "not-an-email"}), "email must be a valid email"),
        (json!({"username": "bob", "password": PASSWORD, "email": 7}), "field `email`"),
        (json!([1, 2]), "expected a JSON object"),
        (json!(["bob", PASSWORD]), "expected a JSON object"),
        (json!({"username": "bob", "password": PASSWORD, "emial": "b@example.com"}), "unknown field `emial`"),
    ];
    for (body, expected) in cases {
        let (status, msg) = msg_of(app.post_json("/register", &body).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(msg.contains(expected), "{body}: {msg}");
    }
    // Nothing was created by the refused requests.
    assert_eq!(app.register("bob", PASSWORD).await.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn an_email_is_stored_when_given() {
    let app = spawn_app().await;
    let body = json!({"username": "erin", "password": PASSWORD, "email": "erin@example.com"});
    assert_eq!(app.post_json("/register", &body).await.status(), StatusCode::CREATED);
    let tokens = app.login_tokens("erin", PASSWORD).await;
    let user: serde_json::Value = app.get("/user", Some(&tokens.access)).await.json().await.unwrap();
    assert_eq!(user["email"], "erin@example.com");
}

#[tokio::test]
async fn bad_bodies_are_400_415_or_413_never_500() {
    let app = spawn_app().await;
    let post = |body: Vec<u8>, content_type: Option<&'static str>| {
        let mut request = app.client.post(app.url("/register")).body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        request.send()
    };
    let (status, msg) = msg_of(post(b"{\"username\": ".to_vec(), Some("application/json")).await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(msg.starts_with("Malformed JSON body"), "{msg}");
    assert_eq!(post(vec![0xff, 0xfe], Some("application/json")).await.unwrap().status(), StatusCode::BAD_REQUEST);
    let (status, _) =
        msg_of(post(b"username=a".to_vec(), Some("application/x-www-form-urlencoded")).await.unwrap()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(post(b"{}".to_vec(), None).await.unwrap().status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let huge = format!("{{\"username\":\"a\",\"password\":\"{}\"}}", "p".repeat(17 * 1024));
    let (status, msg) = msg_of(post(huge.into_bytes(), Some("application/json")).await.unwrap()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{msg}");
    let deep = format!("{}{}", "[".repeat(5_000), "]".repeat(5_000));
    assert_eq!(post(deep.into_bytes(), Some("application/json")).await.unwrap().status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn twenty_concurrent_registrations_of_one_name_create_exactly_one_account() {
    let app = spawn_app().await;
    let requests = (0..20).map(|i| {
        let name = if i % 2 == 0 { "race" } else { "RACE" };
        app.register(name, PASSWORD)
    });
    let statuses: Vec<StatusCode> = futures::future::join_all(requests).await.into_iter().map(|r| r.status()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CREATED).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CONFLICT).count(), 19, "{statuses:?}");
}

#[tokio::test]
async fn names_that_display_like_an_existing_account_are_refused() {
    let app = spawn_app().await;
    assert_eq!(app.register("alice", PASSWORD).await.status(), StatusCode::CREATED);
    // Issue 11: each of these registered a second "alice".
    let invisible = [
        "\u{3164}",
        "\u{115F}",
        "\u{1160}",
        "\u{FFA0}",
        "\u{2800}",
        "\u{E0001}",
        "\u{E0061}",
        "\u{E007F}",
        "\u{FE00}",
        "\u{FE0F}",
        "\u{061C}",
        "\u{1D173}",
        "\u{FFF9}",
        "\u{17B4}",
    ];
    for c in invisible {
        for name in [format!("alice{c}"), format!("{c}alice"), format!("ali{c}ce")] {
            let (status, msg) = msg_of(app.register(&name, PASSWORD).await).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{name:?}");
            assert!(msg.contains("invisible"), "{name:?}: {msg}");
        }
    }
}

#[tokio::test]
async fn an_account_registered_under_the_old_rule_still_logs_in_and_can_be_managed() {
    let app = spawn_app().await;
    // Created as the old rule allowed (straight into the store: today's parse refuses it).
    let legacy = "bob\u{3164}";
    let store = keycard_store::Store::connect(app.database_url()).await.unwrap();
    let hash = keycard_server::password::Passwords::new(&cheap_argon2())
        .unwrap()
        .hash(&keycard_store::Password::parse(PASSWORD).unwrap())
        .await
        .unwrap();
    let username = keycard_store::Username::existing(legacy).unwrap();
    let new = keycard_store::NewUser {
        username: &username,
        email: None,
        password_hash: &hash,
        roles: &keycard_store::Roles::default(),
        now: 1,
    };
    store.create_user(&new).await.unwrap();
    store.close().await;

    let tokens = app.login_tokens(legacy, PASSWORD).await;
    assert_eq!(claims_of(&tokens.access)["sub"], legacy);
    let me: serde_json::Value = app.get("/user", Some(&tokens.access)).await.json().await.unwrap();
    assert_eq!(me["username"], legacy);
    let refreshed = TokenPair::from_body(&app.refresh(&tokens.refresh).await.json().await.unwrap());
    let global = app.client.delete(app.url("/logout?scope=global")).bearer_auth(&refreshed.access).send().await;
    assert_eq!(global.unwrap().status(), StatusCode::OK);
    // It cannot be registered again, and `keycard user list` points it out.
    assert_eq!(app.register(legacy, PASSWORD).await.status(), StatusCode::BAD_REQUEST);
    let out = run_cli(&["user", "list", "--database-url", app.database_url()], "", &[]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("older username rule"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An admin can still disable it.
    let admin = admin_tokens(&app).await;
    let path = format!("/admin/users/{}/disable", "bob%E3%85%A4");
    let disabled = app.client.post(app.url(&path)).bearer_auth(&admin.access).send().await.unwrap();
    assert_eq!(disabled.status(), StatusCode::OK);
}
