//! Password hashes imported from other systems (Flask apps): recognised, bounded, verified,
//! never made.
//!
//! `keycard user import` stores these as they are; the first successful login replaces them by
//! an Argon2id hash (see [`super::Passwords::verify_login`]). Formats:
//!
//! | format | example | verified as |
//! |---|---|---|
//! | werkzeug scrypt | `scrypt:32768:8:1$SALT$HEX` | scrypt(password, salt = the salt *text's* UTF-8 bytes, N, r, p), 64 bytes, hex |
//! | werkzeug PBKDF2 | `pbkdf2:sha256:1000000$SALT$HEX` | PBKDF2-HMAC-SHA256, 32 bytes (`sha512`: 64 bytes) |
//! | bcrypt | `$2b$12$…` (`$2a$`, `$2y$` too) | bcrypt (Flask-Bcrypt, passlib), first 72 bytes of the password |
//! | Argon2id | `$argon2id$v=19$m=…,t=…,p=…$…` | argon2, as keycard's own |
//!
//! Only the full werkzeug forms are accepted (werkzeug writes every parameter: `scrypt:N:r:p`,
//! `pbkdf2:HASH:ITERATIONS`); the short forms whose defaults changed between werkzeug versions
//! are refused rather than guessed.
//!
//! **Bounds.** An import file is trusted no more than any input: every parameter that sets the
//! time or the memory of a verification is capped, so that a hostile or corrupt file cannot make
//! a login take minutes or allocate gigabytes. The caps are several times the defaults of the
//! libraries that wrote the hashes (a login costs at most about a second on one core):
//!
//! | format | cap | defaults for comparison |
//! |---|---|---|
//! | scrypt | N a power of two, N ≤ 2^20, r ≤ 32, p ≤ 16, memory 128·N·r ≤ 64 MiB, work N·r·p ≤ 2^21 | werkzeug: N = 2^15, r = 8, p = 1 (32 MiB, work 2^18) |
//! | PBKDF2 | 1 to 2,000,000 iterations | werkzeug 3.1: 1,000,000 (600,000 in 2.3, 260,000 in 2.0) |
//! | bcrypt | cost 4 to 14 | Flask-Bcrypt: 12 |
//! | Argon2id | m ≤ 256 MiB, t ≤ 16, p ≤ 16, m·t ≤ 1 GiB | keycard: m = 19 MiB, t = 2, p = 1 |
//!
//! Comparisons of computed and stored outputs are constant-time (`subtle` for scrypt; aws-lc's
//! PBKDF2 `verify` and the bcrypt crate compare in constant time themselves). PBKDF2 is
//! aws-lc-rs's (already keycard's crypto library; SHA-NI assembly, measured 12 times faster here
//! than the pure-Rust `pbkdf2` + `sha2` crates: 46 ms against 573 ms for 100,000 iterations).

use argon2::{Algorithm, Params, PasswordHash};
use subtle::ConstantTimeEq;

/// Largest scrypt `log2(N)`.
pub const SCRYPT_MAX_LOG_N: u8 = 20;
/// Largest scrypt `r`.
pub const SCRYPT_MAX_R: u32 = 32;
/// Largest scrypt `p`.
pub const SCRYPT_MAX_P: u32 = 16;
/// Most memory one scrypt verification may take (128·N·r bytes).
pub const SCRYPT_MAX_MEMORY: u64 = 64 * 1024 * 1024;
/// Most work one scrypt verification may take (N·r·p).
pub const SCRYPT_MAX_WORK: u64 = 1 << 21;
/// Most PBKDF2 iterations.
pub const PBKDF2_MAX_ITERATIONS: u32 = 2_000_000;
/// Highest bcrypt cost (2^cost rounds).
pub const BCRYPT_MAX_COST: u32 = 14;
/// Lowest bcrypt cost the format allows.
const BCRYPT_MIN_COST: u32 = 4;
/// Most Argon2 memory, in KiB.
pub const ARGON2_MAX_MEMORY_KIB: u32 = 256 * 1024;
/// Most Argon2 passes.
pub const ARGON2_MAX_ITERATIONS: u32 = 16;
/// Most Argon2 lanes.
pub const ARGON2_MAX_PARALLELISM: u32 = 16;
/// Most Argon2 memory times passes, in KiB.
pub const ARGON2_MAX_WORK: u64 = 1024 * 1024;
/// Longest werkzeug salt accepted, in bytes (werkzeug makes 16 characters).
const MAX_SALT_LEN: usize = 256;

