//! Test support (feature `test-support`): a fresh, private PostgreSQL schema per test, and a tiny
//! filesystem to fill up.
//!
//! The server comes from `KEYCARD_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). When it cannot be reached, a test fails if `CI` or
//! `KEYCARD_TEST_REQUIRE_POSTGRES` is set, and otherwise is skipped with a printed reason.

use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// Where the test PostgreSQL server is.
pub const POSTGRES_URL_ENV: &str = "KEYCARD_TEST_POSTGRES_URL";
/// The default test server: the CI machine's.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A schema of its own on the test server, dropped (with everything in it) when this is dropped.
#[derive(Debug)]
pub struct PgSchema {
    base_url: String,
    schema: String,
    /// A URL whose connections use only this schema (`options[search_path]=...`).
    pub url: String,
}

/// The test server's URL.
pub fn postgres_url() -> String {
    std::env::var(POSTGRES_URL_ENV).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

/// Whether a missing backend must fail the test instead of skipping it.
pub fn backends_required() -> bool {
    ["CI", "KEYCARD_TEST_REQUIRE_POSTGRES"].iter().any(|var| std::env::var_os(var).is_some_and(|v| !v.is_empty()))
}

impl PgSchema {
    /// Creates a fresh schema; `None` (after printing why) if the server is unreachable and
    /// backends are not required. Panics if they are.
    pub async fn create() -> Option<PgSchema> {
        let base_url = postgres_url();
        let mut conn = match PgConnection::connect(&base_url).await {
            Ok(conn) => conn,
            Err(e) if !backends_required() => {
                eprintln!("skipped: PostgreSQL at {} is unreachable ({e}); set CI=1 to fail instead", base_url);
                return None;
            }
            Err(e) => panic!("PostgreSQL at {base_url} is unreachable ({e}) and CI requires it"),
        };
        let schema = format!("kc_test_{}", uuid::Uuid::new_v4().simple());
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("creating schema {schema}: {e}"));
        let _ = conn.close().await;
        let separator = if base_url.contains('?') { '&' } else { '?' };
        let url = format!("{base_url}{separator}options[search_path]={schema}");
        Some(PgSchema { base_url, schema, url })
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (base_url, schema) = (self.base_url.clone(), self.schema.clone());
        // Drop runs inside the test's runtime: do the async work on a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&base_url).await.ok()?;
                let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.ok()?;
                conn.close().await.ok()
            })
        });
        let _ = dropped.join();
    }
}

/// A tiny filesystem of its own (a tmpfs mounted on a fresh temporary directory, unmounted when
/// this is dropped), for tests of what happens when the disk is full.
#[derive(Debug)]
pub struct TinyDisk {
    dir: tempfile::TempDir,
}

impl TinyDisk {
    /// Mounts a tmpfs of `bytes`; `None` (after printing why) when that is impossible here (not
    /// root, no `mount`) and backends are not required. Panics if they are.
    pub fn mount(bytes: u64) -> Option<TinyDisk> {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("creating a mount point: {e}"));
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match mounted {
            Ok(out) if out.status.success() => Some(TinyDisk { dir }),
            failed => {
                let why = match failed {
                    Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                    Err(e) => e.to_string(),
                };
                if backends_required() {
                    panic!("cannot mount a {bytes}-byte tmpfs ({why}) and CI requires it (run as root)");
                }
                eprintln!("skipped: cannot mount a {bytes}-byte tmpfs ({why}); run as root, or set CI=1 to fail");
                None
            }
        }
    }

    /// The mount point.
    pub fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Fills every free byte with a file of its own (`filler`): from now on, writes that need
    /// space fail with `ENOSPC`.
    pub fn fill(&self) {
        use std::io::Write;
        let mut file = std::fs::File::create(self.filler()).unwrap_or_else(|e| panic!("creating the filler: {e}"));
        let block = vec![0u8; 4096];
        // Whole blocks, then single bytes into the last partial block.
        while file.write_all(&block).is_ok() {}
        while file.write_all(&[0]).is_ok() {}
        let _ = file.sync_all();
    }

    /// Deletes the filler: space is back.
    pub fn free(&self) {
        let _ = std::fs::remove_file(self.filler());
    }

    fn filler(&self) -> std::path::PathBuf {
        self.dir.path().join("filler")
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}
