"""Shared helpers of the JWKS interop suite (README.md): keys, JWKs, RFC 7638 thumbprints,
compact JWS building, tiny HTTP helpers, and drivers for the two verifier processes.

Needs the venv of requirements.txt (PyJWT[crypto], cryptography); HTTP is the stdlib's."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

HERE = os.path.dirname(os.path.abspath(__file__))
VENV_PYTHON = os.path.join(HERE, ".venv", "bin", "python")
ASYMMETRIC = ("ES256", "ES384", "EdDSA", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512")


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_json(obj: Any) -> str:
    return b64u(json.dumps(obj, separators=(",", ":")).encode())


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def segments(token: str) -> tuple[dict, dict, str]:
    """(header, payload, signature text) of a compact JWS, unverified."""
    h, p, s = token.split(".")
    return json.loads(unb64u(h)), json.loads(unb64u(p)), s


# --- keys ------------------------------------------------------------------------------------


def generate(alg: str):
    """A fresh private key for `alg` (RSA 2048)."""
    if alg in ("ES256",):
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "ES384":
        return ec.generate_private_key(ec.SECP384R1())
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    if alg[:2] in ("RS", "PS"):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(f"no key type for {alg}")


def _int_b64u(n: int) -> str:
    return b64u(n.to_bytes((n.bit_length() + 7) // 8 or 1, "big"))


def public_jwk(public_key) -> dict:
    """The public JWK members (kty/crv/x/y or kty/n/e) of a public key, no alg/kid/use."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        size = (public_key.curve.key_size + 7) // 8
        nums = public_key.public_numbers()
        crv = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}[public_key.curve.name]
        return {
            "kty": "EC",
            "crv": crv,
            "x": b64u(nums.x.to_bytes(size, "big")),
            "y": b64u(nums.y.to_bytes(size, "big")),
        }
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "x": b64u(raw)}
    if isinstance(public_key, rsa.RSAPublicKey):
        nums = public_key.public_numbers()
        return {"kty": "RSA", "n": _int_b64u(nums.n), "e": _int_b64u(nums.e)}
    raise TypeError(f"unsupported key {type(public_key).__name__}")


def thumbprint(jwk: dict) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url)."""
    required = {"EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x"), "RSA": ("e", "kty", "n")}[jwk["kty"]]
    canonical = json.dumps({k: jwk[k] for k in required}, separators=(",", ":"), sort_keys=True)
    return b64u(hashlib.sha256(canonical.encode()).digest())


def jwk_for(private_key, alg: str) -> dict:
    """The published JWK of a private key: public members + alg, kid (thumbprint), use."""
    jwk = public_jwk(private_key.public_key())
    jwk.update({"alg": alg, "kid": thumbprint(jwk), "use": "sig"})
    return jwk


def public_key_from_jwk(jwk: dict):
    """A cryptography public key object from a public JWK (EC, OKP Ed25519, RSA)."""
    public = {k: v for k, v in jwk.items() if k in ("kty", "crv", "x", "y", "n", "e")}
    return jwt.PyJWK(public).key


def public_pem(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def public_der(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def sign(alg: str, key, claims: dict, headers: dict | None = None) -> str:
    """A compact JWS of `claims` signed by PyJWT; `headers` are added (kid, jku, ...)."""
    return jwt.encode(claims, key, algorithm=alg, headers=headers or None)


def unsigned(header: dict, claims: dict, signature: bytes = b"") -> str:
    """A compact JWS with exactly this header and any signature bytes (alg=none, forgeries)."""
    return f"{b64u_json(header)}.{b64u_json(claims)}.{b64u(signature)}"


# --- HTTP ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: Any = None, headers: dict | None = None, timeout: float = 10):
    """(status, headers, parsed JSON or raw text) of one request; never raises on an HTTP status."""
    data = None
    hdrs = dict(headers or {})
    if body is not None:
        data = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    request = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, rheaders, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as e:
        status, rheaders, raw = e.code, e.headers, e.read()
    text = raw.decode("utf-8", "replace")
    try:
        return status, rheaders, json.loads(text)
    except ValueError:
        return status, rheaders, text


def get_json(url: str, timeout: float = 10) -> Any:
    status, _, body = http("GET", url, timeout=timeout)
    if status != 200:
        raise RuntimeError(f"GET {url}: HTTP {status}: {body!r}")
    return body


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    """Wait until `url` answers 200 (raises with a clear message otherwise)."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the process exited with status {proc.returncode} before {url} answered")
        try:
            status, _, body = http("GET", url, timeout=2)
            if status == 200:
                return
            last = f"HTTP {status} {body!r}"
        except OSError as e:
            last = str(e)
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200 within {timeout} s ({last})")