/// The kinds of stored password hash keycard understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scheme {
    /// keycard's own: an Argon2id PHC string.
    Argon2id,
    /// werkzeug `scrypt:N:r:p$SALT$HEX`.
    WerkzeugScrypt,
    /// werkzeug `pbkdf2:sha256:ITERATIONS$SALT$HEX`.
    WerkzeugPbkdf2Sha256,
    /// werkzeug `pbkdf2:sha512:ITERATIONS$SALT$HEX`.
    WerkzeugPbkdf2Sha512,
    /// bcrypt `$2b$`, `$2a$`, `$2y$`.
    Bcrypt,
}

impl Scheme {
    /// Every scheme, in the order summaries list them.
    pub const ALL: [Scheme; 5] = [
        Scheme::Argon2id,
        Scheme::WerkzeugScrypt,
        Scheme::WerkzeugPbkdf2Sha256,
        Scheme::WerkzeugPbkdf2Sha512,
        Scheme::Bcrypt,
    ];

    /// A short human name (`werkzeug scrypt`).
    pub fn label(self) -> &'static str {
        match self {
            Scheme::Argon2id => "argon2id",
            Scheme::WerkzeugScrypt => "werkzeug scrypt",
            Scheme::WerkzeugPbkdf2Sha256 => "werkzeug pbkdf2:sha256",
            Scheme::WerkzeugPbkdf2Sha512 => "werkzeug pbkdf2:sha512",
            Scheme::Bcrypt => "bcrypt",
        }
    }
}

/// Why a stored hash is not one keycard accepts. Never contains the hash or any part of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HashFormatError(String);

fn bad(msg: impl Into<String>) -> HashFormatError {
    HashFormatError(msg.into())
}

/// A foreign (non-Argon2id) hash, parsed and within the bounds: what verifying it takes.
pub struct ForeignHash {
    kind: Kind,
}

enum Kind {
    Scrypt { params: scrypt::Params, salt: String, expected: Vec<u8> },
    Pbkdf2 { sha512: bool, iterations: std::num::NonZeroU32, salt: String, expected: Vec<u8> },
    Bcrypt { hash: String },
}

impl std::fmt::Debug for ForeignHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForeignHash").field("scheme", &self.scheme()).finish_non_exhaustive()
    }
}

impl ForeignHash {
    /// Which kind of hash this is.
    pub fn scheme(&self) -> Scheme {
        match &self.kind {
            Kind::Scrypt { .. } => Scheme::WerkzeugScrypt,
            Kind::Pbkdf2 { sha512: false, .. } => Scheme::WerkzeugPbkdf2Sha256,
            Kind::Pbkdf2 { sha512: true, .. } => Scheme::WerkzeugPbkdf2Sha512,
            Kind::Bcrypt { .. } => Scheme::Bcrypt,
        }
    }

    /// Whether `password` (its UTF-8 bytes, as Flask hashed them) matches. Blocking: takes as
    /// long as the hash's parameters say (bounded, see the module documentation).
    pub fn verify(&self, password: &[u8]) -> bool {
        match &self.kind {
            Kind::Scrypt { params, salt, expected } => {
                let mut output = vec![0u8; expected.len()];
                scrypt::scrypt(password, salt.as_bytes(), params, &mut output).is_ok()
                    && bool::from(output.ct_eq(expected))
            }
            Kind::Pbkdf2 { sha512, iterations, salt, expected } => {
                use aws_lc_rs::pbkdf2::{PBKDF2_HMAC_SHA256, PBKDF2_HMAC_SHA512, verify};
                let algorithm = if *sha512 { PBKDF2_HMAC_SHA512 } else { PBKDF2_HMAC_SHA256 };
                // Constant-time comparison inside.
                verify(algorithm, *iterations, salt.as_bytes(), password, expected).is_ok()
            }
            // The crate's verify truncates at 72 bytes, as every bcrypt that made these did.
            Kind::Bcrypt { hash } => bcrypt::verify(password, hash).unwrap_or(false),
        }
    }
}

/// What a stored hash is: [`Scheme::Argon2id`] or a [`ForeignHash`].
#[derive(Debug)]
pub enum Recognised {
    /// An Argon2id PHC string within the bounds.
    Argon2id,
    /// A foreign hash within the bounds.
    Foreign(ForeignHash),
}

