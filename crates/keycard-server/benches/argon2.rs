//! The raw Argon2id rate with keycard's default parameters (m = 19456 KiB, t = 2, p = 1): the
//! ceiling of `POST /login` on one core, which `bench/run.sh` compares the login rate with.
//!
//! Run with `taskset -c 1 cargo bench -p keycard-server --bench argon2`; hashes per second on
//! that core = 1 / median. These measure; they assert nothing about time.
//!
//! `hash_raw` is the ceiling (`bench/run.sh` divides the `/login` rate by it); `verify_phc` is
//! exactly what a login's password check runs (`Passwords::verify`: the semaphore, the
//! `spawn_blocking` hop, the PHC parse and the hash in a kept block array); `verify_library` is
//! the same check through `argon2`'s own `verify_password`, which allocates its blocks per hash.

// A benchmark that cannot set itself up should stop loudly, as a test would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
use divan::{Bencher, black_box};
use keycard_server::password::Passwords;
use keycard_server::settings::Argon2Settings;

fn main() {
    divan::main();
}

const PASSWORD: &[u8] = b"bench-password";

/// Argon2id with keycard's defaults, built the way `keycard_server::password::Passwords` does.
fn argon2() -> Argon2<'static> {
    let s = Argon2Settings::default();
    let params = Params::new(s.memory_kib, s.iterations, s.parallelism, None).unwrap();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// One raw Argon2id hash into a 32-byte output (no PHC encoding): the pure hashing cost.
#[divan::bench(sample_count = 30, sample_size = 1)]
fn hash_raw(bencher: Bencher) {
    let argon2 = argon2();
    let salt = [7u8; 16];
    bencher.bench_local(|| {
        let mut out = [0u8; 32];
        argon2.hash_password_into(black_box(PASSWORD), &salt, &mut out).unwrap();
        out
    });
}

/// What a successful `POST /login` runs to check the password: `Passwords::verify` on the stored
/// PHC string, from the async runtime (the server's kind: multi-threaded, one worker per CPU).
#[divan::bench(sample_count = 30, sample_size = 1)]
fn verify_phc(bencher: Bencher) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let passwords = Passwords::new(&Argon2Settings::default()).unwrap();
    let stored = argon2().hash_password(PASSWORD).unwrap().to_string();
    let password = std::str::from_utf8(PASSWORD).unwrap();
    bencher.bench_local(|| {
        assert!(runtime.block_on(passwords.verify(Some(&stored), black_box(password))).unwrap());
    });
}

/// The same check through the library's `verify_password` (blocks allocated per hash), on this
/// thread: what `verify_phc` measured before keycard kept its block arrays.
#[divan::bench(sample_count = 30, sample_size = 1)]
fn verify_library(bencher: Bencher) {
    let argon2 = argon2();
    let stored = argon2.hash_password(PASSWORD).unwrap().to_string();
    bencher.bench_local(|| {
        let parsed = PasswordHash::new(&stored).unwrap();
        argon2.verify_password(black_box(PASSWORD), &parsed).unwrap();
    });
}
