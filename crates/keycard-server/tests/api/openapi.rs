//! The API description: `/openapi.json` is OpenAPI 3.1 and describes exactly the routes the server
//! answers; `/docs` serves the Swagger UI from the binary, with no external asset.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::*;

/// An access token: as a bearer header, or in cookie mode as its cookie.
const ACCESS: &[&str] = &["access_token", "access_token_cookie"];
/// A refresh token: as a bearer header, or in cookie mode as its cookie.
const REFRESH: &[&str] = &["refresh_token", "refresh_token_cookie"];
/// A resource server's receiver credential.
const RECEIVER: &[&str] = &["receiver_credential"];
/// No credential.
const PUBLIC: &[&str] = &[];

/// Every operation of keycard: (method, path template, the security schemes it accepts, each
/// one an alternative).
const OPERATIONS: &[(&str, &str, &[&str])] = &[
    ("post", "/register", PUBLIC),
    ("post", "/login", PUBLIC),
    ("post", "/token/refresh", REFRESH),
    ("delete", "/logout", ACCESS),
    ("get", "/user", ACCESS),
    ("get", "/protected", ACCESS),
    ("get", "/user/sessions", ACCESS),
    ("delete", "/user/sessions/{id}", ACCESS),
    ("put", "/user/password", ACCESS),
    ("get", "/admin/users", ACCESS),
    ("post", "/admin/users/{name}/disable", ACCESS),
    ("post", "/admin/users/{name}/enable", ACCESS),
    ("put", "/admin/users/{name}/roles", ACCESS),
    ("get", "/admin/audit", ACCESS),
    ("get", "/healthz", PUBLIC),
    ("get", "/readyz", PUBLIC),
    ("get", "/.well-known/jwks.json", PUBLIC),
    ("get", "/.well-known/openid-configuration", PUBLIC),
    ("get", "/.well-known/ssf-configuration", PUBLIC),
    ("get", "/ssf/streams", RECEIVER),
    ("post", "/ssf/streams", RECEIVER),
    ("patch", "/ssf/streams", RECEIVER),
    ("put", "/ssf/streams", RECEIVER),
    ("delete", "/ssf/streams", RECEIVER),
    ("get", "/ssf/status", RECEIVER),
    ("post", "/ssf/status", RECEIVER),
    ("post", "/ssf/verify", RECEIVER),
    ("post", "/ssf/poll/{stream_id}", RECEIVER),
    ("post", "/introspect", RECEIVER),
];

/// A credential the Shared Signals tests of this file configure.
const RECEIVER_CREDENTIAL: &str = "openapi-test-receiver-credential-0123456789";

fn transmitter(settings: &mut keycard_server::settings::Settings) {
    settings.signing.algorithm = keycard_token::Algorithm::ES256;
    settings.resource_server_tokens = vec![secrecy::SecretString::from(RECEIVER_CREDENTIAL)];
}

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

/// The schemes an operation's `security` names (none for a public route); each requirement
/// must name one scheme (they are alternatives, none needs two at once).
fn schemes(operation: &Value) -> BTreeSet<String> {
    let requirements: Vec<&serde_json::Map<String, Value>> =
        operation["security"].as_array().into_iter().flatten().filter_map(Value::as_object).collect();
    assert!(requirements.iter().all(|r| r.len() == 1), "{}", operation["security"]);
    requirements.iter().flat_map(|requirement| requirement.keys().cloned()).collect()
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
        if !scheme.is_empty() {
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
    for name in ["access_token_cookie", "refresh_token_cookie"] {
        assert_eq!(schemes[name]["type"], "apiKey", "{name}");
        assert_eq!(schemes[name]["in"], "cookie", "{name}");
        assert_eq!(schemes[name]["name"], name, "{name}: the cookie keycard sets");
    }
    assert_eq!(schemes["receiver_credential"]["type"], "http");
    assert_eq!(schemes["receiver_credential"]["scheme"], "bearer");
    assert!(schemes["receiver_credential"].get("bearerFormat").is_none(), "a receiver credential is no JWT");
    assert!(schemes["receiver_credential"]["description"].as_str().unwrap().contains("KEYCARD_RESOURCE_SERVER_TOKENS"));
    assert_eq!(schemes.as_object().unwrap().len(), 5, "{schemes}");
    assert_eq!(document["components"]["schemas"]["Error"]["required"], serde_json::json!(["msg"]));
}

#[tokio::test]
async fn every_described_operation_is_routed_and_answers_a_described_status() {
    // Arrange: an anonymous request with no body to each operation.
    let app = spawn_app().await;
    let document = document(&app).await;

    for (method, path, operation) in operations(&document) {
        let nil = uuid::Uuid::nil().to_string();
        let url = app.url(&path.replace("{id}", &nil).replace("{stream_id}", &nil).replace("{name}", "nobody"));

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

/// The operation `method path` of `document`.
fn operation<'a>(document: &'a Value, method: &str, path: &str) -> &'a Value {
    let operation = &document["paths"][path][method];
    assert!(operation.is_object(), "{method} {path} is not described");
    operation
}

/// The schema `#/components/schemas/NAME` a `$ref` points at.
fn schema<'a>(document: &'a Value, reference: &Value) -> &'a Value {
    let name = reference["$ref"].as_str().unwrap().strip_prefix("#/components/schemas/").unwrap();
    &document["components"]["schemas"][name]
}

/// A response, following a `$ref` into `#/components/responses`.
fn response<'a>(document: &'a Value, operation: &'a Value, status: &str) -> &'a Value {
    let response = &operation["responses"][status];
    match response["$ref"].as_str() {
        Some(reference) => {
            &document["components"]["responses"][reference.strip_prefix("#/components/responses/").unwrap()]
        }
        None => response,
    }
}