class HitCounter:
    """A loopback HTTP server that serves fixed bodies and counts every request it gets: the
    attacker's host for jku/x5u. Any hit means a verifier followed a header it must ignore."""

    def __init__(self, routes: dict[str, tuple[str, bytes]]):
        import http.server

        self.routes = routes
        self.hits: list[str] = []
        counter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                counter.hits.append(self.path)
                ctype, body = counter.routes.get(self.path, ("text/plain", b"not found"))
                self.send_response(200 if self.path in counter.routes else 404)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# --- the verifier processes ------------------------------------------------------------------


class Verifier:
    """One long-lived verifier process (verify_pyjwt.py or verify_jose.mjs) in --stream mode:
    a token a line in, one JSON result a line out. Keeps its JWKS cache between tokens, so it
    also shows how a real long-running service sees a key rotation."""

    def __init__(self, client: str, source: list[str], issuer: str, algorithms: list[str],
                 audience: str | None = None, extra: list[str] | None = None):
        if client == "pyjwt":
            cmd = [VENV_PYTHON, os.path.join(HERE, "verify_pyjwt.py")]
        elif client == "jose":
            cmd = ["node", os.path.join(HERE, "verify_jose.mjs")]
        elif client == "broken":  # selftest.py's proof that the suite catches a bad verifier
            cmd = [VENV_PYTHON, os.path.join(HERE, "broken_verifier.py")]
        else:
            raise ValueError(client)
        cmd += source + ["--issuer", issuer, "--algorithms", ",".join(algorithms), "--stream"]
        if audience:
            cmd += ["--audience", audience]
        cmd += extra or []
        self.client = client
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)

    def verify(self, token: str, timeout: float = 30) -> dict:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.client} verifier exited ({self.proc.returncode}): {self.proc.stderr.read()}")
        self.proc.stdin.write(token.replace("\n", "") + "\n")
        self.proc.stdin.flush()
        result: list[str] = []
        reader = threading.Thread(target=lambda: result.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not result or not result[0]:
            self.proc.kill()
            raise RuntimeError(f"{self.client} verifier gave no answer within {timeout} s; stderr: "
                               f"{self.proc.stderr.read() if self.proc.poll() is not None else '(running)'}")
        answer = json.loads(result[0])
        if answer.get("fatal"):
            raise RuntimeError(f"{self.client} verifier could not run: {answer.get('error')}")
        return answer

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def verify_once(client: str, source: list[str], issuer: str, algorithms: list[str], token: str,
                audience: str | None = None) -> dict:
    """A fresh verifier process for one token (argv mode): a cold JWKS cache."""
    if client == "pyjwt":
        cmd = [VENV_PYTHON, os.path.join(HERE, "verify_pyjwt.py")]
    else:
        cmd = ["node", os.path.join(HERE, "verify_jose.mjs")]
    cmd += source + ["--issuer", issuer, "--algorithms", ",".join(algorithms)]
    if audience:
        cmd += ["--audience", audience]
    cmd.append(token)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{client} verifier failed to run (exit {done.returncode}): {done.stdout}{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def check_fetch_error(result: dict) -> str | None:
    """A rejection that is really a failure to reach the JWKS (not a verdict on the token)."""
    if not result.get("ok") and result.get("kind") == "fetch":
        return f"could not fetch the JWKS: {result.get('error')}"
    return None


def eprint(*args):
    print(*args, file=sys.stderr, flush=True)
