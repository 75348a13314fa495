//! # keycard-store: accounts, sessions and revocations
//!
//! - [`domain`]: the validated types a request must be turned into before it reaches storage
//!   ([`Username`], [`Password`], [`Email`], [`Role`]): parse, don't validate.
//! - [`Store`]: the sqlx storage on SQLite (WAL mode, embedded migrations). Every multi-row change
//!   runs in a transaction; refresh-token rotation is a single conditional `UPDATE`, so two
//!   concurrent refreshes with the same token cannot both win.

pub mod audit;
pub mod domain;
mod error;
mod sqlite;
pub mod throttle;

pub use audit::{AuditEvent, AuditFilter, AuditKind, AuditRecord};
pub use domain::{Email, Password, Role, UserStatus, Username, ValidationError};
pub use error::StoreError;
pub use sqlite::{Credentials, NewSession, NewUser, Revoked, Rotation, SessionInfo, Store, User};
pub use throttle::{FailureState, ThrottlePolicy};