#[tokio::test]
async fn cookie_mode_is_described_set_cookie_csrf_and_the_cookies_only_body() {
    // Arrange: the document, and a cookies-only server's real login and refresh bodies.
    let app = spawn_app_with(|s| {
        s.transport = keycard_server::settings::Transport {
            locations: "cookies".parse().unwrap(),
            ..keycard_server::settings::Transport::default()
        }
    })
    .await;
    let document = document(&app).await;
    assert_eq!(app.register("carol", "correct horse battery").await.status(), StatusCode::CREATED);

    // Act
    let login = app.login("carol", "correct horse battery").await;

    // Assert: the body is the described cookies-only alternative, member for member.
    assert_eq!(login.status(), StatusCode::OK);
    let body: Value = login.json().await.unwrap();
    for path in ["/login", "/token/refresh"] {
        let ok = response(&document, operation(&document, "post", path), "200");
        assert!(ok["headers"]["Set-Cookie"].is_object(), "{path}: Set-Cookie is not described");
        let answer = schema(&document, &ok["content"]["application/json"]["schema"]);
        let alternatives: Vec<&Value> =
            answer["oneOf"].as_array().unwrap_or_else(|| panic!("{path}: no oneOf")).iter().collect();
        assert_eq!(alternatives.len(), 2, "{path}");
        let cookies_only = alternatives
            .iter()
            .map(|a| schema(&document, a))
            .find(|s| s["required"].as_array().unwrap().contains(&Value::from("msg")))
            .unwrap_or_else(|| panic!("{path}: no cookies-only alternative"));
        let described: BTreeSet<&str> =
            cookies_only["properties"].as_object().unwrap().keys().map(String::as_str).collect();
        let sent: BTreeSet<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(described, sent, "{path}");
        assert_eq!(cookies_only["required"], serde_json::json!(["msg", "expires_in"]), "{path}");
    }
    assert_eq!(body["msg"], "The tokens are in cookies");
    let logout = operation(&document, "delete", "/logout");
    for status in ["200", "401"] {
        assert!(response(&document, logout, status)["headers"]["Set-Cookie"].is_object(), "logout {status}");
    }
    for (method, path) in [("delete", "/logout"), ("put", "/user/password"), ("post", "/token/refresh")] {
        let refused = response(&document, operation(&document, method, path), "401");
        let description = refused["description"].as_str().unwrap();
        for text in ["X-CSRF-TOKEN", "Missing CSRF token", "CSRF double submit tokens do not match"] {
            assert!(description.contains(text), "{method} {path}: {text} is not described");
        }
    }
}

#[tokio::test]
async fn every_shared_signals_operation_answers_described_statuses_with_and_without_a_credential() {
    // Arrange: a transmitter (ES256 and a receiver credential).
    let app = spawn_app_with(transmitter).await;
    let document = document(&app).await;
    let nil = uuid::Uuid::nil().to_string();

    for (method, path, scheme) in OPERATIONS.iter().filter(|(_, _, s)| *s == RECEIVER) {
        let operation = operation(&document, method, path);
        let url = app.url(&path.replace("{stream_id}", &nil));
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        assert_eq!(*scheme, RECEIVER);

        // Act: no credential, then the credential with no body.
        let anonymous = app.client.request(method.clone(), &url).send().await.unwrap();
        let authenticated =
            app.client.request(method.clone(), &url).bearer_auth(RECEIVER_CREDENTIAL).send().await.unwrap();

        // Assert: 401 with the challenge, then a described answer that is no 401.
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(anonymous.headers()["www-authenticate"], "Bearer", "{method} {path}");
        let status = authenticated.status();
        assert_ne!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert!(operation["responses"].get(status.as_str()).is_some(), "{method} {path}: {status} is not described");
    }
    let discovery = app.get("/.well-known/ssf-configuration", None).await;
    assert_eq!(discovery.status(), StatusCode::OK);
    let body: Value = discovery.json().await.unwrap();
    let described = schema(
        &document,
        &operation(&document, "get", "/.well-known/ssf-configuration")["responses"]["200"]["content"]["application/json"]
            ["schema"],
    );
    let members: BTreeSet<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    let properties: BTreeSet<&str> = described["properties"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(members, properties);
}

#[tokio::test]
async fn with_hs256_the_stream_routes_answer_their_described_404_and_introspection_works() {
    // Arrange: a receiver credential, but an HMAC algorithm (no key to sign SETs with).
    let app = spawn_app_with(|s| {
        transmitter(s);
        s.signing.algorithm = keycard_token::Algorithm::HS256;
    })
    .await;
    let document = document(&app).await;
    let stream = serde_json::json!({ "delivery": { "method": "urn:ietf:rfc:8936" } });

    // Act
    let discovery = app.get("/.well-known/ssf-configuration", None).await;
    let create =
        app.client.post(app.url("/ssf/streams")).bearer_auth(RECEIVER_CREDENTIAL).json(&stream).send().await.unwrap();
    let introspect = app
        .client
        .post(app.url("/introspect"))
        .bearer_auth(RECEIVER_CREDENTIAL)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=not-a-token")
        .send()
        .await
        .unwrap();

    // Assert
    for (path, method, response) in
        [("/.well-known/ssf-configuration", "get", discovery), ("/ssf/streams", "post", create)]
    {
        let described = operation(&document, method, path)["responses"]["404"]["description"].as_str().unwrap();
        let (status, msg) = msg_of(response).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
        assert!(described.contains(&msg), "{method} {path}: `{msg}` is not in the described 404");
    }
    assert_eq!(introspect.status(), StatusCode::OK);
    assert_eq!(introspect.json::<Value>().await.unwrap(), serde_json::json!({ "active": false }));
}
