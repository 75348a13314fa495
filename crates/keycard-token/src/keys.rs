//! Key configuration: the one place that decides which algorithm and key verify a token.
//!
//! Every key is bound to exactly one algorithm when it is configured; a token's header only
//! selects a key of this set by `kid`, and its `alg` must then equal the key's. HMAC keys are
//! prepared once (aws-lc-rs precomputes the pads) and compared in constant time; public keys are
//! parsed once ([`ParsedPublicKey`]), so a verification is one signature check.
//!
//! Asymmetric keys ([`SigningKey`]) are ECDSA P-256/P-384, Ed25519 and RSA (at least 2048 bits),
//! all from aws-lc-rs. Their `kid` is the RFC 7638 thumbprint of the public key, and their public
//! halves are published as a JWK Set ([`Keys::jwks`]); a JWK Set from another issuer becomes a
//! verification-only key set with [`Keys::from_jwks`].

use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, ParsedPublicKey, RsaKeyPair};
use aws_lc_rs::{digest, hmac};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::KeyError;

/// Shortest HMAC secret accepted: 256 bits, the output size of SHA-256 (RFC 7518 §3.2).
///
/// ```
/// use keycard_token::{Keys, MIN_HMAC_SECRET_LEN};
/// assert!(Keys::hmac_sha256(&[7; MIN_HMAC_SECRET_LEN]).is_ok());
/// assert!(Keys::hmac_sha256(&[7; MIN_HMAC_SECRET_LEN - 1]).is_err());
/// ```
pub const MIN_HMAC_SECRET_LEN: usize = 32;

/// Smallest RSA modulus accepted, in bits (RFC 7518 §3.3).
pub const MIN_RSA_BITS: usize = 2048;

/// The JWS algorithms keycard can sign and verify with.
///
/// ```
/// use keycard_token::Algorithm;
/// let alg: Algorithm = "ES256".parse().unwrap();
/// assert_eq!(alg, Algorithm::ES256);
/// assert!(!alg.is_symmetric());
/// assert!("none".parse::<Algorithm>().is_err());
/// assert!("hs256".parse::<Algorithm>().is_err()); // case-sensitive
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// HMAC with SHA-256 (the default).
    HS256,
    /// HMAC with SHA-384.
    HS384,
    /// HMAC with SHA-512.
    HS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// Ed25519 (RFC 8037).
    EdDSA,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
}

impl Algorithm {
    /// Every algorithm, in the order above.
    pub const ALL: [Algorithm; 12] = [
        Algorithm::HS256,
        Algorithm::HS384,
        Algorithm::HS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
    ];

