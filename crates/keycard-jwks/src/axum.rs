//! The glue to keycard-axum: a [`JwtConfig`] whose extractors verify with the issuer's keys and
//! ask the verifier to refetch on an unknown `kid`.

use std::sync::Arc;

use keycard_axum::{ClaimSet, ConfigError, JwtConfig, JwtConfigBuilder};

use crate::JwksVerifier;

impl JwksVerifier {
    /// A [`JwtConfig`] builder verifying with this verifier's keys, and with the verifier as its
    /// key source (an unknown `kid` triggers one throttled refetch, then one retry). Set the
    /// token locations, hooks and error handler on it as for any configuration.
    ///
    /// It is the same as:
    ///
    /// ```
    /// # async fn f(verifier: keycard_jwks::JwksVerifier) {
    /// use std::sync::Arc;
    /// use keycard_axum::JwtConfig;
    /// let builder = JwtConfig::<keycard_jwks::OidcClaims>::builder(verifier.tokens())
    ///     .key_source(Arc::new(verifier.clone()));
    /// # }
    /// ```
    pub fn jwt_config_builder<C: ClaimSet>(&self) -> JwtConfigBuilder<C> {
        JwtConfig::builder(self.tokens()).key_source(Arc::new(self.clone()))
    }

    /// [`JwksVerifier::jwt_config_builder`] with every default: `Authorization: Bearer` headers,
    /// `{"msg": ...}` errors.
    ///
    /// ```no_run
    /// use axum::{Json, Router, routing::get};
    /// use keycard_axum::Jwt;
    /// use keycard_jwks::{JwksVerifier, OidcClaims};
    ///
    /// async fn me(jwt: Jwt<OidcClaims>) -> Json<serde_json::Value> {
    ///     Json(serde_json::json!({ "user": jwt.sub }))
    /// }
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let verifier = JwksVerifier::builder().issuer("https://idp.example.com").audience("my-api").build().await?;
    /// let app: Router = Router::new().route("/me", get(me)).layer(verifier.jwt_config::<OidcClaims>()?.layer());
    /// # Ok(()) }
    /// ```
    pub fn jwt_config<C: ClaimSet>(&self) -> Result<JwtConfig<C>, ConfigError> {
        self.jwt_config_builder().build()
    }
}
