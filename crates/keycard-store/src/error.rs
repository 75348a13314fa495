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
    /// The database answers but refuses to store anything: its disk is full, read-only or
    /// failing (SQLite `SQLITE_FULL`, `SQLITE_IOERR`, `SQLITE_READONLY`, `SQLITE_CANTOPEN`;
    /// PostgreSQL class 53 but too many connections, `58030` I/O error, `25006` read-only). The
    /// change was not stored; worth retrying once the operator has made room (the server answers
    /// 503 and `/readyz` reports it).
    #[error("the database refuses writes: {0}")]
    WritesRefused(&'static str),
    /// No connection to the database could be made within the time limit (nothing listens, the
    /// host is unreachable): the last attempt's error, if one failed rather than hung.
    #[error("cannot reach the database within {}s: is it running, and is the URL right?", waited.as_secs_f32())]
    Unreachable {
        /// How long connecting was tried.
        waited: std::time::Duration,
        /// Why the last attempt failed.
        #[source]
        source: Option<sqlx::Error>,
    },
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
    /// Whether retrying later may succeed (the database is away or out of space, not wrong).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable | StoreError::WritesRefused(_) | StoreError::Unreachable { .. })
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
            sqlx::Error::Database(db) if refusal_of(db.as_ref()).is_some() => {
                tracing::debug!(error = %e, "database refuses writes");
                StoreError::WritesRefused(refusal_of(db.as_ref()).unwrap_or("refused"))
            }
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

/// Whether `e` means "not now" (nothing listens, the server is starting or shutting down) rather
/// than "wrong" (a bad password, no such database).
pub(crate) fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| is_unavailable_code(&code)),
        _ => false,
    }
}

/// SQLSTATEs (PostgreSQL) and result codes (SQLite) that mean "not now" rather than "wrong":
/// connection exceptions (class 08), too many connections, the server shutting down or starting,
/// and SQLite's busy/locked after the busy timeout.
fn is_unavailable_code(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "53300" | "57P01" | "57P02" | "57P03" | "5" | "6" | "517" | "261")
}

/// Why the database refuses writes, if `db` says it does.
fn refusal_of(db: &dyn sqlx::error::DatabaseError) -> Option<&'static str> {
    let sqlite = db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some();
    write_refusal(&db.code()?, sqlite)
}

/// Why the database refuses writes, if the error `code` says it does: SQLite result codes
/// (`sqlite`, matched on the primary code, the low byte of the extended one) or PostgreSQL
/// SQLSTATEs.
fn write_refusal(code: &str, sqlite: bool) -> Option<&'static str> {
    if sqlite {
        return match code.parse::<i32>().ok()? & 0xff {
            13 => Some("disk full"),
            10 => Some("I/O error"),
            8 => Some("read-only database"),
            14 => Some("cannot open the database files"),
            _ => None,
        };
    }
    match code {
        "53100" => Some("disk full"),
        "53200" => Some("out of memory"),
        "53400" => Some("configuration limit exceeded"),
        "58030" => Some("I/O error"),
        "25006" => Some("read-only database"),
        _ => None,
    }
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

    #[test]
    fn a_full_read_only_or_failing_disk_refuses_writes() {
        // SQLite: SQLITE_FULL, SQLITE_IOERR_WRITE, SQLITE_READONLY_DBMOVED, SQLITE_CANTOPEN.
        for code in ["13", "778", "1032", "14"] {
            assert!(write_refusal(code, true).is_some(), "{code}");
        }
        // SQLite: SQLITE_CONSTRAINT_UNIQUE, SQLITE_ERROR, SQLITE_BUSY.
        for code in ["2067", "1", "5"] {
            assert_eq!(write_refusal(code, true), None, "{code}");
        }
        assert_eq!(write_refusal("13", true), Some("disk full"));
        assert_eq!(write_refusal("53100", false), Some("disk full"));
        for code in ["53200", "58030", "25006"] {
            assert!(write_refusal(code, false).is_some(), "{code}");
        }
        // Too many connections is an outage, not a refusal; a syntax error neither.
        for code in ["53300", "42601", "13"] {
            assert_eq!(write_refusal(code, false), None, "{code}");
        }
        assert!(StoreError::WritesRefused("disk full").is_unavailable());
    }
}