    /// The `alg` header value, exactly as RFC 7518 spells it (comparison is case-sensitive).
    ///
    /// ```
    /// assert_eq!(keycard_token::Algorithm::EdDSA.as_str(), "EdDSA");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::EdDSA => "EdDSA",
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
        }
    }

    /// Whether the algorithm is an HMAC (one shared secret signs and verifies).
    ///
    /// ```
    /// use keycard_token::Algorithm;
    /// assert!(Algorithm::HS512.is_symmetric());
    /// assert!(!Algorithm::RS256.is_symmetric());
    /// ```
    pub fn is_symmetric(self) -> bool {
        matches!(self, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
    }

    fn hmac(self) -> Option<hmac::Algorithm> {
        match self {
            Algorithm::HS256 => Some(hmac::HMAC_SHA256),
            Algorithm::HS384 => Some(hmac::HMAC_SHA384),
            Algorithm::HS512 => Some(hmac::HMAC_SHA512),
            _ => None,
        }
    }

    fn rsa_verification(self) -> Option<&'static signature::RsaParameters> {
        match self {
            Algorithm::RS256 => Some(&signature::RSA_PKCS1_2048_8192_SHA256),
            Algorithm::RS384 => Some(&signature::RSA_PKCS1_2048_8192_SHA384),
            Algorithm::RS512 => Some(&signature::RSA_PKCS1_2048_8192_SHA512),
            Algorithm::PS256 => Some(&signature::RSA_PSS_2048_8192_SHA256),
            Algorithm::PS384 => Some(&signature::RSA_PSS_2048_8192_SHA384),
            Algorithm::PS512 => Some(&signature::RSA_PSS_2048_8192_SHA512),
            _ => None,
        }
    }

    fn rsa_signing(self) -> Option<&'static dyn signature::RsaEncoding> {
        match self {
            Algorithm::RS256 => Some(&signature::RSA_PKCS1_SHA256),
            Algorithm::RS384 => Some(&signature::RSA_PKCS1_SHA384),
            Algorithm::RS512 => Some(&signature::RSA_PKCS1_SHA512),
            Algorithm::PS256 => Some(&signature::RSA_PSS_SHA256),
            Algorithm::PS384 => Some(&signature::RSA_PSS_SHA384),
            Algorithm::PS512 => Some(&signature::RSA_PSS_SHA512),
            _ => None,
        }
    }

    /// The curve of an EC algorithm: (JWK `crv`, coordinate length, signing, verification).
    fn ec(
        self,
    ) -> Option<(
        &'static str,
        usize,
        &'static signature::EcdsaSigningAlgorithm,
        &'static signature::EcdsaVerificationAlgorithm,
    )> {
        match self {
            Algorithm::ES256 => {
                Some(("P-256", 32, &signature::ECDSA_P256_SHA256_FIXED_SIGNING, &signature::ECDSA_P256_SHA256_FIXED))
            }
            Algorithm::ES384 => {
                Some(("P-384", 48, &signature::ECDSA_P384_SHA384_FIXED_SIGNING, &signature::ECDSA_P384_SHA384_FIXED))
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Algorithm {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::ALL.into_iter().find(|a| a.as_str() == s).ok_or(KeyError::UnsupportedAlgorithm)
    }
}

/// A private key for an asymmetric algorithm. Its `kid` is the RFC 7638 thumbprint of its
/// public key. `Debug` shows the algorithm and `kid`, never key material.
///
/// ```
/// use keycard_token::{Algorithm, SigningKey};
/// let key = SigningKey::generate(Algorithm::ES256).unwrap();
/// let again = SigningKey::from_pkcs8(Algorithm::ES256, &key.to_pkcs8().unwrap()).unwrap();
/// assert_eq!(again.kid(), key.kid());
/// assert_eq!(key.public_jwk().thumbprint().unwrap(), key.kid());
/// assert_eq!(format!("{key:?}"), format!("SigningKey {{ alg: ES256, kid: {:?}, .. }}", key.kid()));
/// ```
#[derive(Clone)]
pub struct SigningKey {
    alg: Algorithm,
    kid: String,
    signer: Signer,
    jwk: Jwk,
    public: Arc<ParsedPublicKey>,
}

#[derive(Clone)]
enum Signer {
    Ecdsa(Arc<EcdsaKeyPair>),
    Ed25519(Arc<Ed25519KeyPair>),
    Rsa(Arc<RsaKeyPair>),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("alg", &self.alg).field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new random key for `alg` (RSA keys are 2048 bits). HMAC algorithms are refused:
    /// their secret comes from [`Keys::hmac`].
    ///
    /// ```
    /// use keycard_token::{Algorithm, KeyError, SigningKey};
    /// assert_eq!(SigningKey::generate(Algorithm::EdDSA).unwrap().algorithm(), Algorithm::EdDSA);
    /// assert!(matches!(SigningKey::generate(Algorithm::HS256), Err(KeyError::UnsupportedAlgorithm)));
    /// ```
    pub fn generate(alg: Algorithm) -> Result<Self, KeyError> {
        let signer = if let Some((_, _, signing, _)) = alg.ec() {
            Signer::Ecdsa(Arc::new(EcdsaKeyPair::generate(signing).map_err(|_| KeyError::Generation)?))
        } else if alg == Algorithm::EdDSA {
            Signer::Ed25519(Arc::new(Ed25519KeyPair::generate().map_err(|_| KeyError::Generation)?))
        } else if alg.rsa_signing().is_some() {
            Signer::Rsa(Arc::new(RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError::Generation)?))
        } else {
            return Err(KeyError::UnsupportedAlgorithm);
        };
        Self::from_signer(alg, signer)
    }

    /// The key for `alg` from its PKCS#8 DER encoding (what [`SigningKey::to_pkcs8`] writes, or
    /// `openssl genpkey` converted to DER). The key type must match `alg`; RSA keys need at least
    /// [`MIN_RSA_BITS`] bits.
    ///
    /// ```
    /// use keycard_token::{Algorithm, KeyError, SigningKey};
    /// let ed = SigningKey::generate(Algorithm::EdDSA).unwrap().to_pkcs8().unwrap();
    /// assert!(SigningKey::from_pkcs8(Algorithm::EdDSA, &ed).is_ok());
    /// assert!(matches!(SigningKey::from_pkcs8(Algorithm::ES256, &ed), Err(KeyError::InvalidPrivateKey)));
    /// assert!(matches!(SigningKey::from_pkcs8(Algorithm::RS256, b"junk"), Err(KeyError::InvalidPrivateKey)));
    /// ```
    pub fn from_pkcs8(alg: Algorithm, der: &[u8]) -> Result<Self, KeyError> {
        let signer = if let Some((_, _, signing, _)) = alg.ec() {
            Signer::Ecdsa(Arc::new(EcdsaKeyPair::from_pkcs8(signing, der).map_err(|_| KeyError::InvalidPrivateKey)?))
        } else if alg == Algorithm::EdDSA {
            Signer::Ed25519(Arc::new(Ed25519KeyPair::from_pkcs8(der).map_err(|_| KeyError::InvalidPrivateKey)?))
        } else if alg.rsa_signing().is_some() {
            let pair = RsaKeyPair::from_pkcs8(der).map_err(|_| KeyError::InvalidPrivateKey)?;
            if pair.public_modulus_len() * 8 < MIN_RSA_BITS {
                return Err(KeyError::KeyTooSmall);
            }
            Signer::Rsa(Arc::new(pair))
        } else {
            return Err(KeyError::UnsupportedAlgorithm);
        };
        Self::from_signer(alg, signer)
    }

    fn from_signer(alg: Algorithm, signer: Signer) -> Result<Self, KeyError> {
        let mut jwk = match &signer {
            Signer::Ecdsa(pair) => {
                let point = pair.public_key().as_ref();
                let (crv, len, _, _) = alg.ec().ok_or(KeyError::UnsupportedAlgorithm)?;
                // Uncompressed SEC1 point: 0x04 || x || y.
                if point.len() != 1 + 2 * len {
                    return Err(KeyError::InvalidPrivateKey);
                }
                Jwk {
                    kty: "EC".into(),
                    crv: Some(crv.into()),
                    x: Some(b64(&point[1..=len])),
                    y: Some(b64(&point[1 + len..])),
                    ..Jwk::default()
                }
            }
            Signer::Ed25519(pair) => Jwk {
                kty: "OKP".into(),
                crv: Some("Ed25519".into()),
                x: Some(b64(pair.public_key().as_ref())),
                ..Jwk::default()
            },
            Signer::Rsa(pair) => {
                let parts = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
                Jwk { kty: "RSA".into(), n: Some(b64(&parts.n)), e: Some(b64(&parts.e)), ..Jwk::default() }
            }
        };
        let kid = jwk.thumbprint()?;
        jwk.alg = Some(alg.as_str().into());
        jwk.use_ = Some("sig".into());
        jwk.kid = Some(kid.clone());
        let (_, public) = jwk.verifier()?;
        Ok(Self { alg, kid, signer, jwk, public: Arc::new(public) })
    }

    /// The PKCS#8 (v1) DER encoding of the private key, for storage. Zeroed when dropped.
    ///
    /// ```
    /// use keycard_token::{Algorithm, SigningKey};
    /// let der = SigningKey::generate(Algorithm::RS256).unwrap().to_pkcs8().unwrap();
    /// assert_eq!(der[0], 0x30); // a DER SEQUENCE
    /// ```
    pub fn to_pkcs8(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let der = match &self.signer {
            Signer::Ecdsa(pair) => pair.to_pkcs8v1().map(|d| d.as_ref().to_vec()),
            Signer::Ed25519(pair) => pair.to_pkcs8v1().map(|d| d.as_ref().to_vec()),
            Signer::Rsa(pair) => pair.as_der().map(|d| d.as_ref().to_vec()),
        };
        der.map(Zeroizing::new).map_err(|_| KeyError::InvalidPrivateKey)
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The key id: the RFC 7638 thumbprint of the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK, with `kid`, `alg` and `use: "sig"`; no private member.
    ///
    /// ```
    /// use keycard_token::{Algorithm, SigningKey};
    /// let jwk = SigningKey::generate(Algorithm::ES256).unwrap().public_jwk();
    /// let json = serde_json::to_value(&jwk).unwrap();
    /// assert_eq!(json["kty"], "EC");
    /// assert_eq!(json["crv"], "P-256");
    /// assert_eq!(json["use"], "sig");
    /// assert!(json.get("d").is_none());
    /// ```
    pub fn public_jwk(&self) -> Jwk {
        self.jwk.clone()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let rng = SystemRandom::new();
        match &self.signer {
            Signer::Ecdsa(pair) => pair.sign(&rng, message).map(|s| s.as_ref().to_vec()),
            Signer::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
            Signer::Rsa(pair) => {
                let encoding = self.alg.rsa_signing().ok_or(KeyError::UnsupportedAlgorithm)?;
                let mut out = vec![0; pair.public_modulus_len()];
                pair.sign(encoding, &rng, message, &mut out).map(|()| out)
            }
        }
        .map_err(|_| KeyError::Generation)
    }
}

/// A JSON Web Key (RFC 7517): the public members of EC, OKP (Ed25519) and RSA keys, and the
/// metadata keycard reads (`use`, `key_ops`, `alg`, `kid`). Private members are never read or
/// written.
///
/// ```
/// use keycard_token::Jwk;
/// let jwk: Jwk = serde_json::from_str(r#"{"kty":"OKP","crv":"Ed25519",
///     "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#).unwrap();
/// // RFC 8037 appendix A.3:
/// assert_eq!(jwk.thumbprint().unwrap(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type: `EC`, `OKP` or `RSA` (`oct` keys are never accepted from a JWK Set).
    pub kty: String,
    /// Intended use; a key whose `use` is not `sig` is not used to verify.
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    /// Permitted operations; when present it must contain `verify`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_ops: Option<Vec<String>>,
    /// The algorithm the key is for; when absent it is implied by the key type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// Key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Curve of an EC or OKP key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// X coordinate (EC) or public key (OKP), base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// Y coordinate (EC), base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// RSA modulus, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA public exponent, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
}

impl Jwk {
    /// The RFC 7638 thumbprint (SHA-256, base64url) of the key's required public members.
    ///
    /// ```
    /// use keycard_token::{Jwk, KeyError};
    /// let oct = Jwk { kty: "oct".into(), ..Jwk::default() };
    /// assert!(matches!(oct.thumbprint(), Err(KeyError::InvalidJwk(_))));
    /// ```
    pub fn thumbprint(&self) -> Result<String, KeyError> {
        let member = |v: &Option<String>, name: &'static str| v.clone().ok_or(KeyError::InvalidJwk(name));
        // Members in lexicographic order, no whitespace (RFC 7638 §3.2).
        let canonical = match self.kty.as_str() {
            "EC" => serde_json::json!({
                "crv": member(&self.crv, "crv")?, "kty": "EC", "x": member(&self.x, "x")?, "y": member(&self.y, "y")?,
            }),
            "OKP" => serde_json::json!({ "crv": member(&self.crv, "crv")?, "kty": "OKP", "x": member(&self.x, "x")? }),
            "RSA" => serde_json::json!({ "e": member(&self.e, "e")?, "kty": "RSA", "n": member(&self.n, "n")? }),
            _ => return Err(KeyError::InvalidJwk("kty")),
        };
        // serde_json's map is ordered by key, so this is the canonical form.
        Ok(b64(digest::digest(&digest::SHA256, canonical.to_string().as_bytes()).as_ref()))
    }

    /// The algorithm this JWK verifies: its `alg`, which must fit its key type, or the one its
    /// type implies (EC P-256: ES256, P-384: ES384, Ed25519: EdDSA, RSA: RS256).
    fn algorithm(&self) -> Result<Algorithm, KeyError> {
        let implied = match (self.kty.as_str(), self.crv.as_deref()) {
            ("EC", Some("P-256")) => Algorithm::ES256,
            ("EC", Some("P-384")) => Algorithm::ES384,
            ("OKP", Some("Ed25519")) => Algorithm::EdDSA,
            ("RSA", _) => Algorithm::RS256,
            ("oct", _) => return Err(KeyError::InvalidJwk("kty: symmetric keys are never taken from a JWK Set")),
            ("EC" | "OKP", _) => return Err(KeyError::InvalidJwk("crv")),
            _ => return Err(KeyError::InvalidJwk("kty")),
        };
        let Some(alg) = &self.alg else { return Ok(implied) };
        let alg: Algorithm = alg.parse().map_err(|_| KeyError::InvalidJwk("alg"))?;
        let fits = match implied {
            Algorithm::RS256 => alg.rsa_verification().is_some(),
            other => alg == other,
        };
        if fits { Ok(alg) } else { Err(KeyError::InvalidJwk("alg does not fit the key type")) }
    }

    /// The parsed public key, checked: on the curve, of the right length, RSA of at least
    /// [`MIN_RSA_BITS`] bits.
    fn verifier(&self) -> Result<(Algorithm, ParsedPublicKey), KeyError> {
        if self.use_.as_deref().is_some_and(|u| u != "sig") {
            return Err(KeyError::NotForSignatures);
        }
        if self.key_ops.as_ref().is_some_and(|ops| !ops.iter().any(|op| op == "verify")) {
            return Err(KeyError::NotForSignatures);
        }
        let alg = self.algorithm()?;
        let bytes = |v: &Option<String>, name: &'static str| -> Result<Vec<u8>, KeyError> {
            let text = v.as_deref().ok_or(KeyError::InvalidJwk(name))?;
            URL_SAFE_NO_PAD.decode(text).map_err(|_| KeyError::InvalidJwk(name))
        };
        let parsed = if let Some((_, len, _, verification)) = alg.ec() {
            let (x, y) = (bytes(&self.x, "x")?, bytes(&self.y, "y")?);
            if x.len() != len || y.len() != len {
                return Err(KeyError::InvalidJwk("EC coordinates have the wrong length"));
            }
            let point = [&[4u8][..], &x, &y].concat();
            ParsedPublicKey::new(verification, point).map_err(|_| KeyError::InvalidJwk("not a point on the curve"))?
        } else if alg == Algorithm::EdDSA {
            let x = bytes(&self.x, "x")?;
            if x.len() != 32 {
                return Err(KeyError::InvalidJwk("x has the wrong length"));
            }
            ParsedPublicKey::new(&signature::ED25519, x).map_err(|_| KeyError::InvalidJwk("x"))?
        } else {
            let params = alg.rsa_verification().ok_or(KeyError::UnsupportedAlgorithm)?;
            let (n, e) = (bytes(&self.n, "n")?, bytes(&self.e, "e")?);
            let n = strip_leading_zeros(&n);
            let e = strip_leading_zeros(&e);
            if n.len() * 8 < MIN_RSA_BITS {
                return Err(KeyError::KeyTooSmall);
            }
            PublicKeyComponents { n, e }.to_parsed_public_key(params).map_err(|_| KeyError::InvalidJwk("n/e"))?
        };
        Ok((alg, parsed))
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// A JWK Set (RFC 7517 §5).
///
/// ```
/// use keycard_token::{Algorithm, Keys, SigningKey};
/// let keys = Keys::signing(SigningKey::generate(Algorithm::ES256).unwrap());
/// let set = keys.jwks();
/// assert_eq!(set.keys.len(), 1);
/// assert!(serde_json::to_string(&set).unwrap().starts_with(r#"{"keys":[{"kty":"EC""#));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    /// The keys.
    pub keys: Vec<Jwk>,
}

/// The keys of a JWK Set that [`Keys::from_jwks`] did not take, each with its `kid` (when it had
/// one) and why.
pub type SkippedKeys = Vec<(Option<String>, KeyError)>;

/// One key with its pinned algorithm.
pub(crate) struct Key {
    pub(crate) kid: Option<String>,
    pub(crate) alg: Algorithm,
    /// Base64url of the protected header keycard writes with this key; also the fast path for
    /// verification (a byte-equal header needs no parsing).
    pub(crate) header_b64: String,
    /// That header, parsed: what a token with exactly this header decodes to.
    pub(crate) header: Arc<crate::Header>,
    verifier: Verifier,
    /// The public key, for [`Keys::jwks`] (not for HMAC keys).
    jwk: Option<Jwk>,
}

#[derive(Clone)]
enum Verifier {
    Hmac(Arc<hmac::Key>),
    Public(Arc<ParsedPublicKey>),
}

/// What signs new tokens.
#[derive(Clone)]
enum Signing {
    Hmac(Arc<hmac::Key>),
    Private(Box<SigningKey>),
}

impl Key {
    fn new(kid: Option<String>, alg: Algorithm, verifier: Verifier, jwk: Option<Jwk>) -> Self {
        let header = match &kid {
            None => serde_json::json!({"alg": alg.as_str(), "typ": "JWT"}),
            Some(kid) => serde_json::json!({"alg": alg.as_str(), "typ": "JWT", "kid": kid}),
        };
        let header_b64 = b64(header.to_string().as_bytes());
        let parsed =
            crate::Header { alg, typ: Some("JWT".to_owned()), kid: kid.clone(), extra: serde_json::Map::new() };
        Self { kid, alg, header_b64, header: Arc::new(parsed), verifier, jwk }
    }

    fn hmac(kid: Option<String>, alg: Algorithm, secret: &[u8]) -> Result<(Self, Arc<hmac::Key>), KeyError> {
        let algorithm = alg.hmac().ok_or(KeyError::UnsupportedAlgorithm)?;
        if secret.len() < MIN_HMAC_SECRET_LEN {
            return Err(KeyError::SecretTooShort { len: secret.len(), min: MIN_HMAC_SECRET_LEN });
        }
        let key = Arc::new(hmac::Key::new(algorithm, secret));
        Ok((Self::new(kid, alg, Verifier::Hmac(key.clone()), None), key))
    }

    fn public(jwk: &Jwk) -> Result<Self, KeyError> {
        let (alg, parsed) = jwk.verifier()?;
        if jwk.kid.as_deref() == Some("") {
            return Err(KeyError::DuplicateKid);
        }
        let mut published = jwk.clone();
        published.alg = Some(alg.as_str().into());
        Ok(Self::new(jwk.kid.clone(), alg, Verifier::Public(Arc::new(parsed)), Some(published)))
    }

    /// Checks `signature` over `message` (constant-time for HMAC).
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.verifier {
            Verifier::Hmac(key) => hmac::verify(key, message, signature).is_ok(),
            Verifier::Public(key) => key.verify_sig(message, signature).is_ok(),
        }
    }
}

