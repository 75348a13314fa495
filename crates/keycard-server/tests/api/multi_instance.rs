//! Several instances on one PostgreSQL (with and without Redis): revocations reach every
//! instance within a second with no database read on the request path, login throttling counts
//! across instances, and a refresh token presented to two instances at once rotates once.
//!
//! These tests need PostgreSQL (and Redis for the `_redis` variants) whatever
//! `KEYCARD_TEST_DATABASE` says: skipped locally with a printed reason when unreachable, failed
//! in CI.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

/// The bar: a revocation made on one instance is honoured by the others within this.
const PROPAGATION: Duration = Duration::from_secs(1);

/// Two instances on one fresh schema (and, with `redis`, one Redis prefix).
async fn two_instances(redis: bool) -> Option<(TestApp, TestApp)> {
    let a = spawn_on_postgres(redis, |_| {}).await?;
    let b = spawn_sibling(&a, |_| {}).await;
    Some((a, b))
}

/// Two instances that re-read revocations only when notified (the periodic read is an hour
/// apart): whatever they refuse in time, the notification delivered.
async fn two_instances_on_notifications_alone(redis: bool) -> Option<(TestApp, TestApp)> {
    let hour = Duration::from_secs(3600);
    let a = spawn_on_postgres(redis, |s| s.revocation_resync = hour).await?;
    let b = spawn_sibling(&a, |_| {}).await;
    Some((a, b))
}

async fn every_kind_of_revocation_reaches_the_other_instance(redis: bool) {
    let Some((a, b)) = two_instances_on_notifications_alone(redis).await else { return };

    // Logout on A.
    let alice = a.user_with_tokens("alice").await;
    assert_eq!(b.get("/protected", Some(&alice.access)).await.status(), StatusCode::OK);
    assert_eq!(a.logout(&alice.access).await.status(), StatusCode::OK);
    refused_within(&b, &alice.access, PROPAGATION).await;

    // Logout everywhere on A ends a session that was opened on B.
    let bob_on_b = b.user_with_tokens("bob").await;
    let bob_on_a = a.login_tokens("bob", PASSWORD).await;
    let response = a.client.delete(a.url("/logout?scope=global")).bearer_auth(&bob_on_a.access).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    refused_within(&b, &bob_on_b.access, PROPAGATION).await;

    // Refresh-token reuse detected on A ends the session, whose access token B then refuses.
    let carol = b.user_with_tokens("carol").await;
    assert_eq!(a.refresh(&carol.refresh).await.status(), StatusCode::OK);
    assert_401(a.refresh(&carol.refresh).await, "Refresh token reused: the session has been ended").await;
    refused_within(&b, &carol.access, PROPAGATION).await;

    // An admin disables an account on A; its tokens die on B.
    let dave = b.user_with_tokens("dave").await;
    let admin = admin_tokens(&a).await;
    let response = a.client.post(a.url("/admin/users/dave/disable")).bearer_auth(&admin.access).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    refused_within(&b, &dave.access, PROPAGATION).await;
    assert_401(b.refresh(&dave.refresh).await, "Token has been revoked").await;
}

#[tokio::test]
async fn revocations_reach_the_other_instance_within_a_second_by_listen_notify() {
    every_kind_of_revocation_reaches_the_other_instance(false).await;
}

#[tokio::test]
async fn revocations_reach_the_other_instance_within_a_second_by_redis() {
    every_kind_of_revocation_reaches_the_other_instance(true).await;
}

#[tokio::test]
async fn a_revocation_made_by_the_cli_reaches_running_instances() {
    let Some((a, b)) = two_instances(true).await else { return };
    let erin = a.user_with_tokens("erin").await;
    let out = run_cli(&["user", "disable", "erin", "--database-url", a.database_url()], "", &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    refused_within(&a, &erin.access, PROPAGATION).await;
    refused_within(&b, &erin.access, PROPAGATION).await;
}

async fn failed_logins_are_counted_across_instances(redis: bool) {
    let Some((a, b)) = two_instances(redis).await else { return };
    a.register("frank", PASSWORD).await;
    // Five failures in all, alternating: each instance saw fewer than five.
    for i in 0..5 {
        let app = if i % 2 == 0 { &a } else { &b };
        assert_401(app.login("frank", "wrong password").await, "Bad username or password").await;
    }
    for app in [&a, &b] {
        let response = app.login("frank", PASSWORD).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "{}", app.address);
        assert!(response.headers().contains_key("retry-after"));
    }
}

#[tokio::test]
async fn failed_logins_are_counted_across_instances_in_the_database() {
    failed_logins_are_counted_across_instances(false).await;
}

#[tokio::test]
async fn failed_logins_are_counted_across_instances_in_redis() {
    failed_logins_are_counted_across_instances(true).await;
}

#[tokio::test]
async fn a_refresh_token_presented_to_two_instances_at_once_rotates_once() {
    let Some((a, b)) = two_instances(false).await else { return };
    a.register("gina", PASSWORD).await;
    for _ in 0..20 {
        let pair = a.login_tokens("gina", PASSWORD).await;
        let (on_a, on_b) = tokio::join!(a.refresh(&pair.refresh), b.refresh(&pair.refresh));
        let statuses = [on_a.status(), on_b.status()];
        let winners: Vec<_> = [on_a, on_b].into_iter().filter(|r| r.status() == StatusCode::OK).collect();
        assert!(winners.len() <= 1, "{statuses:?}");
        assert!(statuses.iter().all(|s| [StatusCode::OK, StatusCode::UNAUTHORIZED].contains(s)), "{statuses:?}");
        // The loser presented a token that was already rotated away: reuse detection ended the
        // session, so the pair the winner got is dead too.
        if let Some(winner) = winners.into_iter().next() {
            let fresh = TokenPair::from_body(&winner.json().await.unwrap());
            assert_401(a.refresh(&fresh.refresh).await, "Token has been revoked").await;
            refused_within(&b, &fresh.access, PROPAGATION).await;
        }
    }
}

#[tokio::test]
async fn every_instance_reports_its_backends_when_ready() {
    let Some((a, b)) = two_instances(true).await else { return };
    for app in [&a, &b] {
        let response = app.get("/readyz", None).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body, json!({ "status": "ready", "database": "postgres", "redis": "up" }));
    }
}
