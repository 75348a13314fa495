//! The command line: `serve`, `config check`, `gen-secret`, `user add|grant|list|import`,
//! `keys list|rotate`, `audit`, `completions`, `man`.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use keycard_store::{Email, NewUser, Password, Role, Roles, Store, StoreError, UserStatus, Username};
use keycard_token::{Clock, SystemClock, TokenSettings};

use crate::password::Passwords;
use crate::settings::{self, Argon2Settings, SECRET_ENV, SecretSource, Settings};
use crate::telemetry::{self, LogFormat};
use crate::{Application, routes::UserView};

/// keycard: a JWT authentication server (register, login, refresh with rotation, logout, roles).
#[derive(Debug, Parser)]
#[command(name = "keycard", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server.
    #[command(after_help = "The JWT secret is read from KEYCARD_JWT_SECRET (never a flag). When it is unset, \
keycard uses the secret in --secret-file, creating it (mode 0600) with a fresh 256-bit secret on first start.\n\
With an asymmetric --jwt-algorithm, private keys are kept in the database, encrypted (AES-256-GCM) when \
KEYCARD_KEY_ENCRYPTION_KEY (32 bytes, base64url; never a flag) is set.\n\
Logging: RUST_LOG (e.g. RUST_LOG=keycard_server=debug for one line per request).")]
    Serve(Box<ServeArgs>),
    /// Check the configuration `keycard serve` would run with, without serving.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a fresh 256-bit secret for KEYCARD_JWT_SECRET.
    GenSecret,
    /// Manage accounts in the database (safe while the server runs).
    #[command(subcommand)]
    User(UserCommand),
    /// Manage the asymmetric signing keys in the database (safe while the server runs).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Print the shell completion script for SHELL (e.g. `keycard completions bash >
    /// /etc/bash_completion.d/keycard`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff; `keycard man | man -l -`).
    Man,
    /// Read the security audit log, newest first.
    Audit {
        /// Only events of this account.
        #[arg(long)]
        user: Option<String>,
        /// Only events of this kind (login_failed, logout, user_disabled, ...).
        #[arg(long)]
        kind: Option<String>,
        /// Only events at or after this time (seconds since the epoch or RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// At most this many events (default 100, at most 1000).
        #[arg(long)]
        limit: Option<u32>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Database location.
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

/// `keycard config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the whole configuration as `keycard serve` would read it (the same flags and
    /// KEYCARD_* variables): the JWT secret or secret file, TLS files, the database and its
    /// migrations, Redis, the key encryption key and stored signing keys, Argon2 parameters.
    /// Serves nothing, creates and changes nothing (the bind address is only tried). Exit 0 with
    /// a summary (never a secret), or 1 naming every problem found.
    #[command(after_help = "Flags and variables that do not parse are reported by the argument parser, \
one at a time, with exit status 2, before any other check runs.")]
    Check(Box<ServeArgs>),
}

/// Where the database is.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Database URL: sqlite://PATH (created if missing; relative to the working directory) or
    /// postgres://USER:PASSWORD@HOST:PORT/DATABASE (password and port optional; several instances
    /// may share it).
    #[arg(long, env = "KEYCARD_DATABASE_URL", default_value = "sqlite://keycard.db")]
    pub database_url: String,
}

