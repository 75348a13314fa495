//! Issue 15 on the server: the Shared Signals transmitter (discovery, streams, status,
//! verification, RFC 8936 polling of CAEP session-revoked SETs) and RFC 7662 introspection,
//! over real HTTP, with restarts and on PostgreSQL across instances.

use std::time::{Duration, Instant};

use keycard_token::{Algorithm, Keys, SecurityEvent, SystemClock, TokenSettings, Tokens};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::helpers::*;

const RECEIVER: &str = "resource-server-credential-0123456789";
const OTHER_RECEIVER: &str = "another-resource-server-credential-abcdef";
const SESSION_REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
const VERIFICATION: &str = "https://schemas.openid.net/secevent/ssf/event-type/verification";

fn transmitter(settings: &mut keycard_server::settings::Settings) {
    settings.signing.algorithm = Algorithm::ES256;
    settings.resource_server_tokens = vec![SecretString::from(RECEIVER), SecretString::from(OTHER_RECEIVER)];
}

async fn spawn_transmitter() -> TestApp {
    spawn_app_with(transmitter).await
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    credential: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(credential);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
}

async fn create_stream(app: &TestApp, credential: &str) -> Value {
    let body = json!({ "delivery": { "method": "urn:ietf:rfc:8936" }, "events_requested": [SESSION_REVOKED], "description": "test" });
    let (status, config) = send(app, reqwest::Method::POST, "/ssf/streams", credential, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{config}");
    config
}

async fn poll(app: &TestApp, stream: &Value, body: Value) -> Value {
    // By id: after a restart on port 0 the server's address (and so the endpoint URL) changes.
    let path = format!("/ssf/poll/{}", stream["stream_id"].as_str().unwrap());
    let (status, answer) = send(app, reqwest::Method::POST, &path, RECEIVER, Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

/// The SETs of a poll answer, verified with the published JWKS as an outside receiver would.
async fn verified_sets(app: &TestApp, answer: &Value) -> Vec<SecurityEvent> {
    let config: Value = app.get("/.well-known/ssf-configuration", None).await.json().await.unwrap();
    let jwks = app.client.get(config["jwks_uri"].as_str().unwrap()).send().await.unwrap().bytes().await.unwrap();
    let (keys, skipped) = Keys::from_jwks(&jwks).unwrap();
    assert!(skipped.is_empty());
    let settings = TokenSettings { issuer: Some(config["issuer"].as_str().unwrap().to_owned()), ..Default::default() };
    let tokens = Tokens::new(keys, settings, std::sync::Arc::new(SystemClock));
    let sets = answer["sets"].as_object().unwrap();
    sets.iter()
        .map(|(jti, set)| {
            let event = tokens.verify_security_event(set.as_str().unwrap()).unwrap();
            assert_eq!(event.jti(), jti);
            assert_eq!(event.header.typ.as_deref(), Some("secevent+jwt"));
            assert!(!event.claims.contains_key("sub") && !event.claims.contains_key("exp"));
            event
        })
        .collect()
}

fn revoked_session(event: &SecurityEvent) -> (String, String, Value) {
    let body = event.claims["events"][SESSION_REVOKED].clone();
    assert!(body.is_object(), "not a session-revoked event: {:?}", event.claims);
    let subject = &event.claims["sub_id"];
    assert_eq!(subject["format"], "complex");
    (subject["session"]["id"].as_str().unwrap().to_owned(), subject["user"]["sub"].as_str().unwrap().to_owned(), body)
}

/// An RFC 7662 form body (keycard's tokens and these test values need no escaping).
fn form(request: reqwest::RequestBuilder, token: &str) -> reqwest::RequestBuilder {
    request.header("content-type", "application/x-www-form-urlencoded").body(format!("token={token}"))
}

fn sid_of(token: &str) -> String {
    claims_of(token)["sid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn without_resource_server_credentials_nothing_is_open() {
    let app = spawn_app_with(|s| s.signing.algorithm = Algorithm::ES256).await;
    for path in ["/.well-known/ssf-configuration", "/ssf/streams", "/ssf/status?stream_id=x"] {
        assert_eq!(app.get(path, Some(RECEIVER)).await.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let response = form(app.client.post(app.url("/introspect")), "x").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn discovery_names_the_endpoints_and_a_wrong_credential_is_refused() {
    let app = spawn_transmitter().await;
    let response = app.get("/.well-known/ssf-configuration", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let config: Value = response.json().await.unwrap();
    assert_eq!(config["issuer"], app.address.as_str());
    assert_eq!(config["jwks_uri"], app.url("/.well-known/jwks.json"));
    assert_eq!(config["delivery_methods_supported"], json!(["urn:ietf:rfc:8936"]));
    assert_eq!(config["configuration_endpoint"], app.url("/ssf/streams"));
    assert_eq!(config["status_endpoint"], app.url("/ssf/status"));
    assert_eq!(config["verification_endpoint"], app.url("/ssf/verify"));
    assert_eq!(config["spec_version"], "1_0");

    for credential in [None, Some("wrong-credential-0123456789abcdef"), Some(&RECEIVER[1..])] {
        let mut request =
            app.client.post(app.url("/ssf/streams")).json(&json!({ "delivery": { "method": "urn:ietf:rfc:8936" } }));
        if let Some(c) = credential {
            request = request.bearer_auth(c);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{credential:?}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let body: Value = response.json().await.unwrap();
        assert!(body["msg"].as_str().unwrap().contains("resource-server credential"), "{body}");
    }
    let (status, body) = send(
        &app,
        reqwest::Method::POST,
        "/ssf/streams",
        RECEIVER,
        Some(json!({ "delivery": { "method": "urn:ietf:rfc:8935", "endpoint_url": "https://rs.example/events" } })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["msg"].as_str().unwrap().contains("poll"), "{body}");
}

#[tokio::test]
async fn a_logout_reaches_a_waiting_poll_at_once_as_a_signed_session_revoked_event() {
    let app = spawn_transmitter().await;
    let stream = create_stream(&app, RECEIVER).await;
    assert_eq!(stream["events_delivered"], json!([SESSION_REVOKED]));
    assert_eq!(
        stream["delivery"]["endpoint_url"],
        app.url(&format!("/ssf/poll/{}", stream["stream_id"].as_str().unwrap()))
    );
    let tokens = app.user_with_tokens("alice").await;

    let waiting = {
        let (client, url) = (app.client.clone(), stream["delivery"]["endpoint_url"].as_str().unwrap().to_owned());
        tokio::spawn(async move {
            let answer: Value = client
                .post(url)
                .bearer_auth(RECEIVER)
                .json(&json!({ "maxEvents": 10 }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (answer, Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "a poll with nothing to deliver waits");
    let logged_out = Instant::now();
    assert_eq!(app.logout(&tokens.access).await.status(), StatusCode::OK);
    let (answer, answered) = tokio::time::timeout(Duration::from_secs(5), waiting).await.unwrap().unwrap();
    let delay = answered.duration_since(logged_out);
    eprintln!("logout to poll answer: {delay:?}");
    assert!(delay < Duration::from_secs(1), "{delay:?}");

    let events = verified_sets(&app, &answer).await;
    assert_eq!(events.len(), 1, "{answer}");
    let (sid, sub, body) = revoked_session(&events[0]);
    assert_eq!(sid, sid_of(&tokens.access));
    assert_eq!(sub, "alice");
    assert_eq!(body["initiating_entity"], "user");
    assert_eq!(body["reason_admin"]["en"], "logout");
    assert_eq!(events[0].claims["aud"], stream["stream_id"]);
    assert_eq!(answer["moreAvailable"], false);
}

#[tokio::test]
async fn unacknowledged_events_come_again_acknowledged_ones_never() {
    let app = spawn_transmitter().await;
    let stream = create_stream(&app, RECEIVER).await;
    for name in ["a1", "a2", "a3"] {
        let tokens = app.user_with_tokens(name).await;
        assert_eq!(app.logout(&tokens.access).await.status(), StatusCode::OK);
    }
    let first = poll(&app, &stream, json!({ "maxEvents": 2, "returnImmediately": true })).await;
    assert_eq!(first["sets"].as_object().unwrap().len(), 2);
    assert_eq!(first["moreAvailable"], true);
    let again = poll(&app, &stream, json!({ "maxEvents": 2, "returnImmediately": true })).await;
    let jtis_of = |answer: &Value| answer["sets"].as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    // ECDSA signatures differ each time: the same events are the same jtis.
    assert_eq!(jtis_of(&again), jtis_of(&first), "not acknowledged: delivered again");

    let jtis: Vec<String> = first["sets"].as_object().unwrap().keys().cloned().collect();
    // The second acknowledged before the first: the first still comes again.
    let next = poll(&app, &stream, json!({ "maxEvents": 10, "returnImmediately": true, "ack": [jtis[1]] })).await;
    let got: Vec<&String> = next["sets"].as_object().unwrap().keys().collect();
    assert_eq!(got.len(), 2, "{next}");
    assert!(got.contains(&&jtis[0]) && !got.contains(&&jtis[1]));
    let users: Vec<String> = verified_sets(&app, &next).await.iter().map(|e| revoked_session(e).1).collect();
    assert!(users.contains(&"a3".to_owned()), "{users:?}");

    let all: Vec<String> = next["sets"].as_object().unwrap().keys().cloned().collect();
    let last = poll(&app, &stream, json!({ "returnImmediately": true, "ack": all })).await;
    assert_eq!(last["sets"], json!({}));
    assert_eq!(last["moreAvailable"], false);

    let (status, _) = send(
        &app,
        reqwest::Method::POST,
        &format!("/ssf/poll/{}", stream["stream_id"].as_str().unwrap()),
        RECEIVER,
        Some(json!({ "maxEvents": -1 })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn every_way_a_session_ends_is_an_event() {
    let app = spawn_transmitter().await;
    let admin = admin_tokens(&app).await;
    let stream = create_stream(&app, RECEIVER).await;
    let mut expected = Vec::new();

    // Logout (this session), a session ended by its owner, logout of all sessions.
    let t = app.user_with_tokens("bob").await;
    app.logout(&t.access).await;
    expected.push((sid_of(&t.access), "logout", "user"));
    let t1 = app.login_tokens("bob", PASSWORD).await;
    let t2 = app.login_tokens("bob", PASSWORD).await;
    let response = app
        .client
        .delete(app.url(&format!("/user/sessions/{}", sid_of(&t2.access))))
        .bearer_auth(&t1.access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    expected.push((sid_of(&t2.access), "ended by owner", "user"));
    let t3 = app.login_tokens("bob", PASSWORD).await;
    let response = app.client.delete(app.url("/logout?scope=global")).bearer_auth(&t3.access).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    expected.push((sid_of(&t1.access), "logout", "user"));
    expected.push((sid_of(&t3.access), "logout", "user"));

    // A password change ends the other sessions.
    let keep = app.login_tokens("bob", PASSWORD).await;
    let other = app.login_tokens("bob", PASSWORD).await;
    let response = app
        .client
        .put(app.url("/user/password"))
        .bearer_auth(&keep.access)
        .json(&json!({ "current_password": PASSWORD, "new_password": "a brand new passphrase 42" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    expected.push((sid_of(&other.access), "password change", "user"));

    // Refresh-token reuse ends the session.
    let carol = app.user_with_tokens("carol").await;
    assert_eq!(app.refresh(&carol.refresh).await.status(), StatusCode::OK);
    assert_eq!(app.refresh(&carol.refresh).await.status(), StatusCode::UNAUTHORIZED);
    expected.push((sid_of(&carol.access), "refresh token reuse", "policy"));

    // An admin disables an account.
    let dave = app.user_with_tokens("dave").await;
    let response =
        app.client.post(app.url("/admin/users/dave/disable")).bearer_auth(&admin.access).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    expected.push((sid_of(&dave.access), "", "admin"));

    let answer = poll(&app, &stream, json!({ "maxEvents": 100, "returnImmediately": true })).await;
    let events = verified_sets(&app, &answer).await;
    for (sid, reason, entity) in &expected {
        let event = events.iter().map(revoked_session).find(|(s, _, _)| s == sid);
        let (_, _, body) = event.unwrap_or_else(|| panic!("no event for session {sid} ({reason}): {answer}"));
        assert_eq!(body["initiating_entity"], *entity, "{reason}: {body}");
        if !reason.is_empty() {
            assert_eq!(body["reason_admin"]["en"], *reason);
        }
    }
}

#[tokio::test]
async fn events_survive_a_restart_and_a_new_stream_starts_with_every_kept_event() {
    let app = spawn_transmitter().await;
    let stream = create_stream(&app, RECEIVER).await;
    let tokens = app.user_with_tokens("erin").await;
    assert_eq!(app.logout(&tokens.access).await.status(), StatusCode::OK);
    let app = app.restart().await;
    let answer = poll(&app, &stream, json!({ "returnImmediately": true })).await;
    let events = verified_sets(&app, &answer).await;
    assert_eq!(events.iter().map(|e| revoked_session(e).0).collect::<Vec<_>>(), [sid_of(&tokens.access)]);

    // A receiver that lost its state makes a new stream: it gets every event still kept.
    let fresh = create_stream(&app, RECEIVER).await;
    let answer = poll(&app, &fresh, json!({ "returnImmediately": true })).await;
    assert_eq!(verified_sets(&app, &answer).await.len(), 1);
}

#[tokio::test]
async fn streams_belong_to_their_receiver_and_can_be_read_changed_and_deleted() {
    let app = spawn_transmitter().await;
    let stream = create_stream(&app, RECEIVER).await;
    let id = stream["stream_id"].as_str().unwrap();

    let (status, _) =
        send(&app, reqwest::Method::GET, &format!("/ssf/streams?stream_id={id}"), OTHER_RECEIVER, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, all) = send(&app, reqwest::Method::GET, "/ssf/streams", OTHER_RECEIVER, None).await;
    assert_eq!((status, all), (StatusCode::OK, json!([])));
    let (status, _) =
        send(&app, reqwest::Method::POST, &format!("/ssf/poll/{id}"), OTHER_RECEIVER, Some(json!({}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, read) =
        send(&app, reqwest::Method::GET, &format!("/ssf/streams?stream_id={id}"), RECEIVER, None).await;
    assert_eq!((status, &read), (StatusCode::OK, &stream));
    let (status, patched) = send(
        &app,
        reqwest::Method::PATCH,
        "/ssf/streams",
        RECEIVER,
        Some(json!({ "stream_id": id, "description": "renamed" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(patched["description"], "renamed");
    assert_eq!(patched["events_requested"], json!([SESSION_REVOKED]));
    let (status, replaced) = send(
        &app,
        reqwest::Method::PUT,
        "/ssf/streams",
        RECEIVER,
        Some(json!({ "stream_id": id, "delivery": { "method": "urn:ietf:rfc:8936" }, "events_requested": [] })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(replaced["events_delivered"], json!([]));
    assert!(replaced.get("description").is_none());

    let (status, _) =
        send(&app, reqwest::Method::DELETE, &format!("/ssf/streams?stream_id={id}"), OTHER_RECEIVER, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) =
        send(&app, reqwest::Method::DELETE, &format!("/ssf/streams?stream_id={id}"), RECEIVER, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = send(&app, reqwest::Method::GET, &format!("/ssf/streams?stream_id={id}"), RECEIVER, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = send(&app, reqwest::Method::GET, "/ssf/streams?stream_id=not-a-uuid", RECEIVER, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn verification_status_pause_and_disable() {
    let app = spawn_transmitter().await;
    let stream = create_stream(&app, RECEIVER).await;
    let id = stream["stream_id"].as_str().unwrap();

    let (status, _) =
        send(&app, reqwest::Method::POST, "/ssf/verify", RECEIVER, Some(json!({ "stream_id": id, "state": "abc123" })))
            .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let answer = poll(&app, &stream, json!({ "returnImmediately": true })).await;
    let events = verified_sets(&app, &answer).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].claims["events"][VERIFICATION]["state"], "abc123");
    let jti = events[0].jti().to_owned();
    let answer = poll(&app, &stream, json!({ "returnImmediately": true, "ack": [jti] })).await;
    assert_eq!(answer["sets"], json!({}));

    // Paused: events are held, then delivered.
    let (status, body) = send(
        &app,
        reqwest::Method::POST,
        "/ssf/status",
        RECEIVER,
        Some(json!({ "stream_id": id, "status": "paused", "reason": "maintenance" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({ "stream_id": id, "status": "paused", "reason": "maintenance" }));
    let held = app.user_with_tokens("held").await;
    app.logout(&held.access).await;
    let answer = poll(&app, &stream, json!({})).await;
    assert_eq!(answer["sets"], json!({}), "a paused stream delivers nothing (and does not wait)");
    send(&app, reqwest::Method::POST, "/ssf/status", RECEIVER, Some(json!({ "stream_id": id, "status": "enabled" })))
        .await;
    let answer = poll(&app, &stream, json!({ "returnImmediately": true })).await;
    let all: Vec<String> = answer["sets"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(all.len(), 1);
    poll(&app, &stream, json!({ "returnImmediately": true, "ack": all })).await;

    // Disabled: events are dropped.
    send(&app, reqwest::Method::POST, "/ssf/status", RECEIVER, Some(json!({ "stream_id": id, "status": "disabled" })))
        .await;
    let dropped = app.user_with_tokens("dropped").await;
    app.logout(&dropped.access).await;
    let (status, body) = send(&app, reqwest::Method::GET, &format!("/ssf/status?stream_id={id}"), RECEIVER, None).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("disabled")));
    send(&app, reqwest::Method::POST, "/ssf/status", RECEIVER, Some(json!({ "stream_id": id, "status": "enabled" })))
        .await;
    let answer = poll(&app, &stream, json!({ "returnImmediately": true })).await;
    assert_eq!(answer["sets"], json!({}));

    let (status, _) = send(
        &app,
        reqwest::Method::POST,
        "/ssf/status",
        RECEIVER,
        Some(json!({ "stream_id": id, "status": "sleeping" })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn introspection_answers_active_only_for_valid_unrevoked_tokens() {
    let app = spawn_transmitter().await;
    let tokens = app.user_with_tokens("frank").await;
    let introspect = |token: String, credential: Option<&'static str>| {
        let mut request = form(app.client.post(app.url("/introspect")), &token);
        if let Some(c) = credential {
            request = request.bearer_auth(c);
        }
        request.send()
    };
    let response = introspect(tokens.access.clone(), Some(RECEIVER)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["active"], true);
    assert_eq!(body["sub"], "frank");
    assert_eq!(body["type"], "access");
    assert_eq!(body["sid"], sid_of(&tokens.access).as_str());
    assert_eq!(body["iss"], app.address.as_str());
    assert!(body["exp"].as_i64().unwrap() > body["iat"].as_i64().unwrap());
    let body: Value = introspect(tokens.refresh.clone(), Some(RECEIVER)).await.unwrap().json().await.unwrap();
    assert_eq!((body["active"].as_bool(), body["type"].as_str()), (Some(true), Some("refresh")));
    // A refresh token rotated away is no longer active; its successor is.
    let other = app.login_tokens("frank", PASSWORD).await;
    let rotated = app.refresh(&other.refresh).await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let next = TokenPair::from_body(&rotated.json().await.unwrap());
    let body: Value = introspect(other.refresh.clone(), Some(RECEIVER)).await.unwrap().json().await.unwrap();
    assert_eq!(body, json!({ "active": false }), "rotated away");
    let body: Value = introspect(next.refresh.clone(), Some(RECEIVER)).await.unwrap().json().await.unwrap();
    assert_eq!(body["active"], true);

    for garbage in ["garbage", "a.b.c", ""] {
        let body: Value = introspect(garbage.to_owned(), Some(RECEIVER)).await.unwrap().json().await.unwrap();
        assert_eq!(body, json!({ "active": false }), "{garbage}");
    }
    assert_eq!(app.logout(&tokens.access).await.status(), StatusCode::OK);
    for token in [&tokens.access, &tokens.refresh] {
        let body: Value = introspect(token.clone(), Some(RECEIVER)).await.unwrap().json().await.unwrap();
        assert_eq!(body, json!({ "active": false }));
    }
    let response = introspect(tokens.access.clone(), None).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = introspect(tokens.access.clone(), Some("not-a-known-credential-at-all-xyz")).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = app
        .client
        .post(app.url("/introspect"))
        .bearer_auth(RECEIVER)
        .json(&json!({ "token": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn a_short_credential_is_refused_at_start() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let (database_url, _schema) = test_database(dir.path()).await;
    let mut settings = settings(database_url);
    settings.resource_server_tokens = vec![SecretString::from("short")];
    let error = keycard_server::startup::Application::build(settings).await.err().expect("refused");
    assert!(format!("{error:#}").contains("KEYCARD_RESOURCE_SERVER_TOKENS"), "{error:#}");
}

#[tokio::test]
async fn on_postgres_a_logout_on_one_instance_reaches_a_poll_on_another() {
    let Some(first) = spawn_on_postgres(false, transmitter).await else { return };
    let second = spawn_sibling(&first, |_| {}).await;
    let stream = create_stream(&first, RECEIVER).await;
    let tokens = first.user_with_tokens("gina").await;
    let waiting = {
        let (client, url) =
            (second.client.clone(), second.url(&format!("/ssf/poll/{}", stream["stream_id"].as_str().unwrap())));
        tokio::spawn(async move {
            let answer: Value =
                client.post(url).bearer_auth(RECEIVER).json(&json!({})).send().await.unwrap().json().await.unwrap();
            (answer, Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let logged_out = Instant::now();
    assert_eq!(first.logout(&tokens.access).await.status(), StatusCode::OK);
    let (answer, answered) = tokio::time::timeout(Duration::from_secs(5), waiting).await.unwrap().unwrap();
    let delay = answered.duration_since(logged_out);
    eprintln!("logout on one instance to a poll answer on another: {delay:?}");
    assert!(delay < Duration::from_secs(2), "{delay:?}");
    let events = verified_sets(&second, &answer).await;
    assert_eq!(revoked_session(&events[0]).0, sid_of(&tokens.access));
}

#[tokio::test]
async fn a_waiting_poll_does_not_hold_up_a_shutdown() {
    let mut app = spawn_transmitter().await;
    let stream = create_stream(&app, RECEIVER).await;
    let waiting = {
        let (client, url) =
            (app.client.clone(), app.url(&format!("/ssf/poll/{}", stream["stream_id"].as_str().unwrap())));
        tokio::spawn(async move { client.post(url).bearer_auth(RECEIVER).json(&json!({})).send().await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start = Instant::now();
    app.stop().await;
    assert!(start.elapsed() < Duration::from_secs(5), "the shutdown waited {:?} for the long poll", start.elapsed());
    let answer = waiting.await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.json::<Value>().await.unwrap()["sets"], json!({}));
}
