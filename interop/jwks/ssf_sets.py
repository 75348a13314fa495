"""Issue 15 interop: PyJWT verifies keycard's Security Event Tokens with the published JWKS.

For each asymmetric algorithm (ES256, EdDSA, RS256): starts the real keycard binary with that
algorithm and a receiver credential, makes a Shared Signals poll stream, ends a session three
ways (logout, refresh-token reuse, an admin disable through the CLI), polls the stream and
verifies every SET independently of keycard: PyJWT's PyJWKClient fetches the key named by the
SET's `kid` from `jwks_uri` (found through /.well-known/ssf-configuration), `jwt.decode` pins the
algorithm, the issuer, the audience (the stream id) and requires `iat`/`jti`/`iss`; the header
must say `typ: secevent+jwt`, the claims must carry a CAEP session-revoked event for the right
session and user, and neither `sub` nor `exp` (SSF 1.0 §4.1). An access token is also decoded
with PyJWT to check that the two token kinds are told apart by `typ`.

    .venv/bin/python ssf_sets.py --server-bin PATH [--algs ES256,EdDSA,RS256]

Exit 0 when every check passed; prints one line per check."""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile

import jwt

import common

SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
PASSWORD = "correct horse battery staple"
JWT_ALG = {"ES256": "ES256", "EdDSA": "EdDSA", "RS256": "RS256"}

failures: list[str] = []


def check(name: str, ok: bool, detail: str = "") -> None:
    print(f"{'ok  ' if ok else 'FAIL'} {name}{'' if ok else ': ' + detail}")
    if not ok:
        failures.append(name)