/// `keycard serve` options; each also reads its `KEYCARD_*` environment variable.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "KEYCARD_BIND", default_value = "127.0.0.1:5000")]
    pub bind: String,
    /// Address of the Prometheus metrics listener (GET /metrics); unset or empty: no metrics.
    /// Plain HTTP, never the public port: bind it to a private interface.
    #[arg(long, env = "KEYCARD_METRICS_BIND")]
    pub metrics_bind: Option<String>,
    /// Database location.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Longest wait for a database connection or answer; requests that need the database answer
    /// 503 after it while the database is away.
    #[arg(long, env = "KEYCARD_DATABASE_TIMEOUT", default_value = "5s", value_parser = settings::parse_ttl)]
    pub database_timeout: Duration,
    /// How long GET /user may answer from memory (0: always from the database). Changes made
    /// through this instance show at once, changes made elsewhere within this.
    #[arg(long, env = "KEYCARD_ACCOUNT_CACHE_TTL", default_value = "1s", value_parser = settings::parse_duration)]
    pub account_cache_ttl: Duration,
    /// PostgreSQL connections per instance.
    #[arg(long, env = "KEYCARD_DATABASE_MAX_CONNECTIONS", default_value_t = 16)]
    pub database_max_connections: u32,
    /// Redis URL (redis://:PASSWORD@HOST:PORT/DB, all but the host optional): revocations reach the
    /// other instances by pub/sub and login-failure counters live there. Optional; keycard keeps
    /// working without it.
    #[arg(long, env = "KEYCARD_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Prefix of keycard's Redis keys and channel.
    #[arg(long, env = "KEYCARD_REDIS_PREFIX", default_value = "keycard:")]
    pub redis_prefix: String,
    /// File holding the JWT secret when KEYCARD_JWT_SECRET is unset (created if missing).
    #[arg(long, env = "KEYCARD_SECRET_FILE", default_value = "keycard.secret")]
    pub secret_file: PathBuf,
    /// Access token lifetime: seconds, or with a unit (15m, 1h, 30d).
    #[arg(long, env = "KEYCARD_ACCESS_TTL", default_value = "15m", value_parser = settings::parse_ttl)]
    pub access_ttl: Duration,
    /// Refresh token lifetime: seconds, or with a unit (15m, 1h, 30d).
    #[arg(long, env = "KEYCARD_REFRESH_TTL", default_value = "30d", value_parser = settings::parse_ttl)]
    pub refresh_ttl: Duration,
    /// Clock-skew tolerance for exp/nbf/iat (at most 5m).
    #[arg(long, env = "KEYCARD_LEEWAY", default_value = "0", value_parser = settings::parse_leeway)]
    pub leeway: Duration,
    /// Requests taking longer are answered 408.
    #[arg(long, env = "KEYCARD_REQUEST_TIMEOUT", default_value = "30s", value_parser = settings::parse_ttl)]
    pub request_timeout: Duration,
    /// Password hashing parameters.
    #[command(flatten)]
    pub argon2: Argon2Settings,
    /// Consecutive failed logins of one account before throttling starts (0: never).
    #[arg(long, env = "KEYCARD_LOGIN_MAX_FAILURES", default_value_t = 5)]
    pub login_max_failures: u32,
    /// Requests a minute one client address may make to each of /login, /register and
    /// /token/refresh (0: unlimited).
    #[arg(long, env = "KEYCARD_RATE_LIMIT", default_value_t = 60)]
    pub rate_limit: u32,
    /// Header holding the client address set by your reverse proxy (e.g. X-Forwarded-For),
    /// believed only from --trusted-proxies.
    #[arg(long, env = "KEYCARD_CLIENT_IP_HEADER")]
    pub client_ip_header: Option<axum::http::HeaderName>,
    /// Addresses of reverse proxies whose client-address header is believed.
    #[arg(long, env = "KEYCARD_TRUSTED_PROXIES", value_delimiter = ',', default_value = "127.0.0.1,::1")]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, env = "KEYCARD_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key: serve HTTPS (with --tls-cert).
    #[arg(long, env = "KEYCARD_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Connection timeouts and caps.
    #[command(flatten)]
    pub connections: crate::settings::ConnectionLimits,
    /// Log line format.
    #[arg(long, env = "KEYCARD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Token signing: algorithm and key storage.
    #[command(flatten)]
    pub signing: SigningArgs,
    /// The base URL clients reach keycard at (default http://BIND, https:// with TLS); the JWKS
    /// URL of the discovery document is under it.
    #[arg(long, env = "KEYCARD_PUBLIC_URL", value_parser = settings::parse_public_url)]
    pub public_url: Option<String>,
    /// The `iss` claim of every token, checked on every token (default: the public URL). With
    /// HS256, `iss` is written only when this is set (FJE writes none).
    #[arg(long, env = "KEYCARD_ISSUER", value_parser = settings::parse_public_url)]
    pub issuer: Option<String>,
    /// The `aud` claim written into every token and required of every token (comma-separated
    /// for several). Default: none, neither written nor checked.
    #[arg(long, env = "KEYCARD_AUDIENCE", value_parser = settings::parse_audience)]
    pub audience: Option<keycard_token::Audience>,
    /// Rotate the signing key when the active one is this old (at least 1h; e.g. 30d; default
    /// off: rotate with `keycard keys rotate`).
    #[arg(long, env = "KEYCARD_KEY_ROTATION", value_parser = settings::parse_rotation, default_value = "off")]
    pub key_rotation: settings::KeyRotation,
    /// Tokens whose signature verified kept in memory (by SHA-256), so that a token presented
    /// again skips the public-key check; expiry, revocation and claims are still checked on
    /// every request. Only used with asymmetric algorithms; 0 turns it off.
    #[arg(long, env = "KEYCARD_VERIFIED_TOKEN_CACHE", default_value_t = 100_000)]
    pub verified_token_cache: u64,
    /// Where tokens are read from, in order: headers (Authorization: Bearer), cookies, or
    /// headers,cookies. With cookies, /login and /token/refresh also set HttpOnly token cookies
    /// and readable CSRF cookies, and cookie-authenticated POST, PUT, PATCH and DELETE requests
    /// need the X-CSRF-TOKEN header.
    #[arg(long, env = "KEYCARD_TOKEN_LOCATIONS", default_value = "headers")]
    pub token_locations: settings::TokenLocations,
    /// Whether cookies are marked Secure (sent over HTTPS only); false only for a plain-HTTP
    /// development server.
    #[arg(long, env = "KEYCARD_COOKIE_SECURE", default_value = "true", action = clap::ArgAction::Set,
          value_parser = settings::parse_cookie_secure)]
    pub cookie_secure: bool,
    /// The SameSite attribute of the cookies: Lax, Strict or None (None needs secure cookies).
    #[arg(long = "cookie-samesite", env = "KEYCARD_COOKIE_SAMESITE", default_value = "Lax",
          value_parser = settings::parse_same_site)]
    pub cookie_same_site: keycard_axum::SameSite,
    /// Bearer credentials of the resource servers allowed to call POST /introspect and to manage
    /// and poll Shared Signals streams (comma separated, each at least 24 characters, e.g.
    /// `openssl rand -hex 32`). Unset: those endpoints are 404.
    #[arg(long, env = "KEYCARD_RESOURCE_SERVER_TOKENS", value_delimiter = ',', hide_env_values = true)]
    pub resource_server_tokens: Vec<String>,
}

