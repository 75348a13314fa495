//! floor_es256: the anchors' rust_floor (../../../shared/anchors/rust_floor/src/main.rs) with an
//! asymmetric signature algorithm: the bare axum + tokio + jsonwebtoken cost of verifying an
//! ES256 (or EdDSA, RS256) token, which keycard's uncached verify path is measured against.
//!
//! Same routes, same handlers, same claims, same tokio setup as rust_floor; only the keys differ:
//!
//!   GET  /hello                 no auth, tiny JSON            -> HTTP stack ceiling
//!   GET  /protected             Bearer <FLOOR_ALG> via jsonwebtoken::decode
//!   GET  /protected_revocation  as /protected + jti lookup in RwLock<HashSet>
//!   POST /login                 {username[,password]} -> {access_token, refresh_token}
//!                               for ANY username (no password hashing)
//!   DELETE /logout              revokes the presented access token's jti
//!
//! Config (env): FLOOR_ALG = ES256 (default) | EdDSA | RS256 | HS256: the algorithm; the
//! asymmetric key pair (P-256, Ed25519, RSA 2048) is generated at start by aws-lc-rs and never
//! leaves the process; HS256 uses JWT_SECRET_KEY (default: 32 random bytes, hex) as rust_floor.
//! BIND (default 127.0.0.1:8080), REVOKED_SEED (default 1000), as rust_floor.
//! Worker threads: tokio's default (= CPUs in the affinity mask, so 1 under
//! `taskset -c 1`); override with TOKIO_WORKER_THREADS.
//! Crypto: jsonwebtoken 11 with the `aws_lc_rs` backend, as keycard's workspace uses it.

use std::collections::HashSet;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode, header::AUTHORIZATION},
    response::{IntoResponse, Response},
    routing::{delete, get, post},
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};
use serde_json::json;

const ACCESS_TTL_S: u64 = 3600;
const REFRESH_TTL_S: u64 = 30 * 24 * 3600;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iat: u64,
    nbf: u64,
    exp: u64,
    jti: String,
    #[serde(rename = "type")]
    typ: String,
}

struct AppState {
    alg: Algorithm,
    enc: EncodingKey,
    dec: DecodingKey,
    validation: Validation,
    revoked: RwLock<HashSet<String>>,
    jti_prefix: String,
    jti_counter: AtomicU64,
}

type Shared = Arc<AppState>;

fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("read /dev/urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn unauthorized(msg: &str) -> Response {
    (StatusCode::UNAUTHORIZED, Json(json!({ "msg": msg }))).into_response()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

fn verify(state: &AppState, headers: &HeaderMap) -> Result<Claims, Response> {
    let token = bearer(headers).ok_or_else(|| unauthorized("Missing Authorization Header"))?;
    let data = decode::<Claims>(token, &state.dec, &state.validation)
        .map_err(|e| unauthorized(&format!("Invalid token: {e}")))?;
    if data.claims.typ != "access" {
        return Err(unauthorized("Only access tokens are allowed"));
    }
    Ok(data.claims)
}

async fn hello() -> Json<serde_json::Value> {
    Json(json!({ "msg": "hello" }))
}

async fn protected(State(state): State<Shared>, headers: HeaderMap) -> Response {
    match verify(&state, &headers) {
        Ok(c) => Json(json!({ "logged_in_as": c.sub })).into_response(),
        Err(r) => r,
    }
}

async fn protected_revocation(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let claims = match verify(&state, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if state.revoked.read().unwrap().contains(&claims.jti) {
        return unauthorized("Token has been revoked");
    }
    Json(json!({ "logged_in_as": claims.sub })).into_response()
}

#[derive(Deserialize)]
struct LoginBody {
    username: Option<String>,
}

fn issue(state: &AppState, sub: &str, typ: &str, ttl: u64) -> String {
    let t = now();
    let n = state.jti_counter.fetch_add(1, Ordering::Relaxed);
    let claims = Claims {
        sub: sub.to_owned(),
        iat: t,
        nbf: t,
        exp: t + ttl,
        jti: format!("{}-{n:016x}", state.jti_prefix),
        typ: typ.to_owned(),
    };
    encode(&Header::new(state.alg), &claims, &state.enc).expect("encode jwt")
}

async fn login(State(state): State<Shared>, body: Option<Json<LoginBody>>) -> Response {
    let username = match body.and_then(|Json(b)| b.username).filter(|u| !u.is_empty()) {
        Some(u) => u,
        None => return unauthorized("Bad username or password"),
    };
    let access = issue(&state, &username, "access", ACCESS_TTL_S);
    let refresh = issue(&state, &username, "refresh", REFRESH_TTL_S);
    Json(json!({ "access_token": access, "refresh_token": refresh })).into_response()
}

async fn logout(State(state): State<Shared>, headers: HeaderMap) -> Response {
    match verify(&state, &headers) {
        Ok(c) => {
            state.revoked.write().unwrap().insert(c.jti);
            Json(json!({ "msg": "Access token revoked" })).into_response()
        }
        Err(r) => r,
    }
}

/// One DER element at the start of `der`: (tag, contents, rest).
fn der_element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        rest = &rest[n..];
        len
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The PKCS#1 RSAPrivateKey inside a PKCS#8 PrivateKeyInfo (what jsonwebtoken's
/// `EncodingKey::from_rsa_der` wants; aws-lc-rs serialises RSA key pairs as PKCS#8 only):
/// SEQUENCE { INTEGER version, SEQUENCE algorithm, OCTET STRING privateKey, ... }.
fn pkcs1_from_pkcs8(pkcs8: &[u8]) -> Option<&[u8]> {
    let (0x30, info, _) = der_element(pkcs8)? else { return None };
    let (0x02, _, rest) = der_element(info)? else { return None };
    let (0x30, _, rest) = der_element(rest)? else { return None };
    let (0x04, key, _) = der_element(rest)? else { return None };
    Some(key)
}

/// (algorithm, signing key, verification key) for FLOOR_ALG.
fn keys(alg: &str) -> (Algorithm, EncodingKey, DecodingKey) {
    match alg {
        "ES256" => {
            let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("generate P-256 key");
            let pkcs8 = pair.to_pkcs8v1().expect("P-256 key as PKCS#8");
            (
                Algorithm::ES256,
                EncodingKey::from_ec_der(pkcs8.as_ref()),
                // The uncompressed point (0x04 || x || y), as from_ec_components builds it.
                DecodingKey::from_ec_der(pair.public_key().as_ref()),
            )
        }
        "EdDSA" => {
            let pair = Ed25519KeyPair::generate().expect("generate Ed25519 key");
            let pkcs8 = pair.to_pkcs8().expect("Ed25519 key as PKCS#8");
            (
                Algorithm::EdDSA,
                EncodingKey::from_ed_der(pkcs8.as_ref()),
                DecodingKey::from_ed_der(pair.public_key().as_ref()),
            )
        }
        "RS256" => {
            let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .expect("generate RSA-2048 key");
            let pkcs8 = pair.as_der().expect("RSA key as PKCS#8");
            let pkcs1 = pkcs1_from_pkcs8(pkcs8.as_ref()).expect("PKCS#1 key inside the PKCS#8");
            (
                Algorithm::RS256,
                EncodingKey::from_rsa_der(pkcs1),
                // PKCS#1 RSAPublicKey DER.
                DecodingKey::from_rsa_der(pair.public_key().as_ref()),
            )
        }
        "HS256" => {
            let secret = std::env::var("JWT_SECRET_KEY")
                .ok()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| random_hex(32));
            (
                Algorithm::HS256,
                EncodingKey::from_secret(secret.as_bytes()),
                DecodingKey::from_secret(secret.as_bytes()),
            )
        }
        other => {
            eprintln!("floor_es256: FLOOR_ALG must be ES256, EdDSA, RS256 or HS256, not {other:?}");
            std::process::exit(2);
        }
    }
}

#[tokio::main]
async fn main() {
    let alg_name = std::env::var("FLOOR_ALG").unwrap_or_else(|_| "ES256".to_string());
    let (alg, enc, dec) = keys(&alg_name);
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:8080".to_string());
    let seed: usize = std::env::var("REVOKED_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);

    let mut revoked = HashSet::with_capacity(seed);
    for _ in 0..seed {
        revoked.insert(random_hex(16));
    }

    let mut validation = Validation::new(alg);
    validation.leeway = 0;

    let state = Arc::new(AppState {
        alg,
        enc,
        dec,
        validation,
        revoked: RwLock::new(revoked),
        jti_prefix: random_hex(8),
        jti_counter: AtomicU64::new(0),
    });

    let app = Router::new()
        .route("/hello", get(hello))
        .route("/protected", get(protected))
        .route("/protected_revocation", get(protected_revocation))
        .route("/login", post(login))
        .route("/logout", delete(logout))
        .with_state(state);

    let listener = tokio::net::TcpListener::bind(&bind).await.expect("bind");
    eprintln!("floor_es256 ({alg_name}) listening on {bind}");
    axum::serve(listener, app).await.expect("serve");
}
