//! A stand-in OpenID Provider: discovery and JWKS on 127.0.0.1:0, keys generated with
//! keycard-token, tokens signed independently with aws-lc-rs (as a foreign issuer would), a
//! request counter and switches to rotate keys, go down, answer slowly or badly.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keycard_token::{Algorithm, SigningKey};
use serde_json::{Value, json};

/// The audience (client id) of the tokens the provider issues by default.
pub const CLIENT_ID: &str = "example.my-identity-server";

/// How the provider answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Normally.
    Up,
    /// 503 on every endpoint.
    Down,
    /// Normally, after this delay, on every endpoint.
    Slow(Duration),
    /// The JWKS endpoint answers `{not json`.
    Malformed,
    /// The JWKS endpoint answers `{"keys": []}`.
    Empty,
    /// The JWKS endpoint answers keys no verifier can use (an `oct` key, an `enc` key, a
    /// truncated EC key).
    Unusable,
    /// The JWKS endpoint answers the real keys, each twice (the copy has the same kid), among
    /// unusable entries: an `oct` key, an `enc` key, a truncated EC key, a 1024-bit RSA key,
    /// an unknown key type, non-objects.
    Mixed,
    /// The JWKS endpoint answers 2 MiB.
    Huge,
    /// The JWKS endpoint redirects to `/evil`.
    Redirect,
}

struct State_ {
    issuer: String,
    base: String,
    keys: Mutex<Vec<SigningKey>>,
    mode: Mutex<Mode>,
    cache_control: Mutex<Option<String>>,
    discovery_issuer: Mutex<Option<String>>,
    discovery_hits: AtomicUsize,
    jwks_hits: AtomicUsize,
    other_hits: AtomicUsize,
}

