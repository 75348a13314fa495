//! Flask-JWT-Extended's `examples/oidc.py`, ported: an API protected by the tokens of any OpenID
//! Connect provider (Keycloak, Auth0, Okta, Entra, Google, or a keycard server), with a route
//! that also requires membership of the group `api-access`.
//!
//! ```sh
//! OIDC_ISSUER_URL=https://my-identity-server.example/auth/realms/master \
//! OIDC_CLIENT_ID=example.my-identity-server \
//!     cargo run -p keycard-jwks --example oidc
//! curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:5000/group-protected
//! ```
//!
//! Environment (the names of the four OIDC variables are Kubernetes', as in the original):
//!
//! - `OIDC_ISSUER_URL` (required): the issuer; keys are found by discovery at
//!   `{issuer}/.well-known/openid-configuration` and refreshed as the provider says.
//! - `OIDC_CLIENT_ID` (required): the audience tokens must name in `aud`.
//! - `OIDC_USERNAME_CLAIM` (default `email`): the claim holding the user's name.
//! - `OIDC_GROUPS_CLAIM` (default `groups`): the claim listing the user's groups (a dotted path
//!   such as `realm_access.roles` works too).
//! - `KEYCARD_BIND` (default `127.0.0.1:5000`): the address to listen on.
//!
//! Unlike the original, every key of the provider's set is used (not only the first, and not only
//! RS256), keys rotated by the provider are picked up without a restart, TLS certificates are
//! verified, and a token without the groups claim is a 401, not a 500.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use keycard_axum::Jwt;
use keycard_jwks::{JwksVerifier, OidcClaims, claim_contains};
use serde_json::json;

/// The group `/group-protected` requires.
const REQUIRED_GROUP: &str = "api-access";

/// What the example reads from the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `OIDC_ISSUER_URL`.
    pub issuer: String,
    /// `OIDC_CLIENT_ID`: the audience.
    pub client_id: String,
    /// `OIDC_USERNAME_CLAIM`.
    pub username_claim: String,
    /// `OIDC_GROUPS_CLAIM`.
    pub groups_claim: String,
    /// `KEYCARD_BIND`.
    pub bind: String,
}

impl Settings {
    /// The settings from `var` (the environment, in `main`).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let required = |name: &str| var(name).filter(|v| !v.is_empty()).ok_or(format!("{name} is required"));
        let or = |name: &str, default: &str| var(name).filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned());
        Ok(Settings {
            issuer: required("OIDC_ISSUER_URL")?,
            client_id: required("OIDC_CLIENT_ID")?,
            username_claim: or("OIDC_USERNAME_CLAIM", "email"),
            groups_claim: or("OIDC_GROUPS_CLAIM", "groups"),
            bind: or("KEYCARD_BIND", "127.0.0.1:5000"),
        })
    }
}

/// The application: fetches the provider's keys (fails if it cannot), then the routes.
pub async fn app(settings: &Settings) -> Result<Router, Box<dyn std::error::Error>> {
    let verifier = JwksVerifier::builder()
        .issuer(&settings.issuer)
        .audience(&settings.client_id)
        .identity_claim(&settings.username_claim)
        .build()
        .await?;
    let jwt = verifier.jwt_config::<OidcClaims>()?;
    Ok(Router::new()
        .route("/anonymous", get(anonymous))
        .route("/token-protected", get(token_protected))
        .route("/group-protected", get(group_protected))
        .layer(jwt.layer())
        .with_state(Arc::from(settings.groups_claim.as_str())))
}

async fn anonymous() -> Json<serde_json::Value> {
    Json(json!({"result": "anonymous ok"}))
}

async fn token_protected(_: Jwt<OidcClaims>) -> Json<serde_json::Value> {
    Json(json!({"result": "protected by token ok"}))
}

async fn group_protected(State(groups_claim): State<Arc<str>>, jwt: Jwt<OidcClaims>) -> Response {
    if !claim_contains(&jwt.claims, &groups_claim, REQUIRED_GROUP) {
        let body = json!({"result": format!("user not in group {REQUIRED_GROUP} required to access this endpoint")});
        let challenge = HeaderValue::from_static(r#"Bearer error="insufficient_scope""#);
        return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, challenge)], Json(body)).into_response();
    }
    Json(json!({"result": "protected by token AND group membership ok", "user": jwt.sub})).into_response()
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let settings = Settings::from_vars(|name| std::env::var(name).ok()).unwrap_or_else(fail);
    let app = app(&settings).await.unwrap_or_else(|e| {
        let mut msg = e.to_string();
        let mut source = e.source();
        while let Some(cause) = source {
            msg = format!("{msg}: {cause}");
            source = cause.source();
        }
        fail(msg)
    });
    let listener = tokio::net::TcpListener::bind(&settings.bind)
        .await
        .unwrap_or_else(|e| fail(format!("cannot listen on {}: {e}", settings.bind)));
    eprintln!("listening on http://{}", settings.bind);
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .unwrap_or_else(|e| fail(format!("server error: {e}")));
}

/// Prints `msg` and exits with status 1.
fn fail<T>(msg: impl std::fmt::Display) -> T {
    eprintln!("error: {msg}");
    std::process::exit(1)
}
