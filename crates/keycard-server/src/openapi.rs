//! The API description: an OpenAPI 3.1 document generated from the code (utoipa), served at
//! `GET /openapi.json`, and a Swagger UI at `GET /docs` whose assets are compiled into the binary
//! (no CDN, nothing fetched at build or run time).
//!
//! Each handler carries its own `#[utoipa::path]`, and the routers are built with utoipa-axum's
//! `routes!`, so a route cannot be served without being described (see [`crate::routes`]). This
//! module holds what the handlers share: the security schemes (access and refresh tokens as
//! bearer headers or, in cookie mode, as cookies; the resource servers' receiver credential),
//! the error body `{"msg": ...}`, the error answers the extractors give (401, 403, 400 / 413 /
//! 415 for bodies, 404 / 401 for the Shared Signals routes, 429, 503), and the schemas of the
//! bodies the handlers build as JSON values.
//!
//! Left undescribed on purpose: `/docs` (the Swagger UI) and `/demo`, `/demo/app.js`,
//! `/demo/app.css` (the cookie-mode demo page); they serve static assets, not API answers.

use std::collections::BTreeMap;

use axum::Router;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
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
/// Cookie mode: the access token in its cookie, wherever [`ACCESS_TOKEN`] is accepted.
pub const ACCESS_TOKEN_COOKIE: &str = "access_token_cookie";
/// Cookie mode: the refresh token in its cookie, wherever [`REFRESH_TOKEN`] is accepted.
pub const REFRESH_TOKEN_COOKIE: &str = "refresh_token_cookie";
/// The security scheme of the Shared Signals and introspection routes.
pub const RECEIVER_CREDENTIAL: &str = "receiver_credential";

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
            Every 401 carries `WWW-Authenticate: Bearer ...` (RFC 6750).\n\n\
            In cookie mode (`KEYCARD_TOKEN_LOCATIONS` has `cookies`) the same tokens are also \
            accepted from the cookies `access_token_cookie` and `refresh_token_cookie` \
            (`access_token_cookie` / `refresh_token_cookie` schemes), which `POST /login` and \
            `POST /token/refresh` set and `DELETE /logout` expires; a `POST`, `PUT`, `PATCH` or \
            `DELETE` authenticated by a cookie must send `X-CSRF-TOKEN` equal to the readable \
            cookie `csrf_access_token` (`csrf_refresh_token` for the refresh). With `cookies` \
            alone, bearer headers are refused and the login and refresh bodies carry no token.\n\n\
            Resource servers use the Shared Signals routes (`/ssf/...`, RFC 8936 polling of CAEP \
            `session-revoked` events) and `POST /introspect` (RFC 7662) with a receiver \
            credential (`receiver_credential`, one of `KEYCARD_RESOURCE_SERVER_TOKENS`); without \
            any configured, those routes answer 404.",
        license(name = "MIT OR Apache-2.0"),
    ),
    tags(
        (name = "auth", description = "Accounts and tokens: register, login, refresh, logout"),
        (name = "account", description = "The caller's own account: profile, sessions, password"),
        (name = "admin", description = "Administration: access tokens carrying the `admin` role"),
        (name = "discovery", description = "Public keys and issuer metadata for other verifiers"),
        (name = "health", description = "Liveness and readiness"),
        (name = "ssf", description = "Shared Signals transmitter (SSF 1.0, CAEP session-revoked, RFC 8936 poll) \
            and token introspection (RFC 7662), for resource servers holding a receiver credential"),
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
/// the handler does not already describe a 503. Every operation taking an access (refresh) token
/// also takes it from its cookie in cookie mode, the same extractor reading both: the cookie
/// schemes are added here as alternatives, so no route can forget them.
pub fn complete(document: &mut utoipa::openapi::OpenApi) {
    for item in document.paths.paths.values_mut() {
        let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
        for operation in operations.into_iter().flatten() {
            if let Some(security) = &mut operation.security {
                for (bearer, cookie) in [(ACCESS_TOKEN, ACCESS_TOKEN_COOKIE), (REFRESH_TOKEN, REFRESH_TOKEN_COOKIE)] {
                    let (wanted, alternative) = (requirement(bearer), requirement(cookie));
                    if security.contains(&wanted) && !security.contains(&alternative) {
                        security.push(alternative);
                    }
                }
            }
            let responses = &mut operation.responses.responses;
            for (status, name) in [("408", "RequestTimeout"), ("503", "Overloaded")] {
                responses.entry(status.to_owned()).or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
            }
        }
    }
}

/// A security requirement naming one scheme, with no scopes.
fn requirement(scheme: &str) -> SecurityRequirement {
    SecurityRequirement::new(scheme, [""; 0])
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

/// The answer of `POST /login` and `POST /token/refresh`: the token pair, or with
/// `KEYCARD_TOKEN_LOCATIONS=cookies` alone, only where the tokens are.
#[derive(Debug, ToSchema)]
#[serde(untagged)]
pub enum TokenAnswer {
    /// Bearer-header mode (also with `headers,cookies`).
    Pair(TokenPair),
    /// Cookies-only mode: no token in the body, so the page's script never sees one.
    Cookies(TokensInCookies),
}

/// The body of a login or refresh with cookies as the only token location.
#[derive(Debug, ToSchema)]
pub struct TokensInCookies {
    /// `The tokens are in cookies`.
    #[schema(example = "The tokens are in cookies")]
    pub msg: String,
    /// Seconds until the access token expires.
    #[schema(minimum = 0, example = 900)]
    pub expires_in: u64,
}

/// Shared Signals Framework 1.0 §7.1 transmitter metadata.
#[derive(Debug, ToSchema)]
pub struct SsfConfiguration {
    /// `1_0`.
    #[schema(example = "1_0")]
    pub spec_version: String,
    /// The `iss` of the SETs: the tokens' issuer.
    pub issuer: String,
    /// Where the keys verifying the SETs are.
    pub jwks_uri: String,
    /// `["urn:ietf:rfc:8936"]`: poll delivery only.
    pub delivery_methods_supported: Vec<String>,
    /// `/ssf/streams`.
    pub configuration_endpoint: String,
    /// `/ssf/status`.
    pub status_endpoint: String,
    /// `/ssf/verify`.
    pub verification_endpoint: String,
    /// `[{"spec_urn": "urn:ietf:rfc:6750"}]`: a bearer receiver credential.
    pub authorization_schemes: Vec<AuthorizationScheme>,
    /// `ALL`: every session's events go to every stream.
    #[schema(example = "ALL")]
    pub default_subjects: String,
}

/// How a receiver authenticates.
#[derive(Debug, ToSchema)]
pub struct AuthorizationScheme {
    /// `urn:ietf:rfc:6750`.
    pub spec_urn: String,
}

/// A stream's configuration (SSF 1.0 §8.1.1).
#[derive(Debug, ToSchema)]
pub struct StreamConfig {
    /// The stream id (a UUID).
    #[schema(format = Uuid)]
    pub stream_id: String,
    /// The SETs' issuer.
    pub iss: String,
    /// The SETs' audience: the stream id.
    pub aud: String,
    /// Poll delivery at `endpoint_url`.
    pub delivery: StreamDelivery,
    /// The event types keycard can send (CAEP `session-revoked`).
    pub events_supported: Vec<String>,
    /// The event types the receiver asked for.
    pub events_requested: Vec<String>,
    /// The event types delivered: those both supported and requested (verification events
    /// are always delivered).
    pub events_delivered: Vec<String>,
    /// `0`: verification may be asked at any time.
    #[schema(minimum = 0)]
    pub min_verification_interval: u64,
    /// The receiver's description, when it gave one.
    pub description: Option<String>,
}

/// `POST /ssf/streams`: a new poll stream. The members keycard supplies (`iss`, `aud`,
/// `events_supported`, ...) may be sent and are ignored.
#[derive(Debug, ToSchema)]
pub struct NewStreamRequest {
    /// Poll delivery (the only method keycard has). `endpoint_url` must be absent: keycard sets it.
    pub delivery: RequestedDelivery,
    /// The event types wanted (default: every supported one).
    #[schema(max_items = 64)]
    pub events_requested: Option<Vec<EventTypeUri>>,
    /// A description for the receiver's own use.
    #[schema(max_length = 256)]
    pub description: Option<String>,
}

/// `PATCH /ssf/streams`: the members given change, the others stay.
#[derive(Debug, ToSchema)]
pub struct StreamUpdateRequest {
    /// The stream to change (another receiver's stream, or a value that is not a UUID, is not found).
    pub stream_id: String,
    /// When given: poll delivery, as before (`endpoint_url` may be echoed back; it is ignored).
    pub delivery: Option<RequestedDelivery>,
    /// The event types wanted.
    #[schema(max_items = 64)]
    pub events_requested: Option<Vec<EventTypeUri>>,
    /// A description for the receiver's own use.
    #[schema(max_length = 256)]
    pub description: Option<String>,
}

/// `PUT /ssf/streams`: every receiver-supplied member is replaced (an absent
/// `events_requested` or `description` becomes empty).
#[derive(Debug, ToSchema)]
pub struct StreamReplacementRequest {
    /// The stream to replace (another receiver's stream, or a value that is not a UUID, is not found).
    pub stream_id: String,
    /// Poll delivery (`endpoint_url` may be echoed back; it is ignored).
    pub delivery: RequestedDelivery,
    /// The event types wanted.
    #[schema(max_items = 64)]
    pub events_requested: Option<Vec<EventTypeUri>>,
    /// A description for the receiver's own use.
    #[schema(max_length = 256)]
    pub description: Option<String>,
}

/// The delivery a receiver asks for.
#[derive(Debug, ToSchema)]
pub struct RequestedDelivery {
    /// `urn:ietf:rfc:8936` (poll); any other method is refused.
    #[schema(pattern = "^urn:ietf:rfc:8936$", example = "urn:ietf:rfc:8936")]
    pub method: String,
    /// keycard's to set: refused in a new stream, ignored in a change.
    pub endpoint_url: Option<String>,
}

/// An event type URI (at most 256 bytes).
#[derive(Debug, ToSchema)]
#[schema(
    min_length = 1,
    max_length = 256,
    example = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
)]
pub struct EventTypeUri(pub String);