/// The key set tokens are signed and verified with: at most one signing key and any number of
/// verification keys. A token is verified only by the key whose `kid` it names (a token without
/// `kid`: the key without one, or the only key), and only with that key's algorithm.
///
/// ```
/// use std::sync::Arc;
/// use keycard_token::{Algorithm, Keys, SigningKey, SystemClock, TokenSettings, Tokens};
///
/// let key = SigningKey::generate(Algorithm::EdDSA).unwrap();
/// let tokens = Tokens::new(Keys::signing(key.clone()), TokenSettings::default(), Arc::new(SystemClock));
/// let decoded = tokens.decode::<()>(&tokens.access("alice").sign().unwrap().token).unwrap();
/// assert_eq!(decoded.header.alg, Algorithm::EdDSA);
/// assert_eq!(decoded.header.kid.as_deref(), Some(key.kid()));
///
/// // Another service verifies with the published public keys only.
/// let json = serde_json::to_vec(&tokens.keys().jwks()).unwrap();
/// let (public, skipped) = Keys::from_jwks(&json).unwrap();
/// assert!(skipped.is_empty());
/// let verifier = Tokens::new(public, TokenSettings::default(), Arc::new(SystemClock));
/// assert!(verifier.verify::<()>(&tokens.access("bob").sign().unwrap().token).is_ok());
/// ```
pub struct Keys {
    pub(crate) keys: Vec<Key>,
    signing: Option<Signing>,
    /// Distinct for every set and every change to one: what a cached verification was made
    /// under (see [`crate::Tokens::cache_verified`]).
    pub(crate) generation: u64,
}

