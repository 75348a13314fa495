//! The claims of a keycard token.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Whether a token grants access to resources or only the right to get a new pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    /// Short-lived token presented to protected routes.
    Access,
    /// Long-lived token presented only to the refresh endpoint; rotated on every use.
    Refresh,
}

impl TokenType {
    /// The value of the `type` claim.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::Access => "access",
            TokenType::Refresh => "refresh",
        }
    }
}

/// The claims keycard puts in (and demands from) every token.
///
/// Deserialisation is strict on purpose: unknown claims and duplicate keys are refused (RFC 7519
/// §4 lets a parser reject duplicates; keycard does, so two parsers can never disagree on a
/// token's meaning), times must be JSON integers, and `jti`/`sid` must be UUIDs, so a re-encoded
/// id is still the same id for revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// Subject: the username.
    pub sub: String,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Not valid before, seconds since the epoch.
    pub nbf: i64,
    /// Expires at, seconds since the epoch. Required.
    pub exp: i64,
    /// Unique token id: the key for revoking this one token.
    pub jti: Uuid,
    /// Access or refresh.
    #[serde(rename = "type")]
    pub token_type: TokenType,
    /// `true` only on tokens issued by a password login, never on refreshed ones.
    pub fresh: bool,
    /// Roles of the subject when the token was issued.
    pub roles: Vec<String>,
    /// Session id shared by the access and refresh tokens of one login and all its refreshes.
    pub sid: Uuid,
}

impl Claims {
    /// Whether the token carries `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}
