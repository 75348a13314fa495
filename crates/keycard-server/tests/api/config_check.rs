//! `keycard config check`, `keycard completions`, `keycard man`: the binary run as a process.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::helpers::*;

/// A key encryption key: 32 bytes, base64url.
const KEK: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

/// `keycard ARGS` in `dir` with exactly `envs` of keycard's secrets set.
fn keycard(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> (Output, String, String) {
    let mut command = Command::new(keycard_bin());
    command
        .args(args)
        .current_dir(dir)
        .env_remove("KEYCARD_JWT_SECRET")
        .env_remove("KEYCARD_KEY_ENCRYPTION_KEY")
        .env_remove("KEYCARD_REDIS_URL")
        .env_remove("KEYCARD_DATABASE_URL")
        .stdin(Stdio::null());
    for (k, v) in envs {
        command.env(k, v);
    }
    let out = command.output().unwrap();
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    (out, stdout, stderr)
}

fn tls_pair(dir: &Path, name: &str) -> (String, String) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    (cert.display().to_string(), key.display().to_string())
}

#[test]
fn a_good_configuration_passes_with_a_summary_that_shows_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("k.db").display());
    let (cert, key) = tls_pair(dir.path(), "good");
    let args =
        ["config", "check", "--bind", "127.0.0.1:0", "--database-url", &db, "--tls-cert", &cert, "--tls-key", &key];

    // A fresh directory: nothing exists yet, and the check creates nothing.
    let (out, stdout, stderr) = keycard(dir.path(), &args, &[]);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("the secret file keycard.secret does not exist: keycard serve will create it"), "{stdout}");
    assert!(stdout.contains("does not exist yet: keycard serve will create it"), "{stdout}");
    assert!(stdout.contains("TLS certificate") && stdout.contains("is free"), "{stdout}");
    assert!(stdout.trim_end().ends_with("configuration OK"), "{stdout}");
    assert!(
        !dir.path().join("k.db").exists() && !dir.path().join("keycard.secret").exists(),
        "the check created files"
    );

    // A migrated database and the secret from the environment.
    assert!(run_cli(&["user", "list", "--database-url", &db], "", &[]).status.success());
    let (out, stdout, stderr) = keycard(dir.path(), &args, &[("KEYCARD_JWT_SECRET", SECRET)]);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("JWT secret from KEYCARD_JWT_SECRET"), "{stdout}");
    assert!(stdout.contains("answers; all") && stdout.contains("migrations applied"), "{stdout}");
    assert!(stdout.contains("configuration: bind=127.0.0.1:0 metrics=off tls=true database=sqlite://"), "{stdout}");
    assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET), "the secret was printed");
}

#[test]
fn every_problem_is_named_and_the_check_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, _) = tls_pair(dir.path(), "one");
    let (_, other_key) = tls_pair(dir.path(), "two");
    let short = "short-secret-value";
    let (out, stdout, stderr) = keycard(
        dir.path(),
        &[
            "config",
            "check",
            "--bind",
            "127.0.0.1:0",
            "--database-url",
            "postgres://kc:db-password@127.0.0.1:1/keycard",
            "--database-timeout",
            "1s",
            "--tls-cert",
            &cert,
            "--tls-key",
            &other_key,
        ],
        &[("KEYCARD_JWT_SECRET", short), ("KEYCARD_KEY_ENCRYPTION_KEY", "not-a-key")],
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(!stdout.contains("configuration OK"), "{stdout}");
    let problems: Vec<&str> = stderr.lines().filter(|l| l.starts_with("problem: ")).collect();
    assert_eq!(problems.len(), 4, "{stderr}");
    assert!(stderr.contains("the JWT secret from KEYCARD_JWT_SECRET is 18 bytes long; at least 32"), "{stderr}");
    assert!(stderr.contains("KEYCARD_KEY_ENCRYPTION_KEY must be 32 random bytes"), "{stderr}");
    assert!(stderr.contains("do not make a valid pair"), "{stderr}");
    assert!(
        stderr.contains("the database postgres://kc:***@127.0.0.1:1/keycard: cannot reach the database"),
        "{stderr}"
    );
    assert!(stderr.contains("4 configuration problems found"), "{stderr}");
    for secret in [short, "db-password", "not-a-key"] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret), "{secret} was printed");
    }

    let (out, _, stderr) = keycard(
        dir.path(),
        &[
            "config",
            "check",
            "--bind",
            "127.0.0.1:0",
            "--tls-cert",
            "/nonexistent/cert.pem",
            "--tls-key",
            "/nonexistent/key.pem",
        ],
        &[("KEYCARD_JWT_SECRET", SECRET)],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("problem: reading the TLS certificate /nonexistent/cert.pem"), "{stderr}");
}