/// A stream's delivery, as keycard sets it.
#[derive(Debug, ToSchema)]
pub struct StreamDelivery {
    /// `urn:ietf:rfc:8936`.
    #[schema(example = "urn:ietf:rfc:8936")]
    pub method: String,
    /// Where to poll: `/ssf/poll/{stream_id}`.
    pub endpoint_url: String,
}

/// `GET /ssf/streams`: one stream (with `stream_id`), or all of the receiver's.
#[derive(Debug, ToSchema)]
#[serde(untagged)]
pub enum StreamsAnswer {
    /// With `?stream_id=`.
    One(StreamConfig),
    /// Without: every stream of this receiver, maybe none.
    All(Vec<StreamConfig>),
}

/// A stream's status (SSF 1.0 §8.1.2).
#[derive(Debug, ToSchema)]
pub struct StreamStatusAnswer {
    /// The stream id.
    #[schema(format = Uuid)]
    pub stream_id: String,
    /// `enabled`, `paused` (events held) or `disabled` (events dropped).
    pub status: StreamState,
    /// The reason given with the last change, if any.
    pub reason: Option<String>,
}

/// What a stream does with events.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum StreamState {
    /// Delivered.
    Enabled,
    /// Held until enabled again.
    Paused,
    /// Dropped.
    Disabled,
}

