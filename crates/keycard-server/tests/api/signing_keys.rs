//! Issue 13 on the server: asymmetric signing keys in the database, the JWKS and discovery
//! endpoints, rotation while servers run, keys sealed at rest, HS256 unchanged.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use keycard_store::{KeyState, Store};
use keycard_token::Algorithm;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::Value;

use crate::helpers::*;

/// The bar: a rotation made anywhere is used by every running server within this.
const ROTATION_PICKED_UP: Duration = Duration::from_secs(3);

fn kek(byte: u8) -> String {
    URL_SAFE_NO_PAD.encode([byte; 32])
}

fn header_of(token: &str) -> Value {
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

fn kid_of(token: &str) -> String {
    header_of(token)["kid"].as_str().expect("a kid in the header").to_owned()
}

async fn jwks(app: &TestApp) -> (JwkSet, Value) {
    let response = app.get("/.well-known/jwks.json", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "public, max-age=300");
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let raw: Value = response.json().await.unwrap();
    (serde_json::from_value(raw.clone()).unwrap(), raw)
}

/// Verifies `token` with the key its kid names in `set`, independently of keycard (jsonwebtoken),
/// pinned to `alg` and `issuer`; returns the claims.
fn verify_with_jwks(token: &str, set: &JwkSet, alg: jsonwebtoken::Algorithm, issuer: &str) -> Value {
    let kid = kid_of(token);
    let jwk = set.find(&kid).unwrap_or_else(|| panic!("kid {kid} is not published"));
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[issuer]);
    validation.validate_aud = false;
    jsonwebtoken::decode::<Value>(token, &key, &validation).unwrap().claims
}

fn jwt_alg(alg: Algorithm) -> jsonwebtoken::Algorithm {
    match alg {
        Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
        Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
        other => panic!("no mapping for {other:?}"),
    }
}

async fn spawn_with(alg: Algorithm) -> TestApp {
    spawn_app_with(|s| s.signing.algorithm = alg).await
}

/// Waits until a fresh login on `app` is signed with `kid`; returns how long that took.
async fn signs_with_within(app: &TestApp, user: &str, kid: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let tokens = app.login_tokens(user, PASSWORD).await;
        if kid_of(&tokens.access) == kid {
            assert_eq!(kid_of(&tokens.refresh), kid);
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{} still signs with {} after {limit:?}", app.address, kid_of(&tokens.access));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn es256_eddsa_and_rs256_tokens_carry_kid_and_iss_and_verify_with_the_published_keys() {
    for alg in [Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256] {
        let app = spawn_with(alg).await;
        let tokens = app.user_with_tokens("alice").await;
        let header = header_of(&tokens.access);
        assert_eq!(header["alg"], alg.as_str());

        let (set, raw) = jwks(&app).await;
        assert_eq!(raw["keys"].as_array().unwrap().len(), 1, "{alg:?}: {raw}");
        assert_eq!(raw["keys"][0]["kid"], header["kid"]);
        assert_eq!(raw["keys"][0]["alg"], alg.as_str());
        assert_eq!(raw["keys"][0]["use"], "sig");
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(raw["keys"][0].get(private).is_none(), "{alg:?}: private member {private} published");
        }
        if alg == Algorithm::RS256 {
            let n = URL_SAFE_NO_PAD.decode(raw["keys"][0]["n"].as_str().unwrap()).unwrap();
            assert!(n.len() >= 256, "RSA keys are at least 2048 bits");
        }

        // The issuer defaults to the public URL, which defaults to the bound address.
        let claims = verify_with_jwks(&tokens.access, &set, jwt_alg(alg), &app.address);
        assert_eq!((claims["sub"].as_str(), claims["type"].as_str()), (Some("alice"), Some("access")));
        assert!(claims.get("aud").is_none());
        verify_with_jwks(&tokens.refresh, &set, jwt_alg(alg), &app.address);

        let response = app.get("/.well-known/openid-configuration", None).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "public, max-age=300");
        let discovery: Value = response.json().await.unwrap();
        assert_eq!(discovery["issuer"], app.address.as_str());
        assert_eq!(discovery["jwks_uri"], app.url("/.well-known/jwks.json"));
        assert_eq!(discovery["id_token_signing_alg_values_supported"], serde_json::json!([alg.as_str()]));
        assert_eq!(discovery.as_object().unwrap().len(), 3, "only what is true of keycard: {discovery}");

        // keycard itself accepts its tokens, and refreshes keep the kid.
        assert_eq!(app.get("/protected", Some(&tokens.access)).await.status(), StatusCode::OK);
        let refreshed = app.refresh(&tokens.refresh).await;
        assert_eq!(refreshed.status(), StatusCode::OK);
        let refreshed = TokenPair::from_body(&refreshed.json().await.unwrap());
        assert_eq!(kid_of(&refreshed.access), kid_of(&tokens.access));
    }
}