impl Recognised {
    /// Which kind of hash this is.
    pub fn scheme(&self) -> Scheme {
        match self {
            Recognised::Argon2id => Scheme::Argon2id,
            Recognised::Foreign(foreign) => foreign.scheme(),
        }
    }
}

/// Recognises `stored` and checks it is well-formed and within the bounds.
pub fn recognise(stored: &str) -> Result<Recognised, HashFormatError> {
    // `scrypt$...` and `pbkdf2$...` (werkzeug's short forms) reach the parsers to be refused
    // with the full form they need.
    let method = stored.split('$').next().unwrap_or_default();
    if method == "scrypt" || method.starts_with("scrypt:") {
        let rest = stored.strip_prefix("scrypt").unwrap_or_default();
        return werkzeug_scrypt(rest.strip_prefix(':').unwrap_or(rest))
            .map(|kind| Recognised::Foreign(ForeignHash { kind }));
    }
    if method == "pbkdf2" || method.starts_with("pbkdf2:") {
        let rest = stored.strip_prefix("pbkdf2").unwrap_or_default();
        return werkzeug_pbkdf2(rest.strip_prefix(':').unwrap_or(rest))
            .map(|kind| Recognised::Foreign(ForeignHash { kind }));
    }
    if stored.starts_with("$2a$") || stored.starts_with("$2b$") || stored.starts_with("$2y$") {
        return bcrypt_hash(stored).map(|kind| Recognised::Foreign(ForeignHash { kind }));
    }
    if stored.starts_with("$argon2") {
        return argon2id(stored).map(|()| Recognised::Argon2id);
    }
    Err(bad("unknown password hash format (accepted: werkzeug scrypt:N:r:p$… or pbkdf2:sha256:ITERATIONS$…, \
         bcrypt $2b$/$2a$/$2y$, argon2id PHC strings)"))
}

/// `SALT$HEX` after the method: the salt text and the decoded output of `len` bytes.
fn salt_and_output(rest: &str, len: usize, method: &str) -> Result<(String, Vec<u8>), HashFormatError> {
    let mut parts = rest.splitn(3, '$');
    let (Some(_), Some(salt), Some(hex)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad(format!("{method}: expected METHOD$SALT$HEX")));
    };
    if salt.is_empty() || salt.len() > MAX_SALT_LEN || salt.chars().any(char::is_control) {
        return Err(bad(format!("{method}: the salt must be 1 to {MAX_SALT_LEN} bytes of printable text")));
    }
    let expected = decode_hex(hex)
        .filter(|bytes| bytes.len() == len)
        .ok_or_else(|| bad(format!("{method}: the hash must be {} hex digits", len * 2)))?;
    Ok((salt.to_owned(), expected))
}

fn werkzeug_scrypt(rest: &str) -> Result<Kind, HashFormatError> {
    const FORM: &str = "werkzeug scrypt: expected scrypt:N:r:p$SALT$HEX";
    let method = rest.split('$').next().unwrap_or_default();
    let numbers: Vec<&str> = method.split(':').collect();
    let [n, r, p] = numbers.as_slice() else { return Err(bad(FORM)) };
    let (Ok(n), Ok(r), Ok(p)) = (n.parse::<u64>(), r.parse::<u32>(), p.parse::<u32>()) else {
        return Err(bad(FORM));
    };
    if n < 2 || !n.is_power_of_two() {
        return Err(bad("werkzeug scrypt: N must be a power of two"));
    }
    let log_n = u8::try_from(n.trailing_zeros()).unwrap_or(u8::MAX);
    let memory = 128u64.saturating_mul(n).saturating_mul(u64::from(r));
    let work = n.saturating_mul(u64::from(r)).saturating_mul(u64::from(p));
    if log_n > SCRYPT_MAX_LOG_N
        || !(1..=SCRYPT_MAX_R).contains(&r)
        || !(1..=SCRYPT_MAX_P).contains(&p)
        || memory > SCRYPT_MAX_MEMORY
        || work > SCRYPT_MAX_WORK
    {
        return Err(bad(format!(
            "werkzeug scrypt: parameters beyond keycard's bounds (N <= 2^{SCRYPT_MAX_LOG_N}, r <= {SCRYPT_MAX_R}, \
             p <= {SCRYPT_MAX_P}, 128*N*r <= 64 MiB, N*r*p <= 2^21)"
        )));
    }
    let params = scrypt::Params::new(log_n, r, p).map_err(|_| bad("werkzeug scrypt: invalid parameters"))?;
    let (salt, expected) = salt_and_output(rest, 64, "werkzeug scrypt")?;
    Ok(Kind::Scrypt { params, salt, expected })
}