/// A running stand-in provider; stops when dropped.
pub struct Provider {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The issuer: `{base}/realms/test`.
    pub issuer: String,
    /// The JWKS URL: `{issuer}/protocol/openid-connect/certs` (Keycloak's layout).
    pub jwks_url: String,
    state: Arc<State_>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Provider {
    /// A provider publishing one new key of each of `algs`.
    pub async fn start(algs: &[Algorithm]) -> Provider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let issuer = format!("{base}/realms/test");
        let jwks_url = format!("{issuer}/protocol/openid-connect/certs");
        let keys = algs.iter().map(|alg| SigningKey::generate(*alg).unwrap()).collect();
        let state = Arc::new(State_ {
            issuer: issuer.clone(),
            base: base.clone(),
            keys: Mutex::new(keys),
            mode: Mutex::new(Mode::Up),
            cache_control: Mutex::new(None),
            discovery_issuer: Mutex::new(None),
            discovery_hits: AtomicUsize::new(0),
            jwks_hits: AtomicUsize::new(0),
            other_hits: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/realms/test/.well-known/openid-configuration", get(discovery))
            .route("/realms/test/protocol/openid-connect/certs", get(jwks))
            .fallback(other)
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Provider { base, issuer, jwks_url, state, server }
    }

    /// Switches how the provider answers.
    pub fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    /// The `Cache-Control` of the JWKS answers (none by default).
    pub fn set_cache_control(&self, value: Option<&str>) {
        *self.state.cache_control.lock().unwrap() = value.map(str::to_owned);
    }

    /// The issuer the discovery document names (by default the real one).
    pub fn set_discovery_issuer(&self, issuer: &str) {
        *self.state.discovery_issuer.lock().unwrap() = Some(issuer.to_owned());
    }

    /// How many times the JWKS was requested.
    pub fn jwks_hits(&self) -> usize {
        self.state.jwks_hits.load(Ordering::SeqCst)
    }

    /// How many times the discovery document was requested.
    pub fn discovery_hits(&self) -> usize {
        self.state.discovery_hits.load(Ordering::SeqCst)
    }

    /// How many requests went anywhere else (`/evil`, ...).
    pub fn other_hits(&self) -> usize {
        self.state.other_hits.load(Ordering::SeqCst)
    }

    /// The kid of key `i`.
    pub fn kid(&self, i: usize) -> String {
        self.state.keys.lock().unwrap()[i].kid().to_owned()
    }

    /// Key `i` itself (to sign with keycard-token, as a keycard server would).
    pub fn signing_key(&self, i: usize) -> SigningKey {
        self.state.keys.lock().unwrap()[i].clone()
    }

    /// The public JWK of key `i`.
    pub fn public_jwk(&self, i: usize) -> Value {
        serde_json::to_value(self.state.keys.lock().unwrap()[i].public_jwk()).unwrap()
    }

    /// Replaces every key by a new one of the same algorithm (a rotation without overlap);
    /// returns the new kid of key 0.
    pub fn rotate(&self) -> String {
        let mut keys = self.state.keys.lock().unwrap();
        *keys = keys.iter().map(|k| SigningKey::generate(k.algorithm()).unwrap()).collect();
        keys[0].kid().to_owned()
    }

    /// Adds a new key of `alg` in front (the new signing key; the old ones stay published);
    /// returns its kid.
    pub fn add_key(&self, alg: Algorithm) -> String {
        let key = SigningKey::generate(alg).unwrap();
        let kid = key.kid().to_owned();
        self.state.keys.lock().unwrap().insert(0, key);
        kid
    }

    /// Standard claims of a user of this provider: `iss`, `aud`, `sub`, `email`, `groups`,
    /// `iat`, `exp` in 5 minutes; no `jti`, `type`, `nbf` (as many providers write them).
    pub fn claims(&self, email: &str, groups: &[&str]) -> Value {
        let now = now();
        json!({
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "sub": "f1b9c6a2-0000-4000-8000-000000000001",
            "email": email,
            "groups": groups,
            "iat": now,
            "exp": now + 300,
            "azp": CLIENT_ID,
            "typ": "Bearer",
        })
    }

    /// A token for `claims`, signed by key 0 with its kid.
    pub fn token(&self, claims: &Value) -> String {
        self.token_by(0, claims)
    }

    /// A token for `claims`, signed by key `i` with its kid.
    pub fn token_by(&self, i: usize, claims: &Value) -> String {
        let keys = self.state.keys.lock().unwrap();
        let key = &keys[i];
        let header = json!({"alg": key.algorithm().as_str(), "typ": "JWT", "kid": key.kid()});
        sign(key, &header, claims)
    }

    /// A token with exactly `header`, signed by key `i`.
    pub fn token_with_header(&self, i: usize, header: &Value, claims: &Value) -> String {
        sign(&self.state.keys.lock().unwrap()[i], header, claims)
    }
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Base64url without padding.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact JWS of `header` and `claims` signed with `key` by aws-lc-rs directly (not
/// keycard-token's signer), as a foreign issuer would.
pub fn sign(key: &SigningKey, header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", b64(&serde_json::to_vec(header).unwrap()), b64(&serde_json::to_vec(claims).unwrap()));
    let der = key.to_pkcs8().unwrap();
    let rng = SystemRandom::new();
    let sig: Vec<u8> = match key.algorithm() {
        Algorithm::ES256 => EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &der)
            .unwrap()
            .sign(&rng, input.as_bytes())
            .unwrap()
            .as_ref()
            .to_vec(),
        Algorithm::ES384 => EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, &der)
            .unwrap()
            .sign(&rng, input.as_bytes())
            .unwrap()
            .as_ref()
            .to_vec(),
        Algorithm::EdDSA => {
            Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).unwrap().sign(input.as_bytes()).as_ref().to_vec()
        }
        Algorithm::RS256 => {
            let pair = RsaKeyPair::from_pkcs8(&der).unwrap();
            let mut sig = vec![0; pair.public_modulus_len()];
            pair.sign(&signature::RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut sig).unwrap();
            sig
        }
        other => panic!("the stand-in provider does not sign {other:?}"),
    };
    format!("{input}.{}", b64(&sig))
}

/// A token with `header` and `claims` MACed with HS256 under `secret`.
pub fn sign_hs256(secret: &[u8], header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", b64(&serde_json::to_vec(header).unwrap()), b64(&serde_json::to_vec(claims).unwrap()));
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

async fn delay(state: &State_) -> Result<Mode, Response> {
    let mode = *state.mode.lock().unwrap();
    match mode {
        Mode::Down => Err((StatusCode::SERVICE_UNAVAILABLE, "down").into_response()),
        Mode::Slow(d) => {
            tokio::time::sleep(d).await;
            Ok(mode)
        }
        _ => Ok(mode),
    }
}

async fn discovery(State(state): State<Arc<State_>>) -> Response {
    state.discovery_hits.fetch_add(1, Ordering::SeqCst);
    if let Err(response) = delay(&state).await {
        return response;
    }
    let issuer = state.discovery_issuer.lock().unwrap().clone().unwrap_or_else(|| state.issuer.clone());
    axum::Json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{}/protocol/openid-connect/certs", state.issuer),
        "authorization_endpoint": format!("{}/protocol/openid-connect/auth", state.issuer),
        "id_token_signing_alg_values_supported": ["ES256", "EdDSA", "RS256"],
    }))
    .into_response()
}

