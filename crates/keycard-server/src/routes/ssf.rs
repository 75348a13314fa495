//! The Shared Signals transmitter's HTTP side (issue 15): discovery, stream management, status,
//! verification, RFC 8936 polling, and RFC 7662 introspection. Every endpoint but discovery
//! needs a receiver credential (`Authorization: Bearer`, one of
//! `KEYCARD_RESOURCE_SERVER_TOKENS`); with none configured they are all 404, nothing is open.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use keycard_store::{NewStream, Stream, StreamStatus};
use keycard_token::Uuid;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Session;
use crate::error::ApiError;
use crate::extract::Json;
use crate::ssf::{Acked, EVENTS_SUPPORTED, MAX_STREAMS_PER_RECEIVER, POLL, Transmitter};
use crate::state::AppState;

/// Most events one poll answer carries.
const MAX_EVENTS: i64 = 1000;
/// Events one poll answer carries when the receiver does not say.
const DEFAULT_EVENTS: i64 = 100;
/// Longest a poll waits for an event (kept under the usual proxy timeouts).
const LONG_POLL: Duration = Duration::from_secs(25);
/// Most acknowledgements one poll may carry.
const MAX_ACKS: usize = 10_000;
/// The largest poll request body, bytes (the other routes take 16 KiB).
const POLL_BODY_LIMIT: usize = 1 << 20;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/.well-known/ssf-configuration", get(configuration))
        .route(
            "/ssf/streams",
            get(read_streams).post(create_stream).patch(update_stream).put(replace_stream).delete(delete_stream),
        )
        .route("/ssf/status", get(read_status).post(update_status))
        .route("/ssf/verify", post(verify))
        // A poll acknowledges up to 10,000 SETs by jti (about 50 bytes each).
        .route("/ssf/poll/{stream_id}", post(poll).layer(axum::extract::DefaultBodyLimit::max(POLL_BODY_LIMIT)))
        .route("/introspect", post(introspect))
}

/// An authenticated receiver: the hex SHA-256 of its credential.
pub struct Receiver(String);

impl FromRequestParts<AppState> for Receiver {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let transmitter = transmitter(state)?;
        let credential = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .ok_or(ApiError::ReceiverUnauthorized)?;
        transmitter.receiver(credential).map(Receiver).ok_or_else(|| {
            tracing::warn!("a resource-server request with an unknown credential");
            ApiError::ReceiverUnauthorized
        })
    }
}

fn transmitter(state: &AppState) -> Result<&Transmitter, ApiError> {
    state.ssf.as_deref().filter(|t| t.has_receivers()).ok_or(ApiError::NotFound("Not found"))
}

/// The issuer of SETs: the stream endpoints need an asymmetric signing key.
fn issuer(transmitter: &Transmitter) -> Result<&str, ApiError> {
    transmitter.issuer().ok_or(ApiError::NotFound(
        "Shared Signals need an asymmetric signing key (KEYCARD_JWT_ALGORITHM=ES256, EdDSA or RS256)",
    ))
}

