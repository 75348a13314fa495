//! [`Tx`]: the one way every multi-statement write runs, on both backends.
//!
//! sqlx's own `Transaction` keeps a count of the transactions it believes open, and trusts it
//! when the connection goes back to the pool. On SQLite a `COMMIT` that fails with `SQLITE_FULL`
//! (the disk is full) leaves that count at one while SQLite has rolled back or kept the
//! transaction, and the rollback sqlx queues on drop can fail or (at a nested depth) only roll
//! back to a savepoint. The connection then went back to the pool inside a transaction nobody
//! would ever commit: every later write on it was acknowledged, held in memory and lost at the
//! next restart (issue 11).
//!
//! A [`Tx`] is plain `BEGIN` / `COMMIT` / `ROLLBACK` on a pooled connection, and whenever the
//! connection's state is in doubt it is closed, never returned to the pool (closing a connection
//! rolls back whatever it had open, on SQLite and on PostgreSQL alike):
//! - `BEGIN` did not answer,
//! - `COMMIT` failed (on SQLite the transaction may still be open; on PostgreSQL the answer may
//!   have been lost),
//! - `ROLLBACK` failed,
//! - the future was dropped mid-transaction (`Store`'s time limit, a client gone).

use sqlx::pool::PoolConnection;
use sqlx::{Database, Executor, Pool};

use crate::StoreError;

/// A transaction on a connection of its own. Run the statements on [`Tx::conn`], then hand the
/// outcome to [`Tx::finish`], which commits an `Ok` and rolls back an `Err`:
///
/// ```text
/// let mut tx = Tx::begin(&pool, "BEGIN IMMEDIATE").await?;
/// let result = async {
///     sqlx::query("...").execute(tx.conn()).await?;
///     Ok(())
/// }
/// .await;
/// tx.finish(result).await
/// ```
///
/// Dropped before [`Tx::finish`] completes, it closes its connection.
pub(crate) struct Tx<DB: Database> {
    conn: PoolConnection<DB>,
    /// Whether the connection may be inside a transaction: then it must not be reused.
    open: bool,
}

impl<DB: Database> Tx<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    /// Takes a connection from `pool` and starts a transaction on it with `begin` (`BEGIN`, or
    /// `BEGIN IMMEDIATE` on SQLite to take the write lock at once).
    pub(crate) async fn begin(pool: &Pool<DB>, begin: &'static str) -> Result<Self, StoreError> {
        let conn = pool.acquire().await?;
        let mut tx = Tx { conn, open: true };
        if let Err(e) = sqlx::raw_sql(begin).execute(&mut *tx.conn).await {
            // Nothing was started if BEGIN answered an error: the connection is still good.
            tx.open = false;
            return Err(e.into());
        }
        Ok(tx)
    }

    /// The connection, to run the transaction's statements on.
    pub(crate) fn conn(&mut self) -> &mut DB::Connection {
        &mut self.conn
    }

    /// Commits if `result` is `Ok` (returning it), rolls back if it is an `Err` (returning the
    /// error). A failed `COMMIT` is an error: nothing of the transaction may be taken as stored.
    pub(crate) async fn finish<T>(mut self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        match result {
            Ok(value) => match sqlx::raw_sql("COMMIT").execute(&mut *self.conn).await {
                Ok(_) => {
                    self.open = false;
                    Ok(value)
                }
                Err(e) => {
                    let e = StoreError::from(e);
                    tracing::warn!(error = ?e, "COMMIT failed: closing the connection");
                    Err(e)
                }
            },
            Err(error) => {
                match sqlx::raw_sql("ROLLBACK").execute(&mut *self.conn).await {
                    Ok(_) => self.open = false,
                    Err(e) => tracing::warn!(error = %e, "ROLLBACK failed: closing the connection"),
                }
                Err(error)
            }
        }
    }
}

impl<DB: Database> Drop for Tx<DB> {
    fn drop(&mut self) {
        if self.open {
            tracing::debug!("transaction not finished: closing its connection");
            self.conn.close_on_drop();
        }
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Connection;
    use sqlx::postgres::PgPoolOptions;
    use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqlitePool, SqlitePoolOptions};

