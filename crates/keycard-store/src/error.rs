//! Storage errors.

/// What went wrong in storage.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness constraint refused the change (for example, the username is taken).
    #[error("already exists")]
    Conflict,
    /// The row the change refers to does not exist.
    #[error("not found")]
    NotFound,
    /// The database is unreachable, refusing connections, shutting down, or did not answer in
    /// time: worth retrying later (the server answers 503).
    #[error("database unavailable")]
    Unavailable,
    /// The database failed.
    #[error("database error")]
    Database(#[source] sqlx::Error),
    /// Migrations could not be applied.
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database URL names no supported backend.
    #[error("unsupported database URL: use sqlite://path or postgres://user@host/database")]
    UnsupportedUrl,
    /// The account already holds [`crate::Roles::MAX`] roles: a grant would exceed the bound.
    #[error("{}", crate::TOO_MANY_ROLES)]
    TooManyRoles,
    /// The change would leave no active account with the `admin` role (removing the role from,
    /// or disabling, the last active admin).
    #[error("the last active admin cannot lose the admin role or be disabled")]
    LastAdmin,
    /// A stored value is not what this version of keycard writes.
    #[error("corrupt row: {0}")]
    Corrupt(&'static str),
}

impl StoreError {
    /// Whether retrying later may succeed (the database is away, not wrong).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable)
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
            sqlx::Error::Database(db) if db.code().is_some_and(|code| is_unavailable_code(&code)) => {
                tracing::debug!(error = %e, "database unavailable");
                StoreError::Unavailable
            }
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => {
                tracing::debug!(error = %e, "database unavailable");
                StoreError::Unavailable
            }
            _ => StoreError::Database(e),
        }
    }
}

/// SQLSTATEs (PostgreSQL) and result codes (SQLite) that mean "not now" rather than "wrong":
/// connection exceptions (class 08), too many connections, the server shutting down or starting,
/// and SQLite's busy/locked after the busy timeout.
fn is_unavailable_code(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "53300" | "57P01" | "57P02" | "57P03" | "5" | "6" | "517" | "261")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_failures_are_unavailable_not_internal() {
        assert!(StoreError::from(sqlx::Error::PoolTimedOut).is_unavailable());
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(StoreError::from(sqlx::Error::Io(io)).is_unavailable());
        assert!(is_unavailable_code("08006") && is_unavailable_code("57P01") && is_unavailable_code("5"));
        assert!(!is_unavailable_code("23505") && !is_unavailable_code("42P01"));
        assert!(matches!(StoreError::from(sqlx::Error::RowNotFound), StoreError::NotFound));
    }
}
