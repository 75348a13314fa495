//! The API description: an OpenAPI 3.1 document generated from the code (utoipa), served at
//! `GET /openapi.json`, and a Swagger UI at `GET /docs` whose assets are compiled into the binary
//! (no CDN, nothing fetched at build or run time).
//!
//! Each handler carries its own `#[utoipa::path]`, and the routers are built with utoipa-axum's
//! `routes!`, so a route cannot be served without being described (see [`crate::routes`]). This
//! module holds what the handlers share: the two bearer security schemes (access and refresh
//! tokens), the error body `{"msg": ...}`, the error answers the extractors give (401, 403, 400 /
//! 413 / 415 for bodies, 429, 503), and the schemas of the bodies the handlers build as JSON
//! values.

use std::collections::BTreeMap;

use axum::Router;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Object, Ref, RefOr, Response, ResponseBuilder, Type};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::state::AppState;

/// Where the document is served.
pub const OPENAPI_PATH: &str = "/openapi.json";
/// Where the Swagger UI is served (`/docs` redirects to `/docs/`).
pub const DOCS_PATH: &str = "/docs";

/// The security scheme of routes that need an access token.
pub const ACCESS_TOKEN: &str = "access_token";
/// The security scheme of the route that needs a refresh token.
pub const REFRESH_TOKEN: &str = "refresh_token";

/// The document's fixed part; the paths and their schemas come from the routers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "keycard",
        description = "JWT authentication server: register, login, access and refresh tokens with \
            rotation and reuse detection, logout by revocation, sessions, roles, an audit log.\n\n\
            Every error body is `{\"msg\": \"<human readable>\"}`. Tokens go in \
            `Authorization: Bearer <token>`: most routes need an **access** token \
            (`access_token`), `POST /token/refresh` needs a **refresh** token (`refresh_token`). \
            Every 401 carries `WWW-Authenticate: Bearer ...` (RFC 6750).",
        license(name = "MIT OR Apache-2.0"),
    ),
    tags(
        (name = "auth", description = "Accounts and tokens: register, login, refresh, logout"),
        (name = "account", description = "The caller's own account: profile, sessions, password"),
        (name = "admin", description = "Administration: access tokens carrying the `admin` role"),
        (name = "discovery", description = "Public keys and issuer metadata for other verifiers"),
        (name = "health", description = "Liveness and readiness"),
    ),
    components(schemas(ErrorBody)),
    modifiers(&SharedComponents),
)]
pub struct ApiDoc;

/// The document's fixed part (info, tags, security schemes, shared responses).
pub fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The routes serving `document` (made [`complete`]) at [`OPENAPI_PATH`] and the Swagger UI at
/// [`DOCS_PATH`].
pub fn router(mut document: utoipa::openapi::OpenApi) -> Router<AppState> {
    complete(&mut document);
    // No online validator badge (it would call out to a third-party site from the browser).
    let config = Config::new([OPENAPI_PATH]).validator_url("none").try_it_out_enabled(true);
    SwaggerUi::new(DOCS_PATH).url(OPENAPI_PATH, document).config(config).into()
}

/// Adds what every operation can answer whatever its handler does: 408 past the request timeout
/// (the edge middleware) and 503 when every connection slot is busy (the connection limits), where
/// the handler does not already describe a 503.
pub fn complete(document: &mut utoipa::openapi::OpenApi) {
    for item in document.paths.paths.values_mut() {
        let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
        for operation in operations.into_iter().flatten() {
            let responses = &mut operation.responses.responses;
            for (status, name) in [("408", "RequestTimeout"), ("503", "Overloaded")] {
                responses.entry(status.to_owned()).or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
            }
        }
    }
}

/// The body of every error answer.
#[derive(Debug, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// What went wrong, for a human; never a secret, never a stack trace.
    #[schema(example = "Bad username or password")]
    pub msg: String,
}

/// A success answer that only says what was done.
#[derive(Debug, ToSchema)]
pub struct Message {
    /// What was done.
    #[schema(example = "User created successfully")]
    pub msg: String,
}

/// A token pair (RFC 6749 §5.1), sent with `Cache-Control: no-store`.
#[derive(Debug, ToSchema)]
pub struct TokenPair {
    /// The access token: send it as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// The refresh token, for `POST /token/refresh` (single use: each refresh rotates it).
    pub refresh_token: String,
    /// Always `Bearer`.
    #[schema(pattern = "^Bearer$", example = "Bearer")]
    pub token_type: String,
    /// Seconds until the access token expires.
    #[schema(minimum = 0, example = 900)]
    pub expires_in: u64,
}

