//! `/.well-known/jwks.json` and `/.well-known/openid-configuration`: how other services find
//! the public keys that verify keycard's tokens (issue 13).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::openapi::{Discovery, ErrorBody, JwkSet};
use crate::state::AppState;

/// How long verifiers may cache the key set and the discovery document. A rotation publishes
/// the new key at once and signs with it within seconds, so a verifier's cached set may lack
/// it: verifiers refetch on an unknown `kid` (keycard-jwks does); retired keys stay published far
/// longer than this.
const CACHE_CONTROL: &str = "public, max-age=300";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(jwks)).routes(routes!(openid_configuration))
}

/// The public keys (RFC 7517), the signing one and those still verifying; never a private
/// member, never an HMAC secret: with HS256 the set is empty.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "discovery",
    summary = "The public keys verifying keycard's tokens (RFC 7517)",
    responses((status = 200, description = "The key set (`Cache-Control: public, max-age=300`); empty with HS256", body = JwkSet)),
)]
async fn jwks(State(state): State<AppState>) -> Response {
    cacheable(Json(state.tokens().keys().jwks()).into_response())
}

/// The discovery document (OpenID Connect Discovery 1.0 §3 / RFC 8414 field names): `issuer` and
/// `jwks_uri`. 404 when tokens carry no `iss` (HS256 without `KEYCARD_ISSUER`): there is then no
/// issuer to discover.
#[utoipa::path(
    get,
    path = "/.well-known/openid-configuration",
    tag = "discovery",
    summary = "Issuer metadata: `issuer` and `jwks_uri` (OpenID Connect Discovery 1.0, RFC 8414)",
    responses(
        (status = 200, description = "The discovery document (`Cache-Control: public, max-age=300`)", body = Discovery),
        (status = 404, description = "`Not found`: tokens carry no `iss` (HS256 without `KEYCARD_ISSUER`)", body = ErrorBody),
    ),
)]
async fn openid_configuration(State(state): State<AppState>) -> Result<Response, ApiError> {
    let discovery = state.discovery.as_ref().ok_or(ApiError::NotFound("Not found"))?;
    Ok(cacheable(Json(discovery).into_response()))
}

fn cacheable(mut response: Response) -> Response {
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL));
    response
}