fn next_generation() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_list().entries(self.keys.iter().map(|k| (k.alg, k.kid.as_deref()))).finish()
    }
}

impl Keys {
    /// HS256 with `secret`, which must be at least [`MIN_HMAC_SECRET_LEN`] bytes.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use keycard_token::{Keys, SystemClock, TokenError, TokenSettings, Tokens};
    ///
    /// let ours = Tokens::new(Keys::hmac_sha256(&[7; 32]).unwrap(), TokenSettings::default(), Arc::new(SystemClock));
    /// let theirs = Tokens::new(Keys::hmac_sha256(&[8; 32]).unwrap(), TokenSettings::default(), Arc::new(SystemClock));
    /// let token = theirs.access("alice").sign().unwrap().token;
    /// assert_eq!(ours.verify::<()>(&token).unwrap_err(), TokenError::InvalidSignature);
    /// ```
    pub fn hmac_sha256(secret: &[u8]) -> Result<Self, KeyError> {
        Self::hmac(Algorithm::HS256, secret)
    }

    /// An HMAC key for `alg` with `secret`, which must be at least [`MIN_HMAC_SECRET_LEN`] bytes.
    /// It signs without a `kid` (as Flask-JWT-Extended does).
    ///
    /// ```
    /// use keycard_token::{Algorithm, KeyError, Keys};
    /// assert!(Keys::hmac(Algorithm::HS512, &[7; 64]).is_ok());
    /// assert!(matches!(Keys::hmac(Algorithm::HS512, &[7; 31]), Err(KeyError::SecretTooShort { len: 31, .. })));
    /// assert!(matches!(Keys::hmac(Algorithm::ES256, &[7; 32]), Err(KeyError::UnsupportedAlgorithm)));
    /// ```
    pub fn hmac(alg: Algorithm, secret: &[u8]) -> Result<Self, KeyError> {
        let (key, signer) = Key::hmac(None, alg, secret)?;
        Ok(Self { keys: vec![key], signing: Some(Signing::Hmac(signer)), generation: next_generation() })
    }

