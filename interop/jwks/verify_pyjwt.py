#!/usr/bin/env python3
"""Verify JWTs the way a Python service does with PyJWT's PyJWKClient (README.md).

    verify_pyjwt.py (--jwks-url URL | --issuer-url URL) --issuer ISS [--audience AUD]
                    [--algorithms ES256,EdDSA] [--cooldown S] [--stream] [TOKEN ...]

--issuer-url does OIDC discovery: GET {URL}/.well-known/openid-configuration, whose `issuer` must
equal --issuer exactly, then its `jwks_uri`. Tokens come from argv, else from stdin (one a line).
One JSON line a token: {"ok": true, "claims": {...}, "header": {...}, "kid": ...} or
{"ok": false, "kind": "token"|"key"|"fetch", "error": "..."}. With --stream each answer is
flushed as soon as its line is read, and the one PyJWKClient (and its JWKS cache) serves all.

Exit status: 0 all verified, 1 some refused, 2 could not run (discovery or JWKS unreachable:
then {"ok": false, "fatal": true, ...}), never a verdict on a token.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request

import jwt
from jwt import PyJWKClient
from jwt.exceptions import PyJWKClientConnectionError, PyJWKClientError


def fatal(message: str) -> int:
    print(json.dumps({"ok": False, "fatal": True, "kind": "fetch", "error": message}), flush=True)
    return 2


def discover(issuer_url: str, expected_issuer: str) -> str:
    url = issuer_url.rstrip("/") + "/.well-known/openid-configuration"
    with urllib.request.urlopen(url, timeout=10) as response:
        config = json.load(response)
    if config.get("issuer") != expected_issuer:
        raise ValueError(f"discovery issuer {config.get('issuer')!r} != expected {expected_issuer!r}")
    jwks_uri = config.get("jwks_uri")
    if not isinstance(jwks_uri, str):
        raise ValueError(f"discovery document has no jwks_uri: {config!r}")
    return jwks_uri


def verify(client: PyJWKClient, token: str, args) -> dict:
    try:
        signing_key = client.get_signing_key_from_jwt(token)
    except PyJWKClientConnectionError as e:
        return {"ok": False, "kind": "fetch", "error": str(e)}
    except PyJWKClientError as e:
        return {"ok": False, "kind": "key", "error": str(e)}
    except jwt.InvalidTokenError as e:
        return {"ok": False, "kind": "token", "error": f"{type(e).__name__}: {e}"}
    except jwt.PyJWTError as e:  # PyJWKSetError: an empty or unusable key set
        return {"ok": False, "kind": "key", "error": f"{type(e).__name__}: {e}"}
    try:
        # The documented PyJWT pattern: the PyJWK (its algorithm fixed by the JWK) and a pinned list.
        claims = jwt.decode(
            token,
            signing_key,
            algorithms=args.algorithms,
            issuer=args.issuer,
            audience=args.audience,
            options={"require": ["exp", "iss", "sub"], "verify_aud": args.audience is not None},
        )
    except (jwt.InvalidTokenError, jwt.InvalidKeyError) as e:
        return {"ok": False, "kind": "token", "error": f"{type(e).__name__}: {e}"}
    except Exception as e:  # noqa: BLE001 - any other failure is a refusal too, and must be visible
        return {"ok": False, "kind": "token", "error": f"unexpected {type(e).__name__}: {e}"}
    return {"ok": True, "claims": claims, "header": jwt.get_unverified_header(token), "kid": signing_key.key_id}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--jwks-url")
    source.add_argument("--issuer-url")
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--audience")
    parser.add_argument("--algorithms", default="ES256,EdDSA,RS256", type=lambda s: [a for a in s.split(",") if a])
    parser.add_argument("--cooldown", type=float, default=None,
                        help="PyJWKClient cooldown_duration (s) between refetches on an unknown kid "
                             "(default: the library's, 30)")
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("tokens", nargs="*")
    args = parser.parse_args()

    try:
        jwks_url = args.jwks_url or discover(args.issuer_url, args.issuer)
    except Exception as e:  # noqa: BLE001
        return fatal(f"discovery failed: {type(e).__name__}: {e}")
    kwargs = {"timeout": 10}
    if args.cooldown is not None:
        kwargs["cooldown_duration"] = args.cooldown
    client = PyJWKClient(jwks_url, **kwargs)
    try:
        client.get_jwk_set()  # reachable at all? (a refusal must never be an unreachable JWKS)
    except PyJWKClientConnectionError as e:
        return fatal(f"JWKS {jwks_url} unreachable: {e}")
    except Exception as e:  # noqa: BLE001 - e.g. an empty or malformed key set
        print(json.dumps({"note": f"JWKS {jwks_url} not usable: {type(e).__name__}: {e}"}), file=sys.stderr)

    status = 0
    tokens = args.tokens or (line.strip() for line in iter(sys.stdin.readline, ""))
    for token in tokens:
        if not token:
            continue
        result = verify(client, token, args)
        if not result["ok"]:
            status = 1
        print(json.dumps(result), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
