//! Typed configuration of the server, read from `KEYCARD_*` environment variables and `serve`
//! flags (flags win), with defaults that run out of the box.
//!
//! The JWT secret is read from `KEYCARD_JWT_SECRET` only (never a flag, so it does not show in
//! `ps`), or else from a file that keycard creates with a fresh random secret on first start.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keycard_axum::{CookieSettings, Location, SameSite};
use keycard_token::{MIN_HMAC_SECRET_LEN, TokenSettings};
use secrecy::{ExposeSecret, SecretString};

use crate::client::ClientIpConfig;

/// Environment variable holding the JWT signing secret.
pub const SECRET_ENV: &str = "KEYCARD_JWT_SECRET";

/// Environment variable holding the key that seals the private signing keys in the database.
pub const KEK_ENV: &str = "KEYCARD_KEY_ENCRYPTION_KEY";

/// How often every instance re-reads revocations, notified or not (see [`crate::cluster`]);
/// the default of [`Settings::revocation_resync`].
pub const RESYNC_INTERVAL: Duration = Duration::from_millis(250);

/// Everything [`crate::Application::build`] needs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on (`host:port`; port 0 picks a free one).
    pub bind: String,
    /// Address of the metrics listener (`GET /metrics`, Prometheus text format); `None`: no
    /// metrics, nothing counted. Never the public port.
    pub metrics_bind: Option<String>,
    /// `sqlite://path` (created if missing), `sqlite::memory:`, or `postgres://user@host/db`.
    pub database_url: String,
    /// Longest wait for a database connection or answer before a request is answered 503.
    pub database_timeout: Duration,
    /// PostgreSQL connections per instance.
    pub database_max_connections: u32,
    /// Redis (`redis://...`): revocation fan-out by pub/sub and shared login-failure counters.
    /// Optional on every backend; it may hold a password, so it is never logged.
    pub redis_url: Option<SecretString>,
    /// Prefix of keycard's Redis keys and channel (several deployments can share one Redis).
    pub redis_prefix: String,
    /// How long `GET /user` may answer from memory (0: always from the database); see
    /// [`crate::accounts`].
    pub account_cache_ttl: Duration,
    /// How often revocations made elsewhere are re-read even without a notification (the
    /// safety net under `NOTIFY` / pub/sub; on SQLite, the only path).
    pub revocation_resync: Duration,
    /// HMAC secret, at least 32 bytes.
    pub jwt_secret: SecretString,
    /// Token lifetimes and leeway.
    pub tokens: TokenSettings,
    /// Password hashing parameters.
    pub argon2: Argon2Settings,
    /// Requests that take longer are answered 408.
    pub request_timeout: Duration,
    /// Per-account throttling of failed logins.
    pub throttle: keycard_store::ThrottlePolicy,
    /// Requests a minute one client address may make to each of `/login`, `/register` and
    /// `/token/refresh` (0: unlimited).
    pub rate_limit_per_minute: u32,
    /// Where the client address comes from.
    pub client_ip: ClientIpConfig,
    /// Serve HTTPS with these PEM files.
    pub tls: Option<TlsFiles>,
    /// Header-read and idle timeouts, connection caps; see [`crate::serve`].
    pub connections: ConnectionLimits,
    /// Signing algorithm, issuer, audience and the asymmetric keys' storage and rotation.
    pub signing: SigningSettings,
    /// Where tokens travel: bearer headers, and in cookie mode also cookies with CSRF.
    pub transport: Transport,
    /// `KEYCARD_RESOURCE_SERVER_TOKENS`: the bearer credentials of the resource servers allowed
    /// to use introspection and the Shared Signals streams (none: those endpoints are 404).
    pub resource_server_tokens: Vec<SecretString>,
}

