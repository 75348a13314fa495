#!/usr/bin/env python3
"""A stand-in for the keycard binary, for selftest.py only: it lets e2e.py be tested end to end
without Rust. It does what issue 13 asks of the server, as far as e2e.py looks:

    fake_keycard.py serve            (KEYCARD_BIND, KEYCARD_DATABASE_URL=sqlite://PATH,
                                      KEYCARD_JWT_ALGORITHM, KEYCARD_AUDIENCE, KEYCARD_SECRET_FILE)
    fake_keycard.py keys rotate --database-url URL
    fake_keycard.py keys list   --database-url URL

Keys live in the SQLite table signing_keys; the server rereads it on every request (the real one
polls every second), so `keys rotate` takes effect without a restart. Users live in memory.
Tokens are verified strictly: the key is chosen by kid, its algorithm must be the token's, and
jku/x5u/jwk/x5c headers are refused.

FAKE_KEYCARD_BROKEN=<mode> breaks it on purpose, and e2e.py must then fail:
  hs-confusion   also accepts HS256 tokens whose HMAC secret is the public key's PEM
  follow-jku     takes the key from a token's jku header (and fetches it)
  no-rotation    `keys rotate` adds a key that the server never signs with
  leak-private   publishes the private member d in the JWKS
  unsealed       stores plain PKCS#8 even when KEYCARD_KEY_ENCRYPTION_KEY is set
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import jwt  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402

BROKEN = os.environ.get("FAKE_KEYCARD_BROKEN", "")
HELP = """Usage: keycard serve [OPTIONS]
  [env: KEYCARD_BIND=] [env: KEYCARD_DATABASE_URL=] [env: KEYCARD_JWT_ALGORITHM=] [env: KEYCARD_AUDIENCE=]
