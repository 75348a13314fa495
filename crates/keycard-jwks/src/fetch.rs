//! HTTP for the verifier: the URL policy, one client that follows no redirects, bounded bodies,
//! OpenID Connect discovery and Cache-Control.

use std::time::Duration;

use reqwest::Url;
use reqwest::header::{AGE, CACHE_CONTROL, HeaderMap};
use reqwest::redirect::Policy;
use serde::Deserialize;

use crate::JwksError;

/// Largest discovery document or JWK Set accepted, in bytes (1 MiB). Real key sets are a few
/// KiB; a larger answer is refused before it is parsed ([`JwksError::TooLarge`]).
///
/// ```
/// assert_eq!(keycard_jwks::MAX_BODY_LEN, 1 << 20);
/// ```
pub const MAX_BODY_LEN: usize = 1 << 20;

/// Shortest interval between two background refreshes, whatever `Cache-Control` says.
pub(crate) const MIN_REFRESH: Duration = Duration::from_secs(60);
/// Longest interval between two background refreshes, whatever `Cache-Control` says.
pub(crate) const MAX_REFRESH: Duration = Duration::from_secs(24 * 3600);
/// Interval between background refreshes when the key set comes without `max-age`.
pub(crate) const DEFAULT_REFRESH: Duration = Duration::from_secs(15 * 60);

/// Checks `url` against the policy: `https://`, or `http://` on a loopback host only
/// (127.0.0.0/8, `::1`, `localhost`); no credentials, no fragment.
pub(crate) fn check_url(url: &str) -> Result<Url, JwksError> {
    let invalid = |reason| JwksError::InvalidUrl { url: url.to_owned(), reason };
    let parsed = Url::parse(url).map_err(|_| invalid("not an absolute URL"))?;
    match parsed.scheme() {
        "https" => {}
        "http" if is_loopback(&parsed) => {}
        "http" => {
            return Err(invalid(
                "http:// is accepted for loopback hosts only (127.0.0.0/8, ::1, localhost); use https://",
            ));
        }
        _ => return Err(invalid("only https:// URLs are accepted")),
    }
    if parsed.host().is_none() {
        return Err(invalid("no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid("credentials in the URL are not accepted"));
    }
    if parsed.fragment().is_some() {
        return Err(invalid("a fragment (#...) is not accepted"));
    }
    Ok(parsed)
}

/// Whether the URL's host is a loopback address or `localhost`.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// The discovery URL of `issuer` (OpenID Connect Discovery §4: a trailing `/` is removed
/// before `/.well-known/openid-configuration` is appended). `issuer` must be a valid URL
/// without query or fragment.
pub(crate) fn discovery_url(issuer: &str) -> Result<Url, JwksError> {
    let url = check_url(issuer)?;
    if url.query().is_some() {
        return Err(JwksError::InvalidUrl { url: issuer.to_owned(), reason: "an issuer has no query (?...)" });
    }
    let base = issuer.trim_end_matches('/');
    check_url(&format!("{base}/.well-known/openid-configuration"))
}

/// The HTTP client: no redirects, `timeout` for each request (connection included), rustls.
pub(crate) fn client(timeout: Duration) -> Result<reqwest::Client, JwksError> {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("keycard-jwks/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(JwksError::Client)
}

/// A successful answer.
pub(crate) struct Fetched {
    /// The body, at most [`MAX_BODY_LEN`] bytes.
    pub(crate) body: Vec<u8>,
    /// How long the answer stays fresh, from `Cache-Control` (and `Age`), if it says.
    pub(crate) max_age: Option<Duration>,
}

/// GETs `url`: a 200 with a body of at most [`MAX_BODY_LEN`] bytes.
pub(crate) async fn get(client: &reqwest::Client, url: &Url, timeout: Duration) -> Result<Fetched, JwksError> {
    let http = |source: reqwest::Error| {
        if source.is_timeout() {
            JwksError::Timeout { url: url.to_string(), timeout }
        } else {
            JwksError::Http { url: url.to_string(), source }
        }
    };
    let mut response =
        client.get(url.clone()).header(reqwest::header::ACCEPT, "application/json").send().await.map_err(http)?;
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        return Err(JwksError::Status { url: url.to_string(), status: status.as_u16() });
    }
    let too_large = || JwksError::TooLarge { url: url.to_string(), limit: MAX_BODY_LEN };
    if response.content_length().is_some_and(|len| len > MAX_BODY_LEN as u64) {
        return Err(too_large());
    }
    let max_age = max_age(response.headers());
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(http)? {
        if body.len() + chunk.len() > MAX_BODY_LEN {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched { body, max_age })
}

/// The members of an OpenID Provider configuration document the verifier uses.
#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

/// OpenID Connect discovery: the JWKS URL of `issuer`, whose configuration document must name
/// exactly `issuer`.
pub(crate) async fn discover(
    client: &reqwest::Client,
    issuer: &str,
    url: &Url,
    timeout: Duration,
) -> Result<Url, JwksError> {
    let fetched = get(client, url, timeout).await?;
    let doc: Discovery = serde_json::from_slice(&fetched.body)
        .map_err(|source| JwksError::InvalidDiscovery { url: url.to_string(), source })?;
    if doc.issuer != issuer {
        return Err(JwksError::IssuerMismatch { expected: issuer.to_owned(), found: doc.issuer });
    }
    check_url(&doc.jwks_uri)
}

/// The freshness lifetime an answer's headers give: `max-age` of `Cache-Control` (`s-maxage` is
/// for shared caches, this is a private one) less `Age`; zero for `no-cache` or `no-store`;
/// `None` when they say nothing.
pub(crate) fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let mut max_age = None;
    let mut no_cache = false;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let (name, arg) = match directive.split_once('=') {
                Some((name, arg)) => (name.trim(), Some(arg.trim().trim_matches('"'))),
                None => (directive.trim(), None),
            };
            if name.eq_ignore_ascii_case("no-cache") || name.eq_ignore_ascii_case("no-store") {
                no_cache = true;
            } else if name.eq_ignore_ascii_case("max-age")
                && max_age.is_none()
                && let Some(secs) = arg.and_then(parse_delta_seconds)
            {
                max_age = Some(secs);
            }
        }
    }
    if no_cache {
        return Some(Duration::ZERO);
    }
    let age = headers.get(AGE).and_then(|v| v.to_str().ok()).and_then(parse_delta_seconds).unwrap_or(0);
    max_age.map(|secs| Duration::from_secs(secs.saturating_sub(age)))
}

