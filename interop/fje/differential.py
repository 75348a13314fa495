#!/usr/bin/env python3
"""Differential test: Flask-JWT-Extended's own examples against their keycard-axum ports.

For each example NAME, this starts the original (`originals/serve.py NAME PORT SECRET`, the real
Flask-JWT-Extended from requirements.txt) and the port (`BIN_DIR/NAME`, configured through
KEYCARD_BIND, KEYCARD_JWT_SECRET and KEYCARD_REDIS_URL), sends both the same requests and compares
the answers. Then it cross-checks that tokens (and cookies with their CSRF values) issued by one
are accepted by the other. One line per check, a summary, exit status 1 on any mismatch.

Comparison rules (see README.md):
  * status: equal, except that the port answers 401 where FJE answers 422 (same body);
  * media type of the answer (application/json) and the parsed JSON body: equal; tokens in bodies
    are replaced by "<JWT>" after checking both are well-formed 3-segment HS256 JWTs signed with the
    shared secret whose header and claims have the same names, JSON types and stable values, and the
    same lifetime (exp - iat);
  * Set-Cookie: the same cookies, each set or deleted alike, same HttpOnly flag and Path; token
    cookies compared like body tokens; each CSRF cookie equal to its token's csrf claim.
    Max-Age, SameSite, Secure and Domain are printed, not compared (keycard's defaults differ).
  * the allow-list ALLOWED / CLAIM_ALLOWED below: known, explained divergences. An allowed check
    still compares the port with what the entry says it must answer; nothing is skipped.

Every check also states what FJE itself is expected to answer; if the original answers anything
else, the check fails too (the scenario or the pinned FJE is wrong, and it says so).

--self-test runs a second instance of the original in place of the port (no 422 -> 401 rule, no
allow-list): everything must pass. This is how the harness is tested without any port.

Usage: differential.py [--bin-dir DIR] [--only NAME]... [--self-test] [-v]
Needs the venv from requirements.txt (PyJWT, redis) and Redis at 127.0.0.1:6379 db 0.
"""

from __future__ import annotations

import argparse
import base64
import email.utils
import http.client
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse
import uuid
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

try:
    import jwt  # PyJWT, pinned in requirements.txt
    import redis  # redis-py, pinned in requirements.txt
except ImportError as e:  # pragma: no cover
    sys.exit(
        f"differential.py: {e}. Run it with the interop venv: interop/fje/run-ci.sh, or "
        ".venv-interop/bin/python interop/fje/differential.py (see interop/fje/README.md)"
    )

# The edge case "HS512 token with the shared secret" makes PyJWT warn about the key length.
warnings.filterwarnings("ignore", message=".*HMAC key.*")

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
ORIGINALS = os.path.join(HERE, "originals")

EXAMPLES = [
    "simple",
    "refresh_tokens",
    "token_freshness",
    "additional_data_in_access_token",
    "automatic_user_loading",
    "blocklist_database",
    "blocklist_redis",
    "custom_decorators",
    "loaders",
    "optional_protected_endpoints",
    "jwt_locations",
    "implicit_refresh",
]

REDIS_URL = "redis://127.0.0.1:6379/0"
OTHER_SECRET = "a-different-secret-that-is-long-enough-0123456789"
JWT = "<JWT>"  # placeholder for a token in a body


class _Any:
    """Matches any body (used in expectations that only pin the status)."""

    def __repr__(self) -> str:
        return "<any>"


ANY = _Any()


class _AnyMsg:
    """Matches {"msg": <any string>} (a default-shaped error with a message we do not pin)."""

    def __repr__(self) -> str:
        return '{"msg": <any string>}'


ANY_MSG = _AnyMsg()


def body_matches(want: Any, got: Any) -> bool:
    if want is ANY:
        return True
    if want is ANY_MSG:
        return isinstance(got, dict) and set(got) == {"msg"} and isinstance(got["msg"], str)
    return want == got


# ---------------------------------------------------------------------------------------------
# The allow-list: known divergences between an original and its port, each with its reason.
# Keyed by (example, check label). Applied only against a real port (never with --self-test).
# For an allowed check the port must answer `port_status` with `port_body` (ANY_MSG: any
# {"msg": "..."}); with `or_same=True` an answer equal to the original's is accepted as well
# (the entry records a divergence the port is allowed, not required, to have). `original` pins
# what FJE answers there, so that an entry that no longer describes FJE is noticed.
# ---------------------------------------------------------------------------------------------


@dataclass
class Divergence:
    reason: str
    port_status: int
    port_body: Any = ANY
    or_same: bool = False


ALLOWED: dict[tuple[str, str], Divergence] = {
    # automatic_user_loading's user_identity_loader returns `user.id`, an int, so FJE writes an
    # integer `sub`. FJE 4.7 (JWT_VERIFY_SUB=True) with PyJWT >= 2.10 then refuses the very token
    # it issued: 422 {"msg": "Subject must be a string"} on /who_am_i. The original is broken on
    # the pinned versions; the issue asks that the port is not (a non-string identity can never
    # produce a token FJE or PyJWT refuses): the port writes sub "1" and answers the user.
    ("automatic_user_loading", "who_am_i with the login token (batman)"): Divergence(
        reason="the original issues an int sub and then refuses it (PyJWT >= 2.10: "
        "'Subject must be a string'); the port writes sub as a string and works",
        port_status=200,
        port_body={"id": 1, "full_name": "Bruce Wayne", "username": "batman"},
    ),
    ("automatic_user_loading", "who_am_i with the login token (panther)"): Divergence(
        reason="as above (int sub refused by the original itself)",
        port_status=200,
        port_body={"id": 2, "full_name": "Ann Takamaki", "username": "panther"},
    ),
    # keycard requires `exp` (issue 12, deliverable 1: "Safer than FJE: exp always required");
    # FJE (PyJWT) accepts a token without exp, which then never expires.
    ("simple", "edge: token without exp"): Divergence(
        reason="keycard always requires exp; FJE accepts a token without exp (it never expires)",
        port_status=401,
        port_body=ANY_MSG,
    ),
    # FJE fills a missing `jti` with None and accepts the token; keycard's Claims has
    # `jti: Uuid` (DESIGN-12). A token FJE issues always has a jti, so this only concerns
    # tokens minted elsewhere. Allowed, not required: accepting it like FJE is fine too.
    ("simple", "edge: token without jti"): Divergence(
        reason="DESIGN-12 makes jti a required Uuid; FJE accepts a token without jti",
        port_status=401,
        port_body=ANY_MSG,
        or_same=True,
    ),
    # FJE accepts any `type` other than "refresh" on an access route ("foo" passes);
    # keycard's TokenType is "access" | "refresh" (DESIGN-12). Allowed, not required.
    ("simple", "edge: token with type 'foo'"): Divergence(
        reason="DESIGN-12 has TokenType access|refresh; FJE treats any non-'refresh' type as access",
        port_status=401,
        port_body=ANY_MSG,
        or_same=True,
    ),
    # The original's view tests `if current_identity:`, so a token whose `sub` is "" is
    # answered "anonymous user". keycard-token refuses a token with an empty `sub` when it is
    # decoded (Tokens::validate: TokenError::InvalidClaims, README "keycard refuses": an empty
    # `sub`, RFC 8725 §3.10) and never issues one (TokenError::EmptyIdentity), so the request
    # never reaches the port's handler (which, for that reason, has no empty-identity branch).
    # A token FJE issues for a real identity never has one. Allowed, not required (as for jti
    # and type above): a port that answers like FJE, such as fake_port.py, passes too.
    ("optional_protected_endpoints", "optional: crafted token with an empty sub -> anonymous (Python truthiness)"): Divergence(
        reason="keycard-token refuses a token with an empty sub (InvalidClaims); FJE accepts it "
        "and the original's view answers 'anonymous user'",
        port_status=401,
        port_body=ANY_MSG,
        or_same=True,
    ),
}

# Claim-level divergences in issued tokens: (example, claim) -> (reason, check(orig, port)).
CLAIM_ALLOWED: dict[tuple[str, str], tuple[str, Callable[[Any, Any], bool]]] = {
    ("automatic_user_loading", "sub"): (
        "the original writes the int user id as sub; the port writes it as a string (str(id))",
        lambda o, p: isinstance(o, int) and isinstance(p, str) and p == str(o),
    ),
}


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------


class HarnessError(Exception):
    """A check could not be run (e.g. a token an earlier step should have produced is missing)."""


def b64url_json(seg: str) -> Any:
    pad = "=" * (-len(seg) % 4)
    return json.loads(base64.urlsafe_b64decode(seg + pad))


JWT_RE = re.compile(r"^[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*$")


def looks_like_jwt(v: Any) -> bool:
    if not isinstance(v, str) or not JWT_RE.match(v):
        return False
    try:
        h = b64url_json(v.split(".")[0])
    except Exception:
        return False
    return isinstance(h, dict) and "alg" in h