async fn jwks(State(state): State<Arc<State_>>) -> Response {
    state.jwks_hits.fetch_add(1, Ordering::SeqCst);
    let mode = match delay(&state).await {
        Ok(mode) => mode,
        Err(response) => return response,
    };
    let body = match mode {
        Mode::Malformed => "{not json".to_owned(),
        Mode::Empty => r#"{"keys": []}"#.to_owned(),
        Mode::Unusable => json!({ "keys": unusable_keys() }).to_string(),
        Mode::Mixed => {
            let mut keys: Vec<Value> = unusable_keys();
            for key in state.keys.lock().unwrap().iter() {
                let jwk = serde_json::to_value(key.public_jwk()).unwrap();
                keys.push(jwk.clone());
                keys.push(jwk);
            }
            keys.extend([json!(42), json!("x"), json!(null), json!([]), json!({"kty": "XYZ", "kid": "xyz"})]);
            json!({ "keys": keys }).to_string()
        }
        Mode::Huge => format!(r#"{{"keys": [], "padding": "{}"}}"#, "x".repeat(2 << 20)),
        Mode::Redirect => {
            return (StatusCode::FOUND, [(header::LOCATION, format!("{}/evil", state.base))]).into_response();
        }
        _ => {
            let keys: Vec<_> = state.keys.lock().unwrap().iter().map(SigningKey::public_jwk).collect();
            json!({ "keys": keys }).to_string()
        }
    };
    let mut response = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    if let Some(cc) = state.cache_control.lock().unwrap().as_deref() {
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_str(cc).unwrap());
    }
    response
}

/// Keys no verifier may use.
fn unusable_keys() -> Vec<Value> {
    vec![
        json!({"kty": "oct", "k": b64(&[7; 32]), "alg": "HS256", "kid": "hmac"}),
        json!({"kty": "EC", "crv": "P-256", "use": "enc", "kid": "enc",
               "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}),
        json!({"kty": "EC", "crv": "P-256", "kid": "short", "x": "f83OJ3D2", "y": "x_FEzRu9"}),
        json!({"kty": "EC", "crv": "P-256", "kid": "off-curve", "x": b64(&[1; 32]), "y": b64(&[2; 32])}),
        json!({"kty": "RSA", "kid": "rsa-1024", "alg": "RS256", "e": "AQAB", "n": b64(&[0xc5; 128])}),
        json!({"kty": "OKP", "crv": "X25519", "kid": "x25519", "x": b64(&[9; 32])}),
        json!({"kty": "EC", "crv": "P-256", "alg": "HS256", "kid": "ec-as-hmac",
               "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}),
    ]
}

async fn other(State(state): State<Arc<State_>>) -> StatusCode {
    state.other_hits.fetch_add(1, Ordering::SeqCst);
    StatusCode::NOT_FOUND
}