/// How tokens are signed (issue 13): the algorithm, where keycard is reachable and, for
/// asymmetric algorithms, how the private keys in the database are protected and rotated.
///
/// The issuer and audience are [`TokenSettings::issuer`] and [`TokenSettings::audience`]
/// (`KEYCARD_ISSUER`, `KEYCARD_AUDIENCE`). With an asymmetric algorithm and no issuer, the
/// issuer is the public URL; with HS256, `iss` is written only when an issuer is set, so
/// tokens stay exactly FJE's.
#[derive(Debug, Clone)]
pub struct SigningSettings {
    /// `KEYCARD_JWT_ALGORITHM`: HS256 (the default: the shared secret, as FJE) or an asymmetric
    /// algorithm (ES256, ES384, EdDSA, RS256, PS256, ...) whose keys live in the database.
    pub algorithm: keycard_token::Algorithm,
    /// `KEYCARD_PUBLIC_URL`: the base URL clients reach keycard at (default `http://<bound
    /// address>`, `https://` with TLS); the JWKS URL in the discovery document is under it.
    pub public_url: Option<String>,
    /// `KEYCARD_KEY_ENCRYPTION_KEY`: 32 bytes, base64url. When set, new private keys are stored
    /// sealed with AES-256-GCM (see [`crate::signing_keys`]).
    pub key_encryption_key: Option<SecretString>,
    /// `KEYCARD_KEY_ROTATION`: rotate the signing key when the active one is this old (off
    /// by default).
    pub key_rotation: Option<Duration>,
    /// `KEYCARD_VERIFIED_TOKEN_CACHE`: how many verified asymmetric tokens to remember (0: off);
    /// see [`keycard_token::Tokens::cache_verified`].
    pub verified_token_cache: u64,
}

impl Default for SigningSettings {
    fn default() -> Self {
        Self {
            algorithm: keycard_token::Algorithm::HS256,
            public_url: None,
            key_encryption_key: None,
            key_rotation: None,
            verified_token_cache: 100_000,
        }
    }
}

/// The value of `KEYCARD_KEY_ENCRYPTION_KEY` (`None` when unset); an error when it is set but
/// empty (an unexpanded `$VAR`: keys would silently be stored unencrypted) or not UTF-8 (never
/// the value itself). Read from the environment only, never a flag.
pub fn key_encryption_key_from_env() -> anyhow::Result<Option<SecretString>> {
    match std::env::var(KEK_ENV) {
        Ok(value) if value.trim().is_empty() => {
            bail!(
                "{KEK_ENV} is set but empty: set it to 32 random bytes in base64url (`keycard gen-secret`), or unset it"
            )
        }
        Ok(value) => Ok(Some(SecretString::from(value))),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => bail!("{KEK_ENV} is not valid UTF-8"),
    }
}

/// Parses `KEYCARD_PUBLIC_URL` / `KEYCARD_ISSUER`: an absolute http(s) URL without query or
/// fragment; a trailing `/` is dropped.
pub fn parse_public_url(s: &str) -> Result<String, String> {
    let s = s.trim();
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .ok_or_else(|| format!("`{s}` is not an http:// or https:// URL"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("`{s}` has no host"));
    }
    if s.contains(['?', '#']) || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("`{s}` may not have a query, a fragment or spaces"));
    }
    Ok(s.trim_end_matches('/').to_owned())
}

/// Parses `KEYCARD_AUDIENCE`: one audience, or several separated by commas.
pub fn parse_audience(s: &str) -> Result<keycard_token::Audience, String> {
    let list: Vec<String> = s.split(',').map(str::trim).filter(|a| !a.is_empty()).map(str::to_owned).collect();
    match <[String; 1]>::try_from(list) {
        Ok([one]) => Ok(keycard_token::Audience::One(one)),
        Err(list) if list.is_empty() => Err("the audience is empty".into()),
        Err(list) => Ok(keycard_token::Audience::Many(list)),
    }
}

/// `KEYCARD_KEY_ROTATION`: the age at which the active signing key is rotated, or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyRotation(pub Option<Duration>);

/// Parses `KEYCARD_KEY_ROTATION`: a duration of at least one hour, or `off`.
pub fn parse_rotation(s: &str) -> Result<KeyRotation, String> {
    if s.trim().eq_ignore_ascii_case("off") || s.trim().is_empty() {
        return Ok(KeyRotation(None));
    }
    let d = parse_duration(s)?;
    if d < Duration::from_secs(3600) {
        return Err("the key rotation interval must be at least 1h (or `off`)".into());
    }
    Ok(KeyRotation(Some(d)))
}