/// An RFC 8936 §2.4 poll answer.
#[derive(Debug, ToSchema)]
pub struct PollAnswer {
    /// The events not yet acknowledged, oldest first: jti → the SET (a JWT, `typ: secevent+jwt`).
    pub sets: BTreeMap<String, String>,
    /// Whether more events are waiting than this answer carries.
    #[schema(rename = "moreAvailable")]
    pub more_available: bool,
}

/// An RFC 7662 §2.2 introspection answer: `{"active": false}` alone for a token that is not
/// valid (bad signature, expired, revoked, garbage), the claims too for a valid one.
#[derive(Debug, ToSchema)]
pub struct Introspection {
    /// Whether the token is valid and neither it nor its session is revoked.
    pub active: bool,
    /// The username.
    pub sub: Option<String>,
    /// The username.
    pub username: Option<String>,
    /// Expiry, Unix seconds.
    pub exp: Option<i64>,
    /// Issue time, Unix seconds.
    pub iat: Option<i64>,
    /// Not before, Unix seconds (when the token has one).
    pub nbf: Option<i64>,
    /// The token id.
    pub jti: Option<String>,
    /// The session id.
    pub sid: Option<String>,
    /// `access` or `refresh`.
    #[schema(rename = "type", pattern = "^(access|refresh)$")]
    pub type_: Option<String>,
    /// `Bearer`.
    pub token_type: Option<String>,
    /// The roles the token carries.
    pub roles: Option<Vec<String>>,
    /// The issuer (when `KEYCARD_ISSUER` is set).
    pub iss: Option<String>,
    /// The audience (when `KEYCARD_AUDIENCE` is set): one or several.
    pub aud: Option<IntrospectedAudience>,
}