#[test]
fn stored_signing_keys_are_checked_against_the_encryption_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("k.db").display());
    let (out, _, stderr) = keycard(
        dir.path(),
        &["keys", "rotate", "--jwt-algorithm", "ES256", "--database-url", &db],
        &[("KEYCARD_KEY_ENCRYPTION_KEY", KEK)],
    );
    assert!(out.status.success(), "{stderr}");
    let check = ["config", "check", "--bind", "127.0.0.1:0", "--jwt-algorithm", "ES256", "--database-url", &db];
    let secret = [("KEYCARD_JWT_SECRET", SECRET)];

    let (out, stdout, stderr) = keycard(dir.path(), &check, &[secret[0], ("KEYCARD_KEY_ENCRYPTION_KEY", KEK)]);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("the stored signing keys open; an active ES256 key exists"), "{stdout}");

    let (out, _, stderr) = keycard(dir.path(), &check, &secret);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("is encrypted, but KEYCARD_KEY_ENCRYPTION_KEY is not set"), "{stderr}");

    let (out, stdout, stderr) = keycard(
        dir.path(),
        &["config", "check", "--bind", "127.0.0.1:0", "--jwt-algorithm", "EdDSA", "--database-url", &db],
        &[secret[0], ("KEYCARD_KEY_ENCRYPTION_KEY", KEK)],
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("no active EdDSA key stored yet: the first start generates one"), "{stdout}");
}

#[test]
fn flags_that_do_not_parse_are_refused_by_the_argument_parser() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _, stderr) = keycard(dir.path(), &["config", "check", "--access-ttl", "forever"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("--access-ttl"), "{stderr}");
}

#[test]
fn completions_and_the_man_page_are_printed() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let (out, stdout, stderr) = keycard(dir.path(), &["completions", shell], &[]);
        assert!(out.status.success(), "{shell}: {stderr}");
        assert!(stdout.contains("keycard") && stdout.contains("import"), "{shell}: {stdout}");
    }
    let (out, _, _) = keycard(dir.path(), &["completions", "tcsh"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let (out, stdout, stderr) = keycard(dir.path(), &["man"], &[]);
    assert!(out.status.success(), "{stderr}");
    let head = &stdout[..stdout.len().min(400)];
    assert!(stdout.contains(".TH keycard 1") && stdout.contains("JWT auth server"), "{head}");
    assert!(stdout.contains("config") && stdout.contains("completions"), "{head}");
}

#[tokio::test]
async fn a_reachable_postgres_passes_and_its_pending_migrations_are_noted() {
    let Some(schema) = keycard_store::testing::PgSchema::create().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let check = ["config", "check", "--bind", "127.0.0.1:0", "--database-url", &schema.url];
    let (out, stdout, stderr) = keycard(dir.path(), &check, &[("KEYCARD_JWT_SECRET", SECRET)]);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("migration(s) pending, applied when keycard serve starts"), "{stdout}");
    keycard_store::Store::connect(&schema.url).await.unwrap().close().await;
    let (out, stdout, _) = keycard(dir.path(), &check, &[("KEYCARD_JWT_SECRET", SECRET)]);
    assert!(out.status.success() && stdout.contains("migrations applied"), "{stdout}");
}