class Keycard:
    def __init__(self, binary: str, alg: str, credential: str):
        self.binary = binary
        self.dir = tempfile.mkdtemp(prefix=f"keycard-ssf-{alg}-")
        port = common.free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("KEYCARD_")}
        self.env.update({
            "KEYCARD_BIND": f"127.0.0.1:{port}",
            "KEYCARD_PUBLIC_URL": self.base,
            "KEYCARD_DATABASE_URL": f"sqlite://{self.dir}/keycard.db",
            "KEYCARD_JWT_ALGORITHM": alg,
            "KEYCARD_SECRET_FILE": os.path.join(self.dir, "keycard.secret"),
            "KEYCARD_RESOURCE_SERVER_TOKENS": credential,
            "KEYCARD_RATE_LIMIT": "0",
            "KEYCARD_ARGON2_MEMORY_KIB": "1024",
            "KEYCARD_ARGON2_ITERATIONS": "1",
        })
        self.log = open(os.path.join(self.dir, "keycard.log"), "w")
        self.proc = subprocess.Popen([binary, "serve"], cwd=self.dir, env=self.env, stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        common.wait_http(self.base + "/healthz", 60, self.proc)

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([self.binary, *args], cwd=self.dir, env=self.env, capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def post(url: str, body: dict, token: str | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return common.http("POST", url, body, headers=headers)


def run(binary: str, alg: str) -> None:
    credential = secrets.token_hex(32)
    keycard = Keycard(binary, alg, credential)
    try:
        base = keycard.base
        config = common.get_json(base + "/.well-known/ssf-configuration")
        check(f"{alg}: ssf-configuration names the poll method and jwks_uri",
              config.get("delivery_methods_supported") == ["urn:ietf:rfc:8936"] and config.get("issuer") == base
              and config.get("jwks_uri") == base + "/.well-known/jwks.json", repr(config))
        status, _, stream = post(config["configuration_endpoint"], {"delivery": {"method": "urn:ietf:rfc:8936"}},
                                 credential)
        check(f"{alg}: a stream is made (201)", status == 201, f"{status} {stream!r}")
        stream_id = stream["stream_id"]

        sessions = {}
        for name in ("alice", "bob", "carol"):
            status, _, _ = post(base + "/register", {"username": name, "password": PASSWORD})
            status, _, tokens = post(base + "/login", {"username": name, "password": PASSWORD})
            sessions[name] = tokens
        access = sessions["alice"]["access_token"]
        common.http("DELETE", base + "/logout", headers={"Authorization": f"Bearer {access}"})
        refresh = sessions["bob"]["refresh_token"]
        post(base + "/token/refresh", {}, refresh)
        post(base + "/token/refresh", {}, refresh)  # reuse: the session ends
        out = keycard.cli("user", "disable", "carol", "--database-url", keycard.env["KEYCARD_DATABASE_URL"])
        check(f"{alg}: keycard user disable", out.returncode == 0, out.stderr)

        status, _, answer = post(stream["delivery"]["endpoint_url"], {"returnImmediately": True}, credential)
        check(f"{alg}: poll answers 200 with sets", status == 200 and isinstance(answer.get("sets"), dict),
              f"{status} {answer!r}")
        sets = answer.get("sets", {})
        # A disable from the CLI reaches the server within its periodic re-read (1 s).
        if len(sets) < 3:
            status, _, more = post(stream["delivery"]["endpoint_url"], {"ack": list(sets)}, credential)
            sets = {**sets, **more.get("sets", {})}
        client = jwt.PyJWKClient(config["jwks_uri"])
        seen = {}
        for jti, token in sets.items():
            header = jwt.get_unverified_header(token)
            check(f"{alg}: SET {jti} has typ secevent+jwt and a kid", header.get("typ") == "secevent+jwt"
                  and bool(header.get("kid")), repr(header))
            key = client.get_signing_key_from_jwt(token)
            try:
                claims = jwt.decode(token, key.key, algorithms=[JWT_ALG[alg]], issuer=base, audience=stream_id,
                                    options={"require": ["iss", "iat", "jti", "aud"], "verify_exp": False})
            except jwt.PyJWTError as e:
                check(f"{alg}: PyJWT verifies SET {jti}", False, repr(e))
                continue
            check(f"{alg}: PyJWT verifies SET {jti}", claims["jti"] == jti)
            check(f"{alg}: SET {jti} has no sub and no exp", "sub" not in claims and "exp" not in claims,
                  repr(claims))
            event = claims.get("events", {}).get(SESSION_REVOKED)
            subject = claims.get("sub_id", {})
            check(f"{alg}: SET {jti} is a CAEP session-revoked event with a complex subject",
                  isinstance(event, dict) and subject.get("format") == "complex", repr(claims))
            seen[subject.get("user", {}).get("sub")] = (subject.get("session", {}).get("id"), event)
        for name, reason in (("alice", "logout"), ("bob", "refresh token reuse"), ("carol", None)):
            sid = common.segments(sessions[name]["access_token"])[1]["sid"]
            got = seen.get(name)
            check(f"{alg}: {name}'s session end arrived as an event", got is not None and got[0] == sid,
                  f"{sorted(seen)} {got!r}")
            if got and reason:
                check(f"{alg}: {name}'s event says why", got[1].get("reason_admin", {}).get("en") == reason,
                      repr(got[1]))

        # The two kinds stay apart: an access token carries typ JWT, never secevent+jwt.
        header = jwt.get_unverified_header(sessions["carol"]["access_token"])
        check(f"{alg}: access tokens are typ JWT, not SETs", header.get("typ") == "JWT", repr(header))
        # Introspection (RFC 7662) answers for the same credential.
        status, _, body = common.http("POST", base + "/introspect", None, headers={
            "Authorization": f"Bearer {credential}", "Content-Type": "application/x-www-form-urlencoded"})
        check(f"{alg}: introspection without a token is a 400", status == 400, f"{status} {body!r}")
    finally:
        keycard.stop()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server-bin", required=True)
    parser.add_argument("--algs", default="ES256,EdDSA,RS256")
    args = parser.parse_args()
    for alg in args.algs.split(","):
        run(args.server_bin, alg)
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