/// `aud`: a string, or an array of them.
#[derive(Debug, ToSchema)]
#[serde(untagged)]
pub enum IntrospectedAudience {
    /// One audience.
    One(String),
    /// Several.
    Many(Vec<String>),
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
    ($($(#[$doc:meta])* $name:ident: $status:literal, $description:expr, $build:expr;)*) => {
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

fn with_plain_challenge(response: Response) -> Response {
    let mut response = response;
    let header =
        HeaderBuilder::new().schema(Some(Object::with_type(Type::String))).description(Some("`Bearer`")).build();
    response.headers.insert("WWW-Authenticate".to_owned(), RefOr::T(header));
    response
}

/// Adds a `Set-Cookie` header described by `description`.
pub fn with_set_cookie(response: Response, description: &str) -> Response {
    let mut response = response;
    let header =
        HeaderBuilder::new().schema(Some(Object::with_type(Type::String))).description(Some(description)).build();
    response.headers.insert("Set-Cookie".to_owned(), RefOr::T(header));
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

/// What a cookie-mode 401 can say besides a refused token.
macro_rules! cookie_refusals {
    ($cookie:literal, $csrf:literal) => {
        concat!(
            " In cookie mode, a `POST`, `PUT`, `PATCH` or `DELETE` authenticated by the `",
            $cookie,
            "` cookie without `X-CSRF-TOKEN` is refused with `Missing CSRF token`, and with one not equal to the `",
            $csrf,
            "` cookie with `CSRF double submit tokens do not match` (nothing is done); with cookies as the only \
             location a bearer header is refused (`Missing cookie \"",
            $cookie,
            "\"`)."
        )
    };
}

shared_responses! {
    /// 401 from the access-token extractors.
    AccessTokenRefused: "401",
        concat!("No valid access token: missing or malformed `Authorization` header, a bad signature, \
         expired, revoked (logout, session ended, account disabled), or a refresh token where an \
         access token is required.", cookie_refusals!("access_token_cookie", "csrf_access_token")),
        with_challenge;
    /// 401 from the fresh-access-token extractor.
    FreshTokenRefused: "401",
        concat!("No valid fresh access token (as for every access-token route, or `Fresh token \
         required`: the token comes from a refresh, not a password login), or `Current password \
         is incorrect`.", cookie_refusals!("access_token_cookie", "csrf_access_token")),
        with_challenge;
    /// 401 from the refresh-token extractor and the rotation.
    RefreshTokenRefused: "401",
        concat!("No valid, current refresh token: missing, malformed, expired, revoked, an access token \
         where a refresh token is required, or `Refresh token reused: the session has been ended` \
         (a refresh token that was already rotated away ends its whole session).",
         cookie_refusals!("refresh_token_cookie", "csrf_refresh_token")),
        with_challenge;
    /// 401 of `DELETE /logout`: as [`AccessTokenRefused`], and in cookie mode the cookies expire.
    LogoutRefused: "401",
        concat!("No valid access token, as for every access-token route.",
         cookie_refusals!("access_token_cookie", "csrf_access_token"),
         " In cookie mode this answer also expires the four cookies (`Set-Cookie` with `Max-Age=0`), \
         except after a refused CSRF check, which changes nothing."),
        |r| with_set_cookie(with_challenge(r), "In cookie mode (not after a refused CSRF check): the four \
         cookies expired (`Max-Age=0`, each on the path it was set on)");
    /// 401 from the receiver-credential extractor.
    ReceiverRefused: "401",
        "`A valid resource-server credential is required (Authorization: Bearer ...)`: no \
         `Authorization: Bearer` header, or a credential that is not one of \
         `KEYCARD_RESOURCE_SERVER_TOKENS`",
        with_plain_challenge;
    /// 404 of the stream routes.
    StreamNotFound: "404",
        "`Not found`: `KEYCARD_RESOURCE_SERVER_TOKENS` is not set (every Shared Signals route is \
         404 then); `Shared Signals need an asymmetric signing key (KEYCARD_JWT_ALGORITHM=ES256, \
         EdDSA or RS256)`: the algorithm is HS256; or `Stream not found`: no stream of this \
         receiver has that id (another receiver's streams are not found either)",
        std::convert::identity;
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
        let cookie = |name: &str, description: &str| {
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(name, description)))
        };
        components.add_security_scheme(
            ACCESS_TOKEN_COOKIE,
            cookie(
                "access_token_cookie",
                "Cookie mode (`KEYCARD_TOKEN_LOCATIONS` has `cookies`): the access token in the `HttpOnly` cookie \
                 `POST /login` and `POST /token/refresh` set. `POST`, `PUT`, `PATCH` and `DELETE` also need \
                 `X-CSRF-TOKEN` equal to the readable cookie `csrf_access_token`",
            ),
        );
        components.add_security_scheme(
            REFRESH_TOKEN_COOKIE,
            cookie(
                "refresh_token_cookie",
                "Cookie mode: the refresh token in the `HttpOnly` cookie (`Path=/token/refresh`) that `POST /login` \
                 and `POST /token/refresh` set; needs `X-CSRF-TOKEN` equal to the readable cookie \
                 `csrf_refresh_token`",
            ),
        );
        components.add_security_scheme(
            RECEIVER_CREDENTIAL,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A resource server's receiver credential: one of `KEYCARD_RESOURCE_SERVER_TOKENS` \
                         (random, at least 24 characters; not a JWT)",
                    ))
                    .build(),
            ),
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
        for name in [ACCESS_TOKEN_COOKIE, REFRESH_TOKEN_COOKIE, RECEIVER_CREDENTIAL] {
            assert!(components.security_schemes.contains_key(name), "{name}");
        }
    }
}