    /// Signs (and verifies) with an asymmetric `key`, writing its `kid` into every token.
    pub fn signing(key: SigningKey) -> Self {
        let public =
            Key::new(Some(key.kid.clone()), key.alg, Verifier::Public(key.public.clone()), Some(key.jwk.clone()));
        Self { keys: vec![public], signing: Some(Signing::Private(Box::new(key))), generation: next_generation() }
    }

    /// An empty set that signs nothing and verifies nothing until keys are added (a verifier of
    /// another issuer's tokens).
    ///
    /// ```
    /// assert!(keycard_token::Keys::verify_only().is_empty());
    /// ```
    pub fn verify_only() -> Self {
        Self { keys: Vec::new(), signing: None, generation: next_generation() }
    }

    /// Adds the public half of `key` as a verification key (a retired signing key whose tokens
    /// have not all expired).
    ///
    /// ```
    /// use keycard_token::{Algorithm, KeyError, Keys, SigningKey};
    /// let (old, new) = (SigningKey::generate(Algorithm::ES256).unwrap(), SigningKey::generate(Algorithm::ES256).unwrap());
    /// let keys = Keys::signing(new.clone()).with_verification_key(&old).unwrap();
    /// assert_eq!(keys.kids(), [new.kid(), old.kid()]);
    /// assert!(matches!(keys.with_verification_key(&new), Err(KeyError::DuplicateKid)));
    /// ```
    pub fn with_verification_key(self, key: &SigningKey) -> Result<Self, KeyError> {
        self.with_jwk(&key.jwk)
    }