#[tokio::test]
async fn issuer_and_audience_are_written_when_set() {
    let app = spawn_app_with(|s| {
        s.signing.algorithm = Algorithm::ES256;
        s.signing.public_url = Some("https://auth.example.com".into());
        s.tokens.audience = Some(keycard_token::Audience::One("api".into()));
    })
    .await;
    let tokens = app.user_with_tokens("alice").await;
    let claims = claims_of(&tokens.access);
    assert_eq!(claims["iss"], "https://auth.example.com");
    assert_eq!(claims["aud"], "api");
    assert_eq!(app.get("/protected", Some(&tokens.access)).await.status(), StatusCode::OK);
    let discovery: Value = app.get("/.well-known/openid-configuration", None).await.json().await.unwrap();
    assert_eq!(discovery["issuer"], "https://auth.example.com");
    assert_eq!(discovery["jwks_uri"], "https://auth.example.com/.well-known/jwks.json");

    let app = spawn_app_with(|s| {
        s.signing.algorithm = Algorithm::EdDSA;
        s.tokens.issuer = Some("https://issuer.example.com".into());
    })
    .await;
    let tokens = app.user_with_tokens("bob").await;
    assert_eq!(claims_of(&tokens.access)["iss"], "https://issuer.example.com");
}

#[tokio::test]
async fn hs256_stays_the_default_unchanged_with_an_empty_key_set() {
    let app = spawn_app().await;
    let tokens = app.user_with_tokens("alice").await;
    let header = header_of(&tokens.access);
    assert_eq!(header["alg"], "HS256");
    assert!(header.get("kid").is_none(), "HS256 tokens carry no kid: {header}");
    let claims = claims_of(&tokens.access);
    assert!(claims.get("iss").is_none() && claims.get("aud").is_none(), "FJE writes no iss/aud: {claims}");
    // Still the shared secret, verifiable as FJE does.
    let key = DecodingKey::from_secret(SECRET.as_bytes());
    let validation = Validation::new(jsonwebtoken::Algorithm::HS256);
    jsonwebtoken::decode::<Value>(&tokens.access, &key, &validation).unwrap();

    let (_, raw) = jwks(&app).await;
    assert_eq!(raw, serde_json::json!({ "keys": [] }));
    assert_eq!(app.get("/.well-known/openid-configuration", None).await.status(), StatusCode::NOT_FOUND);
    let store = Store::connect(app.database_url()).await.unwrap();
    assert!(store.signing_keys().await.unwrap().is_empty(), "HS256 stores no keys");
    store.close().await;

    // An explicit issuer is written (and discoverable) with HS256 too.
    let app = spawn_app_with(|s| s.tokens.issuer = Some("https://hs.example.com".into())).await;
    let tokens = app.user_with_tokens("bob").await;
    assert_eq!(claims_of(&tokens.access)["iss"], "https://hs.example.com");
    let discovery: Value = app.get("/.well-known/openid-configuration", None).await.json().await.unwrap();
    assert_eq!(discovery["issuer"], "https://hs.example.com");
}

/// A public URL that survives restarts and is the same for every instance (the default, the
/// bound address, changes with each port-0 start).
const PUBLIC_URL: &str = "http://keycard.test";