/// The answer to a logout.
#[derive(Debug, ToSchema)]
pub struct LogoutAnswer {
    /// `Token revoked`.
    #[schema(example = "Token revoked")]
    pub msg: String,
    /// How many sessions ended (only with `scope=global` or `scope=others`).
    #[schema(minimum = 0)]
    pub sessions_ended: Option<u64>,
}

/// The answer to a password change.
#[derive(Debug, ToSchema)]
pub struct PasswordChanged {
    /// `Password changed`.
    #[schema(example = "Password changed")]
    pub msg: String,
    /// How many other sessions of the account were ended.
    #[schema(minimum = 0)]
    pub other_sessions_ended: u64,
}

/// Who the token says you are.
#[derive(Debug, ToSchema)]
pub struct LoggedInAs {
    /// The token's subject (the username).
    pub logged_in_as: String,
}

/// An account's status.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum AccountStatus {
    /// Can log in.
    Active,
    /// Logins refused, tokens revoked.
    Disabled,
}

/// Liveness.
#[derive(Debug, ToSchema)]
pub struct Health {
    /// `ok`.
    #[schema(example = "ok")]
    pub status: String,
}

/// Readiness: the database answers and takes writes.
#[derive(Debug, ToSchema)]
pub struct Ready {
    /// `ready`.
    #[schema(example = "ready")]
    pub status: String,
    /// `sqlite` or `postgres`.
    #[schema(example = "sqlite")]
    pub database: String,
    /// `up` or `down`, when Redis is configured (keycard works without it).
    #[schema(pattern = "^(up|down)$")]
    pub redis: Option<String>,
}

/// Not ready: the error body with the reason.
#[derive(Debug, ToSchema)]
pub struct NotReady {
    /// `Service temporarily unavailable` (or `Too many connections`: every connection slot is
    /// busy, before the check could run).
    pub msg: String,
    /// `sqlite` or `postgres`, when the database answers but refuses writes.
    pub database: Option<String>,
    /// Why (never a secret); absent for `Too many connections`.
    pub reason: Option<String>,
}

/// A JSON Web Key Set (RFC 7517 §5): the public keys verifying keycard's tokens; empty with
/// HS256 (an HMAC secret is never published).
#[derive(Debug, ToSchema)]
pub struct JwkSet {
    /// The keys: the signing one first, then those still verifying.
    pub keys: Vec<Jwk>,
}

/// A public JSON Web Key (RFC 7517 §4); never a private member.
#[derive(Debug, ToSchema)]
pub struct Jwk {
    /// Key type: `EC`, `OKP` or `RSA`.
    pub kty: String,
    /// Key id, as in the tokens' `kid` header.
    pub kid: Option<String>,
    /// Algorithm: `ES256`, `EdDSA` or `RS256`.
    pub alg: Option<String>,
    /// `sig`.
    #[schema(rename = "use")]
    pub use_: Option<String>,
}

/// OpenID Connect Discovery 1.0 / RFC 8414 issuer metadata (the members keycard can fill).
#[derive(Debug, ToSchema)]
pub struct Discovery {
    /// The `iss` of every token.
    pub issuer: String,
    /// Where the public keys are.
    pub jwks_uri: String,
    /// The algorithm keycard signs with.
    pub id_token_signing_alg_values_supported: Vec<String>,
}

/// A reusable error answer: `{"msg": ...}` and, for 401, the `WWW-Authenticate` challenge.
fn error_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name("Error"))).build())
        .build()
}

