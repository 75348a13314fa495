//! `keycard config check`: the configuration `keycard serve` would run with, checked piece by
//! piece with the server's own start-up code, without serving, creating or changing anything.
//!
//! What is checked, each problem collected (not just the first):
//! - the JWT secret: `KEYCARD_JWT_SECRET` (set, not empty, at least 32 bytes) or the secret
//!   file (readable and long enough; a missing one is only noted: `serve` creates it, so its
//!   directory must exist);
//! - `KEYCARD_KEY_ENCRYPTION_KEY` (32 bytes of base64url);
//! - the Argon2 parameters, the HMAC key for HS*;
//! - the TLS certificate and key (readable PEM, a matching pair), by [`crate::serve::load_tls`];
//! - the database: reachable within `KEYCARD_DATABASE_TIMEOUT`, its migrations (pending ones
//!   are noted, `serve` applies them; unknown or failed ones are problems), by
//!   [`Store::inspect`], which opens SQLite read-only and never creates the file;
//! - with an asymmetric algorithm, the stored signing keys: every one opens with this key
//!   encryption key (by [`KeyRing::check`]); a missing active key is noted (generated at first
//!   start). Only on a database whose migrations are all applied (else nothing is opened that
//!   would migrate it);
//! - Redis, when set: a valid URL that answers a PING within the database timeout;
//! - the bind address: tried and released at once. In use is noted, not a problem (the server
//!   being checked may be running); an address that cannot be bound otherwise is a problem.
//!
//! Flags and variables are parsed by clap before any of this: one that does not parse stops
//! the command with clap's message and exit status 2.

use std::path::Path;
use std::time::Duration;

use keycard_store::{Store, StoreOptions};
use keycard_token::Keys;
use secrecy::{ExposeSecret, SecretString};

use crate::password::Passwords;
use crate::settings::{self, SECRET_ENV, SecretSource, Settings};
use crate::signing_keys::{KeyEncryptionKey, KeyRing};

/// What `keycard config check` found.
#[derive(Debug, Default)]
pub struct Report {
    /// The effective configuration, without secrets.
    pub config: String,
    /// Findings that are fine (where the secret comes from, the database state, ...).
    pub notes: Vec<String>,
    /// What would stop `keycard serve` or break it.
    pub problems: Vec<String>,
}

impl Report {
    /// The lines printed to standard output.
    pub fn summary(&self) -> Vec<String> {
        let mut lines = vec![format!("configuration: {}", self.config)];
        lines.extend(self.notes.iter().map(|n| format!("ok: {n}")));
        if self.problems.is_empty() {
            lines.push("configuration OK".to_owned());
        }
        lines
    }
}

/// Checks what `keycard serve` would run with; see the module documentation. `secret_file` is
/// its `--secret-file`; `settings` makes its [`Settings`] from the JWT secret and the key
/// encryption key, as `serve` does (`cli::settings_from_args`).
pub async fn check(
    secret_file: &Path,
    settings: impl FnOnce(SecretString, Option<SecretString>) -> Settings,
) -> Report {
    let mut report = Report::default();
    let jwt_secret = match jwt_secret(secret_file, &mut report) {
        Some(secret) => secret,
        // Checked no further: a stand-in so that the rest can be checked.
        None => SecretString::from("x".repeat(64)),
    };
    let key_encryption_key = match settings::key_encryption_key_from_env() {
        Ok(Some(kek)) => match KeyEncryptionKey::parse(&kek) {
            Ok(_) => Some(kek),
            Err(e) => {
                report.problems.push(e.to_string());
                None
            }
        },
        Ok(None) => None,
        Err(e) => {
            report.problems.push(format!("{e:#}"));
            None
        }
    };
    let settings = settings(jwt_secret, key_encryption_key);
    report.config = settings::describe(&settings);

    if let Err(e) = Passwords::new(&settings.argon2) {
        report.problems.push(format!("{e:#}"));
    }
    let algorithm = settings.signing.algorithm;
    if algorithm.is_symmetric()
        && let Err(e) = Keys::hmac(algorithm, settings.jwt_secret.expose_secret().as_bytes())
    {
        report.problems.push(format!("the {} key: {e}", algorithm.as_str()));
    }
    if let Some(files) = &settings.tls {
        match crate::serve::load_tls(files) {
            Ok(_) => {
                report.notes.push(format!("TLS certificate {} and key {}", files.cert.display(), files.key.display()))
            }
            Err(e) => report.problems.push(format!("{e:#}")),
        }
    }
    if let Err(e) = settings.transport.validate() {
        report.problems.push(e);
    }
    if let Err(e) = crate::ssf::Transmitter::new(&settings.resource_server_tokens, None, "", Duration::ZERO) {
        report.problems.push(e.to_string());
    } else if !settings.resource_server_tokens.is_empty() && algorithm.is_symmetric() {
        report.notes.push(format!(
            "KEYCARD_RESOURCE_SERVER_TOKENS with {}: introspection works, Shared Signals need an asymmetric algorithm",
            algorithm.as_str()
        ));
    }
    if settings.metrics_bind.as_deref().is_some_and(|m| m == settings.bind) {
        report
            .problems
            .push("KEYCARD_METRICS_BIND must differ from KEYCARD_BIND (metrics are never on the public port)".into());
    }
    check_bind(&settings.bind, &mut report);
    if let Some(metrics) = &settings.metrics_bind {
        check_bind(metrics, &mut report);
    }
    check_database(&settings, &mut report).await;
    check_redis(&settings, &mut report).await;
    report
}