/// The path of `POST /token/refresh`: the only path the browser sends the refresh cookie to.
pub const REFRESH_PATH: &str = "/token/refresh";

/// `KEYCARD_TOKEN_LOCATIONS`: where the server reads tokens from, in order, and whether
/// `/login` and `/token/refresh` also set cookies. `headers` (the default), `cookies`, or both
/// comma-separated (`headers,cookies`: a bearer header wins when both are sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenLocations(Vec<Location>);

impl Default for TokenLocations {
    fn default() -> Self {
        Self(vec![Location::Headers])
    }
}

impl TokenLocations {
    /// The locations, in lookup order.
    pub fn as_slice(&self) -> &[Location] {
        &self.0
    }

    /// Whether cookie mode is on.
    pub fn cookies(&self) -> bool {
        self.0.contains(&Location::Cookies)
    }
}

impl std::fmt::Display for TokenLocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|l| l.as_str()).collect();
        f.write_str(&names.join(","))
    }
}

impl std::str::FromStr for TokenLocations {
    type Err = String;

    /// `headers`, `cookies`, or both comma-separated, each once (spaces and case ignored).
    fn from_str(s: &str) -> Result<Self, String> {
        let mut locations = Vec::new();
        for word in s.split(',').map(str::trim) {
            let location = match word.to_ascii_lowercase().as_str() {
                "headers" => Location::Headers,
                "cookies" => Location::Cookies,
                "" => {
                    return Err(format!(
                        "KEYCARD_TOKEN_LOCATIONS `{s}` has an empty entry: use headers, cookies or headers,cookies"
                    ));
                }
                _ => {
                    return Err(format!(
                        "`{word}` is not a token location keycard serves (KEYCARD_TOKEN_LOCATIONS): use headers, \
                         cookies or headers,cookies"
                    ));
                }
            };
            if locations.contains(&location) {
                return Err(format!("KEYCARD_TOKEN_LOCATIONS lists `{word}` twice"));
            }
            locations.push(location);
        }
        Ok(Self(locations))
    }
}

/// Parses `KEYCARD_COOKIE_SAMESITE`: `Lax`, `Strict` or `None` (any case).
pub fn parse_same_site(s: &str) -> Result<SameSite, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "lax" => Ok(SameSite::Lax),
        "strict" => Ok(SameSite::Strict),
        "none" => Ok(SameSite::None),
        _ => Err(format!("`{s}` is not a SameSite value (KEYCARD_COOKIE_SAMESITE): use Lax, Strict or None")),
    }
}

/// Parses `KEYCARD_COOKIE_SECURE`: `true` or `false` (also `1`/`0`, `yes`/`no`, `on`/`off`; any
/// case).
pub fn parse_cookie_secure(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!("`{s}` is not true or false (KEYCARD_COOKIE_SECURE)")),
    }
}

/// Where tokens travel and how cookies are written (issue 14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transport {
    /// `KEYCARD_TOKEN_LOCATIONS` (default `headers`).
    pub locations: TokenLocations,
    /// `KEYCARD_COOKIE_SECURE` (default true): cookies are sent over HTTPS only. Turn it off
    /// only for a plain-HTTP development server on localhost.
    pub cookie_secure: bool,
    /// `KEYCARD_COOKIE_SAMESITE` (default `Lax`).
    pub cookie_same_site: SameSite,
}

impl Default for Transport {
    fn default() -> Self {
        Self { locations: TokenLocations::default(), cookie_secure: true, cookie_same_site: SameSite::Lax }
    }
}

impl Transport {
    /// Refuses what browsers would refuse silently: `SameSite=None` without `Secure`. The
    /// message names the variables.
    pub fn validate(&self) -> Result<(), String> {
        if self.cookie_same_site == SameSite::None && !self.cookie_secure {
            return Err("KEYCARD_COOKIE_SAMESITE=None needs KEYCARD_COOKIE_SECURE=true: browsers refuse \
                        SameSite=None cookies without Secure"
                .into());
        }
        Ok(())
    }

