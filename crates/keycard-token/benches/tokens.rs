//! Microbenchmarks of the token core: HS256 signing and verification, the asymmetric algorithms
//! with and without the verified-token cache, and the revocation check.
//!
//! Run with `cargo bench -p keycard-token --bench tokens` (pin it with `taskset -c 1` for numbers
//! comparable to `bench/run.sh`). These measure; they assert nothing about time.

// A benchmark that cannot set itself up should stop loudly, as a test would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use divan::{Bencher, black_box};
use keycard_token::{
    Algorithm, Claims, Clock, Keys, RevocationList, SigningKey, SystemClock, TokenSettings, Tokens, Uuid,
};

fn main() {
    divan::main();
}

const SECRET: &[u8] = b"bench-only-secret-0123456789abcdef0123456789abcdef";

fn tokens() -> Tokens {
    Tokens::new(Keys::hmac_sha256(SECRET).unwrap(), TokenSettings::default(), Arc::new(SystemClock))
}

/// The server's own claims: roles and a session id.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Session {
    roles: Vec<String>,
    sid: Uuid,
}

/// A login session with one role, like the one `POST /login` issues for a typical user.
fn session() -> Session {
    Session { roles: vec!["user".into()], sid: Uuid::now_v7() }
}

/// An access token and its claims, as `GET /protected` receives them.
fn access_token(tokens: &Tokens) -> (String, Claims<Session>) {
    let signed = tokens.access("alice").fresh(true).claims(session()).sign().unwrap();
    (signed.token, signed.claims)
}

/// `access` with its signature altered in the first character: still strict base64url, but not
/// the right MAC.
fn with_bad_signature(access: &str) -> String {
    let (signed, signature) = access.rsplit_once('.').unwrap();
    let mut chars: Vec<char> = signature.chars().collect();
    chars[0] = if chars[0] == 'A' { 'B' } else { 'A' };
    format!("{signed}.{}", chars.into_iter().collect::<String>())
}

/// A list holding `n` revoked ids that expire in a day.
fn revocation_list(n: usize) -> RevocationList {
    let list = RevocationList::new();
    let until = SystemClock.now() + 86_400;
    list.extend((0..n).map(|_| (Uuid::new_v4(), until)));
    list
}

mod sign {
    use super::*;

    /// What a login or refresh signs: two claims sets, two HS256 tokens.
    #[divan::bench]
    fn issue_pair(bencher: Bencher) {
        let tokens = tokens();
        let session = session();
        bencher.bench_local(|| {
            let access = tokens.access("alice").fresh(true).claims(black_box(&session).clone()).sign().unwrap();
            let refresh = tokens.refresh("alice").claims(black_box(&session).clone()).sign().unwrap();
            (access, refresh)
        });
    }

    /// `Tokens::encode` of ready claims: one JSON serialisation, base64url and HMAC-SHA256.
    #[divan::bench]
    fn encode(bencher: Bencher) {
        let tokens = tokens();
        let (_, claims) = access_token(&tokens);
        bencher.bench_local(|| tokens.encode(black_box(&claims)).unwrap());
    }
}

mod verify {
    use super::*;

    /// `Tokens::verify` of a valid access token: header check, MAC, payload JSON, claim checks.
    #[divan::bench]
    fn valid(bencher: Bencher) {
        let tokens = tokens();
        let (token, _) = access_token(&tokens);
        bencher.bench_local(|| tokens.verify::<Session>(black_box(&token)).unwrap());
    }

    /// `Tokens::verify` with no application claims (an FJE-format token, `Claims<()>`).
    #[divan::bench]
    fn valid_plain(bencher: Bencher) {
        let tokens = tokens();
        let token = tokens.access("alice").sign().unwrap().token;
        bencher.bench_local(|| tokens.verify::<()>(black_box(&token)).unwrap());
    }

