//! How the server uses keycard-axum, exactly as an outside user would: its own claims beside
//! the registered ones, a revocation hook over the in-memory list, the admin guard, and the
//! extractors' configuration: bearer headers, and in cookie mode the library's cookies with
//! double-submit CSRF ([`Transport`]: `KEYCARD_TOKEN_LOCATIONS`, `KEYCARD_COOKIE_SECURE`,
//! `KEYCARD_COOKIE_SAMESITE`).

use std::sync::Arc;

use keycard_axum::{AuthError, BoxError, ConfigError, Guard, Jwt, JwtConfig, Revocation};
use keycard_token::{Claims, Decoded, RevocationList, Tokens, Uuid};
use serde::{Deserialize, Serialize};

use crate::settings::Transport;

/// What the server adds to Flask-JWT-Extended's claims: the subject's roles when the token was
/// issued and the session id shared by the tokens of one login and all its refreshes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Roles of the subject at issue time (never an empty name).
    #[serde(deserialize_with = "role_names")]
    pub roles: Vec<String>,
    /// The session (one login and its refreshes).
    pub sid: Uuid,
}

impl Session {
    /// Whether the token carries `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

fn role_names<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let roles = Vec::<String>::deserialize(d)?;
    if roles.iter().any(String::is_empty) {
        return Err(serde::de::Error::custom("an empty role name"));
    }
    Ok(roles)
}

/// A token is revoked by its own `jti` or by its session: both live in one in-memory list,
/// fed from the database at start and by every instance's revocations.
pub struct SessionRevocation(pub Arc<RevocationList>);

impl Revocation<Session> for SessionRevocation {
    async fn is_revoked(&self, token: &Decoded<Session>) -> Result<bool, BoxError> {
        // keycard's tokens always carry a UUID `jti`; one without is never accepted.
        Ok(jti(&token.claims).is_none_or(|jti| self.0.any_revoked([&jti, &token.claims.sid])))
    }
}

/// The `jti` of one of keycard's own tokens (always a UUID).
pub fn jti<C>(claims: &Claims<C>) -> Option<Uuid> {
    claims.jti_uuid()
}

/// Access tokens carrying the `admin` role; 403 "Admins only" otherwise.
pub struct Admin;

impl Guard for Admin {
    type Claims = Session;

    fn check(jwt: &Jwt<Session>) -> Result<(), AuthError> {
        if jwt.has_role(keycard_store::ADMIN_ROLE) { Ok(()) } else { Err(AuthError::Forbidden("Admins only".into())) }
    }
}

/// The server's configuration of the extractors: the configured token locations (bearer
/// headers by default; cookies with double-submit CSRF in cookie mode), the revocation hook.
/// Cookie mode needs tokens with a `csrf` claim (`TokenSettings::csrf_claim`).
pub fn config(
    tokens: Arc<Tokens>,
    revoked: Arc<RevocationList>,
    transport: &Transport,
) -> Result<JwtConfig<Session>, ConfigError> {
    JwtConfig::builder(tokens)
        .locations(transport.locations.as_slice().iter().copied())
        .cookies(transport.cookie_settings())
        .revocation(SessionRevocation(revoked))
        .build()
}