    /// Adds a public key from a JWK (its algorithm from its `alg`, or implied by its type).
    ///
    /// ```
    /// use keycard_token::{Jwk, KeyError, Keys};
    /// let small = Jwk { kty: "OKP".into(), crv: Some("Ed25519".into()), x: Some("AAAA".into()), ..Jwk::default() };
    /// assert!(matches!(Keys::verify_only().with_jwk(&small), Err(KeyError::InvalidJwk(_))));
    /// ```
    pub fn with_jwk(mut self, jwk: &Jwk) -> Result<Self, KeyError> {
        let key = Key::public(jwk)?;
        self.push(key)?;
        Ok(self)
    }

    /// Adds a verification key selected by tokens whose header names `kid`, such as tokens of
    /// another issuer that writes one (FJE's `additional_headers={"kid": ...}`).
    ///
    /// ```
    /// use keycard_token::{Algorithm, KeyError, Keys};
    /// let keys = Keys::hmac_sha256(&[1; 32]).unwrap().with_hmac_key("flask-2024", Algorithm::HS512, &[2; 64]).unwrap();
    /// let again = keys.with_hmac_key("flask-2024", Algorithm::HS256, &[3; 32]);
    /// assert!(matches!(again, Err(KeyError::DuplicateKid)));
    /// ```
    pub fn with_hmac_key(mut self, kid: &str, alg: Algorithm, secret: &[u8]) -> Result<Self, KeyError> {
        if kid.is_empty() {
            return Err(KeyError::DuplicateKid);
        }
        let (key, _) = Key::hmac(Some(kid.to_owned()), alg, secret)?;
        self.push(key)?;
        Ok(self)
    }