/// The signing algorithm, shared by `keycard serve` and `keycard keys`.
#[derive(Debug, Clone, Args)]
pub struct SigningArgs {
    /// JWS algorithm: HS256 (default: the shared secret, FJE-compatible), HS384, HS512, or an
    /// asymmetric one whose keys keycard generates and keeps in the database: ES256, ES384,
    /// EdDSA, RS256, PS256, ... The private-key encryption key is read from
    /// KEYCARD_KEY_ENCRYPTION_KEY only (never a flag).
    #[arg(long = "jwt-algorithm", env = "KEYCARD_JWT_ALGORITHM", default_value = "HS256", value_parser = parse_algorithm)]
    pub algorithm: keycard_token::Algorithm,
}

fn parse_algorithm(s: &str) -> Result<keycard_token::Algorithm, String> {
    s.trim().parse().map_err(|_| format!("`{s}` is not a supported JWS algorithm (HS256, ES256, EdDSA, RS256, ...)"))
}

/// `keycard keys ...`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List the signing keys: kid, algorithm, creation time, state (never key material).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Database location.
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Make a new signing key the active one (safe while servers run: they sign with it within
    /// a second or two; the previous key keeps verifying until its tokens have expired). Prints
    /// the new kid.
    Rotate {
        /// The algorithm of the new key.
        #[command(flatten)]
        signing: SigningArgs,
        /// Database location.
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

/// `keycard user ...`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account. The password is read from stdin when it is not a terminal, else prompted.
    Add {
        /// Username.
        name: String,
        /// Role to grant (repeatable).
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Email address.
        #[arg(long)]
        email: Option<String>,
        /// Database location.
        #[command(flatten)]
        database: DatabaseArgs,
        /// Password hashing parameters.
        #[command(flatten)]
        argon2: Argon2Settings,
    },
    /// Grant a role to an account (effective at its next login or refresh).
    Grant {
        /// Username.
        name: String,
        /// Role.
        role: String,
        /// Database location.
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Disable an account: its logins are refused and every token it holds is revoked (a running
    /// server honours it within a second).
    Disable {
        /// Username.
        name: String,
        /// Database location.
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Enable a disabled account.
    Enable {
        /// Username.
        name: String,
        /// Database location.
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Import accounts with their password hashes from another system (a Flask app): a JSON
    /// array or JSON lines of {"username", "password_hash", "email"?, "roles"?}. Hashes:
    /// werkzeug scrypt/pbkdf2, bcrypt ($2b$, $2a$, $2y$), argon2id; each is replaced by an
    /// argon2id hash at the account's first login. Every record is checked first: any problem
    /// (reported with its line or element number and username) and nothing is imported.
    #[command(after_help = "Accounts that already exist are refused unless --skip-existing is given, which \
leaves them as they are. Formats, bounds and the migration from Flask: docs/migrating-from-flask-jwt-extended.md.")]
    Import {
        /// The file to read, or `-` for standard input.
        file: PathBuf,
        /// Leave accounts that already exist as they are (listed in the summary) instead of
        /// refusing the whole import.
        #[arg(long)]
        skip_existing: bool,
        /// Check everything (the database included) but write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Database location.
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// List accounts.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Database location.
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

/// Standard output was closed by its reader (`keycard audit | head -n 1`). Not a failure: the
/// binary ends quietly with exit 0 on it, as other Unix tools do.
#[derive(Debug, thiserror::Error)]
#[error("standard output was closed")]
pub struct StdoutClosed;

/// Writes one line to standard output; a closed pipe becomes [`StdoutClosed`] (never the
/// panic of `println!`).
fn write_line(args: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        Err(e) => Err(anyhow::Error::new(e).context("writing to standard output")),
    }
}

/// Writes `bytes` to standard output, as [`write_line`] does.
fn write_bytes(bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        Err(e) => Err(anyhow::Error::new(e).context("writing to standard output")),
    }
}

/// `println!` through [`write_line`], returning its error from the enclosing function.
macro_rules! outln {
    ($($arg:tt)*) => {
        write_line(format_args!($($arg)*))?
    };
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(*args).await,
        Command::Config(ConfigCommand::Check(args)) => {
            let secret_file = args.secret_file.clone();
            let report = crate::check::check(&secret_file, |secret, kek| settings_from_args(*args, secret, kek)).await;
            for line in report.summary() {
                outln!("{line}");
            }
            if report.problems.is_empty() {
                Ok(())
            } else {
                use std::io::Write;
                let mut err = std::io::stderr().lock();
                for problem in &report.problems {
                    let _ = writeln!(err, "problem: {problem}");
                }
                let n = report.problems.len();
                bail!("{n} configuration problem{} found", if n == 1 { "" } else { "s" })
            }
        }
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut command, "keycard", &mut out);
            write_bytes(&out)
        }
        Command::Man => {
            let mut out = Vec::new();
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command())
                .render(&mut out)
                .context("rendering the man page")?;
            write_bytes(&out)
        }
        Command::GenSecret => {
            outln!("{}", settings::generate_secret()?);
            Ok(())
        }
        Command::User(command) => user(command).await,
        Command::Keys(command) => keys(command).await,
        Command::Audit { user, kind, since, limit, json, database } => {
            let kind = kind.as_deref().map(str::parse::<keycard_store::AuditKind>).transpose()?;
            let since = match since.as_deref() {
                Some(s) => Some(crate::routes::parse_since(s).map_err(|e| anyhow::anyhow!("{e}"))?),
                None => None,
            };
            let store = open(&database).await?;
            let filter = keycard_store::AuditFilter { username: user, kind, since, limit };
            let events = store.audit_events(&filter).await?;
            store.close().await;
            if json {
                let events: Vec<crate::routes::AuditView> = events.into_iter().map(Into::into).collect();
                outln!("{}", serde_json::to_string_pretty(&events)?);
            } else {
                outln!("{:<20} {:<18} {:<20} {:<15} DETAIL", "TIME", "KIND", "USER", "CLIENT");
                for e in events {
                    outln!(
                        "{:<20} {:<18} {:<20} {:<15} {}",
                        crate::routes::rfc3339(e.at),
                        e.kind,
                        e.username.unwrap_or_default(),
                        e.client_addr.unwrap_or_default(),
                        e.detail.map(|d| d.to_string()).unwrap_or_default()
                    );
                }
            }
            Ok(())
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    telemetry::init(args.log_format);
    // Connections are files: allow as many as the hard limit does.
    if let Err(e) = crate::serve::raise_fd_limit() {
        tracing::warn!(error = %e, "cannot read the open file limit");
    }
    let (jwt_secret, source) = settings::resolve_secret(settings::secret_from_env()?, &args.secret_file)?;
    match &source {
        SecretSource::Environment => tracing::info!("JWT secret read from {SECRET_ENV}"),
        SecretSource::File(path) => {
            tracing::warn!(file = %path.display(), "{SECRET_ENV} is not set: using the JWT secret stored in the file")
        }
        SecretSource::Generated(path) => tracing::warn!(
            file = %path.display(),
            "{SECRET_ENV} is not set: generated a new JWT secret and stored it in the file (keep it private, back it up)"
        ),
    }
    let settings = settings_from_args(args, jwt_secret, settings::key_encryption_key_from_env()?);
    settings.transport.validate().map_err(anyhow::Error::msg)?;
    if settings.transport.locations.cookies() && !settings.transport.cookie_secure {
        tracing::warn!(
            "KEYCARD_COOKIE_SECURE=false: the token cookies are sent over plain HTTP too; only for a development \
             server on localhost"
        );
    }
    tracing::info!(config = %settings::describe(&settings), "starting keycard {}", env!("CARGO_PKG_VERSION"));
    let app = Application::build(settings).await?;
    app.run_until_stopped(shutdown_signal()).await
}

/// The [`Settings`] `keycard serve` runs with: its arguments (and their environment variables),
/// the JWT secret and the key encryption key. Shared with `keycard config check`, so that it
/// checks exactly what the server would run with.
pub fn settings_from_args(
    args: ServeArgs,
    jwt_secret: secrecy::SecretString,
    key_encryption_key: Option<secrecy::SecretString>,
) -> Settings {
    Settings {
        bind: args.bind,
        metrics_bind: args.metrics_bind.filter(|bind| !bind.trim().is_empty()),
        database_url: args.database.database_url,
        database_timeout: args.database_timeout,
        database_max_connections: args.database_max_connections,
        redis_url: args.redis_url.filter(|url| !url.is_empty()).map(secrecy::SecretString::from),
        redis_prefix: args.redis_prefix,
        revocation_resync: crate::settings::RESYNC_INTERVAL,
        account_cache_ttl: args.account_cache_ttl,
        jwt_secret,
        tokens: TokenSettings {
            access_ttl: args.access_ttl,
            refresh_ttl: args.refresh_ttl,
            leeway: args.leeway,
            csrf_claim: false,
            issuer: args.issuer,
            audience: args.audience,
            ..TokenSettings::default()
        },
        argon2: args.argon2,
        request_timeout: args.request_timeout,
        throttle: keycard_store::ThrottlePolicy { max_failures: args.login_max_failures, ..Default::default() },
        rate_limit_per_minute: args.rate_limit,
        client_ip: crate::client::ClientIpConfig {
            header: args.client_ip_header,
            trusted_proxies: args.trusted_proxies,
        },
        tls: match (args.tls_cert, args.tls_key) {
            (Some(cert), Some(key)) => Some(crate::settings::TlsFiles { cert, key }),
            _ => None,
        },
        connections: args.connections,
        signing: settings::SigningSettings {
            algorithm: args.signing.algorithm,
            public_url: args.public_url,
            key_encryption_key,
            key_rotation: args.key_rotation.0,
            verified_token_cache: args.verified_token_cache,
        },
        transport: settings::Transport {
            locations: args.token_locations,
            cookie_secure: args.cookie_secure,
            cookie_same_site: args.cookie_same_site,
        },
        resource_server_tokens: args
            .resource_server_tokens
            .into_iter()
            .filter(|t| !t.trim().is_empty())
            .map(secrecy::SecretString::from)
            .collect(),
    }
}

/// Completes on SIGTERM or ctrl-c.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received: finishing in-flight requests");
}

async fn user(command: UserCommand) -> anyhow::Result<()> {
    let now = SystemClock.now();
    match command {
        UserCommand::Add { name, roles, email, database, argon2 } => {
            let username = Username::parse(&name)?;
            let email = email.as_deref().map(Email::parse).transpose()?;
            let roles = Roles::parse(&roles)?;
            let password = Password::parse(&read_password()?)?;
            let store = open(&database).await?;
            let password_hash = Passwords::new(&argon2)?.hash(&password).await?;
            let new = NewUser {
                username: &username,
                email: email.as_ref(),
                password_hash: &password_hash,
                roles: &roles,
                now,
            };
            let created = store.create_user(&new).await;
            store.close().await;
            match created {
                Ok(_) => outln!("created user {username}"),
                Err(StoreError::Conflict) => bail!("user {username} already exists"),
                Err(e) => return Err(e).context("creating the user"),
            }
        }
        UserCommand::Grant { name, role, database } => {
            let username = Username::existing(&name)?;
            let role = Role::parse(&role)?;
            let store = open(&database).await?;
            let granted = store.grant_role(&username, &role, now).await;
            store.close().await;
            match granted {
                Ok(true) => outln!("granted {role} to {username}"),
                Ok(false) => outln!("{username} already has {role}"),
                Err(StoreError::NotFound) => bail!("no user named {username}"),
                Err(StoreError::TooManyRoles) => {
                    bail!("{username} already has {} roles, the most an account may hold", Roles::MAX)
                }
                Err(e) => return Err(e).context("granting the role"),
            }
        }
        UserCommand::Import { file, skip_existing, dry_run, database } => {
            let input = read_import(&file)?;
            let accounts = match crate::import::parse(&input) {
                Ok(accounts) => accounts,
                Err(refused) => return Err(report(refused)),
            };
            let store = open(&database).await?;
            let imported = crate::import::import(&store, accounts, skip_existing, dry_run, now).await;
            if let Ok(summary) = &imported
                && !summary.dry_run
                && let Err(e) = crate::import::audit(&store, summary, now).await
            {
                eprintln!("warning: the accounts are imported, but their audit events could not be written: {e}");
            }
            store.close().await;
            match imported {
                Ok(summary) => outln!("{summary}"),
                Err(crate::import::ImportError::Refused(refused)) => return Err(report(refused)),
                Err(e) => return Err(e.into()),
            }
        }
        UserCommand::Disable { name, database } => set_status(&name, &database, UserStatus::Disabled, now).await?,
        UserCommand::Enable { name, database } => set_status(&name, &database, UserStatus::Active, now).await?,
        UserCommand::List { json, database } => {
            let store = open(&database).await?;
            let users: Vec<UserView> = store.list_users().await?.into_iter().map(UserView::from).collect();
            store.close().await;
            for u in &users {
                if Username::existing(&u.username).is_ok_and(|name| name.is_legacy()) {
                    eprintln!(
                        "note: {:?} was registered under an older username rule that allowed invisible \
                         characters; it keeps working, but the name could not be registered today",
                        u.username
                    );
                }
            }
            if json {
                outln!("{}", serde_json::to_string_pretty(&users)?);
            } else {
                outln!("{:<24} {:<32} {:<9} {:<24} CREATED", "USERNAME", "EMAIL", "STATUS", "ROLES");
                for u in users {
                    outln!(
                        "{:<24} {:<32} {:<9} {:<24} {}",
                        u.username,
                        u.email.unwrap_or_default(),
                        u.status.as_str(),
                        u.roles.join(","),
                        u.created_at
                    );
                }
            }
        }
    }
    Ok(())
}

/// `keycard keys list|rotate`.
async fn keys(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::List { json, database } => {
            let store = open(&database).await?;
            let listed = list_keys(&store).await;
            store.close().await;
            let keys = listed?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&keys)?);
            } else {
                outln!("{:<44} {:<6} {:<21} {:<8} {:<9} RETIRED", "KID", "ALG", "CREATED", "STATE", "ENCRYPTED");
                for k in keys {
                    outln!(
                        "{:<44} {:<6} {:<21} {:<8} {:<9} {}",
                        k.kid,
                        k.algorithm,
                        k.created,
                        k.state.as_str(),
                        if k.encrypted { "yes" } else { "no" },
                        k.retired.unwrap_or_default()
                    );
                }
            }
        }
        KeysCommand::Rotate { signing, database } => {
            let store = open(&database).await?;
            let rotated = rotate_key(&store, signing.algorithm, settings::key_encryption_key_from_env()?).await;
            store.close().await;
            outln!("{}", rotated?);
        }
    }
    Ok(())
}

