use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn healthz_and_readyz_answer_200() {
    let app = spawn_app().await;
    let response = app.get("/healthz", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert!(response.headers().contains_key("x-request-id"));
    assert_eq!(app.get("/readyz", None).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let app = spawn_app().await;
    let (status, msg) = msg_of(app.get("/no/such/route", None).await).await;
    assert_eq!((status, msg.as_str()), (StatusCode::NOT_FOUND, "Not found"));
    let response = app.client.put(app.url("/login")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["msg"], "Method not allowed");
}

#[tokio::test]
async fn a_request_id_is_propagated_when_given() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/healthz")).header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(response.headers()["x-request-id"], "abc-123");
}

#[tokio::test]
async fn a_request_over_the_timeout_is_408_json() {
    // A login hashes with the default Argon2 cost (tens of ms): far over a 1 ms budget.
    let app = spawn_app_with(|s| {
        s.argon2 = Default::default();
        s.request_timeout = std::time::Duration::from_millis(1);
    })
    .await;
    let (status, msg) = msg_of(app.login("nobody", PASSWORD).await).await;
    assert_eq!((status, msg.as_str()), (StatusCode::REQUEST_TIMEOUT, "Request Timeout"));
}