/// Defines the shared error answers, each under `components/responses`, and how a handler's
/// `responses(...)` lists them.
macro_rules! shared_responses {
    ($($(#[$doc:meta])* $name:ident: $status:literal, $description:literal, $build:expr;)*) => {
        $(
            $(#[$doc])*
            pub struct $name;

            impl IntoResponses for $name {
                fn responses() -> BTreeMap<String, RefOr<Response>> {
                    BTreeMap::from([($status.to_owned(), RefOr::Ref(Ref::from_response_name(stringify!($name))))])
                }
            }
        )*

        /// Every shared answer, by name.
        fn shared() -> Vec<(&'static str, Response)> {
            vec![$((stringify!($name), $build(error_response($description)))),*]
        }
    };
}

fn with_challenge(response: Response) -> Response {
    let mut response = response;
    let header = HeaderBuilder::new()
        .schema(Some(Object::with_type(Type::String)))
        .description(Some("`Bearer`, with `error=\"invalid_token\"` (or `invalid_request`) when a token was sent"))
        .build();
    response.headers.insert("WWW-Authenticate".to_owned(), RefOr::T(header));
    response
}

fn with_retry_after(response: Response) -> Response {
    let mut response = response;
    let header = HeaderBuilder::new()
        .schema(Some(Object::with_type(Type::Integer)))
        .description(Some("Seconds to wait before trying again"))
        .build();
    response.headers.insert("Retry-After".to_owned(), RefOr::T(header));
    response
}

shared_responses! {
    /// 401 from the access-token extractors.
    AccessTokenRefused: "401",
        "No valid access token: missing or malformed `Authorization` header, a bad signature, \
         expired, revoked (logout, session ended, account disabled), or a refresh token where an \
         access token is required",
        with_challenge;
    /// 401 from the fresh-access-token extractor.
    FreshTokenRefused: "401",
        "No valid fresh access token (as for every access-token route, or `Fresh token \
         required`: the token comes from a refresh, not a password login), or `Current password \
         is incorrect`",
        with_challenge;
    /// 401 from the refresh-token extractor and the rotation.
    RefreshTokenRefused: "401",
        "No valid, current refresh token: missing, malformed, expired, revoked, an access token \
         where a refresh token is required, or `Refresh token reused: the session has been ended` \
         (a refresh token that was already rotated away ends its whole session)",
        with_challenge;
    /// 403 from the admin guard.
    AdminsOnly: "403", "`Admins only`: the access token does not carry the `admin` role", std::convert::identity;
    /// 400, 413 and 415 from the JSON body extractor.
    JsonBodyRefused: "400",
        "The body is malformed JSON, lacks a field, has an unknown or mistyped one, or a value \
         breaks a rule (the msg names the field and the rule)",
        std::convert::identity;
    /// 413 from the JSON body extractor.
    BodyTooLarge: "413", "The body is over 16 KiB", std::convert::identity;
    /// 415 from the JSON body extractor.
    NotJson: "415", "The body is not declared as JSON (`Content-Type: application/json`)", std::convert::identity;
    /// 429 from the per-address rate limits.
    RateLimited: "429",
        "Too many requests from this address (or, for logins and password changes, too many failed \
         attempts for this account): retry after `Retry-After` seconds",
        with_retry_after;
    /// 503 when the database is unreachable, overloaded or refuses writes.
    Unavailable: "503",
        "`Service temporarily unavailable`: the database does not answer or refuses writes (a full \
         disk); or `Too many connections` (with `Retry-After`): every connection slot is busy",
        std::convert::identity;
    /// 503 from the connection limits, before any handler runs.
    Overloaded: "503", "`Too many connections`: every connection slot is busy; retry after `Retry-After` seconds", with_retry_after;
    /// 408 from the edge middleware.
    RequestTimeout: "408", "The answer took longer than `KEYCARD_REQUEST_TIMEOUT` (default 30 s)", std::convert::identity;
}

/// The body errors in one list, for `responses(...)`.
pub struct JsonBodyErrors;

impl IntoResponses for JsonBodyErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut all = JsonBodyRefused::responses();
        all.extend(BodyTooLarge::responses());
        all.extend(NotJson::responses());
        all
    }
}

/// Adds the security schemes and the shared answers.
struct SharedComponents;

impl Modify for SharedComponents {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(description))
                    .build(),
            )
        };
        components.add_security_scheme(
            ACCESS_TOKEN,
            bearer("An access token from `POST /login` or `POST /token/refresh` (`type: access`)"),
        );
        components.add_security_scheme(
            REFRESH_TOKEN,
            bearer("A refresh token from `POST /login` or `POST /token/refresh` (`type: refresh`); single use"),
        );
        for (name, response) in shared() {
            components.responses.insert(name.to_owned(), RefOr::T(response));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shared_response_reference_resolves() {
        let document = base();
        let components = document.components.unwrap();
        for (name, _) in shared() {
            assert!(components.responses.contains_key(name), "{name}");
        }
        assert!(components.schemas.contains_key("Error"));
        assert!(components.security_schemes.contains_key(ACCESS_TOKEN));
        assert!(components.security_schemes.contains_key(REFRESH_TOKEN));
    }
}
