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
/// ```ignore
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