    fn push(&mut self, key: Key) -> Result<(), KeyError> {
        if self.keys.iter().any(|k| k.kid == key.kid) {
            return Err(KeyError::DuplicateKid);
        }
        self.keys.push(key);
        self.generation = next_generation();
        Ok(())
    }

    /// A verification-only set from a JWK Set document: every usable signature key, and the keys
    /// it skipped with the reason (`use: enc`, symmetric, unknown type or curve, RSA under 2048
    /// bits, points off the curve, a second key with the same `kid`). Fails only when the
    /// document is not a JWK Set.
    ///
    /// ```
    /// use keycard_token::{KeyError, Keys};
    /// let (keys, skipped) = Keys::from_jwks(br#"{"keys":[{"kty":"oct","k":"c2VjcmV0"},{"kty":"EC","crv":"P-256"}]}"#).unwrap();
    /// assert!(keys.is_empty());
    /// assert_eq!(skipped.len(), 2);
    /// assert!(matches!(Keys::from_jwks(b"[]"), Err(KeyError::InvalidJwks)));
    /// ```
    pub fn from_jwks(json: &[u8]) -> Result<(Self, SkippedKeys), KeyError> {
        #[derive(Deserialize)]
        struct Document {
            keys: Vec<serde_json::Value>,
        }
        let document: Document = serde_json::from_slice(json).map_err(|_| KeyError::InvalidJwks)?;
        let mut keys = Self::verify_only();
        let mut skipped = SkippedKeys::new();
        for value in document.keys {
            let kid = value.get("kid").and_then(|k| k.as_str()).map(str::to_owned);
            let added = serde_json::from_value::<Jwk>(value)
                .map_err(|_| KeyError::InvalidJwk("not a JWK"))
                .and_then(|jwk| Key::public(&jwk))
                .and_then(|key| keys.push(key));
            if let Err(e) = added {
                skipped.push((kid, e));
            }
        }
        Ok((keys, skipped))
    }

    /// The public keys as a JWK Set, the signing key first; HMAC keys are never included.
    pub fn jwks(&self) -> JwkSet {
        JwkSet { keys: self.keys.iter().filter_map(|k| k.jwk.clone()).collect() }
    }

    /// The `kid`s of the set, in order (keys without one are left out).
    pub fn kids(&self) -> Vec<&str> {
        self.keys.iter().filter_map(|k| k.kid.as_deref()).collect()
    }

    /// The number of verification keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set verifies nothing.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The algorithm and `kid` new tokens are signed with, if the set signs at all.
    ///
    /// ```
    /// use keycard_token::{Algorithm, Keys};
    /// assert_eq!(Keys::hmac_sha256(&[1; 32]).unwrap().signer(), Some((Algorithm::HS256, None)));
    /// assert_eq!(Keys::verify_only().signer(), None);
    /// ```
    pub fn signer(&self) -> Option<(Algorithm, Option<&str>)> {
        self.signing_key().map(|k| (k.alg, k.kid.as_deref()))
    }

    /// The key whose header new tokens carry.
    pub(crate) fn signing_key(&self) -> Option<&Key> {
        self.signing.as_ref()?;
        // The signing key is always the first one added.
        self.keys.first()
    }

    /// Signs `message` with the signing key.
    pub(crate) fn sign(&self, message: &[u8]) -> Option<Vec<u8>> {
        match self.signing.as_ref()? {
            Signing::Hmac(key) => Some(hmac::sign(key, message).as_ref().to_vec()),
            Signing::Private(key) => key.sign(message).ok(),
        }
    }

    /// The key a token's header selects: a lookup in our own set, nothing more. A token without
    /// `kid` selects the key without one, or the only key.
    pub(crate) fn lookup(&self, kid: Option<&str>) -> Option<&Key> {
        match kid {
            Some(_) => self.keys.iter().find(|k| k.kid.as_deref() == kid),
            None => self.keys.iter().find(|k| k.kid.is_none()).or(match self.keys.as_slice() {
                [only] => Some(only),
                _ => None,
            }),
        }
    }
}