/// RFC 9111 §1.2.2 delta-seconds: digits only; too large a value counts as "very large".
fn parse_delta_seconds(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse().unwrap_or(u64::MAX))
}

/// When to refresh next after an answer with freshness `max_age`: clamped to `floor`..24 h,
/// 15 minutes when the answer said nothing.
pub(crate) fn refresh_interval(max_age: Option<Duration>, floor: Duration) -> Duration {
    max_age.unwrap_or(DEFAULT_REFRESH).clamp(floor, MAX_REFRESH.max(floor))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
        }
        map
    }

    #[test]
    fn https_urls_and_loopback_http_urls_are_accepted() {
        for url in [
            "https://idp.example.com",
            "https://idp.example.com/realms/master",
            "https://10.0.0.1:8443/jwks",
            "http://127.0.0.1:8080/jwks",
            "http://127.255.0.9/jwks",
            "http://[::1]:8080/",
            "http://localhost:5000/.well-known/jwks.json",
            "http://LOCALHOST/",
        ] {
            assert!(check_url(url).is_ok(), "{url}");
        }
    }

    #[test]
    fn plain_http_to_other_hosts_and_other_schemes_are_refused() {
        for url in [
            "http://idp.example.com/jwks",
            "http://10.0.0.1/jwks",
            "http://128.0.0.1/",
            "http://[::2]/",
            "http://localhost.example.com/",
            "http://127.0.0.1.nip.io/",
            "ftp://127.0.0.1/jwks",
            "file:///etc/passwd",
            "idp.example.com/jwks",
            "",
            "https://user:pass@idp.example.com/jwks",
            "https://idp.example.com/jwks#frag",
        ] {
            assert!(matches!(check_url(url), Err(JwksError::InvalidUrl { .. })), "{url}");
        }
    }

    #[test]
    fn the_discovery_url_drops_one_trailing_slash_of_the_issuer() {
        let url = |issuer| discovery_url(issuer).unwrap().to_string();
        assert_eq!(url("https://idp.example.com"), "https://idp.example.com/.well-known/openid-configuration");
        assert_eq!(url("https://idp.example.com/"), "https://idp.example.com/.well-known/openid-configuration");
        assert_eq!(
            url("https://idp.example.com/realms/master/"),
            "https://idp.example.com/realms/master/.well-known/openid-configuration"
        );
        assert!(discovery_url("https://idp.example.com/?tenant=1").is_err());
    }

    #[test]
    fn cache_control_max_age_is_read_in_every_spelling() {
        type Case<'a> = (&'a [(&'a str, &'a str)], Option<u64>);
        let table: &[Case] = &[
            (&[], None),
            (&[("cache-control", "public, max-age=300")], Some(300)),
            (&[("cache-control", "Max-Age=\"120\", must-revalidate")], Some(120)),
            (&[("cache-control", "public"), ("cache-control", "max-age=90")], Some(90)),
            (&[("cache-control", "max-age=300"), ("age", "100")], Some(200)),
            (&[("cache-control", "max-age=300"), ("age", "1000")], Some(0)),
            (&[("cache-control", "max-age=-1")], None),
            (&[("cache-control", "max-age=abc")], None),
            (&[("cache-control", "max-age=99999999999999999999999")], Some(u64::MAX)),
            (&[("cache-control", "no-store")], Some(0)),
            (&[("cache-control", "max-age=600, no-cache")], Some(0)),
            (&[("cache-control", "s-maxage=600")], None),
        ];
        for (pairs, want) in table {
            assert_eq!(max_age(&headers(pairs)), want.map(Duration::from_secs), "{pairs:?}");
        }
    }

    #[test]
    fn the_refresh_interval_is_clamped_to_a_minute_and_a_day() {
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(refresh_interval(None, MIN_REFRESH), Duration::from_secs(900));
        assert_eq!(refresh_interval(secs(0), MIN_REFRESH), Duration::from_secs(60));
        assert_eq!(refresh_interval(secs(59), MIN_REFRESH), Duration::from_secs(60));
        assert_eq!(refresh_interval(secs(300), MIN_REFRESH), Duration::from_secs(300));
        assert_eq!(refresh_interval(secs(u64::MAX), MIN_REFRESH), Duration::from_secs(86_400));
    }
}