#[tokio::test]
async fn a_rotation_while_the_server_runs_is_used_within_seconds_and_old_tokens_keep_verifying() {
    let app = spawn_app_with(|s| {
        s.signing.algorithm = Algorithm::ES256;
        s.signing.public_url = Some(PUBLIC_URL.into());
    })
    .await;
    let before = app.user_with_tokens("alice").await;
    let old_kid = kid_of(&before.access);

    let store = Store::connect(app.database_url()).await.unwrap();
    let new_kid = keycard_server::cli::rotate_key(&store, Algorithm::ES256, None).await.unwrap();
    assert_ne!(new_kid, old_kid);
    let took = signs_with_within(&app, "alice", &new_kid, ROTATION_PICKED_UP).await;
    eprintln!("rotation picked up in {took:?}");

    // Both keys published; the old token still verifies, here and with the published key.
    let (set, raw) = jwks(&app).await;
    let kids: Vec<&str> = raw["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert!(kids.contains(&old_kid.as_str()) && kids.contains(&new_kid.as_str()), "{kids:?}");
    assert_eq!(app.get("/protected", Some(&before.access)).await.status(), StatusCode::OK);
    verify_with_jwks(&before.access, &set, jsonwebtoken::Algorithm::ES256, PUBLIC_URL);
    // A refresh token signed by the old key is still good, and what it gets is signed by the new.
    let response = app.refresh(&before.refresh).await;
    assert_eq!(response.status(), StatusCode::OK);
    let refreshed = TokenPair::from_body(&response.json().await.unwrap());
    assert_eq!(kid_of(&refreshed.access), new_kid);

    let keys = keycard_server::cli::list_keys(&store).await.unwrap();
    assert_eq!(keys.len(), 2);
    let old = keys.iter().find(|k| k.kid == old_kid).unwrap();
    let new = keys.iter().find(|k| k.kid == new_kid).unwrap();
    assert_eq!((old.state, new.state), (KeyState::Retired, KeyState::Active));
    assert!(old.retired.is_some() && new.retired.is_none());
    assert!(keys.iter().all(|k| k.algorithm == "ES256" && k.created.ends_with('Z')), "{keys:?}");

    // The server survives a restart on the rotated keys.
    store.close().await;
    let app = app.restart().await;
    assert_eq!(app.get("/protected", Some(&before.access)).await.status(), StatusCode::OK);
    assert_eq!(kid_of(&app.login_tokens("alice", PASSWORD).await.access), new_kid);
}

#[tokio::test]
async fn a_retired_key_is_dropped_once_every_token_it_signed_has_expired() {
    let app = spawn_app_with(|s| {
        s.signing.algorithm = Algorithm::EdDSA;
        s.signing.public_url = Some(PUBLIC_URL.into());
        s.tokens.access_ttl = Duration::from_secs(60);
        s.tokens.refresh_ttl = Duration::from_secs(120);
    })
    .await;
    let before = app.user_with_tokens("alice").await;
    let old_kid = kid_of(&before.access);
    let store = Store::connect(app.database_url()).await.unwrap();
    let new_kid = keycard_server::cli::rotate_key(&store, Algorithm::EdDSA, None).await.unwrap();
    signs_with_within(&app, "alice", &new_kid, ROTATION_PICKED_UP).await;

    // Past the refresh lifetime and the margin; the restart rebuilds the set at the clock's now.
    app.clock.advance(120 + 60 + 20);
    let app = app.restart().await;
    let (_, raw) = jwks(&app).await;
    let kids: Vec<&str> = raw["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert_eq!(kids, vec![new_kid.as_str()], "the old key {old_kid} outlived its tokens");
    assert_eq!(app.get("/protected", Some(&before.access)).await.status(), StatusCode::UNAUTHORIZED);
    store.close().await;
}

#[tokio::test]
async fn private_keys_never_appear_in_answers_the_key_list_or_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("keycard.db").display());
    let envs = [("KEYCARD_JWT_ALGORITHM", "ES256"), ("RUST_LOG", "debug"), ("KEYCARD_DATABASE_URL", db.as_str())];
    let server = Process::serve(dir.path(), &envs);
    let client = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", server.address);
    let body = serde_json::json!({"username": "alice", "password": PASSWORD});
    let mut answers = String::new();
    answers.push_str(&client.post(url("/register")).json(&body).send().await.unwrap().text().await.unwrap());
    answers.push_str(&client.post(url("/login")).json(&body).send().await.unwrap().text().await.unwrap());

    let rotate = run_cli(&["keys", "rotate", "--jwt-algorithm", "ES256", "--database-url", &db], "", &[]);
    assert!(rotate.status.success(), "{}", String::from_utf8_lossy(&rotate.stderr));
    let new_kid = String::from_utf8(rotate.stdout.clone()).unwrap().trim().to_owned();
    assert_eq!(new_kid.len(), 43, "a base64url SHA-256 thumbprint: {new_kid:?}");
    let list = run_cli(&["keys", "list", "--database-url", &db], "", &[]);
    let list_json = run_cli(&["keys", "list", "--json", "--database-url", &db], "", &[]);
    for out in [&rotate, &list, &list_json] {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let listed = String::from_utf8(list.stdout.clone()).unwrap();
    assert!(listed.contains(&new_kid) && listed.contains("active") && listed.contains("retired"), "{listed}");
    let listed_json: Value = serde_json::from_slice(&list_json.stdout).unwrap();
    assert_eq!(listed_json.as_array().unwrap().len(), 2);
    for key in listed_json.as_array().unwrap() {
        let fields: Vec<&str> = key.as_object().unwrap().keys().map(String::as_str).collect();
        for field in fields {
            assert!(["kid", "algorithm", "created", "state", "retired", "encrypted"].contains(&field), "{field}");
        }
    }

    // Wait for the server to sign with the new key, then gather every answer.
    let start = Instant::now();
    loop {
        let login: Value = client.post(url("/login")).json(&body).send().await.unwrap().json().await.unwrap();
        answers.push_str(&login.to_string());
        if kid_of(login["access_token"].as_str().unwrap()) == new_kid {
            break;
        }
        assert!(start.elapsed() < ROTATION_PICKED_UP, "the server did not pick up the rotation");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for path in ["/.well-known/jwks.json", "/.well-known/openid-configuration", "/healthz", "/nope"] {
        answers.push_str(&client.get(url(path)).send().await.unwrap().text().await.unwrap());
    }
    let (status, logs) = server.terminate();
    assert!(status.success());
    assert!(logs.contains(&new_kid), "the rotation should be logged by kid");

    let store = Store::connect(&db).await.unwrap();
    let stored = store.signing_keys().await.unwrap();
    store.close().await;
    assert_eq!(stored.len(), 2);
    let outputs = [
        answers,
        logs,
        listed,
        String::from_utf8_lossy(&list_json.stdout).into_owned(),
        String::from_utf8_lossy(&rotate.stdout).into_owned(),
        String::from_utf8_lossy(&rotate.stderr).into_owned(),
        String::from_utf8_lossy(&list.stderr).into_owned(),
    ];
    for key in &stored {
        assert!(!key.sealed);
        let der = &key.private_key;
        // The PKCS#8 DER in every usual encoding, and the private scalar itself (the 32-byte
        // OCTET STRING after ECPrivateKey's version 1) in base64url, as a JWK "d" would show it.
        let hex: String = der.iter().map(|b| format!("{b:02x}")).collect();
        let at = der.windows(5).position(|w| w == [0x02, 0x01, 0x01, 0x04, 0x20]).expect("an ECPrivateKey") + 5;
        let scalar = &der[at..at + 32];
        let scalar_hex: String = scalar.iter().map(|b| format!("{b:02x}")).collect();
        let needles =
            [STANDARD.encode(der), URL_SAFE_NO_PAD.encode(der), hex, URL_SAFE_NO_PAD.encode(scalar), scalar_hex];
        for output in &outputs {
            for needle in &needles {
                assert!(!output.contains(needle.as_str()), "private key material of {} leaked", key.kid);
            }
            assert!(!output.contains("\"d\":"), "a private JWK member leaked");
        }
    }
}

#[tokio::test]
async fn sealed_keys_need_the_right_encryption_key_to_start() {
    let app = spawn_app_with(|s| {
        s.signing.algorithm = Algorithm::ES256;
        s.signing.public_url = Some(PUBLIC_URL.into());
        s.signing.key_encryption_key = Some(SecretString::from(kek(1)));
    })
    .await;
    let tokens = app.user_with_tokens("alice").await;
    let kid = kid_of(&tokens.access);
    let store = Store::connect(app.database_url()).await.unwrap();
    let stored = store.signing_keys().await.unwrap();
    assert_eq!(stored.len(), 1);
    assert!(stored[0].sealed && stored[0].private_key[0] == 1, "the key is stored sealed");
    let mut settings = app.settings.clone();
    let (dir, _schema) = (app.dir.clone(), app.schema.clone());
    drop(app);

    // A wrong key, or none: refused, with a message naming the variable, never a key.
    settings.signing.key_encryption_key = Some(SecretString::from(kek(2)));
    let err = format!("{:#}", keycard_server::Application::build(settings.clone()).await.err().unwrap());
    assert!(err.contains("cannot be decrypted") && err.contains("KEYCARD_KEY_ENCRYPTION_KEY"), "{err}");
    assert!(err.contains(&kid) && !err.contains(&kek(2)) && !err.contains(&kek(1)), "{err}");
    settings.signing.key_encryption_key = None;
    let err = format!("{:#}", keycard_server::Application::build(settings.clone()).await.err().unwrap());
    assert!(err.contains("is encrypted, but KEYCARD_KEY_ENCRYPTION_KEY is not set"), "{err}");
    settings.signing.key_encryption_key = Some(SecretString::from("not a key".to_owned()));
    let err = format!("{:#}", keycard_server::Application::build(settings.clone()).await.err().unwrap());
    assert!(err.contains("32 random bytes") && !err.contains("not a key"), "{err}");
    // The CLI refuses to rotate with a wrong key too: servers could not open what it would write.
    let err =
        keycard_server::cli::rotate_key(&store, Algorithm::ES256, Some(SecretString::from(kek(2)))).await.unwrap_err();
    assert!(format!("{err:#}").contains("cannot be decrypted"), "{err:#}");
    assert_eq!(store.signing_keys().await.unwrap().len(), 1, "nothing was written");

    // The right key starts, on the same key.
    settings.signing.key_encryption_key = Some(SecretString::from(kek(1)));
    let app = spawn_in(settings, dir).await;
    assert_eq!(app.get("/protected", Some(&tokens.access)).await.status(), StatusCode::OK);
    assert_eq!(kid_of(&app.login_tokens("alice", PASSWORD).await.access), kid);
    // And a rotation with it is sealed as well.
    let new_kid =
        keycard_server::cli::rotate_key(&store, Algorithm::ES256, Some(SecretString::from(kek(1)))).await.unwrap();
    signs_with_within(&app, "alice", &new_kid, ROTATION_PICKED_UP).await;
    assert!(store.signing_keys().await.unwrap().iter().all(|k| k.sealed));
    store.close().await;
}

#[tokio::test]
async fn two_servers_on_one_postgresql_share_the_key_and_see_a_rotation() {
    let Some(a) = spawn_on_postgres(false, |s| {
        s.signing.algorithm = Algorithm::ES256;
        s.signing.public_url = Some(PUBLIC_URL.into());
    })
    .await
    else {
        return;
    };
    let b = spawn_sibling(&a, |_| {}).await;
    let on_a = a.user_with_tokens("alice").await;
    let on_b = b.login_tokens("alice", PASSWORD).await;
    let kid = kid_of(&on_a.access);
    assert_eq!(kid_of(&on_b.access), kid, "both servers sign with the one key");
    assert_eq!(b.get("/protected", Some(&on_a.access)).await.status(), StatusCode::OK);

    let store = Store::connect(a.database_url()).await.unwrap();
    let new_kid = keycard_server::cli::rotate_key(&store, Algorithm::ES256, None).await.unwrap();
    store.close().await;
    signs_with_within(&a, "alice", &new_kid, ROTATION_PICKED_UP).await;
    signs_with_within(&b, "alice", &new_kid, ROTATION_PICKED_UP).await;
    let fresh = a.login_tokens("alice", PASSWORD).await;
    for app in [&a, &b] {
        for token in [&on_a.access, &on_b.access, &fresh.access] {
            assert_eq!(app.get("/protected", Some(token)).await.status(), StatusCode::OK);
        }
        let (_, raw) = jwks(app).await;
        assert_eq!(raw["keys"].as_array().unwrap().len(), 2, "{raw}");
    }
}

#[tokio::test]
async fn servers_starting_together_on_one_postgresql_end_with_one_key() {
    let Some(schema) = keycard_store::testing::PgSchema::create().await else { return };
    let mut settings = crate::helpers::settings(schema.url.clone());
    settings.redis_url = None;
    settings.signing.algorithm = Algorithm::EdDSA;
    let builds: Vec<_> = (0..3).map(|_| tokio::spawn(keycard_server::Application::build(settings.clone()))).collect();
    let mut apps = Vec::new();
    for build in builds {
        apps.push(build.await.unwrap().unwrap());
    }
    let kids: Vec<Vec<String>> =
        apps.iter().map(|app| app.state().tokens().keys().kids().into_iter().map(str::to_owned).collect()).collect();
    assert!(kids.iter().all(|k| k == &kids[0] && k.len() == 1), "{kids:?}");
    let store = Store::connect(&schema.url).await.unwrap();
    assert_eq!(store.signing_keys().await.unwrap().len(), 1);
    store.close().await;
}

#[tokio::test]
async fn a_failing_key_poll_keeps_the_current_keys_and_recovers() {
    use sqlx::Connection;

    if on_postgres() {
        return; // The fault is injected with SQLite DDL; the poll code is the same on both.
    }
    let app = spawn_with(Algorithm::ES256).await;
    let before = app.user_with_tokens("alice").await;
    let kid = kid_of(&before.access);
    let sql = |statement: &'static str| {
        let url = app.database_url().to_owned();
        async move {
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::raw_sql(statement).execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
        }
    };

    // The table disappears: every poll fails; the server keeps signing and verifying.
    sql("ALTER TABLE signing_keys RENAME TO signing_keys_away").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(app.get("/protected", Some(&before.access)).await.status(), StatusCode::OK);
    assert_eq!(kid_of(&app.login_tokens("alice", PASSWORD).await.access), kid);
    let (_, raw) = jwks(&app).await;
    assert_eq!(raw["keys"][0]["kid"], kid.as_str());

    // It comes back with a rotation made meanwhile: picked up.
    sql("ALTER TABLE signing_keys_away RENAME TO signing_keys").await;
    let store = Store::connect(app.database_url()).await.unwrap();
    let new_kid = keycard_server::cli::rotate_key(&store, Algorithm::ES256, None).await.unwrap();
    store.close().await;
    signs_with_within(&app, "alice", &new_kid, ROTATION_PICKED_UP).await;
    assert_eq!(app.get("/protected", Some(&before.access)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_scheduled_rotation_replaces_a_key_older_than_the_interval() {
    let app = spawn_app_with(|s| {
        s.signing.algorithm = Algorithm::EdDSA;
        s.signing.public_url = Some(PUBLIC_URL.into());
        s.signing.key_rotation = Some(Duration::from_secs(3600));
    })
    .await;
    let before = app.user_with_tokens("alice").await;
    let old_kid = kid_of(&before.access);
    // Not due yet: a restart keeps the key.
    let app = app.restart().await;
    assert_eq!(kid_of(&app.login_tokens("alice", PASSWORD).await.access), old_kid);

    // Due: the next start (as the running servers' once-a-minute check would) rotates it.
    app.clock.advance(3600 + 5);
    let app = app.restart().await;
    let after = app.login_tokens("alice", PASSWORD).await;
    assert_ne!(kid_of(&after.access), old_kid);
    let store = Store::connect(app.database_url()).await.unwrap();
    let keys = store.signing_keys().await.unwrap();
    store.close().await;
    assert_eq!(keys.len(), 2);
    let old = keys.iter().find(|k| k.kid == old_kid).unwrap();
    assert_eq!(old.state, KeyState::Retired);
    let (_, raw) = jwks(&app).await;
    assert_eq!(raw["keys"].as_array().unwrap().len(), 2, "the retired key is still published: {raw}");
}
