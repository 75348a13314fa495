//! # keycard-store: accounts, sessions and revocations
//!
//! - [`domain`]: the validated types a request must be turned into before it reaches storage
//!   ([`Username`], [`Password`], [`Email`], [`Role`]): parse, don't validate.
//! - [`Store`]: the sqlx storage, on an embedded SQLite file (WAL mode) or on PostgreSQL shared by
//!   several instances, chosen by the URL, each with its own embedded migrations. Every multi-row
//!   change runs in a transaction (one helper for both backends: a connection whose `COMMIT` or
//!   `ROLLBACK` failed, or whose transaction was abandoned, is closed, never reused); refresh-token
//!   rotation is a single conditional `UPDATE`, so two concurrent refreshes with the same token
//!   cannot both win, on one instance or several. A database that refuses writes (a full disk)
//!   answers [`StoreError::WritesRefused`], and [`Store::check_writes`] reports it until a write
//!   succeeds again.

pub mod audit;
pub mod domain;
mod error;
mod model;
pub mod postgres;
pub mod sqlite;
pub mod ssf;
mod store;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
pub mod throttle;
mod tx;

pub use audit::{AuditEvent, AuditFilter, AuditKind, AuditRecord};
pub use domain::{ADMIN_ROLE, Email, Password, Role, Roles, TOO_MANY_ROLES, UserStatus, Username, ValidationError};
pub use error::StoreError;
pub use model::{
    Credentials, DatabaseStatus, KeyState, NewSession, NewSigningKey, NewUser, Revoked, Rotation, SessionInfo,
    SigningKeysVersion, StoredSigningKey, User,
};
pub use ssf::{NewStream, Pending, SessionEvent, Stream, StreamStatus, VerificationEvent};
pub use store::{Backend, PoolStats, Store, StoreOptions, redact_url};
pub use throttle::{FailureState, ThrottlePolicy};

#[cfg(test)]
mod tests;
