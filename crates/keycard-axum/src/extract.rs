//! The extractors.

use std::marker::PhantomData;

use axum::extract::{FromRef, FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use keycard_token::{Claims, TokenType};

use crate::{AuthError, JwtAuth};

/// A valid, unrevoked access token: add it as a handler argument to protect the route.
#[derive(Debug, Clone)]
pub struct AccessToken(pub Claims);

/// A valid, unrevoked access token issued by a password login (`fresh: true`), for sensitive
/// operations such as changing a password.
#[derive(Debug, Clone)]
pub struct FreshAccessToken(pub Claims);

/// A valid, unrevoked refresh token: for the refresh endpoint only.
#[derive(Debug, Clone)]
pub struct RefreshToken(pub Claims);

/// A role an access token must carry, named at compile time.
pub trait Role: Send + Sync + 'static {
    /// The role name in the `roles` claim.
    const NAME: &'static str;
    /// The 403 message when the role is missing.
    const FORBIDDEN: &'static str = "Insufficient permissions";
}

/// A valid, unrevoked access token carrying role `R`; 403 when it does not.
pub struct RequireRole<R: Role>(pub Claims, pub PhantomData<R>);

impl<R: Role> std::fmt::Debug for RequireRole<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RequireRole").field(&R::NAME).field(&self.0).finish()
    }
}

impl<S> FromRequestParts<S> for AccessToken
where
    JwtAuth: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        JwtAuth::from_ref(state).authenticate(&parts.headers, TokenType::Access).map(Self)
    }
}

impl<S> OptionalFromRequestParts<S> for AccessToken
where
    JwtAuth: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Option<Self>, Self::Rejection> {
        match JwtAuth::from_ref(state).authenticate(&parts.headers, TokenType::Access) {
            Ok(claims) => Ok(Some(Self(claims))),
            Err(AuthError::MissingHeader) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl<S> FromRequestParts<S> for FreshAccessToken
where
    JwtAuth: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let claims = JwtAuth::from_ref(state).authenticate(&parts.headers, TokenType::Access)?;
        if !claims.fresh {
            return Err(AuthError::FreshTokenRequired);
        }
        Ok(Self(claims))
    }
}

impl<S> FromRequestParts<S> for RefreshToken
where
    JwtAuth: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        JwtAuth::from_ref(state).authenticate(&parts.headers, TokenType::Refresh).map(Self)
    }
}

impl<S, R> FromRequestParts<S> for RequireRole<R>
where
    JwtAuth: FromRef<S>,
    S: Send + Sync,
    R: Role,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let claims = JwtAuth::from_ref(state).authenticate(&parts.headers, TokenType::Access)?;
        if !claims.has_role(R::NAME) {
            return Err(AuthError::Forbidden(R::FORBIDDEN));
        }
        Ok(Self(claims, PhantomData))
    }
}
