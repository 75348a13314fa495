//! The API description: `/openapi.json` is OpenAPI 3.1 and describes exactly the routes the server
//! answers; `/docs` serves the Swagger UI from the binary, with no external asset.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::*;

/// Every operation of keycard: (method, path template, security scheme).
const OPERATIONS: &[(&str, &str, Option<&str>)] = &[
    ("post", "/register", None),
    ("post", "/login", None),
    ("post", "/token/refresh", Some("refresh_token")),
    ("delete", "/logout", Some("access_token")),
    ("get", "/user", Some("access_token")),
    ("get", "/protected", Some("access_token")),
    ("get", "/user/sessions", Some("access_token")),
    ("delete", "/user/sessions/{id}", Some("access_token")),
    ("put", "/user/password", Some("access_token")),
    ("get", "/admin/users", Some("access_token")),
    ("post", "/admin/users/{name}/disable", Some("access_token")),
    ("post", "/admin/users/{name}/enable", Some("access_token")),
    ("put", "/admin/users/{name}/roles", Some("access_token")),
    ("get", "/admin/audit", Some("access_token")),
    ("get", "/healthz", None),
    ("get", "/readyz", None),
    ("get", "/.well-known/jwks.json", None),
    ("get", "/.well-known/openid-configuration", None),
];

const HTTP_METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];

async fn document(app: &TestApp) -> Value {
    let response = app.get("/openapi.json", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.unwrap()
}

/// The operations of `document`: (method, path) -> operation object.
fn operations(document: &Value) -> Vec<(String, String, Value)> {
    let mut found = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            if HTTP_METHODS.contains(&method.as_str()) {
                found.push((method.clone(), path.clone(), operation.clone()));
            }
        }
    }
    found
}

/// The schemes an operation's `security` names (none for a public route).
fn schemes(operation: &Value) -> BTreeSet<String> {
    operation["security"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .flat_map(|requirement| requirement.keys().cloned())
        .collect()
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_describes_exactly_every_route() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let document = document(&app).await;

    // Assert
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1."), "{}", document["openapi"]);
    assert_eq!(document["info"]["title"], "keycard");
    let described: BTreeSet<(String, String)> =
        operations(&document).into_iter().map(|(method, path, _)| (method, path)).collect();
    let expected: BTreeSet<(String, String)> =
        OPERATIONS.iter().map(|(method, path, _)| (method.to_string(), path.to_string())).collect();
    assert_eq!(described, expected);
    for (method, path, operation) in operations(&document) {
        let (_, _, scheme) = OPERATIONS.iter().find(|(m, p, _)| *m == method && *p == path).unwrap();
        let expected: BTreeSet<String> = scheme.iter().map(|s| s.to_string()).collect();
        assert_eq!(schemes(&operation), expected, "{method} {path}");
        let responses = operation["responses"].as_object().unwrap();
        assert!(responses.keys().any(|status| status.starts_with('2')), "{method} {path}: no success");
        // The request timeout and the connection limits can answer any request.
        for status in ["408", "503"] {
            assert!(responses.contains_key(status), "{method} {path}: no {status}");
        }
        if scheme.is_some() {
            assert!(responses.contains_key("401"), "{method} {path}: no 401");
        }
        if operation.get("requestBody").is_some() {
            for status in ["400", "413", "415"] {
                assert!(responses.contains_key(status), "{method} {path}: no {status}");
            }
        }
    }
    let schemes = &document["components"]["securitySchemes"];
    for name in ["access_token", "refresh_token"] {
        assert_eq!(schemes[name]["type"], "http", "{name}");
        assert_eq!(schemes[name]["scheme"], "bearer", "{name}");
        assert_eq!(schemes[name]["bearerFormat"], "JWT", "{name}");
    }
    assert_eq!(document["components"]["schemas"]["Error"]["required"], serde_json::json!(["msg"]));
}

#[tokio::test]
async fn every_described_operation_is_routed_and_answers_a_described_status() {
    // Arrange: an anonymous request with no body to each operation.
    let app = spawn_app().await;
    let document = document(&app).await;

    for (method, path, operation) in operations(&document) {
        let url = app.url(&path.replace("{id}", &uuid::Uuid::nil().to_string()).replace("{name}", "nobody"));

        // Act
        let response = app
            .client
            .request(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(), url)
            .send()
            .await
            .unwrap();

        // Assert: routed (the fallbacks answer 404 "Not found" and 405), and described.
        let status = response.status();
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert!(operation["responses"].get(status.as_str()).is_some(), "{method} {path}: {status} is not described");
        assert!(
            response.headers()["content-type"].to_str().unwrap().starts_with("application/json"),
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn a_path_segment_that_is_not_utf8_is_a_json_404() {
    let app = spawn_app().await;
    let admin = admin_tokens(&app).await;
    for (method, path) in [
        (Method::DELETE, "/user/sessions/%FF"),
        (Method::POST, "/admin/users/%FF/disable"),
        (Method::POST, "/admin/users/%FF/enable"),
    ] {
        let response =
            app.client.request(method.clone(), app.url(path)).bearer_auth(&admin.access).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(response.headers()["content-type"], "application/json", "{method} {path}");
    }
}

/// The `src` and `href` attribute values of an HTML page.
fn links(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(start) = rest.find(attribute) {
            rest = &rest[start + attribute.len()..];
            let end = rest.find('"').unwrap();
            found.push(rest[..end].to_owned());
            rest = &rest[end..];
        }
    }
    found
}

#[tokio::test]
async fn the_docs_page_and_its_assets_come_from_the_binary() {
    // Arrange
    let app = spawn_app().await;

    // Act: /docs redirects to /docs/ (followed).
    let response = app.get("/docs", None).await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = response.text().await.unwrap();
    let links = links(&html);
    assert!(links.iter().any(|l| l.ends_with(".js")), "no script in {html}");
    assert!(links.iter().any(|l| l.ends_with(".css")), "no style sheet in {html}");
    for link in &links {
        assert!(!link.contains("//") && !link.starts_with("data:"), "external asset {link}");
        let asset = app.get(&format!("/docs/{}", link.trim_start_matches("./")), None).await;
        assert_eq!(asset.status(), StatusCode::OK, "{link}");
        let body = asset.text().await.unwrap();
        if link.ends_with(".css") {
            for external in ["url(http", "url('http", "url(\"http", "url(//", "@import"] {
                assert!(!body.contains(external), "{link} loads an external resource ({external})");
            }
        }
        if link.ends_with("swagger-initializer.js") {
            assert!(body.contains("\"/openapi.json\""), "the UI does not load our document: {body}");
            assert!(body.contains("\"validatorUrl\": \"none\""), "the UI would call an online validator: {body}");
        }
    }
    assert!(links.iter().any(|l| l.ends_with("swagger-initializer.js")));
}