/// What `keycard keys list` shows: kid, algorithm, times, state, never key material.
pub async fn list_keys(store: &Store) -> anyhow::Result<Vec<crate::signing_keys::KeyInfo>> {
    let rows = store.signing_keys().await.context("reading the signing keys")?;
    Ok(rows.iter().map(|row| crate::signing_keys::KeyInfo::new(row, crate::routes::rfc3339)).collect())
}

/// `keycard keys rotate`: a new active `algorithm` key (sealed with `key_encryption_key` when
/// given), safe while servers run; returns its kid. Refuses when the stored keys do not open
/// with this configuration, since the servers could then not open the new key either.
pub async fn rotate_key(
    store: &Store,
    algorithm: keycard_token::Algorithm,
    key_encryption_key: Option<secrecy::SecretString>,
) -> anyhow::Result<String> {
    let signing = settings::SigningSettings { algorithm, key_encryption_key, ..settings::SigningSettings::default() };
    let ring = crate::signing_keys::KeyRing::new(store.clone(), &signing, &TokenSettings::default())?;
    Ok(ring.rotate(SystemClock.now()).await?)
}

/// `keycard user disable|enable`: the running server picks up the revoked sessions by polling.
async fn set_status(name: &str, database: &DatabaseArgs, status: UserStatus, now: i64) -> anyhow::Result<()> {
    let username = Username::existing(name)?;
    let store = open(database).await?;
    let revoked = match store.set_status(&username, status, now).await {
        Ok((_, revoked)) => revoked,
        Err(StoreError::NotFound) => bail!("no user named {username}"),
        Err(StoreError::LastAdmin) => bail!(
            "{username} is the last active admin: grant admin to another account first \
             (keycard user grant NAME admin)"
        ),
        Err(e) => return Err(e).context("changing the account status"),
    };
    let event = keycard_store::AuditEvent {
        username: Some(username.as_str().to_owned()),
        detail: Some(serde_json::json!({ "actor": "cli" })),
        ..keycard_store::AuditEvent::new(keycard_store::AuditKind::status_change(status), now)
    };
    store.record_audit(&event).await?;
    store.close().await;
    outln!("{username} is now {} ({})", status.as_str(), sessions_ended(revoked.len()));
    Ok(())
}

