//! Claim-based guards: groups, roles and scopes wherever the issuer puts them.
//!
//! Providers disagree on where authorisation lives: `groups` (Keycloak with a group mapper,
//! Okta), `roles` (Entra), `realm_access.roles` (Keycloak), a namespaced
//! `https://example.com/roles` (Auth0), `scope` as one space-separated string (OAuth 2). These
//! helpers read any of them from the application claims of a verified token.

use serde_json::{Map, Value};

/// The application claims of a token from a foreign issuer: every claim keycard-token does not
/// handle itself (`sub`, `iat`, `exp`, `iss`, `aud`, ... are in [`Claims`](keycard_token::Claims)),
/// as JSON. Use it as `Jwt<OidcClaims>`, or define your own serde type for the claims you know.
pub type OidcClaims = Map<String, Value>;

/// The claim at `path`: the member named exactly `path` if there is one (so `https://example.com/roles`
/// works), otherwise the dotted path through nested objects (`realm_access.roles`).
///
/// ```
/// use keycard_jwks::claim;
/// use serde_json::json;
///
/// let claims = json!({
///     "realm_access": {"roles": ["admin"]},
///     "https://example.com/tenant": "acme",
/// });
/// let claims = claims.as_object().unwrap();
/// assert_eq!(claim(claims, "realm_access.roles"), Some(&json!(["admin"])));
/// assert_eq!(claim(claims, "https://example.com/tenant"), Some(&json!("acme")));
/// assert_eq!(claim(claims, "realm_access.missing"), None);
/// ```
pub fn claim<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(value) = claims.get(path) {
        return Some(value);
    }
    let (first, rest) = path.split_once('.')?;
    let mut value = claims.get(first)?;
    for segment in rest.split('.') {
        value = value.as_object()?.get(segment)?;
    }
    Some(value)
}

/// Whether the claim at `path` (see [`claim`]) contains `wanted`: a string claim equal to it or
/// having it as one of its space-separated words (an OAuth `scope`), or an array claim with a
/// string element equal to it. Comparison is exact (case-sensitive, no prefix or substring
/// match); a missing claim, or one of any other type, contains nothing.
///
/// ```
/// use keycard_jwks::claim_contains;
/// use serde_json::json;
///
/// let claims = json!({
///     "groups": ["api-access", "staff"],
///     "scope": "openid email profile",
///     "role": "admin",
///     "realm_access": {"roles": ["offline_access", "editor"]},
/// });
/// let claims = claims.as_object().unwrap();
/// assert!(claim_contains(claims, "groups", "api-access"));
/// assert!(!claim_contains(claims, "groups", "api"));           // no substring match
/// assert!(claim_contains(claims, "scope", "email"));
/// assert!(claim_contains(claims, "role", "admin"));
/// assert!(claim_contains(claims, "realm_access.roles", "editor"));
/// assert!(!claim_contains(claims, "missing", "api-access"));
/// ```
pub fn claim_contains(claims: &Map<String, Value>, path: &str, wanted: &str) -> bool {
    match claim(claims, path) {
        Some(Value::String(s)) => s == wanted || s.split_ascii_whitespace().any(|word| word == wanted),
        Some(Value::Array(items)) => items.iter().any(|item| item.as_str() == Some(wanted)),
        _ => false,
    }
}

/// Whether the claim at `path` contains every one of `wanted` (see [`claim_contains`]).
///
/// ```
/// use keycard_jwks::claim_contains_all;
/// let claims = serde_json::json!({"groups": ["a", "b"]});
/// let claims = claims.as_object().unwrap();
/// assert!(claim_contains_all(claims, "groups", ["a", "b"]));
/// assert!(!claim_contains_all(claims, "groups", ["a", "c"]));
/// ```
pub fn claim_contains_all<'w>(
    claims: &Map<String, Value>,
    path: &str,
    wanted: impl IntoIterator<Item = &'w str>,
) -> bool {
    wanted.into_iter().all(|w| claim_contains(claims, path, w))
}

/// Whether the claim at `path` contains at least one of `wanted` (see [`claim_contains`]).
///
/// ```
/// use keycard_jwks::claim_contains_any;
/// let claims = serde_json::json!({"roles": ["editor"]});
/// let claims = claims.as_object().unwrap();
/// assert!(claim_contains_any(claims, "roles", ["admin", "editor"]));
/// assert!(!claim_contains_any(claims, "roles", ["admin"]));
/// ```
pub fn claim_contains_any<'w>(
    claims: &Map<String, Value>,
    path: &str,
    wanted: impl IntoIterator<Item = &'w str>,
) -> bool {
    wanted.into_iter().any(|w| claim_contains(claims, path, w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_of_other_types_contain_nothing() {
        let claims = json!({
            "number": 1, "bool": true, "null": null, "object": {"api-access": true},
            "numbers": [1, 2], "nested": [["api-access"]], "empty": "",
        });
        let claims = claims.as_object().unwrap();
        for path in ["number", "bool", "null", "object", "numbers", "nested", "empty", "", ".", "object."] {
            assert!(!claim_contains(claims, path, "api-access"), "{path}");
        }
        assert!(!claim_contains(claims, "empty", " "));
    }

    #[test]
    fn an_exact_member_wins_over_a_dotted_path() {
        let claims = json!({"a.b": ["flat"], "a": {"b": ["nested"]}});
        let claims = claims.as_object().unwrap();
        assert!(claim_contains(claims, "a.b", "flat"));
        assert!(!claim_contains(claims, "a.b", "nested"));
    }

    #[test]
    fn comparison_is_case_sensitive_and_whole_word() {
        let claims = json!({"groups": ["API-access"], "scope": "read:all write"});
        let claims = claims.as_object().unwrap();
        assert!(!claim_contains(claims, "groups", "api-access"));
        assert!(!claim_contains(claims, "scope", "read"));
        assert!(claim_contains(claims, "scope", "read:all"));
    }
}
