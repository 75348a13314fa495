//! The `oidc` example (FJE's `examples/oidc.py`) against the stand-in provider, key rotation
//! included.

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use keycard_token::Algorithm;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::oidc::{Settings, app};
use crate::provider::{CLIENT_ID, Provider};

fn settings(p: &Provider, vars: &[(&str, &str)]) -> Settings {
    let issuer = p.issuer.clone();
    let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Settings::from_vars(move |name| match name {
        "OIDC_ISSUER_URL" => Some(issuer.clone()),
        "OIDC_CLIENT_ID" => Some(CLIENT_ID.to_owned()),
        _ => vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
    })
    .unwrap()
}

async fn get(app: &Router, path: &str, token: Option<&str>) -> (u16, Value, Option<String>) {
    let mut req = Request::get(path);
    if let Some(token) = token {
        req = req.header("Authorization", format!("Bearer {token}"));
    }
    let response = app.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let challenge = response.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
    let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
    (status, serde_json::from_slice(&body).unwrap(), challenge)
}

#[tokio::test]
async fn the_oidc_example_answers_as_the_original_and_survives_a_key_rotation() {
    let p = Provider::start(&[Algorithm::RS256]).await;
    let app = app(&settings(&p, &[])).await.unwrap();
    let member = p.token(&p.claims("alice@example.com", &["staff", "api-access"]));
    let outsider = p.token(&p.claims("bob@example.com", &["staff"]));

    assert_eq!(get(&app, "/anonymous", None).await.1, json!({"result": "anonymous ok"}));
    assert_eq!(get(&app, "/anonymous", Some("garbage")).await.0, 200);

    let (status, body, challenge) = get(&app, "/token-protected", None).await;
    assert_eq!((status, body), (401, json!({"msg": "Missing Authorization Header"})));
    assert_eq!(challenge.as_deref(), Some("Bearer"));
    assert_eq!(get(&app, "/token-protected", Some(&outsider)).await.1, json!({"result": "protected by token ok"}));

    let (status, body, _) = get(&app, "/group-protected", Some(&member)).await;
    assert_eq!(
        (status, body),
        (200, json!({"result": "protected by token AND group membership ok", "user": "alice@example.com"}))
    );
    let refused = json!({"result": "user not in group api-access required to access this endpoint"});
    let (status, body, challenge) = get(&app, "/group-protected", Some(&outsider)).await;
    assert_eq!((status, body), (401, refused.clone()));
    assert!(challenge.unwrap().starts_with("Bearer"));
    let mut no_groups = p.claims("carol@example.com", &[]);
    no_groups.as_object_mut().unwrap().remove("groups");
    assert_eq!(get(&app, "/group-protected", Some(&p.token(&no_groups))).await.0, 401);
    let mut groups_as_string = p.claims("dave@example.com", &[]);
    groups_as_string["groups"] = json!("api-access-readonly");
    assert_eq!(get(&app, "/group-protected", Some(&p.token(&groups_as_string))).await.1, refused);

    let mut other_client = p.claims("alice@example.com", &["api-access"]);
    other_client["aud"] = json!("another-client");
    let (status, body, _) = get(&app, "/token-protected", Some(&p.token(&other_client))).await;
    assert_eq!((status, body), (401, json!({"msg": "Audience doesn't match"})));

    // The provider rotates its key: the next token names a new kid, the example refetches once.
    assert_eq!(p.jwks_hits(), 1);
    p.rotate();
    let rotated = p.token(&p.claims("alice@example.com", &["api-access"]));
    let (status, body, _) = get(&app, "/group-protected", Some(&rotated)).await;
    assert_eq!((status, body["user"].clone()), (200, json!("alice@example.com")));
    assert_eq!(p.jwks_hits(), 2);
    assert_eq!(get(&app, "/group-protected", Some(&rotated)).await.0, 200);
    assert_eq!(p.jwks_hits(), 2, "the new key is cached");
    assert_eq!(get(&app, "/token-protected", Some(&member)).await.0, 401, "the retired key no longer verifies");
}

#[tokio::test]
async fn the_oidc_example_reads_its_claims_from_the_environment() {
    let p = Provider::start(&[Algorithm::ES256]).await;
    let vars = [("OIDC_USERNAME_CLAIM", "preferred_username"), ("OIDC_GROUPS_CLAIM", "realm_access.roles")];
    let s = settings(&p, &vars);
    assert_eq!(s.bind, "127.0.0.1:5000");
    let app = app(&s).await.unwrap();
    let mut claims = p.claims("alice@example.com", &[]);
    claims["preferred_username"] = json!("alice");
    claims["realm_access"] = json!({"roles": ["api-access"]});
    let (status, body, _) = get(&app, "/group-protected", Some(&p.token(&claims))).await;
    assert_eq!((status, body["user"].clone()), (200, json!("alice")));

    assert!(Settings::from_vars(|_| None).unwrap_err().contains("OIDC_ISSUER_URL"));
}

#[tokio::test]
async fn a_flood_of_forged_kids_at_the_example_costs_one_fetch() {
    let p = Provider::start(&[Algorithm::ES256]).await;
    let app = app(&settings(&p, &[])).await.unwrap();
    let claims = p.claims("alice@example.com", &["api-access"]);
    let requests: Vec<_> = (0..200)
        .map(|i| {
            let header = json!({"alg": "ES256", "typ": "JWT", "kid": format!("forged-{i}")});
            let (app, token) = (app.clone(), p.token_with_header(0, &header, &claims));
            tokio::spawn(async move { get(&app, "/group-protected", Some(&token)).await })
        })
        .collect();
    for request in requests {
        let (status, body, _) = request.await.unwrap();
        assert_eq!((status, body), (401, json!({"msg": "Unknown key id"})));
    }
    assert_eq!(p.jwks_hits(), 2, "the initial fetch and one refetch");
    assert_eq!(get(&app, "/group-protected", Some(&p.token(&claims))).await.0, 200);
}