/// The JWT secret as `serve` would resolve it, but never creating the file.
fn jwt_secret(file: &Path, report: &mut Report) -> Option<SecretString> {
    let from_env = match settings::secret_from_env() {
        Ok(value) => value,
        Err(e) => {
            report.problems.push(format!("{e:#}"));
            return None;
        }
    };
    if from_env.is_none() && !file.exists() {
        let dir = file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if dir.is_dir() {
            report.notes.push(format!(
                "{SECRET_ENV} is not set and the secret file {} does not exist: keycard serve will create it",
                file.display()
            ));
        } else {
            report.problems.push(format!(
                "{SECRET_ENV} is not set and the directory of the secret file {} does not exist",
                file.display()
            ));
        }
        return None;
    }
    match settings::resolve_secret(from_env, file) {
        Ok((secret, source)) => {
            report.notes.push(match source {
                SecretSource::Environment => format!("JWT secret from {SECRET_ENV}"),
                SecretSource::File(path) | SecretSource::Generated(path) => {
                    format!("JWT secret from the file {}", path.display())
                }
            });
            Some(secret)
        }
        Err(e) => {
            report.problems.push(format!("{e:#}"));
            None
        }
    }
}

fn check_bind(bind: &str, report: &mut Report) {
    match std::net::TcpListener::bind(bind) {
        Ok(listener) => {
            let addr = listener.local_addr().map_or_else(|_| bind.to_owned(), |a| a.to_string());
            report.notes.push(format!("the address {addr} is free"));
        }
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            report.notes.push(format!("the address {bind} is in use now (by a running keycard?)"));
        }
        Err(e) => report.problems.push(format!("cannot listen on {bind}: {e}")),
    }
}

async fn check_database(settings: &Settings, report: &mut Report) {
    let database = keycard_store::redact_url(&settings.database_url);
    let status = match Store::inspect(&settings.database_url, settings.database_timeout).await {
        Ok(status) => status,
        Err(e) => {
            report.problems.push(format!("the database {database}: {:#}", anyhow::Error::new(e)));
            return;
        }
    };
    if !status.exists {
        report.notes.push(format!("the database {database} does not exist yet: keycard serve will create it"));
    } else if status.pending > 0 {
        report.notes.push(format!(
            "the database {database} answers; {} migration(s) pending, applied when keycard serve starts",
            status.pending
        ));
    } else {
        report.notes.push(format!("the database {database} answers; all {} migrations applied", status.applied));
    }
    if !status.unknown.is_empty() {
        report.problems.push(format!(
            "the database {database} has migrations this keycard does not know ({:?}): it was migrated by a newer \
             keycard",
            status.unknown
        ));
    }
    if !status.failed.is_empty() {
        report.problems.push(format!("the database {database} has failed migrations {:?}", status.failed));
    }
    if settings.signing.algorithm.is_symmetric() {
        return;
    }
    if !status.exists || status.pending > 0 || !status.unknown.is_empty() || !status.failed.is_empty() {
        report.notes.push("signing keys not checked: the database is not migrated (the first start does it)".into());
        return;
    }
    let options = StoreOptions { timeout: settings.database_timeout, max_connections: 1 };
    let checked = async {
        // Nothing to migrate: opening the store changes nothing.
        let store = Store::connect_with(&settings.database_url, options).await?;
        let ring = KeyRing::new(store.clone(), &settings.signing, &settings.tokens);
        let result = match ring {
            Ok(ring) => ring.check().await.map_err(anyhow::Error::new),
            Err(e) => Err(anyhow::Error::new(e)),
        };
        store.close().await;
        result
    };
    let algorithm = settings.signing.algorithm.as_str();
    match checked.await {
        Ok(true) => report.notes.push(format!("the stored signing keys open; an active {algorithm} key exists")),
        Ok(false) => report.notes.push(format!("no active {algorithm} key stored yet: the first start generates one")),
        Err(e) => report.problems.push(format!("{e:#}")),
    }
}

async fn check_redis(settings: &Settings, report: &mut Report) {
    let Some(url) = &settings.redis_url else { return };
    let shown = keycard_store::redact_url(url.expose_secret());
    let redis = match crate::cluster::Redis::new(url, &settings.redis_prefix) {
        Ok(redis) => redis,
        Err(e) => {
            report.problems.push(format!("Redis {shown}: {e:#}"));
            return;
        }
    };
    let wait = settings.database_timeout.max(Duration::from_secs(1));
    match tokio::time::timeout(wait, redis.ping()).await {
        Ok(Ok(())) => report.notes.push(format!("Redis {shown} answers")),
        Ok(Err(e)) => report.problems.push(format!("Redis {shown} does not answer: {e}")),
        Err(_) => report.problems.push(format!("Redis {shown} does not answer within {}s", wait.as_secs())),
    }
}
