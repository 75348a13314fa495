//! Test support (feature `test-support`): a fresh, private PostgreSQL schema per test.
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