/// "1 session ended", "3 sessions ended".
fn sessions_ended(n: usize) -> String {
    format!("{n} session{} ended", if n == 1 { "" } else { "s" })
}

async fn open(database: &DatabaseArgs) -> anyhow::Result<Store> {
    Store::connect(&database.database_url)
        .await
        .with_context(|| format!("opening the database {}", keycard_store::redact_url(&database.database_url)))
}

/// The import input: the file, or standard input for `-`, at most
/// [`crate::import::MAX_INPUT_BYTES`].
fn read_import(file: &std::path::Path) -> anyhow::Result<String> {
    let limit = crate::import::MAX_INPUT_BYTES;
    let mut bytes = Vec::new();
    if file.as_os_str() == "-" {
        std::io::stdin().take(limit + 1).read_to_end(&mut bytes).context("reading standard input")?;
    } else {
        let f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
        f.take(limit + 1).read_to_end(&mut bytes).with_context(|| format!("reading {}", file.display()))?;
    }
    if bytes.len() as u64 > limit {
        bail!("the input is larger than {} MiB: split it", limit / 1024 / 1024);
    }
    String::from_utf8(bytes)
        .map_err(|e| anyhow::anyhow!("the input is not UTF-8 (byte {})", e.utf8_error().valid_up_to()))
}

/// Prints every problem of a refused import to stderr, one a line; the error sums them up.
fn report(refused: crate::import::Refused) -> anyhow::Error {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    for problem in &refused.0 {
        let _ = writeln!(err, "{problem}");
    }
    refused.into()
}

/// The new user's password: one line from stdin when it is piped, else prompted twice.
fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let second = rpassword::prompt_password("Repeat password: ")?;
        if first != second {
            bail!("the passwords do not match");
        }
        return Ok(first);
    }
    let mut input = String::new();
    std::io::stdin().take(4096).read_to_string(&mut input).context("reading the password from stdin")?;
    let line = input.lines().next().unwrap_or("");
    Ok(line.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_counts_agree_with_their_noun() {
        assert_eq!(sessions_ended(0), "0 sessions ended");
        assert_eq!(sessions_ended(1), "1 session ended");
        assert_eq!(sessions_ended(2), "2 sessions ended");
    }
}