fn werkzeug_pbkdf2(rest: &str) -> Result<Kind, HashFormatError> {
    const FORM: &str = "werkzeug pbkdf2: expected pbkdf2:sha256:ITERATIONS$SALT$HEX (or sha512)";
    let method = rest.split('$').next().unwrap_or_default();
    let Some((digest, iterations)) = method.split_once(':') else { return Err(bad(FORM)) };
    let (sha512, len) = match digest {
        "sha256" => (false, 32),
        "sha512" => (true, 64),
        _ => return Err(bad("werkzeug pbkdf2: only sha256 and sha512 are accepted")),
    };
    let iterations = iterations.parse::<u32>().map_err(|_| bad(FORM))?;
    let iterations = std::num::NonZeroU32::new(iterations)
        .filter(|n| n.get() <= PBKDF2_MAX_ITERATIONS)
        .ok_or_else(|| bad(format!("werkzeug pbkdf2: iterations must be 1 to {PBKDF2_MAX_ITERATIONS}")))?;
    let (salt, expected) = salt_and_output(rest, len, "werkzeug pbkdf2")?;
    Ok(Kind::Pbkdf2 { sha512, iterations, salt, expected })
}

fn bcrypt_hash(stored: &str) -> Result<Kind, HashFormatError> {
    // $2b$12$ + 22 characters of salt + 31 of hash, in bcrypt's base64 alphabet.
    const ALPHABET: &[u8] = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let bytes = stored.as_bytes();
    let well_formed = bytes.len() == 60
        && bytes.get(6) == Some(&b'$')
        && bytes.get(7..).is_some_and(|tail| tail.iter().all(|b| ALPHABET.contains(b)));
    if !well_formed {
        return Err(bad("bcrypt: expected $2b$COST$ and 53 characters of salt and hash"));
    }
    let cost = stored.get(4..6).and_then(|c| c.parse::<u32>().ok()).ok_or_else(|| bad("bcrypt: bad cost"))?;
    if !(BCRYPT_MIN_COST..=BCRYPT_MAX_COST).contains(&cost) {
        return Err(bad(format!("bcrypt: the cost must be {BCRYPT_MIN_COST} to {BCRYPT_MAX_COST}")));
    }
    Ok(Kind::Bcrypt { hash: stored.to_owned() })
}

fn argon2id(stored: &str) -> Result<(), HashFormatError> {
    let parsed = PasswordHash::new(stored).map_err(|_| bad("argon2: not a valid PHC string"))?;
    if Algorithm::try_from(parsed.algorithm.as_str()) != Ok(Algorithm::Argon2id) {
        return Err(bad("argon2: only argon2id is accepted"));
    }
    let params = Params::try_from(&parsed).map_err(|_| bad("argon2: invalid parameters"))?;
    if parsed.salt.is_none() || parsed.hash.is_none() {
        return Err(bad("argon2: the salt or the hash is missing"));
    }
    let work = u64::from(params.m_cost()).saturating_mul(u64::from(params.t_cost()));
    if params.m_cost() > ARGON2_MAX_MEMORY_KIB
        || params.t_cost() > ARGON2_MAX_ITERATIONS
        || params.p_cost() > ARGON2_MAX_PARALLELISM
        || work > ARGON2_MAX_WORK
    {
        return Err(bad(format!(
            "argon2: parameters beyond keycard's bounds (m <= {ARGON2_MAX_MEMORY_KIB} KiB, t <= \
             {ARGON2_MAX_ITERATIONS}, p <= {ARGON2_MAX_PARALLELISM}, m*t <= {ARGON2_MAX_WORK})"
        )));
    }
    Ok(())
}

/// Lower- or upper-case hex; `None` if anything else.
fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    fn digit(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = hex.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes.chunks_exact(2).map(|pair| Some(digit(*pair.first()?)? << 4 | digit(*pair.get(1)?)?)).collect()
}