    use super::Tx;
    use crate::StoreError;

    /// One pooled SQLite connection (so a reused one would be the same) and `parent`/`child`
    /// tables whose foreign key is checked at `COMMIT`.
    async fn sqlite_pool(dir: &tempfile::TempDir) -> (SqlitePool, String) {
        let url = format!("sqlite://{}", dir.path().join("tx.db").display());
        let options = url.parse::<SqliteConnectOptions>().unwrap().create_if_missing(true).foreign_keys(true);
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await.unwrap();
        sqlx::raw_sql(
            "CREATE TABLE parent (id INTEGER PRIMARY KEY);
             CREATE TABLE child (parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);",
        )
        .execute(&pool)
        .await
        .unwrap();
        (pool, url)
    }

    async fn parents_committed(url: &str) -> Vec<i64> {
        let mut other = SqliteConnection::connect(url).await.unwrap();
        sqlx::query_scalar("SELECT id FROM parent ORDER BY id").fetch_all(&mut other).await.unwrap()
    }

    /// SQLite keeps the transaction open when `COMMIT` fails on a deferred foreign key (as it
    /// may after `SQLITE_FULL`): its connection must not serve the next write.
    #[tokio::test]
    async fn sqlite_a_connection_whose_commit_failed_is_closed_and_the_next_write_commits() {
        let dir = tempfile::tempdir().unwrap();
        let (pool, url) = sqlite_pool(&dir).await;
        let mut tx = Tx::begin(&pool, "BEGIN IMMEDIATE").await.unwrap();
        let result = async {
            sqlx::query("INSERT INTO child (parent) VALUES (42)").execute(tx.conn()).await?;
            Ok(())
        }
        .await;
        assert!(tx.finish(result).await.is_err(), "the COMMIT should have failed");
        sqlx::query("INSERT INTO parent (id) VALUES (1)").execute(&pool).await.unwrap();
        assert_eq!(parents_committed(&url).await, vec![1], "the write after a failed COMMIT was not committed");
        pool.close().await;
    }

    /// A transaction dropped half-way (a time limit) takes its connection with it.
    #[tokio::test]
    async fn sqlite_an_abandoned_transaction_is_rolled_back_with_its_connection() {
        let dir = tempfile::tempdir().unwrap();
        let (pool, url) = sqlite_pool(&dir).await;
        let mut tx = Tx::begin(&pool, "BEGIN IMMEDIATE").await.unwrap();
        sqlx::query("INSERT INTO parent (id) VALUES (7)").execute(tx.conn()).await.unwrap();
        drop(tx);
        sqlx::query("INSERT INTO parent (id) VALUES (1)").execute(&pool).await.unwrap();
        assert_eq!(parents_committed(&url).await, vec![1]);
        pool.close().await;
    }

    /// PostgreSQL: a `COMMIT` refused (here by a deferred unique constraint) closes the
    /// connection too; the pool hands out another backend.
    #[tokio::test]
    async fn postgres_a_connection_whose_commit_failed_is_closed() {
        let Some(schema) = crate::testing::PgSchema::create().await else { return };
        let pool = PgPoolOptions::new().max_connections(1).connect(&schema.url).await.unwrap();
        sqlx::raw_sql("CREATE TABLE u (x INT UNIQUE DEFERRABLE INITIALLY DEFERRED)").execute(&pool).await.unwrap();
        let mut tx = Tx::begin(&pool, "BEGIN").await.unwrap();
        let backend: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(tx.conn()).await.unwrap();
        let result = async {
            sqlx::query("INSERT INTO u (x) VALUES (1), (1)").execute(tx.conn()).await?;
            Ok(())
        }
        .await;
        assert!(matches!(tx.finish(result).await, Err(StoreError::Conflict)));
        let next: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&pool).await.unwrap();
        assert_ne!(next, backend, "the connection whose COMMIT failed went back to the pool");
        pool.close().await;
    }
}
