//! `GET /demo`: a small browser page that drives keycard in cookie mode (register, log in, the
//! user, refresh, sessions, log out), vendored into the binary (`assets/demo/`: HTML, one
//! script, one stylesheet; nothing from elsewhere). Served only when `KEYCARD_TOKEN_LOCATIONS`
//! includes `cookies`; otherwise 404 with a message saying how to turn it on.
//!
//! Every answer carries a Content-Security-Policy allowing nothing but this origin's script,
//! stylesheet and API (`connect-src 'self'`), no inline script or style, no framing.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use keycard_axum::Location;

use crate::error::ApiError;
use crate::state::AppState;

/// The page.
const INDEX_HTML: &str = include_str!("../../assets/demo/index.html");
/// Its script (no inline script: the policy forbids it).
const APP_JS: &str = include_str!("../../assets/demo/app.js");
/// Its stylesheet.
const APP_CSS: &str = include_str!("../../assets/demo/app.css");

/// Same origin only, for everything the page loads or calls; nothing inline, no framing, no
/// form posted elsewhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The 404 outside cookie mode.
const NOT_IN_COOKIE_MODE: &str =
    "The demo is served only in cookie mode: start keycard with KEYCARD_TOKEN_LOCATIONS=headers,cookies";

pub fn router() -> Router<AppState> {
    Router::new().route("/demo", get(index)).route("/demo/app.js", get(script)).route("/demo/app.css", get(stylesheet))
}

/// `GET /demo`: the page.
async fn index(State(state): State<AppState>) -> Result<Response, ApiError> {
    asset(&state, INDEX_HTML, "text/html; charset=utf-8")
}

/// `GET /demo/app.js`: the page's script.
async fn script(State(state): State<AppState>) -> Result<Response, ApiError> {
    asset(&state, APP_JS, "text/javascript; charset=utf-8")
}

/// `GET /demo/app.css`: the page's stylesheet.
async fn stylesheet(State(state): State<AppState>) -> Result<Response, ApiError> {
    asset(&state, APP_CSS, "text/css; charset=utf-8")
}

fn asset(state: &AppState, body: &'static str, content_type: &'static str) -> Result<Response, ApiError> {
    if !state.jwt.locations().contains(&Location::Cookies) {
        return Err(ApiError::NotFound(NOT_IN_COOKIE_MODE));
    }
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY)),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    ];
    Ok((headers, body).into_response())
}