/// `GET /.well-known/ssf-configuration` (SSF 1.0 §7).
async fn configuration(State(state): State<AppState>) -> Result<Response, ApiError> {
    let transmitter = transmitter(&state)?;
    let issuer = issuer(transmitter)?;
    let mut response = axum::Json(transmitter.configuration(issuer)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    Ok(response)
}

#[derive(Deserialize)]
struct Delivery {
    method: String,
    #[serde(default)]
    endpoint_url: Option<String>,
}

/// A stream configuration sent by a receiver. The transmitter-supplied members (`stream_id`,
/// `iss`, `aud`, `events_supported`, `events_delivered`, ...) may be echoed back and are ignored.
#[derive(Deserialize)]
struct StreamRequest {
    #[serde(default)]
    stream_id: Option<String>,
    #[serde(default)]
    delivery: Option<Delivery>,
    #[serde(default)]
    events_requested: Option<Vec<String>>,
    #[serde(default)]
    description: Option<String>,
}

impl StreamRequest {
    fn check(&self) -> Result<(), ApiError> {
        if let Some(delivery) = &self.delivery {
            if delivery.method != POLL {
                return Err(ApiError::BadRequest(format!(
                    "Unsupported delivery method `{}`: keycard delivers by poll ({POLL})",
                    delivery.method
                )));
            }
            if delivery.endpoint_url.is_some() && self.stream_id.is_none() {
                return Err(ApiError::BadRequest(
                    "delivery.endpoint_url is the transmitter's to set for poll delivery".into(),
                ));
            }
        }
        if let Some(events) = &self.events_requested
            && (events.len() > 64 || events.iter().any(|e| e.is_empty() || e.len() > 256))
        {
            return Err(ApiError::BadRequest("events_requested: at most 64 event type URIs".into()));
        }
        if self.description.as_ref().is_some_and(|d| d.chars().count() > 256) {
            return Err(ApiError::BadRequest("description: at most 256 characters".into()));
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamQuery {
    #[serde(default)]
    stream_id: Option<String>,
}

fn parse_stream_id(id: Option<&str>) -> Result<Uuid, ApiError> {
    let id = id.ok_or_else(|| ApiError::BadRequest("stream_id is required".into()))?;
    Uuid::try_parse(id).map_err(|_| ApiError::NotFound("Stream not found"))
}

async fn owned_stream(state: &AppState, receiver: &Receiver, id: Uuid) -> Result<Stream, ApiError> {
    state.store.stream(&receiver.0, id).await?.ok_or(ApiError::NotFound("Stream not found"))
}

fn query<T>(q: Result<Query<T>, axum::extract::rejection::QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(q)| q).map_err(|_| ApiError::BadRequest("The only query parameter is stream_id".into()))
}

/// `POST /ssf/streams`: makes a poll stream (201). It starts with every event still kept, so
/// a receiver that lost its state catches up by making a new stream.
async fn create_stream(
    State(state): State<AppState>,
    receiver: Receiver,
    Json(request): Json<StreamRequest>,
) -> Result<Response, ApiError> {
    let transmitter = transmitter(&state)?;
    let issuer = issuer(transmitter)?;
    request.check()?;
    if request.delivery.is_none() {
        return Err(ApiError::BadRequest(format!("delivery is required: {{\"method\": \"{POLL}\"}}")));
    }
    let events = request.events_requested.unwrap_or_else(|| EVENTS_SUPPORTED.iter().map(|e| (*e).to_owned()).collect());
    let stream = state
        .store
        .create_stream(&NewStream {
            receiver: &receiver.0,
            description: request.description.as_deref(),
            events_requested: &events,
            max_per_receiver: MAX_STREAMS_PER_RECEIVER,
            now: state.now(),
        })
        .await
        .map_err(|e| match e {
            keycard_store::StoreError::Conflict => {
                ApiError::Conflict("This receiver already has the most streams allowed (16): delete one first")
            }
            e => e.into(),
        })?;
    tracing::info!(stream = %stream.id, "ssf stream created");
    Ok((StatusCode::CREATED, axum::Json(transmitter.stream_config(issuer, &stream))).into_response())
}

/// `GET /ssf/streams[?stream_id=]`: one stream, or all of this receiver's.
async fn read_streams(
    State(state): State<AppState>,
    receiver: Receiver,
    q: Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<Value>, ApiError> {
    let transmitter = transmitter(&state)?;
    let issuer = issuer(transmitter)?;
    let q = query(q)?;
    if q.stream_id.is_some() {
        let stream = owned_stream(&state, &receiver, parse_stream_id(q.stream_id.as_deref())?).await?;
        return Ok(axum::Json(transmitter.stream_config(issuer, &stream)));
    }
    let streams = state.store.streams(&receiver.0).await?;
    Ok(axum::Json(Value::Array(streams.iter().map(|s| transmitter.stream_config(issuer, s)).collect())))
}

/// `PATCH /ssf/streams`: changes the members given.
async fn update_stream(
    State(state): State<AppState>,
    receiver: Receiver,
    Json(request): Json<StreamRequest>,
) -> Result<axum::Json<Value>, ApiError> {
    change_stream(state, receiver, request, false).await
}

/// `PUT /ssf/streams`: replaces the receiver-supplied members.
async fn replace_stream(
    State(state): State<AppState>,
    receiver: Receiver,
    Json(request): Json<StreamRequest>,
) -> Result<axum::Json<Value>, ApiError> {
    change_stream(state, receiver, request, true).await
}

async fn change_stream(
    state: AppState,
    receiver: Receiver,
    request: StreamRequest,
    replace: bool,
) -> Result<axum::Json<Value>, ApiError> {
    let transmitter = transmitter(&state)?;
    let issuer = issuer(transmitter)?;
    request.check()?;
    let mut stream = owned_stream(&state, &receiver, parse_stream_id(request.stream_id.as_deref())?).await?;
    if replace {
        if request.delivery.is_none() {
            return Err(ApiError::BadRequest("delivery is required when replacing a stream".into()));
        }
        stream.events_requested = request.events_requested.unwrap_or_default();
        stream.description = request.description;
    } else {
        if let Some(events) = request.events_requested {
            stream.events_requested = events;
        }
        if let Some(description) = request.description {
            stream.description = Some(description);
        }
    }
    if !state.store.update_stream(&stream, state.now()).await? {
        return Err(ApiError::NotFound("Stream not found"));
    }
    Ok(axum::Json(transmitter.stream_config(issuer, &stream)))
}

/// `DELETE /ssf/streams?stream_id=`: 204.
async fn delete_stream(
    State(state): State<AppState>,
    receiver: Receiver,
    q: Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<StatusCode, ApiError> {
    transmitter(&state)?;
    let id = parse_stream_id(query(q)?.stream_id.as_deref())?;
    if !state.store.delete_stream(&receiver.0, id).await? {
        return Err(ApiError::NotFound("Stream not found"));
    }
    tracing::info!(stream = %id, "ssf stream deleted");
    Ok(StatusCode::NO_CONTENT)
}

fn status_body(stream: &Stream) -> Value {
    let mut body = json!({ "stream_id": stream.id.to_string(), "status": stream.status.as_str() });
    if let Some(reason) = &stream.status_reason {
        body["reason"] = reason.as_str().into();
    }
    body
}

/// `GET /ssf/status?stream_id=`.
async fn read_status(
    State(state): State<AppState>,
    receiver: Receiver,
    q: Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<Value>, ApiError> {
    transmitter(&state)?;
    let stream = owned_stream(&state, &receiver, parse_stream_id(query(q)?.stream_id.as_deref())?).await?;
    Ok(axum::Json(status_body(&stream)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusRequest {
    stream_id: String,
    status: String,
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /ssf/status`: `enabled`, `paused` (events held) or `disabled` (events dropped).
async fn update_status(
    State(state): State<AppState>,
    receiver: Receiver,
    Json(request): Json<StatusRequest>,
) -> Result<axum::Json<Value>, ApiError> {
    transmitter(&state)?;
    let id = parse_stream_id(Some(&request.stream_id))?;
    let status = StreamStatus::parse(&request.status)
        .ok_or_else(|| ApiError::BadRequest("status must be enabled, paused or disabled".into()))?;
    if request.reason.as_ref().is_some_and(|r| r.chars().count() > 256) {
        return Err(ApiError::BadRequest("reason: at most 256 characters".into()));
    }
    if !state.store.set_stream_status(&receiver.0, id, status, request.reason.as_deref(), state.now()).await? {
        return Err(ApiError::NotFound("Stream not found"));
    }
    let stream = owned_stream(&state, &receiver, id).await?;
    Ok(axum::Json(status_body(&stream)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyRequest {
    stream_id: String,
    #[serde(default)]
    state: Option<String>,
}

/// `POST /ssf/verify`: queues a verification event carrying `state` on the stream (204).
async fn verify(
    State(state): State<AppState>,
    receiver: Receiver,
    Json(request): Json<VerifyRequest>,
) -> Result<StatusCode, ApiError> {
    let transmitter = transmitter(&state)?;
    issuer(transmitter)?;
    let id = parse_stream_id(Some(&request.stream_id))?;
    if request.state.as_ref().is_some_and(|s| s.len() > 256) {
        return Err(ApiError::BadRequest("state: at most 256 bytes".into()));
    }
    state
        .store
        .add_verification(&receiver.0, id, request.state.as_deref(), state.now())
        .await?
        .ok_or(ApiError::NotFound("Stream not found"))?;
    transmitter.wake();
    Ok(StatusCode::NO_CONTENT)
}

/// An RFC 8936 §2.4 poll request.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PollRequest {
    #[serde(default)]
    max_events: Option<i64>,
    #[serde(default)]
    return_immediately: bool,
    #[serde(default)]
    ack: Vec<String>,
    #[serde(default)]
    set_errs: BTreeMap<String, Value>,
}

/// `POST /ssf/poll/{stream_id}` (RFC 8936): records `ack` and `setErrs`, then answers the events
/// not yet acknowledged, waiting up to 25 s for one unless `returnImmediately`.
async fn poll(
    State(state): State<AppState>,
    receiver: Receiver,
    Path(stream_id): Path<String>,
    Json(request): Json<PollRequest>,
) -> Result<Response, ApiError> {
    let transmitter = transmitter(&state)?;
    let issuer = issuer(transmitter)?.to_owned();
    let id = Uuid::try_parse(&stream_id).map_err(|_| ApiError::NotFound("Stream not found"))?;
    let stream = owned_stream(&state, &receiver, id).await?;
    let max = request.max_events.unwrap_or(DEFAULT_EVENTS);
    if !(0..=MAX_EVENTS).contains(&max) {
        return Err(ApiError::BadRequest(format!("maxEvents must be between 0 and {MAX_EVENTS}")));
    }
    if request.ack.len() + request.set_errs.len() > MAX_ACKS {
        return Err(ApiError::BadRequest(format!("at most {MAX_ACKS} acknowledgements a poll")));
    }
    // A SET the receiver could not process is not redelivered either (RFC 8936 §2.4.3); say so.
    for (jti, error) in &request.set_errs {
        tracing::warn!(stream = %id, %jti, error = %error, "a receiver could not process a security event");
    }
    let (mut seqs, mut verifications) = (Vec::new(), Vec::new());
    for jti in request.ack.iter().chain(request.set_errs.keys()) {
        match crate::ssf::parse_jti(jti, &stream) {
            Some(Acked::Session(seq)) => seqs.push(seq),
            Some(Acked::Verification(v)) => verifications.push(v),
            None => {}
        }
    }
    state.store.acknowledge(id, &seqs, &verifications).await?;

    let deadline = tokio::time::Instant::now() + LONG_POLL.min(transmitter.long_poll());
    let pending = loop {
        let changed = transmitter.changed().notified();
        tokio::pin!(changed);
        // Registered before reading: an event committed after the read still wakes us.
        changed.as_mut().enable();
        let pending = if stream.status == StreamStatus::Enabled {
            state.store.pending_events(id, max).await?
        } else {
            keycard_store::Pending::default()
        };
        if !pending.is_empty()
            || request.return_immediately
            || max == 0
            || stream.status != StreamStatus::Enabled
            || transmitter.is_closing()
        {
            break pending;
        }
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            break pending;
        }
    };
    let now = state.now();
    let mut sets = serde_json::Map::new();
    for event in &pending.verifications {
        let (set, jti) = transmitter.verification_set(state.tokens(), &issuer, &stream, event, now)?;
        sets.insert(jti, set.into());
    }
    for event in &pending.sessions {
        let (set, jti) = transmitter.session_revoked_set(state.tokens(), &issuer, &stream, event, now)?;
        sets.insert(jti, set.into());
    }
    let mut response = axum::Json(json!({ "sets": sets, "moreAvailable": pending.more })).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// An RFC 7662 §2.1 introspection request (form-encoded).
#[derive(Deserialize)]
struct IntrospectRequest {
    token: String,
    #[serde(default)]
    #[allow(dead_code, reason = "RFC 7662 allows it; every token is tried the same way")]
    token_type_hint: Option<String>,
}

/// `POST /introspect` (RFC 7662): `{"active": true, ...claims}` for a valid token that is not
/// revoked (its `jti` or its session), `{"active": false}` for anything else.
async fn introspect(
    State(state): State<AppState>,
    _receiver: Receiver,
    form: Result<Form<IntrospectRequest>, axum::extract::rejection::FormRejection>,
) -> Result<Response, ApiError> {
    let Form(request) = form.map_err(|e| match e {
        axum::extract::rejection::FormRejection::InvalidFormContentType(_) => ApiError::UnsupportedMediaType,
        _ => ApiError::BadRequest("Expected a form body with `token` (application/x-www-form-urlencoded)".into()),
    })?;
    let decoded = state.tokens().decode::<Session>(&request.token).ok().filter(|d| !revoked(&state, &d.claims));
    let decoded = match decoded {
        // A refresh token is active only while it is the one its session accepts next: one
        // rotated away (or whose session ended) is not.
        Some(d) if d.claims.token_type == keycard_token::TokenType::Refresh => {
            let current = state.store.current_refresh_jti(d.claims.sid, state.now()).await?;
            (current.is_some() && current == crate::auth::jti(&d.claims)).then_some(d)
        }
        other => other,
    };
    let body = match decoded {
        Some(decoded) => {
            let claims = &decoded.claims;
            let mut body = json!({
                "active": true,
                "sub": claims.sub,
                "username": claims.sub,
                "exp": claims.exp,
                "iat": claims.iat,
                "jti": claims.jti,
                "sid": claims.extra.sid.to_string(),
                "type": claims.token_type.as_str(),
                "token_type": "Bearer",
                "roles": claims.extra.roles,
            });
            if let Some(nbf) = claims.nbf {
                body["nbf"] = nbf.into();
            }
            if let Some(iss) = &claims.iss {
                body["iss"] = iss.as_str().into();
            }
            if let Some(aud) = &claims.aud {
                body["aud"] = serde_json::to_value(aud).unwrap_or(Value::Null);
            }
            body
        }
        _ => json!({ "active": false }),
    };
    let mut response = axum::Json(body).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

fn revoked(state: &AppState, claims: &keycard_token::Claims<Session>) -> bool {
    crate::auth::jti(claims).is_none_or(|jti| state.revocations.any_revoked([&jti, &claims.extra.sid]))
}