def jtype(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "str"
    if isinstance(v, list):
        return "list"
    if isinstance(v, dict):
        return "object"
    if v is None:
        return "null"
    return type(v).__name__


def is_uuid(v: Any) -> bool:
    if not isinstance(v, str):
        return False
    try:
        return str(uuid.UUID(v)) == v.lower()
    except ValueError:
        return False


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def craft(
    secret: str,
    sub: Any = "test",
    *,
    type_: str = "access",
    fresh: Any = False,
    exp_in: int = 900,
    age: int = 0,
    drop: tuple[str, ...] = (),
    alg: str = "HS256",
    **extra: Any,
) -> str:
    """A token in FJE 4's format (claim names, order and types as FJE writes them), signed with
    `secret`. `age` moves iat/nbf into the past; `exp_in` is counted from now."""
    now = int(time.time())
    iat = now - age
    claims = {
        "fresh": fresh,
        "iat": iat,
        "jti": str(uuid.uuid4()),
        "type": type_,
        "sub": sub,
        "nbf": iat,
        "csrf": str(uuid.uuid4()),
        "exp": now + exp_in,
    }
    claims.update(extra)
    for d in drop:
        claims.pop(d, None)
    if alg == "none":
        return jwt.encode(claims, None, algorithm="none")
    return jwt.encode(claims, secret, algorithm=alg)


def expired(secret: str, **kw: Any) -> str:
    return craft(secret, exp_in=-3600, age=7200, **kw)


# ---------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------


@dataclass
class Req:
    method: str
    path: str
    bearer: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None
    raw: bytes | None = None
    content_type: str | None = None
    cookies: dict[str, str] | None = None
    query: dict[str, str] | None = None

    def describe(self) -> str:
        bits = [self.method, self.path]
        if self.query:
            bits.append("?" + "&".join(f"{k}=…" for k in self.query))
        if self.bearer is not None:
            bits.append("+bearer")
        for k in self.headers:
            bits.append(f"+{k}")
        if self.cookies:
            bits.append("+cookies(" + ",".join(self.cookies) + ")")
        if self.json is not None:
            bits.append("+json")
        if self.raw is not None:
            bits.append("+raw body")
        return " ".join(bits)


@dataclass
class Cookie:
    name: str
    value: str
    attrs: dict[str, Any]
    raw: str

    @property
    def httponly(self) -> bool:
        return "httponly" in self.attrs

    @property
    def deleted(self) -> bool:
        ma = self.attrs.get("max-age")
        if isinstance(ma, str):
            try:
                if int(ma) <= 0:
                    return True
            except ValueError:
                pass
        ex = self.attrs.get("expires")
        if isinstance(ex, str):
            try:
                when = email.utils.parsedate_to_datetime(ex)
                if when.tzinfo is None:
                    when = when.replace(tzinfo=timezone.utc)
                if when < datetime.now(timezone.utc):
                    return True
            except (TypeError, ValueError):
                pass
        return False

    @property
    def path(self) -> str | None:
        p = self.attrs.get("path")
        return p if isinstance(p, str) else None

    def key(self) -> tuple:
        """What is compared between the two servers. HttpOnly only for a cookie that is set: a
        deletion removes the cookie whatever its flags (RFC 6265 5.3: name, domain and path)."""
        if self.deleted:
            return (self.name, "deleted", "-", self.path)
        return (self.name, "set", "HttpOnly" if self.httponly else "not HttpOnly", self.path)

    def info(self) -> str:
        """What is printed, not compared."""
        a = self.attrs
        return (
            f"{self.name}{' (deleted)' if self.deleted else ''}: "
            f"HttpOnly={'yes' if self.httponly else 'no'} Path={a.get('path', '-')} "
            f"Max-Age={a.get('max-age', '-')} Expires={'yes' if 'expires' in a else '-'} "
            f"SameSite={a.get('samesite', '-')} Secure={'yes' if 'secure' in a else 'no'}"
            + (f" Domain={a['domain']}" if "domain" in a else "")
        )


def parse_set_cookie(s: str) -> Cookie:
    parts = [p.strip() for p in s.split(";")]
    name, _, value = parts[0].partition("=")
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    attrs: dict[str, Any] = {}
    for p in parts[1:]:
        if not p:
            continue
        k, eq, v = p.partition("=")
        attrs[k.strip().lower()] = v.strip() if eq else True
    return Cookie(name.strip(), value, attrs, s)


@dataclass
class Resp:
    status: int
    media: str
    text: str
    body: Any  # parsed JSON with tokens replaced by JWT, or None if not JSON
    is_json: bool
    tokens: dict[str, str]  # where -> raw token (body paths "$.key", cookies "cookie:NAME")
    cookies: list[Cookie]

    def token(self, where: str) -> str:
        t = self.tokens.get(where)
        if t is None:
            raise HarnessError(f"no token at {where} (status {self.status}, body {self.text[:200]!r})")
        return t

    def cookie_jar(self) -> dict[str, str]:
        return {c.name: c.value for c in self.cookies if not c.deleted}

    def short(self) -> str:
        b = json.dumps(self.body, sort_keys=True) if self.is_json else repr(self.text[:300])
        return f"{self.status} {self.media or '-'} {b}"


def _replace_tokens(v: Any, path: str, out: dict[str, str]) -> Any:
    if isinstance(v, dict):
        return {k: _replace_tokens(x, f"{path}.{k}", out) for k, x in v.items()}
    if isinstance(v, list):
        return [_replace_tokens(x, f"{path}[{i}]", out) for i, x in enumerate(v)]
    if looks_like_jwt(v):
        out[path] = v
        return JWT
    return v


class Side:
    """One server under test (the original, or the port) and what its answers gave us."""

    def __init__(self, role: str, port: int):
        self.role = role
        self.port = port
        self.state: dict[str, Any] = {}

    def need(self, key: str) -> Any:
        if key not in self.state:
            raise HarnessError(f"{self.role}: {key} was not obtained by an earlier step")
        return self.state[key]

    def send(self, req: Req) -> Resp:
        headers = {"Connection": "close"}
        path = req.path
        if req.query:
            path += "?" + urllib.parse.urlencode(req.query)
        body = None
        if req.bearer is not None:
            headers["Authorization"] = f"Bearer {req.bearer}"
        if req.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in req.cookies.items())
        if req.json is not None:
            body = json.dumps(req.json).encode()
            headers["Content-Type"] = "application/json"
        if req.raw is not None:
            body = req.raw
        if req.content_type is not None:
            headers["Content-Type"] = req.content_type
        headers.update(req.headers)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        try:
            conn.request(req.method, path, body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
            set_cookies = r.msg.get_all("Set-Cookie") or []
            ctype = r.getheader("Content-Type") or ""
        finally:
            conn.close()
        text = data.decode("utf-8", "replace")
        media = ctype.split(";")[0].strip().lower()
        tokens: dict[str, str] = {}
        try:
            parsed = json.loads(text) if text.strip() else None
            is_json = text.strip() != ""
        except ValueError:
            parsed, is_json = None, False
        body_v = _replace_tokens(parsed, "$", tokens) if is_json else None
        cookies = [parse_set_cookie(s) for s in set_cookies]
        for c in cookies:
            if not c.deleted and looks_like_jwt(c.value):
                tokens[f"cookie:{c.name}"] = c.value
        return Resp(r.status, media, text, body_v, is_json, tokens, cookies)


# ---------------------------------------------------------------------------------------------
# Token checks
# ---------------------------------------------------------------------------------------------

VOLATILE = {"iat", "nbf", "exp", "jti", "csrf"}


def token_problems(tok: str, secret: str) -> list[str]:
    """What is wrong with a token a server issued (each side on its own)."""
    probs = []
    parts = tok.split(".")
    if len(parts) != 3:
        return [f"{len(parts)} segments"]
    try:
        hdr, claims = b64url_json(parts[0]), b64url_json(parts[1])
    except Exception as e:
        return [f"not base64url JSON: {e}"]
    if not isinstance(hdr, dict) or not isinstance(claims, dict):
        return ["header or payload is not a JSON object"]
    try:
        jwt.decode(
            tok,
            secret,
            algorithms=["HS256"],
            options={
                "verify_signature": True,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
                "verify_iss": False,
                "verify_sub": False,
                "verify_jti": False,
            },
        )
    except jwt.InvalidTokenError as e:
        probs.append(f"not an HS256 token signed with the shared secret: {e}")
    now = time.time()
    for k in ("jti", "csrf"):
        if k in claims and not is_uuid(claims[k]):
            probs.append(f"{k} is not a uuid string: {claims[k]!r}")
    iat = claims.get("iat")
    if isinstance(iat, (int, float)) and not isinstance(iat, bool) and abs(iat - now) > 300:
        probs.append(f"iat {iat} is not now ({int(now)})")
    return probs


def token_shape(tok: str) -> tuple[dict[str, Any], dict[str, Any]]:
    parts = tok.split(".")
    hdr, claims = b64url_json(parts[0]), b64url_json(parts[1])
    shape: dict[str, Any] = {
        "header": {k: (jtype(v), v) for k, v in hdr.items()},
        "claims": {},
    }
    for k, v in claims.items():
        stable = k not in VOLATILE and not (k == "fresh" and jtype(v) == "float")
        shape["claims"][k] = (jtype(v), v if stable else None)
    iat, exp, nbf = claims.get("iat"), claims.get("exp"), claims.get("nbf")
    num = (int, float)
    if isinstance(iat, num) and isinstance(exp, num):
        shape["lifetime (exp - iat)"] = exp - iat
    if isinstance(iat, num) and isinstance(nbf, num):
        shape["nbf - iat"] = nbf - iat
    return shape, claims


def compare_tokens(example: str, where: str, to: str, tp: str, allow: bool) -> tuple[list[str], list[str]]:
    """Differences between the original's token `to` and the port's `tp`; (mismatches, allowed)."""
    so, co = token_shape(to)
    sp, cp = token_shape(tp)
    bad, allowed = [], []
    if so["header"] != sp["header"]:
        bad.append(f"{where}: JOSE header {sp['header']} != original {so['header']}")
    ko, kp = set(so["claims"]), set(sp["claims"])
    if ko != kp:
        bad.append(
            f"{where}: claim names differ: port lacks {sorted(ko - kp)}, port adds {sorted(kp - ko)}"
        )
    for k in sorted(ko & kp):
        if so["claims"][k] != sp["claims"][k]:
            entry = CLAIM_ALLOWED.get((example, k)) if allow else None
            if entry and entry[1](co[k], cp[k]):
                allowed.append(f"{where}: claim {k}: {entry[0]}")
            else:
                bad.append(
                    f"{where}: claim {k}: port {sp['claims'][k][0]} {cp[k]!r}, "
                    f"original {so['claims'][k][0]} {co[k]!r}"
                )
    for k in ("lifetime (exp - iat)", "nbf - iat"):
        if so.get(k) != sp.get(k):
            bad.append(f"{where}: {k}: port {sp.get(k)}, original {so.get(k)}")
    return bad, allowed


def csrf_problems(r: Resp) -> list[str]:
    """A CSRF cookie set beside a token cookie must hold that token's csrf claim."""
    probs = []
    jar = {c.name: c for c in r.cookies if not c.deleted}
    for tok_name, csrf_name in (
        ("access_token_cookie", "csrf_access_token"),
        ("refresh_token_cookie", "csrf_refresh_token"),
    ):
        if tok_name in jar and csrf_name in jar and looks_like_jwt(jar[tok_name].value):
            claim = b64url_json(jar[tok_name].value.split(".")[1]).get("csrf")
            if claim != jar[csrf_name].value:
                probs.append(
                    f"cookie {csrf_name}={jar[csrf_name].value!r} is not the csrf claim "
                    f"{claim!r} of {tok_name}"
                )
    return probs


# ---------------------------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------------------------


class StartError(Exception):
    pass


class Server:
    def __init__(self, label: str, argv: list[str], env: dict[str, str], port: int, logdir: str):
        self.label, self.argv, self.env, self.port = label, argv, env, port
        self.log_path = os.path.join(logdir, f"{label.replace(' ', '_').replace('/', '_')}.log")
        self.cwd = tempfile.mkdtemp(prefix=f"{label.split()[0]}-", dir=logdir)
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        exe = self.argv[0]
        if not os.path.isfile(exe):
            raise StartError(f"{self.label}: no such file: {exe}")
        if not os.access(exe, os.X_OK):
            raise StartError(f"{self.label}: not executable: {exe}")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, ended in stop()
        )

    def wait_ready(self, timeout: float) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                raise StartError(f"{self.label} exited with status {rc} before answering\n{self.tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/__keycard_differential_ready", headers={"Connection": "close"})
                conn.getresponse().read()
                conn.close()
                return
            except OSError:
                time.sleep(0.1)
            except http.client.HTTPException:
                time.sleep(0.1)
        raise StartError(f"{self.label} did not answer on 127.0.0.1:{self.port} within {timeout:.0f}s\n{self.tail()}")

    def tail(self, n: int = 25) -> str:
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return "    (no log)"
        return "\n".join("    | " + line for line in lines[-n:]) or "    (empty log)"

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if getattr(self, "log", None):
            self.log.close()


# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------


@dataclass
class Result:
    example: str
    label: str
    verdict: str  # PASS, FAIL, ALLOW
    detail: str = ""


class Run:
    """One example: two sides, the shared secret, the checks and their results."""

    def __init__(self, example: str, orig: Side, port: Side, secret: str, self_test: bool, verbose: bool):
        self.example = example
        self.o, self.p = orig, port
        self.sides = (orig, port)
        self.secret = secret
        self.self_test = self_test
        self.verbose = verbose
        self.results: list[Result] = []
        self.labels: set[str] = set()
        self.used_allow: set[tuple[str, str]] = set()
        self.redis_keys: list[str] = []

    # -- recording --------------------------------------------------------------------------

    def record(self, label: str, verdict: str, detail: str = "", info: list[str] | None = None, shown: str | None = None) -> None:
        r = Result(self.example, label, verdict, detail)
        self.results.append(r)
        tag = {"PASS": "PASS ", "FAIL": "FAIL ", "ALLOW": "ALLOW"}[verdict]
        line = f"{tag} {self.example}: {shown or label}"
        if detail and (verdict != "PASS" or self.verbose):
            line += "\n" + "\n".join("      " + d for d in detail.splitlines())
        print(line)
        for i in info or []:
            print("      info: " + i)
        sys.stdout.flush()

    def _label(self, label: str) -> str:
        if label in self.labels:
            raise RuntimeError(f"duplicate check label in {self.example}: {label}")
        self.labels.add(label)
        return label

    # -- the core check ---------------------------------------------------------------------

    def check(
        self,
        label: str,
        make: Req | Callable[[Side], Req],
        expect: int | None = None,
        body: Any = ANY,
        cookies: list[str] | None = None,
        from_port: str | None = None,
    ) -> tuple[Resp | None, Resp | None]:
        """Send the same request (or the request `make(side)` builds from that side's state) to
        the original and to the port and compare. `expect`/`body`/`cookies` pin what FJE answers
        (body after token placeholders; cookies: the names it sets or deletes, in any order)."""
        label = self._label(label)
        resps: list[Resp | None] = []
        errors: list[str] = []
        for side in self.sides:
            try:
                req = make(side) if callable(make) else make
                resps.append(side.send(req))
            except HarnessError as e:
                resps.append(None)
                errors.append(f"cannot send to {side.role}: {e}")
            except (OSError, http.client.HTTPException) as e:
                resps.append(None)
                errors.append(f"{side.role} did not answer: {type(e).__name__}: {e}")
        ro, rp = resps
        if errors:
            self.record(label, "FAIL", "\n".join(errors))
            return ro, rp
        problems: list[str] = []
        allowed: list[str] = []
        info: list[str] = []

        # What FJE itself answers (the scenario's claim about the original).
        why = (
            f" (the {from_port} came from the port: the original does not take them as it takes its own)"
            if from_port
            else " (FJE changed, or the scenario is wrong)"
        )
        if expect is not None and ro.status != expect:
            problems.append(f"original answered {ro.status}, the scenario expects {expect}{why}")
        if not body_matches(body, ro.body if ro.is_json else ro.text):
            problems.append(
                f"original's body {ro.short()} is not the expected "
                f"{json.dumps(body) if not isinstance(body, (_Any, _AnyMsg)) else body}{why}"
            )
        if cookies is not None and sorted(c.name for c in ro.cookies) != sorted(cookies):
            problems.append(f"original's Set-Cookie names {[c.name for c in ro.cookies]} are not the expected {cookies}")

        # Per-side validity of what each issued.
        for side, r in ((self.o, ro), (self.p, rp)):
            for where, tok in r.tokens.items():
                for pr in token_problems(tok, self.secret):
                    problems.append(f"{side.role}: token at {where}: {pr}")
            for pr in csrf_problems(r):
                problems.append(f"{side.role}: {pr}")

        # The comparison.
        div = None if self.self_test else ALLOWED.get((self.example, label))
        if div is not None:
            self.used_allow.add((self.example, label))
            plain_bad = self._compare(ro, rp, allowed, info)  # what the plain rules say
            port_ok = rp.status == div.port_status and body_matches(div.port_body, rp.body if rp.is_json else rp.text)
            if div.or_same and not plain_bad:
                pass  # the port does what the original does: no divergence to report
            elif port_ok:
                allowed.append(f"allowed divergence: {div.reason}")
                allowed.append(f"original: {ro.short()}; port: {rp.short()}")
            else:
                problems.append(
                    f"allow-listed ({div.reason}), but the port must answer {div.port_status} "
                    f"{div.port_body if isinstance(div.port_body, (_Any, _AnyMsg)) else json.dumps(div.port_body)}"
                    + (" or the same as the original" if div.or_same else "")
                    + f"; it answered {rp.short()}"
                )
        else:
            problems.extend(self._compare(ro, rp, allowed, info))

        shown = f"{label}  [{ro.status}/{rp.status}]"
        if problems:
            detail = "\n".join(problems + [f"request: {self._describe(make)}", f"original: {ro.short()}", f"port:     {rp.short()}"])
            self.record(label, "FAIL", detail, info, shown)
        elif allowed:
            self.record(label, "ALLOW", "\n".join(allowed), info, shown)
        else:
            self.record(label, "PASS", f"original: {ro.short()}\nport:     {rp.short()}", info, shown)
        return ro, rp

    def _describe(self, make: Req | Callable[[Side], Req]) -> str:
        try:
            return (make(self.o) if callable(make) else make).describe()
        except Exception:
            return "?"

    def _compare(self, ro: Resp, rp: Resp, allowed: list[str], info: list[str]) -> list[str]:
        """Mismatches between the original's answer and the port's under the plain rules."""
        bad: list[str] = []
        # The one rule for status codes: the port answers 401 where FJE answers 422.
        if ro.status == 422 and not self.self_test:
            if rp.status != 401:
                bad.append(f"status: port {rp.status}, want 401 (FJE's 422 becomes 401)")
        elif rp.status != ro.status:
            bad.append(f"status: port {rp.status}, want {ro.status}")
        if ro.media != rp.media:
            bad.append(f"content type: port {rp.media or '-'}, original {ro.media or '-'}")
        if ro.is_json != rp.is_json or (ro.body if ro.is_json else ro.text) != (rp.body if rp.is_json else rp.text):
            bad.append(f"body: port {rp.short()}, original {ro.short()}")
        # Tokens at the same places, alike.
        if set(ro.tokens) != set(rp.tokens):
            bad.append(f"tokens at: port {sorted(rp.tokens)}, original {sorted(ro.tokens)}")
        for where in sorted(set(ro.tokens) & set(rp.tokens)):
            try:
                b, a = compare_tokens(self.example, where, ro.tokens[where], rp.tokens[where], not self.self_test)
            except Exception as e:
                b, a = [f"{where}: cannot decode: {e}"], []
            bad.extend(b)
            allowed.extend(a)
        # Cookies.
        ko = sorted(c.key() for c in ro.cookies)
        kp = sorted(c.key() for c in rp.cookies)
        if ko != kp:
            bad.append(
                "Set-Cookie (name, set/deleted, HttpOnly if set, Path): "
                f"port {kp}, original {ko}"
            )
        for c in ro.cookies:
            info.append(f"original Set-Cookie {c.info()}")
        for c in rp.cookies:
            info.append(f"port     Set-Cookie {c.info()}")
        return bad

    # -- variants ---------------------------------------------------------------------------

    def cross(
        self,
        label: str,
        key: str,
        make: Callable[[Any], Req],
        expect: int | dict[str, int],
        body: Any = ANY,
        cookies: list[str] | None = None,
    ) -> None:
        """Tokens (or cookie jars) issued by each side, sent to both sides and compared. With
        `expect` a dict by issuer role, `body` is one too."""
        per_issuer = isinstance(expect, dict)
        for issuer in self.sides:
            e = expect[issuer.role] if per_issuer else expect
            b = body[issuer.role] if per_issuer else body
            who = issuer.role

            def mk(_side: Side, issuer: Side = issuer) -> Req:
                return make(issuer.need(key))

            self.check(
                f"cross: {label} [{key} issued by the {who}]",
                mk,
                e,
                b,
                cookies,
                from_port=f"{key} token/cookies" if issuer is self.p else None,
            )

    def save(self, resps: tuple[Resp | None, Resp | None], key: str, get: Callable[[Resp], Any]) -> None:
        """Keep a value from each side's answer (a token, a cookie jar) for later steps."""
        for side, r in zip(self.sides, resps):
            if r is None:
                continue
            try:
                side.state[key] = get(r)
            except HarnessError:
                pass  # a later step that needs it fails and says so

    def fact(self, label: str, ok: bool, detail: str) -> None:
        self.record(self._label(label), "PASS" if ok else "FAIL", detail)