/// Strict base64url without padding.
pub(crate) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_shorter_than_32_bytes_is_refused() {
        let err = Keys::hmac_sha256(&[7u8; 31]).err();
        assert!(matches!(err, Some(KeyError::SecretTooShort { len: 31, min: 32 })));
        assert!(Keys::hmac_sha256(&[7u8; 32]).is_ok());
    }

    #[test]
    fn debug_output_never_contains_key_material() {
        let keys = Keys::hmac_sha256(b"super-secret-value-super-secret-value").unwrap();
        let shown = format!("{keys:?}");
        assert!(!shown.contains("super-secret"), "{shown}");
        for alg in [Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256] {
            let key = SigningKey::generate(alg).unwrap();
            let der = key.to_pkcs8().unwrap();
            let shown = format!("{key:?} {:?}", Keys::signing(key.clone()));
            assert!(shown.len() < 200, "{shown}");
            assert!(!shown.contains(&b64(&der)[8..40]), "{shown}");
        }
    }

    #[test]
    fn lookup_is_by_exact_kid_only() {
        let keys = Keys::hmac_sha256(&[1u8; 32]).unwrap().with_hmac_key("old", Algorithm::HS256, &[2u8; 32]).unwrap();
        assert!(keys.lookup(None).is_some());
        assert!(keys.lookup(Some("old")).is_some());
        assert!(keys.lookup(Some("OLD")).is_none());
        assert!(keys.lookup(Some("../../dev/null")).is_none());
        assert!(keys.lookup(Some("")).is_none());
    }

    #[test]
    fn a_token_without_kid_selects_the_only_key_but_not_one_of_several() {
        let (a, b) = (SigningKey::generate(Algorithm::ES256).unwrap(), SigningKey::generate(Algorithm::ES256).unwrap());
        let one = Keys::verify_only().with_verification_key(&a).unwrap();
        assert!(one.lookup(None).is_some());
        let two = one.with_verification_key(&b).unwrap();
        assert!(two.lookup(None).is_none());
        assert!(two.lookup(Some(b.kid())).is_some());
    }

    #[test]
    fn generated_keys_survive_pkcs8_and_their_kid_is_the_rfc7638_thumbprint() {
        for alg in Algorithm::ALL.into_iter().filter(|a| !a.is_symmetric()) {
            let key = SigningKey::generate(alg).unwrap();
            let again = SigningKey::from_pkcs8(alg, &key.to_pkcs8().unwrap()).unwrap();
            assert_eq!(again.kid(), key.kid(), "{alg}");
            assert_eq!(again.public_jwk(), key.public_jwk(), "{alg}");
            assert_eq!(key.kid().len(), 43, "{alg}");
            let message = b"header.payload";
            let keys = Keys::signing(key);
            let signature = keys.sign(message).unwrap();
            assert!(keys.lookup(Some(again.kid())).unwrap().verify(message, &signature), "{alg}");
            assert!(!keys.lookup(Some(again.kid())).unwrap().verify(b"header.payloae", &signature), "{alg}");
        }
    }

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 §3.1.
        let jwk = Jwk {
            kty: "RSA".into(),
            n: Some("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw".into()),
            e: Some("AQAB".into()),
            ..Jwk::default()
        };
        assert_eq!(jwk.thumbprint().unwrap(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    #[test]
    fn jwks_never_carry_symmetric_keys_and_round_trip() {
        let hs = Keys::hmac_sha256(&[1; 32]).unwrap();
        assert!(hs.jwks().keys.is_empty());
        let key = SigningKey::generate(Algorithm::RS256).unwrap();
        let keys = Keys::signing(key.clone());
        let json = serde_json::to_vec(&keys.jwks()).unwrap();
        let (public, skipped) = Keys::from_jwks(&json).unwrap();
        assert!(skipped.is_empty());
        assert_eq!(public.kids(), [key.kid()]);
        assert!(public.signer().is_none());
        assert!(!String::from_utf8(json).unwrap().contains("\"d\""));
    }

    #[test]
    fn unusable_jwks_entries_are_skipped_with_a_reason() {
        let ec = SigningKey::generate(Algorithm::ES256).unwrap().public_jwk();
        let mut enc = ec.clone();
        enc.use_ = Some("enc".into());
        enc.kid = Some("enc".into());
        let mut wrong_alg = ec.clone();
        wrong_alg.alg = Some("RS256".into());
        wrong_alg.kid = Some("wrong-alg".into());
        let mut off_curve = ec.clone();
        off_curve.kid = Some("off-curve".into());
        off_curve.y = off_curve.x.clone();
        let mut sign_only = ec.clone();
        sign_only.kid = Some("sign-only".into());
        sign_only.key_ops = Some(vec!["sign".into()]);
        let small_rsa = serde_json::json!({"kty": "RSA", "kid": "small", "n": b64(&[0xff; 128]), "e": "AQAB"});
        let document = serde_json::json!({"keys": [
            ec, ec, enc, wrong_alg, off_curve, sign_only, small_rsa,
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA", "kid": "p521"},
            "not an object", {"kid": 7},
        ]});
        let (keys, skipped) = Keys::from_jwks(document.to_string().as_bytes()).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(skipped.len(), 10, "{skipped:?}");
        assert!(matches!(skipped[0].1, KeyError::DuplicateKid));
        assert!(skipped.iter().any(|(kid, e)| kid.as_deref() == Some("small") && matches!(e, KeyError::KeyTooSmall)));
        for bad in [&b"{"[..], b"{}", b"{\"keys\":{}}", b"null"] {
            assert!(matches!(Keys::from_jwks(bad), Err(KeyError::InvalidJwks)));
        }
    }
}