    /// The library's cookie settings: FJE's names (`access_token_cookie`, `refresh_token_cookie`,
    /// `csrf_access_token`, `csrf_refresh_token`, header `X-CSRF-TOKEN`), the refresh cookie on
    /// [`REFRESH_PATH`] only, CSRF checked on POST, PUT, PATCH and DELETE.
    pub fn cookie_settings(&self) -> CookieSettings {
        CookieSettings {
            refresh_cookie_path: REFRESH_PATH.to_owned(),
            secure: self.cookie_secure,
            same_site: Some(self.cookie_same_site),
            ..CookieSettings::default()
        }
    }
}

/// PEM certificate chain and private key for HTTPS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
}

impl Settings {
    /// Settings with every default but the three values nothing can default for a library user.
    pub fn new(bind: impl Into<String>, database_url: impl Into<String>, jwt_secret: SecretString) -> Self {
        Self {
            bind: bind.into(),
            metrics_bind: None,
            database_url: database_url.into(),
            database_timeout: Duration::from_secs(5),
            database_max_connections: 16,
            redis_url: None,
            redis_prefix: "keycard:".to_owned(),
            revocation_resync: RESYNC_INTERVAL,
            account_cache_ttl: Duration::from_secs(1),
            jwt_secret,
            // No `csrf` claim unless the server sets cookies (added at start in cookie mode).
            tokens: TokenSettings { csrf_claim: false, ..TokenSettings::default() },
            argon2: Argon2Settings::default(),
            request_timeout: Duration::from_secs(30),
            throttle: keycard_store::ThrottlePolicy::default(),
            rate_limit_per_minute: 60,
            client_ip: ClientIpConfig::default(),
            tls: None,
            connections: ConnectionLimits::default(),
            signing: SigningSettings::default(),
            transport: Transport::default(),
            resource_server_tokens: Vec::new(),
        }
    }
}

/// Timeouts and caps on connections; `keycard serve` flags and `KEYCARD_*` variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub struct ConnectionLimits {
    /// Longest time a client may take to send a request's headers (and to finish a TLS
    /// handshake), counted from the connection's start or, on a kept-alive connection, from the
    /// request's first byte.
    #[arg(long, env = "KEYCARD_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_timeout)]
    pub header_read_timeout: Duration,
    /// Idle kept-alive connections (no request under way) are closed after this.
    #[arg(long, env = "KEYCARD_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_timeout)]
    pub idle_timeout: Duration,
    /// Open connections at most (also kept below the file-descriptor limit). At the cap the
    /// least recently active idle connection is closed for a new one; if none is idle the new
    /// one is refused.
    #[arg(long, env = "KEYCARD_MAX_CONNECTIONS", default_value_t = 10_000, value_parser = parse_count)]
    pub max_connections: usize,
    /// Open connections at most from one client address (0: no per-client cap); not applied to
    /// --trusted-proxies when --client-ip-header is set.
    #[arg(long, env = "KEYCARD_MAX_CONNECTIONS_PER_CLIENT", default_value_t = 256)]
    pub max_connections_per_client: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            max_connections_per_client: 256,
        }
    }
}

/// A timeout: a positive duration (seconds, or with a unit: `10s`, `1m`).
pub fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err("a timeout must be at least 1 second".into());
    }
    Ok(d)
}

fn parse_count(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("`{s}` is not a positive number")),
    }
}

/// Argon2id parameters. The defaults are OWASP's first recommendation (19 MiB, t=2, p=1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub struct Argon2Settings {
    /// Argon2id memory cost in KiB.
    #[arg(long = "argon2-memory-kib", env = "KEYCARD_ARGON2_MEMORY_KIB", default_value_t = 19_456)]
    pub memory_kib: u32,
    /// Argon2id iterations (time cost).
    #[arg(long = "argon2-iterations", env = "KEYCARD_ARGON2_ITERATIONS", default_value_t = 2)]
    pub iterations: u32,
    /// Argon2id lanes (parallelism).
    #[arg(long = "argon2-parallelism", env = "KEYCARD_ARGON2_PARALLELISM", default_value_t = 1)]
    pub parallelism: u32,
    /// Password hashes computed at once (each holds its memory cost); default: CPU count.
    #[arg(long = "hash-concurrency", env = "KEYCARD_HASH_CONCURRENCY")]
    pub concurrency: Option<usize>,
}

