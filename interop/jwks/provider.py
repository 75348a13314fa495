#!/usr/bin/env python3
"""A stand-in OIDC/JWKS issuer for the interop suite (README.md), pure Python.

    .venv/bin/python provider.py [--port 0] [--algs ES256,EdDSA,RS256] [--issuer URL] [--max-age 300]

Prints one JSON line {"url": ..., "issuer": ..., "kids": {...}} on stdout once it listens.

  GET  /.well-known/openid-configuration   issuer, jwks_uri, id_token_signing_alg_values_supported
  GET  /.well-known/jwks.json              every published public key (Cache-Control: public, max-age)
  GET  /token?alg=ES256&sub=alice&aud=api&ttl=600&claims={json}&no_kid=1
                                           {"access_token", "kid", "alg"}: signed by the active key of alg
  POST /rotate?alg=ES256[&retire=1]        a new active key for alg; the old one stays published
                                           unless retire=1 (then it is dropped from the JWKS)
  GET  /stats                              requests per path (how often clients fetched the JWKS)
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
import common  # noqa: E402


class Provider:
    def __init__(self, algs: list[str], max_age: int):
        self.lock = threading.Lock()
        self.keys: list[dict] = []  # {"alg", "kid", "private", "jwk", "state": active|old}
        self.max_age = max_age
        self.stats: dict[str, int] = {}
        self.issuer = ""
        for alg in algs:
            self.rotate(alg)

    def rotate(self, alg: str, retire: bool = False) -> dict:
        private = common.generate(alg)
        jwk = common.jwk_for(private, alg)
        with self.lock:
            previous = [k for k in self.keys if k["alg"] == alg and k["state"] == "active"]
            for k in previous:
                k["state"] = "old"
            if retire:
                self.keys = [k for k in self.keys if k not in previous]
            self.keys.append({"alg": alg, "kid": jwk["kid"], "private": private, "jwk": jwk, "state": "active"})
        return {"kid": jwk["kid"], "alg": alg, "previous": [k["kid"] for k in previous], "retired": retire}

    def active(self, alg: str) -> dict | None:
        with self.lock:
            return next((k for k in self.keys if k["alg"] == alg and k["state"] == "active"), None)

    def jwks(self) -> dict:
        with self.lock:
            return {"keys": [dict(k["jwk"]) for k in self.keys]}

    def mint(self, alg: str, query: dict) -> dict:
        key = self.active(alg)
        if key is None:
            raise KeyError(f"no active {alg} key (have: {sorted({k['alg'] for k in self.keys})})")
        now = int(time.time())
        ttl = int(query.get("ttl", "600"))
        claims = {"iss": self.issuer, "sub": query.get("sub", "alice"), "iat": now, "nbf": now,
                  "exp": now + ttl, "jti": str(uuid.uuid4())}
        if "aud" in query:
            claims["aud"] = query["aud"]
        if "claims" in query:
            claims.update(json.loads(query["claims"]))
        headers = {} if query.get("no_kid") == "1" else {"kid": key["kid"]}
        token = common.sign(alg, key["private"], claims, headers)
        return {"access_token": token, "kid": key["kid"], "alg": alg}


def make_handler(provider: Provider):
    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body, headers: dict | None = None):
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(raw)

        def _route(self, method: str):
            url = urlparse(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            with provider.lock:
                provider.stats[f"{method} {url.path}"] = provider.stats.get(f"{method} {url.path}", 0) + 1
            try:
                if method == "GET" and url.path == "/.well-known/openid-configuration":
                    with provider.lock:
                        algs = sorted({k["alg"] for k in provider.keys})
                    return self._send(200, {
                        "issuer": provider.issuer,
                        "jwks_uri": provider.issuer.rstrip("/") + "/.well-known/jwks.json",
                        "id_token_signing_alg_values_supported": algs,
                        "subject_types_supported": ["public"],
                        "response_types_supported": ["id_token"],
                    })
                if method == "GET" and url.path == "/.well-known/jwks.json":
                    return self._send(200, provider.jwks(), {"Cache-Control": f"public, max-age={provider.max_age}"})
                if method == "GET" and url.path == "/token":
                    return self._send(200, provider.mint(query.get("alg", "ES256"), query),
                                      {"Cache-Control": "no-store"})
                if method == "POST" and url.path == "/rotate":
                    return self._send(200, provider.rotate(query.get("alg", "ES256"), query.get("retire") == "1"))
                if method == "GET" and url.path == "/stats":
                    with provider.lock:
                        return self._send(200, dict(provider.stats))
                return self._send(404, {"msg": f"no route {method} {url.path}"})
            except (KeyError, ValueError) as e:
                return self._send(400, {"msg": str(e)})

        def do_GET(self):  # noqa: N802
            self._route("GET")

        def do_POST(self):  # noqa: N802
            self._route("POST")

        def log_message(self, *args):
            pass

    return Handler


def serve(port: int, algs: list[str], issuer: str | None, max_age: int):
    provider = Provider(algs, max_age)
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(provider))
    url = f"http://127.0.0.1:{server.server_address[1]}"
    provider.issuer = issuer or url
    return provider, server, url


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--algs", default="ES256,EdDSA,RS256", help="one active key for each (comma list)")
    parser.add_argument("--issuer", help="the iss claim and discovery issuer (default: the URL)")
    parser.add_argument("--max-age", type=int, default=300, help="JWKS Cache-Control max-age")
    args = parser.parse_args()
    provider, server, url = serve(args.port, [a for a in args.algs.split(",") if a], args.issuer, args.max_age)
    print(json.dumps({"url": url, "issuer": provider.issuer,
                      "kids": {k["alg"]: k["kid"] for k in provider.keys}}), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