"""


def db_path(url: str) -> str:
    if not url.startswith("sqlite://"):
        raise SystemExit(f"fake keycard: only sqlite:// URLs, not {url}")
    return url[len("sqlite://"):]


def connect(url: str) -> sqlite3.Connection:
    conn = sqlite3.connect(db_path(url), timeout=10)
    conn.execute("CREATE TABLE IF NOT EXISTS signing_keys (kid TEXT PRIMARY KEY, algorithm TEXT, "
                 "private_key BLOB, created_at REAL, state TEXT)")
    conn.commit()
    return conn


def _kek() -> bytes | None:
    value = os.environ.get("KEYCARD_KEY_ENCRYPTION_KEY")
    return common.unb64u(value) if value else None


def add_key(url: str, alg: str, activate: bool = True) -> str:
    key = common.generate(alg)
    kid = common.jwk_for(key, alg)["kid"]
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    if _kek() and BROKEN != "unsealed":
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        nonce = os.urandom(12)
        der = nonce + AESGCM(_kek()).encrypt(nonce, der, kid.encode())
    with connect(url) as conn:
        if activate:
            conn.execute("UPDATE signing_keys SET state='retired' WHERE state='active' AND algorithm=?", (alg,))
        conn.execute("INSERT INTO signing_keys VALUES (?, ?, ?, ?, ?)",
                     (kid, alg, der, time.time(), "active" if activate else "next"))
    return kid


def load_keys(url: str) -> list[dict]:
    with connect(url) as conn:
        rows = conn.execute("SELECT kid, algorithm, private_key, state FROM signing_keys ORDER BY created_at").fetchall()
    keys = []
    for kid, alg, der, state in rows:
        if _kek() and BROKEN != "unsealed":
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
            der = AESGCM(_kek()).decrypt(der[:12], der[12:], kid.encode())
        private = serialization.load_der_private_key(der, None)
        keys.append({"kid": kid, "alg": alg, "private": private, "state": state,
                     "jwk": common.jwk_for(private, alg)})
    return keys


class App:
    def __init__(self):
        self.bind = os.environ.get("KEYCARD_BIND", "127.0.0.1:5000")
        self.url = os.environ.get("KEYCARD_DATABASE_URL", "sqlite://keycard.db")
        self.alg = os.environ.get("KEYCARD_JWT_ALGORITHM", "HS256")
        self.audience = os.environ.get("KEYCARD_AUDIENCE")
        # As h-store: with HS256 and no KEYCARD_ISSUER, no iss (FJE's format) and no discovery.
        self.issuer = os.environ.get("KEYCARD_ISSUER") or (None if self.alg == "HS256" else f"http://{self.bind}")
        self.users: dict[str, str] = {}
        if self.alg == "HS256":
            path = os.environ.get("KEYCARD_SECRET_FILE", "keycard.secret")
            if not os.path.exists(path):
                with open(path, "w") as f:
                    f.write(secrets.token_urlsafe(32))
            with open(path) as f:
                self.secret = f.read().strip()
        elif not any(k["alg"] == self.alg and k["state"] == "active" for k in load_keys(self.url)):
            add_key(self.url, self.alg)

    def signing_key(self) -> dict:
        keys = [k for k in load_keys(self.url) if k["alg"] == self.alg]
        if BROKEN == "no-rotation":
            return keys[0]
        return next(k for k in keys if k["state"] == "active")

    def sign(self, sub: str, kind: str) -> str:
        now = int(time.time())
        claims = {"sub": sub, "iat": now, "nbf": now, "jti": str(uuid.uuid4()),
                  "type": kind, "exp": now + (900 if kind == "access" else 86400), "sid": str(uuid.uuid4())}
        if self.issuer:
            claims["iss"] = self.issuer
        if self.audience:
            claims["aud"] = self.audience
        if self.alg == "HS256":
            return jwt.encode(claims, self.secret, algorithm="HS256")
        key = self.signing_key()
        return jwt.encode(claims, key["private"], algorithm=self.alg, headers={"kid": key["kid"]})

    def jwks(self) -> dict:
        if self.alg == "HS256":
            return {"keys": []}
        out = []
        for k in load_keys(self.url):
            jwk = dict(k["jwk"])
            if BROKEN == "leak-private" and hasattr(k["private"], "private_numbers"):
                numbers = k["private"].private_numbers()
                value = getattr(numbers, "private_value", None) or getattr(numbers, "d", 0)
                jwk["d"] = common.b64u(value.to_bytes((value.bit_length() + 7) // 8, "big"))
            out.append(jwk)
        return {"keys": out}

    def verify(self, token: str, kind: str) -> dict:
        header = jwt.get_unverified_header(token)
        if BROKEN == "follow-jku" and "jku" in header:
            remote = common.get_json(header["jku"])
            jwk = next(k for k in remote["keys"] if k.get("kid") == header.get("kid"))
            return self._check(token, jwt.PyJWK(jwk).key, jwk["alg"], kind)
        for refused in ("jku", "x5u", "jwk", "x5c"):
            if refused in header:
                raise jwt.InvalidTokenError(f"the {refused} header is refused")
        if self.alg == "HS256":
            return self._check(token, self.secret, "HS256", kind)
        keys = {k["kid"]: k for k in load_keys(self.url)}
        if BROKEN == "hs-confusion" and header.get("alg") == "HS256":
            import hashlib
            import hmac
            key = keys.get(header.get("kid")) or next(iter(keys.values()))
            pem = common.public_pem(key["private"].public_key())
            signing_input, _, sig = token.rpartition(".")
            if hmac.compare_digest(common.b64u(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()), sig):
                return jwt.decode(token, options={"verify_signature": False})
        key = keys.get(header.get("kid"))
        if key is None:
            raise jwt.InvalidTokenError("unknown kid")
        if header.get("alg") != key["alg"]:
            raise jwt.InvalidTokenError("alg does not match the key")
        return self._check(token, key["private"].public_key(), key["alg"], kind)

    def _check(self, token, key, alg, kind) -> dict:
        claims = jwt.decode(token, key, algorithms=[alg], issuer=self.issuer, audience=self.audience,
                            options={"require": ["exp", "sub"] + (["iss"] if self.issuer else [])})
        if claims.get("type") != kind:
            raise jwt.InvalidTokenError(f"only {kind} tokens are allowed")
        return claims


def serve() -> int:
    app = App()

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status, body, headers=None):
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(raw)

        def _body(self) -> dict:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length) or b"{}")

        def _claims(self, kind: str):
            auth = self.headers.get("Authorization", "")
            if not auth.startswith("Bearer "):
                self._send(401, {"msg": "Missing Authorization Header"})
                return None
            try:
                return app.verify(auth[len("Bearer "):], kind)
            except Exception as e:  # noqa: BLE001
                self._send(401, {"msg": str(e) or type(e).__name__})
                return None

        def do_GET(self):  # noqa: N802
            if self.path == "/healthz":
                return self._send(200, {"status": "ok"})
            if self.path == "/.well-known/openid-configuration" and app.issuer:
                return self._send(200, {"issuer": app.issuer, "jwks_uri": app.issuer + "/.well-known/jwks.json",
                                        "id_token_signing_alg_values_supported": [app.alg]})
            if self.path == "/.well-known/jwks.json":
                return self._send(200, app.jwks(), {"Cache-Control": "public, max-age=300"})
            if self.path == "/protected":
                claims = self._claims("access")
                if claims is not None:
                    return self._send(200, {"logged_in_as": claims["sub"]})
                return None
            return self._send(404, {"msg": "Not found"})

        def do_POST(self):  # noqa: N802
            if self.path == "/register":
                body = self._body()
                if body["username"] in app.users:
                    return self._send(409, {"msg": "User already exists"})
                app.users[body["username"]] = body["password"]
                return self._send(201, {"msg": "User created successfully"})
            if self.path == "/login":
                body = self._body()
                if app.users.get(body.get("username")) != body.get("password"):
                    return self._send(401, {"msg": "Bad username or password"})
                return self._send(200, {"access_token": app.sign(body["username"], "access"),
                                        "refresh_token": app.sign(body["username"], "refresh"),
                                        "token_type": "Bearer"})
            if self.path == "/token/refresh":
                claims = self._claims("refresh")
                if claims is not None:
                    return self._send(200, {"access_token": app.sign(claims["sub"], "access"),
                                            "refresh_token": app.sign(claims["sub"], "refresh")})
                return None
            return self._send(404, {"msg": "Not found"})

        def log_message(self, fmt, *args):
            sys.stderr.write("fake keycard: " + (fmt % args) + "\n")

    host, port = app.bind.rsplit(":", 1)
    server = ThreadingHTTPServer((host, int(port)), Handler)
    print(f"fake keycard listening on {app.bind} ({app.alg})", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


def database_url(argv: list[str]) -> str:
    if "--database-url" in argv:
        return argv[argv.index("--database-url") + 1]
    return os.environ.get("KEYCARD_DATABASE_URL", "sqlite://keycard.db")


def main(argv: list[str]) -> int:
    if argv[:1] == ["serve"]:
        if "--help" in argv:
            print(HELP)
            return 0
        return serve()
    if argv[:2] == ["keys", "rotate"]:
        if "--help" in argv:
            print("Usage: keycard keys rotate [--database-url URL]")
            return 0
        alg = os.environ.get("KEYCARD_JWT_ALGORITHM", "ES256")
        print(f"new active key {add_key(database_url(argv), alg)} ({alg})")
        return 0
    if argv[:2] == ["keys", "list"]:
        if "--help" in argv:
            print("Usage: keycard keys list [--database-url URL]")
            return 0
        print(f"{'kid':<45} {'algorithm':<9} {'created':<12} state")
        for k in load_keys(database_url(argv)):
            print(f"{k['kid']:<45} {k['alg']:<9} {'-':<12} {k['state']}")
        return 0
    print(f"fake keycard: unknown command {argv}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