impl Default for Argon2Settings {
    fn default() -> Self {
        Self { memory_kib: 19_456, iterations: 2, parallelism: 1, concurrency: None }
    }
}

/// Where the JWT secret came from, for the start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// `KEYCARD_JWT_SECRET`.
    Environment,
    /// An existing secret file.
    File(PathBuf),
    /// A secret generated now and stored in this file.
    Generated(PathBuf),
}

/// A fresh 256-bit secret from the OS random source, base64url-encoded (43 characters).
pub fn generate_secret() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("reading the OS random source: {e}"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The value of [`SECRET_ENV`]: `None` when unset; an error when it is not UTF-8 (never the
/// value itself).
pub fn secret_from_env() -> anyhow::Result<Option<String>> {
    match std::env::var(SECRET_ENV) {
        Ok(value) => Ok(Some(value)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => bail!("{SECRET_ENV} is not valid UTF-8"),
    }
}

/// The JWT secret: `env_value` if set, else the content of `file`, else a new secret written to
/// `file` with mode 0600. Refuses a secret shorter than 32 bytes, and an `env_value` that is set
/// but empty (an unexpanded `$VAR` in a deployment: silently generating a secret per instance
/// would make tokens fail at random). Errors never contain the secret.
pub fn resolve_secret(env_value: Option<String>, file: &Path) -> anyhow::Result<(SecretString, SecretSource)> {
    if let Some(value) = env_value {
        if value.is_empty() {
            bail!(
                "{SECRET_ENV} is set but empty: set it to a secret of at least {MIN_HMAC_SECRET_LEN} bytes \
                 (`keycard gen-secret` makes one), or unset it to use the secret file"
            );
        }
        check_secret(&value, SECRET_ENV)?;
        return Ok((SecretString::from(value), SecretSource::Environment));
    }
    match fs::read_to_string(file) {
        Ok(content) => {
            let secret = content.trim_end_matches(['\n', '\r']).to_owned();
            check_secret(&secret, &file.display().to_string())?;
            return Ok((SecretString::from(secret), SecretSource::File(file.to_owned())));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading the secret file {}", file.display())),
    }
    let secret = generate_secret()?;
    // Write to a private temporary file, then link it into place: the link fails if another
    // process created the file meanwhile, in which case its secret wins.
    let tmp = file.with_extension(format!("tmp.{}", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.set_permissions(fs::Permissions::from_mode(0o600))?;
        f.write_all(secret.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()
    })();
    let linked = written.and_then(|()| fs::hard_link(&tmp, file));
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok((SecretString::from(secret), SecretSource::Generated(file.to_owned()))),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => resolve_secret(None, file),
        Err(e) => Err(e).with_context(|| format!("writing the secret file {}", file.display())),
    }
}

fn check_secret(secret: &str, from: &str) -> anyhow::Result<()> {
    if secret.len() < MIN_HMAC_SECRET_LEN {
        bail!(
            "the JWT secret from {from} is {} bytes long; at least {MIN_HMAC_SECRET_LEN} are required \
             (generate one with `keycard gen-secret`)",
            secret.len()
        );
    }
    Ok(())
}

/// Parses a duration given as seconds (`900`) or with a unit: `s`, `m`, `h`, `d` (`15m`, `30d`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = digits.parse().map_err(|_| format!("`{s}` is not a duration (use seconds or 15m, 1h, 30d)"))?;
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{s}` has an unknown unit (use s, m, h or d)")),
    };
    n.checked_mul(unit_secs)
        .filter(|&secs| secs <= 10 * 365 * 86_400)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("`{s}` is too long (at most 10 years)"))
}

/// A positive duration (token lifetimes).
pub fn parse_ttl(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err("a token lifetime must be at least 1 second".into());
    }
    Ok(d)
}

/// The leeway: at most 5 minutes.
pub fn parse_leeway(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d > Duration::from_secs(300) {
        return Err("the leeway may be at most 5 minutes (300s)".into());
    }
    Ok(d)
}

/// Never prints the secret: used by the start-up configuration summary.
pub fn describe(settings: &Settings) -> String {
    format!(
        "bind={} metrics={} tls={} database={} redis={} access_ttl={}s refresh_ttl={}s leeway={}s argon2=m={}KiB,t={},p={} \
         login_max_failures={} rate_limit={}/min client_ip_header={} algorithm={} issuer={} audience={} \
         key_encryption={} key_rotation={} token_locations={} cookie_secure={} cookie_samesite={}",
        settings.bind,
        settings.metrics_bind.as_deref().unwrap_or("off"),
        settings.tls.is_some(),
        keycard_store::redact_url(&settings.database_url),
        settings
            .redis_url
            .as_ref()
            .map_or_else(|| "none".to_owned(), |url| keycard_store::redact_url(url.expose_secret())),
        settings.tokens.access_ttl.as_secs(),
        settings.tokens.refresh_ttl.as_secs(),
        settings.tokens.leeway.as_secs(),
        settings.argon2.memory_kib,
        settings.argon2.iterations,
        settings.argon2.parallelism,
        settings.throttle.max_failures,
        settings.rate_limit_per_minute,
        settings.client_ip.header.as_ref().map_or("none", |h| h.as_str()),
        settings.signing.algorithm.as_str(),
        settings.tokens.issuer.as_deref().or(settings.signing.public_url.as_deref()).unwrap_or("default"),
        settings.tokens.audience.as_ref().map_or_else(|| "none".to_owned(), |a| a.iter().collect::<Vec<_>>().join(",")),
        settings.signing.key_encryption_key.is_some(),
        settings.signing.key_rotation.map_or_else(|| "off".to_owned(), |d| format!("{}s", d.as_secs())),
        settings.transport.locations,
        settings.transport.cookie_secure,
        settings.transport.cookie_same_site.as_str(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_never_shows_database_or_redis_passwords() {
        let mut settings =
            Settings::new("127.0.0.1:0", "postgres://kc:db-pass@db/keycard", SecretString::from("s".repeat(32)));
        settings.redis_url = Some(SecretString::from("redis://:redis-pass@cache:6379/0"));
        settings.signing.key_encryption_key =
            Some(SecretString::from("kek-pass-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
        let summary = describe(&settings);
        assert!(summary.contains("key_encryption=true"), "{summary}");
        assert!(summary.contains("database=postgres://kc:***@db/keycard"), "{summary}");
        assert!(summary.contains("redis=redis://:***@cache:6379/0"), "{summary}");
        assert!(!summary.contains("pass") && !summary.contains(&"s".repeat(32)), "{summary}");
    }

    #[test]
    fn public_urls_are_absolute_http_urls_without_a_trailing_slash() {
        assert_eq!(parse_public_url("https://auth.example.com/"), Ok("https://auth.example.com".into()));
        assert_eq!(parse_public_url("http://127.0.0.1:5000/kc"), Ok("http://127.0.0.1:5000/kc".into()));
        for bad in
            ["", "auth.example.com", "ftp://x", "https://", "https:///x", "https://a?b", "https://a#b", "https://a b"]
        {
            assert!(parse_public_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn key_rotation_is_off_or_at_least_an_hour() {
        assert_eq!(parse_rotation("off"), Ok(KeyRotation(None)));
        assert_eq!(parse_rotation("30d"), Ok(KeyRotation(Some(Duration::from_secs(30 * 86_400)))));
        assert!(parse_rotation("59m").is_err());
        assert!(parse_rotation("soon").is_err());
    }

    #[test]
    fn durations_take_seconds_or_a_unit() {
        assert_eq!(parse_duration("900"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        for bad in ["", "m", "15x", "-5", "1.5h", "99999999999999999999", "100000d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(parse_ttl("0").is_err());
        assert!(parse_leeway("301").is_err());
        assert_eq!(parse_leeway("5m"), Ok(Duration::from_secs(300)));
    }

    #[test]
    fn a_short_secret_is_refused_without_echoing_it() {
        let dir = tempfile::tempdir().unwrap();
        let err = resolve_secret(Some("short-secret-value".into()), &dir.path().join("s")).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("at least 32"), "{msg}");
        assert!(!msg.contains("short-secret-value"), "{msg}");
    }

    #[test]
    fn a_generated_secret_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keycard.secret");
        let (first, source) = resolve_secret(None, &file).unwrap();
        assert_eq!(source, SecretSource::Generated(file.clone()));
        assert_eq!(first.expose_secret().len(), 43);
        assert_eq!(fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        let (second, source) = resolve_secret(None, &file).unwrap();
        assert_eq!(source, SecretSource::File(file));
        assert_eq!(first.expose_secret(), second.expose_secret());
    }

    #[test]
    fn a_set_but_empty_secret_variable_is_a_configuration_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s");
        let err = resolve_secret(Some(String::new()), &file).unwrap_err();
        assert!(format!("{err:#}").contains("KEYCARD_JWT_SECRET is set but empty"), "{err:#}");
        assert!(!file.exists(), "no secret may be generated for an empty variable");
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let env = "e".repeat(32);
        let (secret, source) = resolve_secret(Some(env.clone()), &dir.path().join("s")).unwrap();
        assert_eq!((secret.expose_secret(), source), (env.as_str(), SecretSource::Environment));
        assert!(!dir.path().join("s").exists());
    }

    #[test]
    fn token_locations_are_headers_cookies_or_both_in_the_order_given() {
        assert_eq!("headers".parse::<TokenLocations>(), Ok(TokenLocations(vec![Location::Headers])));
        assert_eq!("cookies".parse::<TokenLocations>(), Ok(TokenLocations(vec![Location::Cookies])));
        let both: TokenLocations = " Headers , cookies ".parse().unwrap();
        assert_eq!(both.as_slice(), [Location::Headers, Location::Cookies]);
        assert!(both.cookies());
        assert_eq!(both.to_string(), "headers,cookies");
        assert_eq!(
            "cookies,headers".parse::<TokenLocations>().unwrap().as_slice(),
            [Location::Cookies, Location::Headers]
        );
        for bad in ["", "header", "headers,", "headers,headers", "query_string", "json", "headers;cookies"] {
            assert!(bad.parse::<TokenLocations>().is_err(), "{bad}");
        }
    }

    #[test]
    fn same_site_is_lax_strict_or_none_and_none_needs_secure() {
        assert_eq!(parse_same_site("lax"), Ok(SameSite::Lax));
        assert_eq!(parse_same_site("Strict"), Ok(SameSite::Strict));
        assert_eq!(parse_same_site("NONE"), Ok(SameSite::None));
        assert!(parse_same_site("relaxed").is_err());
        assert_eq!(parse_cookie_secure("False"), Ok(false));
        assert_eq!(parse_cookie_secure("1"), Ok(true));
        assert!(parse_cookie_secure("maybe").unwrap_err().contains("KEYCARD_COOKIE_SECURE"));
        let insecure_none =
            Transport { cookie_secure: false, cookie_same_site: SameSite::None, ..Transport::default() };
        assert!(insecure_none.validate().unwrap_err().contains("KEYCARD_COOKIE_SECURE"));
        assert!(Transport { cookie_secure: true, ..insecure_none }.validate().is_ok());
    }

    #[test]
    fn the_refresh_cookie_is_scoped_to_the_refresh_route() {
        let settings = Transport::default().cookie_settings();
        assert_eq!(settings.refresh_cookie_path, "/token/refresh");
        assert_eq!(settings.access_cookie_path, "/");
        assert_eq!(settings.refresh_csrf_cookie_path, "/", "the page's script must read it");
        assert!(settings.secure);
        settings.validate().unwrap();
    }
}