    /// `Tokens::verify` of a token whose MAC is wrong: refused before the payload is parsed.
    #[divan::bench]
    fn bad_signature(bencher: Bencher) {
        let tokens = tokens();
        let (token, _) = access_token(&tokens);
        let forged = with_bad_signature(&token);
        assert!(tokens.verify::<Session>(&forged).is_err());
        bencher.bench_local(|| tokens.verify::<Session>(black_box(&forged)).unwrap_err());
    }
}

/// Asymmetric algorithms: what a service verifying keycard's (or any issuer's) tokens pays.
mod asymmetric {
    use super::*;

    const ALGS: [&str; 4] = ["ES256", "EdDSA", "RS256", "PS256"];

    fn tokens_for(alg: &str, cache: u64) -> Tokens {
        let alg: Algorithm = alg.parse().unwrap();
        Tokens::new(Keys::signing(SigningKey::generate(alg).unwrap()), TokenSettings::default(), Arc::new(SystemClock))
            .cache_verified(cache)
    }

    /// `Tokens::encode`: one signature (the cost of a login or refresh beyond Argon2).
    #[divan::bench(args = ALGS)]
    fn encode(bencher: Bencher, alg: &str) {
        let tokens = tokens_for(alg, 0);
        let (_, claims) = access_token(&tokens);
        bencher.bench_local(|| tokens.encode(black_box(&claims)).unwrap());
    }

    /// `Tokens::verify` without the cache: a public-key signature check every time.
    #[divan::bench(args = ALGS)]
    fn verify_uncached(bencher: Bencher, alg: &str) {
        let tokens = tokens_for(alg, 0);
        let (token, _) = access_token(&tokens);
        bencher.bench_local(|| tokens.verify::<Session>(black_box(&token)).unwrap());
    }

    /// `Tokens::verify` of a token seen before: SHA-256 of the token and a cache hit instead of
    /// the signature check (claims still parsed and checked).
    #[divan::bench(args = ALGS)]
    fn verify_cached(bencher: Bencher, alg: &str) {
        let tokens = tokens_for(alg, 100_000);
        let (token, _) = access_token(&tokens);
        tokens.verify::<Session>(&token).unwrap();
        bencher.bench_local(|| tokens.verify::<Session>(black_box(&token)).unwrap());
    }
}

mod revocation {
    use super::*;

    /// Distinct live tokens probed in turn, so that with a large list each lookup touches cold
    /// cache lines as a server's would, instead of re-reading one hot bucket.
    const PROBES: usize = 1 << 16;

    fn probes() -> Vec<Claims<Session>> {
        let tokens = tokens();
        let (_, template) = access_token(&tokens);
        (0..PROBES)
            .map(|_| Claims {
                jti: Some(Uuid::new_v4().to_string()),
                extra: Session { sid: Uuid::now_v7(), ..session() },
                ..template.clone()
            })
            .collect()
    }

    /// `RevocationList::any_revoked` (two probes: `jti` and `sid`) of live tokens: the common case.
    #[divan::bench(args = [0, 1_000_000])]
    fn is_revoked_miss(bencher: Bencher, revoked: usize) {
        let list = revocation_list(revoked);
        let probes = probes();
        let mut i = 0;
        bencher.bench_local(|| {
            i = (i + 1) & (PROBES - 1);
            let claims = black_box(&probes[i]);
            let jti = claims.jti_uuid().unwrap_or_default();
            list.any_revoked([&jti, &claims.sid])
        });
    }

    /// `RevocationList::is_revoked` of a token whose `jti` is in the list (one hot entry).
    #[divan::bench(args = [1, 1_000_000])]
    fn is_revoked_hit(bencher: Bencher, revoked: usize) {
        let list = revocation_list(revoked - 1);
        let (_, claims) = access_token(&tokens());
        list.revoke_token(&claims);
        bencher.bench_local(|| {
            let claims = black_box(&claims);
            let jti = claims.jti_uuid().unwrap_or_default();
            list.any_revoked([&jti, &claims.sid])
        });
    }
}