# ---------------------------------------------------------------------------------------------
# Scenario building blocks
# ---------------------------------------------------------------------------------------------

CREDS = {"username": "test", "password": "test"}
BAD_USER = "Bad username or password"
MISSING_HDR = {"msg": "Missing Authorization Header"}
MISSING_BEARER = {"msg": "Missing 'Bearer' type in 'Authorization' header. Expected 'Authorization: Bearer <JWT>'"}
BAD_HDR = {"msg": "Bad Authorization header. Expected 'Authorization: Bearer <JWT>'"}
EXPIRED = {"msg": "Token has expired"}
NOT_REFRESH = {"msg": "Only non-refresh tokens are allowed"}
ONLY_REFRESH = {"msg": "Only refresh tokens are allowed"}
REVOKED = {"msg": "Token has been revoked"}


def hdr(method: str, path: str, value: str | None) -> Req:
    return Req(method, path, headers={} if value is None else {"Authorization": value})


def battery(
    run: Run,
    method: str,
    path: str,
    *,
    sub: Any = "test",
    type_: str = "access",
    expired_body: Any = EXPIRED,
    ok: tuple[int, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """The bad-token cases every header-protected route gets. `ok`: the answer to a valid
    crafted token (None: not checked here)."""
    s = run.secret
    x = extra or {}
    r = f"{method} {path}"
    run.check(f"{r}: no token", hdr(method, path, None), 401, MISSING_HDR)
    run.check(f"{r}: garbage token 'abc'", hdr(method, path, "Bearer abc"), 422, {"msg": "Not enough segments"})
    run.check(f"{r}: garbage token 'a.b.c'", hdr(method, path, "Bearer a.b.c"), 422, {"msg": "Invalid header padding"})
    run.check(
        f"{r}: token signed with another secret",
        hdr(method, path, "Bearer " + craft(OTHER_SECRET, sub, type_=type_, **x)),
        422,
        {"msg": "Signature verification failed"},
    )
    run.check(
        f"{r}: expired token (exp one hour ago)",
        hdr(method, path, "Bearer " + expired(s, sub=sub, type_=type_, **x)),
        401,
        expired_body,
    )
    run.check(
        f"{r}: expired token signed with another secret",
        hdr(method, path, "Bearer " + expired(OTHER_SECRET, sub=sub, type_=type_, **x)),
        422,
        {"msg": "Signature verification failed"},
    )
    run.check(
        f"{r}: alg none",
        hdr(method, path, "Bearer " + craft(s, sub, type_=type_, alg="none", **x)),
        422,
        {"msg": "The specified alg value is not allowed"},
    )
    run.check(f"{r}: 'Authorization: Bearer' without a token", hdr(method, path, "Bearer"), 422, BAD_HDR)
    run.check(f"{r}: 'Authorization: Basic ...'", hdr(method, path, "Basic dXNlcjpwYXNz"), 401, MISSING_BEARER)
    wrong_type = "refresh" if type_ == "access" else "access"
    run.check(
        f"{r}: {wrong_type} token where {type_} is required",
        hdr(method, path, "Bearer " + craft(s, sub, type_=wrong_type, **x)),
        422,
        NOT_REFRESH if type_ == "access" else ONLY_REFRESH,
    )
    if ok is not None:
        run.check(f"{r}: valid crafted {type_} token", hdr(method, path, "Bearer " + craft(s, sub, type_=type_, **x)), ok[0], ok[1])


def edge_battery(run: Run, path: str, ok_body: Any) -> None:
    """Token and header edge cases, once (in `simple`)."""
    s = run.secret
    b = lambda t: hdr("GET", path, "Bearer " + t)  # noqa: E731
    run.check("edge: nbf one hour ahead", b(craft(s, nbf=int(time.time()) + 3600)), 422, {"msg": "The token is not yet valid (nbf)"})
    run.check("edge: iat one hour ahead", b(craft(s, iat=int(time.time()) + 3600)), 422, {"msg": "The token is not yet valid (iat)"})
    run.check("edge: HS512 token with the shared secret", b(craft(s, alg="HS512")), 422, {"msg": "The specified alg value is not allowed"})
    run.check("edge: token without sub", b(craft(s, drop=("sub",))), 422, {"msg": "Missing claim: sub"})
    run.check("edge: integer sub", b(craft(s, 42)), 422, {"msg": "Subject must be a string"})
    run.check("edge: token without exp", b(craft(s, drop=("exp",))), 200, ok_body)
    run.check("edge: token without type (means access)", b(craft(s, drop=("type",))), 200, ok_body)
    run.check("edge: token without fresh, nbf, csrf", b(craft(s, drop=("fresh", "nbf", "csrf"))), 200, ok_body)
    run.check("edge: token without jti", b(craft(s, drop=("jti",))), 200, ok_body)
    run.check("edge: token with type 'foo'", b(craft(s, type_="foo")), 200, ok_body)
    run.check("edge: token with extra application claims", b(craft(s, roles=["a"], org={"id": 7}, n=1.5)), 200, ok_body)
    run.check("edge: token with an aud claim (no audience configured)", b(craft(s, aud="someone")), 200, ok_body)
    t = craft(s)
    run.check("edge: 'bearer' in lower case", hdr("GET", path, "bearer " + t), 401, MISSING_BEARER)
    run.check("edge: 'Token <jwt>'", hdr("GET", path, "Token " + t), 401, MISSING_BEARER)
    run.check("edge: 'Basic x, Bearer <jwt>' (comma list)", hdr("GET", path, "Basic eA==, Bearer " + t), 200, ok_body)
    run.check("edge: 'Bearer <jwt>, ' (trailing comma)", hdr("GET", path, "Bearer " + t + ", "), 200, ok_body)
    run.check("edge: two Bearer entries", hdr("GET", path, f"Bearer {t}, Bearer {t}"), 401, MISSING_BEARER)
    run.check("edge: 'Bearer a b'", hdr("GET", path, "Bearer a b"), 422, BAD_HDR)
    run.check("edge: 'Bearer  <jwt>' (two spaces)", hdr("GET", path, "Bearer  " + t), 200, ok_body)
    run.check("edge: empty Authorization", hdr("GET", path, ""), 401, MISSING_HDR)


def login_checks(run: Run, path: str = "/login") -> tuple:
    """The username/password login of simple, token_freshness, additional_data and optional."""
    run.check("login: wrong password", Req("POST", path, json={"username": "test", "password": "x"}), 401, {"msg": BAD_USER})
    run.check("login: wrong username", Req("POST", path, json={"username": "x", "password": "test"}), 401, {"msg": BAD_USER})
    run.check("login: empty JSON object", Req("POST", path, json={}), 401, {"msg": BAD_USER})
    run.check("login: password missing", Req("POST", path, json={"username": "test"}), 401, {"msg": BAD_USER})
    return run.check("login: good credentials", Req("POST", path, json=CREDS), 200, {"access_token": JWT})


def bearer(method: str, path: str) -> Callable[[str], Req]:
    return lambda tok: Req(method, path, bearer=tok)


# ---------------------------------------------------------------------------------------------
# Scenarios, one per example (written from reading each original in originals/)
# ---------------------------------------------------------------------------------------------


def sc_simple(run: Run) -> None:
    r = login_checks(run)
    run.save(r, "access", lambda x: x.token("$.access_token"))
    ok = {"logged_in_as": "test"}
    run.check("protected with the login token", lambda s: Req("GET", "/protected", bearer=s.need("access")), 200, ok)
    battery(run, "GET", "/protected", ok=(200, ok))
    edge_battery(run, "/protected", ok)
    run.cross("GET /protected", "access", bearer("GET", "/protected"), 200, ok)


def sc_refresh_tokens(run: Run) -> None:
    r = run.check("login (no body)", Req("POST", "/login"), 200, {"access_token": JWT, "refresh_token": JWT})
    run.save(r, "access", lambda x: x.token("$.access_token"))
    run.save(r, "refresh", lambda x: x.token("$.refresh_token"))
    ok = {"foo": "bar"}
    run.check("protected with the access token", lambda s: Req("GET", "/protected", bearer=s.need("access")), 200, ok)
    run.check("protected with the refresh token", lambda s: Req("GET", "/protected", bearer=s.need("refresh")), 422, NOT_REFRESH)
    r = run.check("refresh with the refresh token", lambda s: Req("POST", "/refresh", bearer=s.need("refresh")), 200, {"access_token": JWT})
    run.save(r, "refreshed", lambda x: x.token("$.access_token"))
    run.check("refresh with the access token", lambda s: Req("POST", "/refresh", bearer=s.need("access")), 422, ONLY_REFRESH)
    run.check("protected with the refreshed access token", lambda s: Req("GET", "/protected", bearer=s.need("refreshed")), 200, ok)
    battery(run, "GET", "/protected", sub="example_user", ok=(200, ok))
    battery(run, "POST", "/refresh", sub="example_user", type_="refresh", ok=(200, {"access_token": JWT}))
    run.cross("GET /protected", "access", bearer("GET", "/protected"), 200, ok)
    run.cross("GET /protected", "refreshed", bearer("GET", "/protected"), 200, ok)
    run.cross("POST /refresh", "refresh", bearer("POST", "/refresh"), 200, {"access_token": JWT})
    run.cross("POST /refresh (access token)", "access", bearer("POST", "/refresh"), 422, ONLY_REFRESH)


def sc_token_freshness(run: Run) -> None:
    s = run.secret
    run.check("login: wrong password", Req("POST", "/login", json={"username": "test", "password": "x"}), 401, {"msg": BAD_USER})
    run.check("login: empty JSON object", Req("POST", "/login", json={}), 401, {"msg": BAD_USER})
    r = run.check("login: good credentials", Req("POST", "/login", json=CREDS), 200, {"access_token": JWT, "refresh_token": JWT})
    run.save(r, "fresh access", lambda x: x.token("$.access_token"))
    run.save(r, "refresh", lambda x: x.token("$.refresh_token"))
    ok = {"foo": "bar"}
    fresh_req = {"msg": "Fresh token required"}
    run.check("protected with the fresh login token", lambda s_: Req("GET", "/protected", bearer=s_.need("fresh access")), 200, ok)
    r = run.check("refresh with the refresh token", lambda s_: Req("POST", "/refresh", bearer=s_.need("refresh")), 200, {"access_token": JWT})
    run.save(r, "non-fresh access", lambda x: x.token("$.access_token"))
    run.check("protected with the non-fresh refreshed token", lambda s_: Req("GET", "/protected", bearer=s_.need("non-fresh access")), 401, fresh_req)
    run.check("protected with the refresh token (type before freshness)", lambda s_: Req("GET", "/protected", bearer=s_.need("refresh")), 422, NOT_REFRESH)
    run.check("refresh with the fresh access token", lambda s_: Req("POST", "/refresh", bearer=s_.need("fresh access")), 422, ONLY_REFRESH)
    run.check("refresh with no token", Req("POST", "/refresh"), 401, MISSING_HDR)
    g = lambda t: hdr("GET", "/protected", "Bearer " + t)  # noqa: E731
    run.check("protected: crafted fresh=true", g(craft(s, "example_user", fresh=True)), 200, ok)
    run.check("protected: crafted fresh=false", g(craft(s, "example_user", fresh=False)), 401, fresh_req)
    run.check("protected: crafted without fresh", g(craft(s, "example_user", drop=("fresh",))), 401, fresh_req)
    run.check("protected: fresh until 10 minutes ahead (float timestamp)", g(craft(s, "example_user", fresh=time.time() + 600)), 200, ok)
    run.check("protected: fresh until 10 minutes ago (float timestamp)", g(craft(s, "example_user", fresh=time.time() - 600)), 401, fresh_req)
    run.check("protected: fresh=true on a refresh token", g(craft(s, "example_user", type_="refresh", fresh=True)), 422, NOT_REFRESH)
    run.check("protected: expired fresh token", g(expired(s, sub="example_user", fresh=True)), 401, EXPIRED)
    battery(run, "GET", "/protected", sub="example_user", extra={"fresh": True}, ok=(200, ok))
    battery(run, "POST", "/refresh", sub="example_user", type_="refresh", ok=(200, {"access_token": JWT}))
    run.cross("GET /protected", "fresh access", bearer("GET", "/protected"), 200, ok)
    run.cross("GET /protected", "non-fresh access", bearer("GET", "/protected"), 401, fresh_req)
    run.cross("POST /refresh", "refresh", bearer("POST", "/refresh"), 200, {"access_token": JWT})


def sc_additional_data(run: Run) -> None:
    s = run.secret
    r = login_checks(run)
    run.save(r, "access", lambda x: x.token("$.access_token"))
    ok = {"foo": "bar"}
    run.check("protected with the login token", lambda s_: Req("GET", "/protected", bearer=s_.need("access")), 200, ok)
    g = lambda t: hdr("GET", "/protected", "Bearer " + t)  # noqa: E731
    run.check("protected: crafted foo='baz'", g(craft(s, foo="baz", aud="some_audience")), 200, {"foo": "baz"})
    run.check("protected: another aud (aud is not verified)", g(craft(s, foo="bar", aud="someone_else")), 200, ok)
    run.check("protected: aud as a list", g(craft(s, foo="bar", aud=["a", "b"])), 200, ok)
    run.check("protected: no aud", g(craft(s, foo="bar")), 200, ok)
    run.check("protected: foo is a number", g(craft(s, foo=7, aud="some_audience")), 200, {"foo": 7})
    battery(run, "GET", "/protected", extra={"foo": "bar", "aud": "some_audience"}, ok=(200, ok))
    run.cross("GET /protected", "access", bearer("GET", "/protected"), 200, ok)


USERS = {
    1: {"id": 1, "full_name": "Bruce Wayne", "username": "batman"},
    2: {"id": 2, "full_name": "Ann Takamaki", "username": "panther"},
    3: {"id": 3, "full_name": "Jester Lavore", "username": "little_sapphire"},
}


def sc_automatic_user_loading(run: Run) -> None:
    s = run.secret
    wrong = "Wrong username or password"  # a bare JSON string, not an object
    run.check("login: wrong password", Req("POST", "/login", json={"username": "batman", "password": "x"}), 401, wrong)
    run.check("login: unknown user", Req("POST", "/login", json={"username": "robin", "password": "password"}), 401, wrong)
    run.check("login: empty JSON object", Req("POST", "/login", json={}), 401, wrong)
    r = run.check("login: batman", Req("POST", "/login", json={"username": "batman", "password": "password"}), 200, {"access_token": JWT})
    run.save(r, "batman", lambda x: x.token("$.access_token"))
    r = run.check("login: panther", Req("POST", "/login", json={"username": "panther", "password": "password"}), 200, {"access_token": JWT})
    run.save(r, "panther", lambda x: x.token("$.access_token"))
    subject_str = {"msg": "Subject must be a string"}
    # FJE's own token has an int sub and FJE refuses it (allow-listed for the port).
    run.check("who_am_i with the login token (batman)", lambda s_: Req("GET", "/who_am_i", bearer=s_.need("batman")), 422, subject_str)
    run.check("who_am_i with the login token (panther)", lambda s_: Req("GET", "/who_am_i", bearer=s_.need("panther")), 422, subject_str)
    g = lambda t: hdr("GET", "/who_am_i", "Bearer " + t)  # noqa: E731
    for uid, user in USERS.items():
        run.check(f"who_am_i: crafted sub '{uid}' ({user['username']})", g(craft(s, str(uid))), 200, user)
    run.check("who_am_i: crafted sub '99' (no such user)", g(craft(s, "99")), 401, {"msg": "Error loading the user 99"})
    run.check("who_am_i: crafted sub 'abc' (not an id)", g(craft(s, "abc")), 401, {"msg": "Error loading the user abc"})
    run.check("who_am_i: crafted int sub 1", g(craft(s, 1)), 422, subject_str)
    run.check("who_am_i: expired token of a missing user", g(expired(s, sub="99")), 401, EXPIRED)
    battery(run, "GET", "/who_am_i", sub="1", ok=(200, USERS[1]))
    # A token from the original (int sub) is refused by the original and must be by the port
    # (401, same message); a token from the port (string sub "1") is accepted by the original
    # (SQLite compares the text '1' with the integer id 1). In --self-test both are originals.
    run.cross(
        "GET /who_am_i",
        "batman",
        bearer("GET", "/who_am_i"),
        {run.o.role: 422, run.p.role: 422 if run.self_test else 200},
        {run.o.role: subject_str, run.p.role: subject_str if run.self_test else USERS[1]},
    )


def sc_blocklist_database(run: Run) -> None:
    r = run.check("login (no body)", Req("POST", "/login"), 200, {"access_token": JWT})
    run.save(r, "access", lambda x: x.token("$.access_token"))
    r = run.check("login again (second token)", Req("POST", "/login"), 200, {"access_token": JWT})
    run.save(r, "second", lambda x: x.token("$.access_token"))
    ok = {"hello": "world"}
    run.check("protected with the login token", lambda s: Req("GET", "/protected", bearer=s.need("access")), 200, ok)
    run.check("logout with no token", Req("DELETE", "/logout"), 401, MISSING_HDR)
    run.check("logout", lambda s: Req("DELETE", "/logout", bearer=s.need("access")), 200, {"msg": "JWT revoked"})
    run.check("protected with the revoked token", lambda s: Req("GET", "/protected", bearer=s.need("access")), 401, REVOKED)
    run.check("logout again with the revoked token", lambda s: Req("DELETE", "/logout", bearer=s.need("access")), 401, REVOKED)
    run.check("protected with the second token (still valid)", lambda s: Req("GET", "/protected", bearer=s.need("second")), 200, ok)
    run.check("logout with a refresh token", hdr("DELETE", "/logout", "Bearer " + craft(run.secret, "example_user", type_="refresh")), 422, NOT_REFRESH)
    battery(run, "GET", "/protected", sub="example_user", ok=(200, ok))
    battery(run, "DELETE", "/logout", sub="example_user", ok=(200, {"msg": "JWT revoked"}))
    # Each side has its own database: a token is sent to both, so both revoke it.
    run.cross("GET /protected", "second", bearer("GET", "/protected"), 200, ok)
    run.cross("DELETE /logout", "second", bearer("DELETE", "/logout"), 200, {"msg": "JWT revoked"})
    run.cross("GET /protected after logout", "second", bearer("GET", "/protected"), 401, REVOKED)


def sc_blocklist_redis(run: Run) -> None:
    rds = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    rds.ping()
    r = run.check("login (no body)", Req("POST", "/login"), 200, {"access_token": JWT})
    run.save(r, "access", lambda x: x.token("$.access_token"))
    r = run.check("login again (second token)", Req("POST", "/login"), 200, {"access_token": JWT})
    run.save(r, "second", lambda x: x.token("$.access_token"))
    ok = {"hello": "world"}
    run.check("protected with the login token", lambda s: Req("GET", "/protected", bearer=s.need("access")), 200, ok)
    run.cross("GET /protected before logout", "access", bearer("GET", "/protected"), 200, ok)

    def jti(tok: str) -> str:
        return b64url_json(tok.split(".")[1])["jti"]

    for side in run.sides:
        if "access" in side.state:
            k = jti(side.state["access"])
            run.redis_keys.append(k)
            run.fact(f"redis: no key for the {side.role}'s token before logout", not rds.exists(k), f"key {k}")
    run.check("logout with no token", Req("DELETE", "/logout"), 401, MISSING_HDR)
    # Each side revokes its own token; the other side sees it through the shared Redis.
    run.check("logout (each side its own token)", lambda s: Req("DELETE", "/logout", bearer=s.need("access")), 200, {"msg": "Access token revoked"})
    for side in run.sides:
        if "access" not in side.state:
            continue
        k = jti(side.state["access"])
        ttl, val = rds.ttl(k), rds.get(k)
        run.fact(
            f"redis: the {side.role}'s logout stored key=jti with TTL=access lifetime (3600 s)",
            val is not None and 3590 <= ttl <= 3600,
            f"GET {k} -> {val!r}, TTL {ttl} (FJE stores '' with ex=ACCESS_EXPIRES)",
        )
    run.check("protected with the revoked token", lambda s: Req("GET", "/protected", bearer=s.need("access")), 401, REVOKED)
    run.cross("GET /protected after logout (revoked by the issuer, refused by both)", "access", bearer("GET", "/protected"), 401, REVOKED)
    run.cross("DELETE /logout after logout", "access", bearer("DELETE", "/logout"), 401, REVOKED)
    run.check("protected with the second token (still valid)", lambda s: Req("GET", "/protected", bearer=s.need("second")), 200, ok)
    battery(run, "GET", "/protected", sub="example_user", ok=(200, ok))
    run.cross("GET /protected", "second", bearer("GET", "/protected"), 200, ok)
    # A token revoked through one server only: the original's second token, logged out at the
    # port, is then refused by the original (and the port's, logged out at the original).
    if "second" in run.o.state and "second" in run.p.state:
        for issuer, other in ((run.o, run.p), (run.p, run.o)):
            tok = issuer.state["second"]
            run.redis_keys.append(jti(tok))
            who = "original" if issuer is run.o else "port"
            try:
                r1 = other.send(Req("DELETE", "/logout", bearer=tok))
                r2 = issuer.send(Req("GET", "/protected", bearer=tok))
                good = r1.status == 200 and r2.status == 401 and r2.body == REVOKED
                run.fact(
                    f"cross: the {who}'s token logged out at the other server is refused by the {who}",
                    good,
                    f"logout at the other: {r1.short()}; then the {who}: {r2.short()}",
                )
            except (OSError, http.client.HTTPException) as e:
                run.fact(f"cross: the {who}'s token logged out at the other server is refused by the {who}", False, str(e))
    else:
        run.fact("cross: logout at one server, refused by the other", False, "a second token is missing")
    for k in run.redis_keys:
        rds.delete(k)


def sc_custom_decorators(run: Run) -> None:
    s = run.secret
    r = run.check("login (no body)", Req("POST", "/login"), 200, {"access_token": JWT})
    run.save(r, "access", lambda x: x.token("$.access_token"))
    ok = {"foo": "bar"}
    admins = {"msg": "Admins only!"}
    run.check("protected with the login token (is_administrator true)", lambda s_: Req("GET", "/protected", bearer=s_.need("access")), 200, ok)
    g = lambda t: hdr("GET", "/protected", "Bearer " + t)  # noqa: E731
    run.check("protected: is_administrator false -> custom 403", g(craft(s, "admin_user", is_administrator=False)), 403, admins)
    run.check("protected: non-admin, another identity -> custom 403", g(craft(s, "someone", is_administrator=False)), 403, admins)
    run.check("protected: expired admin token", g(expired(s, sub="admin_user", is_administrator=True)), 401, EXPIRED)
    run.check("protected: refresh token with is_administrator true", g(craft(s, "admin_user", type_="refresh", is_administrator=True)), 422, NOT_REFRESH)
    battery(run, "GET", "/protected", sub="admin_user", extra={"is_administrator": True}, ok=(200, ok))
    run.cross("GET /protected", "access", bearer("GET", "/protected"), 200, ok)


def sc_loaders(run: Run) -> None:
    s = run.secret
    r = run.check("login (no body)", Req("POST", "/login"), 200, {"access_token": JWT})
    run.save(r, "access", lambda x: x.token("$.access_token"))
    ok = {"hello": "world"}
    dave = {"code": "dave", "err": "I can't let you do that"}
    run.check("protected with the login token", lambda s_: Req("GET", "/protected", bearer=s_.need("access")), 200, ok)
    g = lambda t: hdr("GET", "/protected", "Bearer " + t)  # noqa: E731
    run.check("protected: expired -> the custom expired body", g(expired(s, sub="example_user")), 401, dave)
    run.check("protected: expired refresh token -> the custom expired body (exp before type)", g(expired(s, sub="example_user", type_="refresh")), 401, dave)
    battery(run, "GET", "/protected", sub="example_user", expired_body=dave, ok=(200, ok))
    run.cross("GET /protected", "access", bearer("GET", "/protected"), 200, ok)


def sc_optional(run: Run) -> None:
    s = run.secret
    r = login_checks(run)
    run.save(r, "access", lambda x: x.token("$.access_token"))
    path = "/optionally_protected"
    anon = {"logged_in_as": "anonymous user"}
    me = {"logged_in_as": "test"}
    run.check("optional: with the login token", lambda s_: Req("GET", path, bearer=s_.need("access")), 200, me)
    run.check("optional: no token -> anonymous", Req("GET", path), 200, anon)
    run.check("optional: 'Authorization: Basic ...' counts as no token", hdr("GET", path, "Basic dXNlcjpwYXNz"), 200, anon)
    run.check("optional: empty Authorization counts as no token", hdr("GET", path, ""), 200, anon)
    run.check("optional: 'Authorization: Bearer' without a token", hdr("GET", path, "Bearer"), 422, BAD_HDR)
    g = lambda t: hdr("GET", path, "Bearer " + t)  # noqa: E731
    run.check("optional: garbage token 'abc' is refused", g("abc"), 422, {"msg": "Not enough segments"})
    run.check("optional: garbage token 'a.b.c' is refused", g("a.b.c"), 422, {"msg": "Invalid header padding"})
    run.check("optional: token signed with another secret is refused", g(craft(OTHER_SECRET)), 422, {"msg": "Signature verification failed"})
    run.check("optional: expired token is refused", g(expired(s)), 401, EXPIRED)
    run.check("optional: refresh token is refused", g(craft(s, type_="refresh")), 422, NOT_REFRESH)
    run.check("optional: crafted token for 'bob'", g(craft(s, "bob")), 200, {"logged_in_as": "bob"})
    # The view tests `if current_identity:`, so an empty identity is "anonymous user".
    run.check("optional: crafted token with an empty sub -> anonymous (Python truthiness)", g(craft(s, "")), 200, anon)
    run.cross("GET /optionally_protected", "access", bearer("GET", path), 200, me)


def missing_all(json_msg: str = "Invalid content-type. Must be application/json.") -> dict:
    return {
        "msg": "Missing JWT in headers, cookies, json or query_string (Missing Authorization Header; "
        f'Missing cookie "access_token_cookie"; {json_msg}; Missing \'jwt\' query paramater)'
    }


def sc_jwt_locations(run: Run) -> None:
    s = run.secret
    ok = {"foo": "bar"}
    r = run.check("login_without_cookies", Req("POST", "/login_without_cookies"), 200, {"access_token": JWT}, cookies=[])
    run.save(r, "access", lambda x: x.token("$.access_token"))
    r = run.check(
        "login_with_cookies",
        Req("POST", "/login_with_cookies"),
        200,
        {"msg": "login successful"},
        cookies=["access_token_cookie", "csrf_access_token"],
    )
    run.save(r, "jar", lambda x: x.cookie_jar())
    run.check(
        "logout_with_cookies",
        Req("POST", "/logout_with_cookies"),
        200,
        {"msg": "logout successful"},
        cookies=["access_token_cookie", "csrf_access_token", "refresh_token_cookie", "csrf_refresh_token"],
    )
    run.check("logout_with_cookies while logged in", lambda s_: Req("POST", "/logout_with_cookies", cookies=s_.need("jar")), 200,
              {"msg": "logout successful"},
              cookies=["access_token_cookie", "csrf_access_token", "refresh_token_cookie", "csrf_refresh_token"])

    P = "/protected"
    run.check("protected GET: no token anywhere", Req("GET", P), 401, missing_all())
    run.check("protected POST: no token anywhere", Req("POST", P), 401, missing_all())
    run.check("protected POST: JSON without the key", Req("POST", P, json={"token": "x"}), 401, missing_all('Missing "access_token" key in json data.'))
    run.check("protected POST: malformed JSON body", Req("POST", P, raw=b"{", content_type="application/json"), 401, missing_all('Missing "access_token" key in json data.'))
    run.check("protected POST: application/merge-patch+json counts as JSON", lambda s_: Req("POST", P, json={"access_token": s_.need("access")}, content_type="application/merge-patch+json"), 200, ok)
    run.check("protected POST: JSON with charset", lambda s_: Req("POST", P, json={"access_token": s_.need("access")}, content_type="application/json; charset=utf-8"), 200, ok)
    run.check("protected POST: token JSON but sent as text/plain", lambda s_: Req("POST", P, raw=json.dumps({"access_token": s_.need("access")}).encode(), content_type="text/plain"), 401, missing_all())
    run.check("protected GET: ?jwt= empty", Req("GET", P, query={"jwt": ""}), 401, missing_all())

    # headers
    run.check("protected GET: header", lambda s_: Req("GET", P, bearer=s_.need("access")), 200, ok)
    run.check("protected POST: header (no CSRF for headers)", lambda s_: Req("POST", P, bearer=s_.need("access")), 200, ok)
    # cookies
    run.check("protected GET: cookies (no CSRF needed on GET)", lambda s_: Req("GET", P, cookies=s_.need("jar")), 200, ok)
    run.check("protected GET: access cookie only, no CSRF cookie", lambda s_: Req("GET", P, cookies={"access_token_cookie": s_.need("jar")["access_token_cookie"]}), 200, ok)
    run.check("protected POST: cookies without X-CSRF-TOKEN", lambda s_: Req("POST", P, cookies=s_.need("jar")), 401, {"msg": "Missing CSRF token"})
    run.check("protected POST: cookies with a wrong X-CSRF-TOKEN", lambda s_: Req("POST", P, cookies=s_.need("jar"), headers={"X-CSRF-TOKEN": str(uuid.uuid4())}), 401, {"msg": "CSRF double submit tokens do not match"})
    run.check(
        "protected POST: cookies with the right X-CSRF-TOKEN",
        lambda s_: Req("POST", P, cookies=s_.need("jar"), headers={"X-CSRF-TOKEN": s_.need("jar")["csrf_access_token"]}),
        200,
        ok,
    )
    run.check(
        "protected POST: X-CSRF-TOKEN header name in lower case",
        lambda s_: Req("POST", P, cookies=s_.need("jar"), headers={"x-csrf-token": s_.need("jar")["csrf_access_token"]}),
        200,
        ok,
    )
    run.check("protected POST: csrf cookie only (no access cookie)", lambda s_: Req("POST", P, cookies={"csrf_access_token": s_.need("jar")["csrf_access_token"]}, headers={"X-CSRF-TOKEN": s_.need("jar")["csrf_access_token"]}), 401, missing_all())
    t_nocsrf = craft(s, "example_user", drop=("csrf",))
    run.check("protected POST: cookie token without a csrf claim, with X-CSRF-TOKEN", Req("POST", P, cookies={"access_token_cookie": t_nocsrf}, headers={"X-CSRF-TOKEN": "x"}), 422, {"msg": "Missing claim: csrf"})
    run.check("protected GET: cookie token without a csrf claim", Req("GET", P, cookies={"access_token_cookie": t_nocsrf}), 200, ok)
    run.check("protected GET: garbage cookie", Req("GET", P, cookies={"access_token_cookie": "abc"}), 422, {"msg": "Not enough segments"})
    run.check("protected GET: expired cookie", Req("GET", P, cookies={"access_token_cookie": expired(s, sub="example_user")}), 401, EXPIRED)
    run.check("protected GET: refresh token in the cookie", Req("GET", P, cookies={"access_token_cookie": craft(s, "example_user", type_="refresh")}), 422, NOT_REFRESH)
    run.check("protected GET: cookie signed with another secret", Req("GET", P, cookies={"access_token_cookie": craft(OTHER_SECRET, "example_user")}), 422, {"msg": "Signature verification failed"})
    # json
    run.check("protected POST: JSON body {access_token}", lambda s_: Req("POST", P, json={"access_token": s_.need("access")}), 200, ok)
    run.check("protected POST: JSON body with a garbage token", Req("POST", P, json={"access_token": "abc"}), 422, {"msg": "Not enough segments"})
    run.check("protected POST: JSON body with an expired token", Req("POST", P, json={"access_token": expired(s, sub="example_user")}), 401, EXPIRED)
    # query string
    run.check("protected GET: ?jwt=", lambda s_: Req("GET", P, query={"jwt": s_.need("access")}), 200, ok)
    run.check("protected POST: ?jwt= (no CSRF for the query string)", lambda s_: Req("POST", P, query={"jwt": s_.need("access")}), 200, ok)
    run.check("protected GET: ?jwt=abc", Req("GET", P, query={"jwt": "abc"}), 422, {"msg": "Not enough segments"})
    run.check("protected GET: ?jwt= expired", Req("GET", P, query={"jwt": expired(s, sub="example_user")}), 401, EXPIRED)
    # order: only a missing token falls through
    run.check("order: garbage header + valid cookie -> the header's error", lambda s_: Req("GET", P, headers={"Authorization": "Bearer abc"}, cookies=s_.need("jar")), 422, {"msg": "Not enough segments"})
    run.check("order: 'Basic' header (counts as missing) + valid cookie", lambda s_: Req("GET", P, headers={"Authorization": "Basic eA=="}, cookies=s_.need("jar")), 200, ok)
    run.check("order: valid header + garbage cookie", lambda s_: Req("GET", P, bearer=s_.need("access"), cookies={"access_token_cookie": "abc"}), 200, ok)
    run.check("order: cookie on POST without CSRF + valid query -> CSRF error (no fall-through)", lambda s_: Req("POST", P, cookies=s_.need("jar"), query={"jwt": s_.need("access")}), 401, {"msg": "Missing CSRF token"})
    run.check("order: garbage cookie + valid JSON body -> the cookie's error", lambda s_: Req("POST", P, cookies={"access_token_cookie": "abc"}, headers={"X-CSRF-TOKEN": "x"}, json={"access_token": s_.need("access")}), 422, {"msg": "Not enough segments"})
    run.check("order: expired header + valid query -> expired", lambda s_: Req("GET", P, headers={"Authorization": "Bearer " + expired(s, sub="example_user")}, query={"jwt": s_.need("access")}), 401, EXPIRED)
    # /only_headers
    Q = "/only_headers"
    run.check("only_headers: header", lambda s_: Req("GET", Q, bearer=s_.need("access")), 200, {"foo": "baz"})
    run.check("only_headers: cookie only", lambda s_: Req("GET", Q, cookies=s_.need("jar")), 401, MISSING_HDR)
    run.check("only_headers: ?jwt= only", lambda s_: Req("GET", Q, query={"jwt": s_.need("access")}), 401, MISSING_HDR)
    run.check("only_headers: garbage header + valid cookie", lambda s_: Req("GET", Q, headers={"Authorization": "Bearer abc"}, cookies=s_.need("jar")), 422, {"msg": "Not enough segments"})
    battery(run, "GET", Q, sub="example_user", ok=(200, {"foo": "baz"}))

    # cross: tokens and cookies (with their CSRF values) of one server at the other
    run.cross("GET /protected header", "access", bearer("GET", P), 200, ok)
    run.cross("GET /protected ?jwt=", "access", lambda t: Req("GET", P, query={"jwt": t}), 200, ok)
    run.cross("POST /protected JSON body", "access", lambda t: Req("POST", P, json={"access_token": t}), 200, ok)
    run.cross("GET /only_headers header", "access", bearer("GET", Q), 200, {"foo": "baz"})
    run.cross("GET /protected cookies", "jar", lambda j: Req("GET", P, cookies=j), 200, ok)
    run.cross("POST /protected cookies + X-CSRF-TOKEN", "jar", lambda j: Req("POST", P, cookies=j, headers={"X-CSRF-TOKEN": j.get("csrf_access_token", "")}), 200, ok)
    run.cross("POST /protected cookies without X-CSRF-TOKEN", "jar", lambda j: Req("POST", P, cookies=j), 401, {"msg": "Missing CSRF token"})


def sc_implicit_refresh(run: Run) -> None:
    s = run.secret
    ok = {"foo": "bar"}
    set_names = ["access_token_cookie", "csrf_access_token"]
    unset_names = ["access_token_cookie", "csrf_access_token", "refresh_token_cookie", "csrf_refresh_token"]
    r = run.check("login", Req("POST", "/login"), 200, {"msg": "login successful"}, cookies=set_names)
    run.save(r, "jar", lambda x: x.cookie_jar())
    run.check("protected with the login cookies (60 min left: no refresh)", lambda s_: Req("GET", "/protected", cookies=s_.need("jar")), 200, ok, cookies=[])
    run.check("protected: no cookie", Req("GET", "/protected"), 401, {"msg": 'Missing cookie "access_token_cookie"'}, cookies=[])
    run.check("protected: header only (cookies are the only location)", lambda s_: Req("GET", "/protected", bearer=s_.need("jar").get("access_token_cookie", "")), 401, {"msg": 'Missing cookie "access_token_cookie"'}, cookies=[])
    near = craft(s, "example_user", exp_in=600, age=3000)
    r = run.check("protected: cookie expiring in 10 minutes -> 200 and a new access cookie", Req("GET", "/protected", cookies={"access_token_cookie": near}), 200, ok, cookies=set_names)
    run.save(r, "refreshed jar", lambda x: x.cookie_jar())
    for side, resp in zip(run.sides, r):
        if resp is not None:
            got = resp.tokens.get("cookie:access_token_cookie")
            sub = b64url_json(got.split(".")[1]).get("sub") if got else None
            run.fact(f"implicit refresh: the {side.role}'s new cookie is a new token for the same identity", got is not None and got != near and sub == "example_user", f"sub {sub!r}")
    run.check("protected with the re-issued cookies", lambda s_: Req("GET", "/protected", cookies=s_.need("refreshed jar")), 200, ok, cookies=[])
    run.check("protected: cookie expiring in 29 minutes -> refreshed", Req("GET", "/protected", cookies={"access_token_cookie": craft(s, "example_user", exp_in=29 * 60, age=31 * 60)}), 200, ok, cookies=set_names)
    run.check("protected: cookie expiring in 45 minutes -> not refreshed", Req("GET", "/protected", cookies={"access_token_cookie": craft(s, "example_user", exp_in=45 * 60, age=15 * 60)}), 200, ok, cookies=[])
    run.check("protected: expired cookie -> 401, no new cookie", Req("GET", "/protected", cookies={"access_token_cookie": expired(s, sub="example_user")}), 401, EXPIRED, cookies=[])
    run.check("protected: garbage cookie", Req("GET", "/protected", cookies={"access_token_cookie": "abc"}), 422, {"msg": "Not enough segments"}, cookies=[])
    run.check("protected: near-expiry cookie signed with another secret -> no new cookie", Req("GET", "/protected", cookies={"access_token_cookie": craft(OTHER_SECRET, "example_user", exp_in=600, age=3000)}), 422, {"msg": "Signature verification failed"}, cookies=[])
    run.check("protected: near-expiry refresh token in the cookie", Req("GET", "/protected", cookies={"access_token_cookie": craft(s, "example_user", type_="refresh", exp_in=600)}), 422, NOT_REFRESH, cookies=[])
    run.check("logout", Req("POST", "/logout"), 200, {"msg": "logout successful"}, cookies=unset_names)
    run.check("logout with a near-expiry cookie: only deletions (logout verifies no JWT)", Req("POST", "/logout", cookies={"access_token_cookie": near}), 200, {"msg": "logout successful"}, cookies=unset_names)
    run.check("login with a near-expiry cookie: only the login's cookies", Req("POST", "/login", cookies={"access_token_cookie": near}), 200, {"msg": "login successful"}, cookies=set_names)
    run.cross("GET /protected login cookies", "jar", lambda j: Req("GET", "/protected", cookies=j), 200, ok, cookies=[])
    run.cross("GET /protected re-issued cookies", "refreshed jar", lambda j: Req("GET", "/protected", cookies=j), 200, ok, cookies=[])


SCENARIOS: dict[str, Callable[[Run], None]] = {
    "simple": sc_simple,
    "refresh_tokens": sc_refresh_tokens,
    "token_freshness": sc_token_freshness,
    "additional_data_in_access_token": sc_additional_data,
    "automatic_user_loading": sc_automatic_user_loading,
    "blocklist_database": sc_blocklist_database,
    "blocklist_redis": sc_blocklist_redis,
    "custom_decorators": sc_custom_decorators,
    "loaders": sc_loaders,
    "optional_protected_endpoints": sc_optional,
    "jwt_locations": sc_jwt_locations,
    "implicit_refresh": sc_implicit_refresh,
}
assert list(SCENARIOS) == EXAMPLES


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def run_example(name: str, args: argparse.Namespace, logdir: str) -> list[Result]:
    secret = secrets.token_urlsafe(36)  # 48 characters, >= 32 bytes
    po, pp = free_port(), free_port()
    while pp == po:
        pp = free_port()
    env = dict(os.environ)
    env.pop("KEYCARD_JWT_SECRET", None)
    serve = os.path.join(ORIGINALS, "serve.py")
    original = Server(f"{name} original", [sys.executable, serve, name, str(po), secret], env, po, logdir)
    if args.self_test:
        port_role = "original#2"
        port = Server(f"{name} original#2", [sys.executable, serve, name, str(pp), secret], env, pp, logdir)
    else:
        port_role = "port"
        penv = dict(env)
        penv.update(
            KEYCARD_BIND=f"127.0.0.1:{pp}",
            KEYCARD_JWT_SECRET=secret,
            KEYCARD_REDIS_URL=REDIS_URL,
        )
        port = Server(f"{name} port", [os.path.join(args.bin_dir, name)], penv, pp, logdir)
    print(f"== {name}: original on :{po}, {port_role} on :{pp}" + (f" ({port.argv[0]})" if not args.self_test else ""))
    sys.stdout.flush()
    run = Run(name, Side("original", po), Side(port_role, pp), secret, args.self_test, args.verbose)
    servers = [original, port]
    completed = False
    try:
        for srv in servers:
            try:
                srv.start()
            except StartError as e:
                run.record(f"start {srv.label}", "FAIL", str(e))
                return run.results
        for srv in servers:
            try:
                srv.wait_ready(args.start_timeout)
            except StartError as e:
                run.record(f"start {srv.label}", "FAIL", str(e))
                return run.results
        try:
            SCENARIOS[name](run)
            completed = True
        except Exception:
            run.record("scenario crashed", "FAIL", traceback.format_exc())
        for srv, side in zip(servers, run.sides):
            if srv.proc.poll() is not None:
                run.record(f"{srv.label} still running at the end", "FAIL", f"exited with {srv.proc.returncode}\n{srv.tail()}")
        if any(r.verdict == "FAIL" for r in run.results):
            for srv in servers:
                print(f"      log of {srv.label} ({srv.log_path}):\n{srv.tail(15)}")
    finally:
        for srv in servers:
            srv.stop()
    if completed and not args.self_test:
        for k in ALLOWED:
            if k[0] == name and k not in run.used_allow:
                run.record(f"allow-list entry names a check that did not run: {k[1]!r}", "FAIL", "fix ALLOWED")
    return run.results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin-dir", default=os.path.join(REPO, "target", "debug", "examples"), help="where the ports are (default: target/debug/examples)")
    ap.add_argument("--only", action="append", metavar="NAME", choices=EXAMPLES, help="run only this example (repeatable)")
    ap.add_argument("--self-test", action="store_true", help="a second instance of the original stands in for the port")
    ap.add_argument("--start-timeout", type=float, default=30.0, help="seconds a server may take to answer (default 30)")
    ap.add_argument("--log-dir", help="keep the servers' logs here (default: a temporary folder, removed when all pass)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print both answers for passing checks too")
    args = ap.parse_args()
    args.bin_dir = os.path.abspath(args.bin_dir)
    names = args.only or EXAMPLES

    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError as e:
        if "blocklist_redis" in names:
            print(f"FAIL  Redis does not answer at {REDIS_URL}: {e} (blocklist_redis needs it)")
            return 1

    logdir = args.log_dir or tempfile.mkdtemp(prefix="fje-differential-")
    os.makedirs(logdir, exist_ok=True)
    mode = "SELF-TEST (original vs original)" if args.self_test else f"ports from {args.bin_dir}"
    print(f"Flask-JWT-Extended differential test: {len(names)} example(s), {mode}; logs in {logdir}")
    results: list[Result] = []
    for name in names:
        results.extend(run_example(name, args, logdir))

    print("\n== summary")
    fails = [r for r in results if r.verdict == "FAIL"]
    for name in names:
        rs = [r for r in results if r.example == name]
        c = {v: sum(1 for r in rs if r.verdict == v) for v in ("PASS", "ALLOW", "FAIL")}
        print(f"  {name:34} {c['PASS']:4} pass {c['ALLOW']:3} allowed {c['FAIL']:4} FAIL")
    total = {v: sum(1 for r in results if r.verdict == v) for v in ("PASS", "ALLOW", "FAIL")}
    print(f"  {'total':34} {total['PASS']:4} pass {total['ALLOW']:3} allowed {total['FAIL']:4} FAIL")
    if fails:
        print("\nFAILED checks:")
        for r in fails:
            print(f"  {r.example}: {r.label}")
        print(f"(server logs: {logdir})")
        return 1
    if not args.log_dir:
        import shutil

        shutil.rmtree(logdir, ignore_errors=True)
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
