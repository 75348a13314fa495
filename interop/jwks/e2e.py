#!/usr/bin/env python3
"""End-to-end JWKS interop test against a real keycard server (README.md).

    .venv/bin/python e2e.py --server-bin target/debug/keycard [--algs ES256,EdDSA,RS256,HS256]
                            [--start-timeout 30] [--rotation-deadline 3] [--log-dir DIR]

For each algorithm: `keycard serve` on a free loopback port with a fresh SQLite database
(KEYCARD_JWT_ALGORITHM=<alg>, KEYCARD_AUDIENCE set), a user registered and logged in over HTTP,
then:
  * discovery and JWKS: issuer, jwks_uri, Cache-Control, no private members, kid = RFC 7638
    thumbprint, alg, endpoints listed in discovery exist;
  * PyJWT's PyJWKClient and jose verify the access token from the JWKS URL and via discovery
    (iss and aud checked, algorithm pinned), and their checks bite (wrong iss/aud, alg outside
    the pinned list are refused);
  * every attack token of attack_tokens.py is refused by both clients (pinned and with a broad
    list) AND by keycard itself (GET /protected answers 401/422 with a JSON {"msg"}); no one
    fetches the attacker's jku/x5u;
  * `keycard keys rotate` (asymmetric algorithms): a new kid within --rotation-deadline seconds
    without a restart, both kids published, old and new tokens verified by both clients (cold and
    long-lived) and by keycard, the old refresh token still refreshes, `keys list` shows both kids
    and no key material; the attacks again, now with two keys of one algorithm;
  * ES256+kek: ES256 again with KEYCARD_KEY_ENCRYPTION_KEY set: the same checks (so `keys
    rotate` must work with sealed keys), and no row of signing_keys holds a plain PKCS#8 key;
  * HS256+issuer: HS256 with KEYCARD_ISSUER set, so tokens carry iss and discovery exists (on
    plain HS256, no discovery and no iss are reported as INFO: FJE's token format is kept);
  * HS256 (control): the JWKS is empty, both clients refuse the token as having no key, keycard
    accepts it, and the key-independent attacks are refused by everyone.
The server's log must not contain private key material. Exit 1 on any failure, with a table.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import suite  # noqa: E402

AUDIENCE = "keycard-interop"
PASSWORD = "interop-Correct-Horse-42"
PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "k", "oth")


class Server:
    def __init__(self, binary: str, alg: str, log_dir: str, start_timeout: float, kek: str | None = None,
                 set_issuer: bool = False):
        self.binary = binary
        self.alg = alg
        self.kek = kek
        self.dir = tempfile.mkdtemp(prefix=f"keycard-jwks-{alg}-")
        self.port = common.free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.database_url = f"sqlite://{self.dir}/keycard.db"
        self.issuer = self.base if set_issuer else None
        self.log_path = os.path.join(log_dir, f"keycard-{alg}{'-kek' if kek else ''}{'-issuer' if set_issuer else ''}.log")
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEYCARD_")}
        env.update({
            "KEYCARD_BIND": f"127.0.0.1:{self.port}",
            "KEYCARD_DATABASE_URL": self.database_url,
            "KEYCARD_JWT_ALGORITHM": alg,
            "KEYCARD_AUDIENCE": AUDIENCE,
            "KEYCARD_SECRET_FILE": os.path.join(self.dir, "keycard.secret"),
            "KEYCARD_RATE_LIMIT": "0",
            "KEYCARD_ARGON2_MEMORY_KIB": "1024",
            "KEYCARD_ARGON2_ITERATIONS": "1",
            "RUST_LOG": env.get("RUST_LOG", "info"),
        })
        if kek:
            env["KEYCARD_KEY_ENCRYPTION_KEY"] = kek
        if self.issuer:
            env["KEYCARD_ISSUER"] = self.issuer
        self.env = env
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([binary, "serve"], cwd=self.dir, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        common.wait_http(self.base + "/healthz", start_timeout, self.proc)

    def cli(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run([self.binary, *args], cwd=self.dir, env=self.env, capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_text(self) -> str:
        self.log.flush()
        with open(self.log_path, errors="replace") as f:
            return f.read()


def preflight(report: suite.Report, binary: str) -> dict:
    """What the binary offers: fails clearly when the keys CLI or the algorithm setting is absent."""
    found = {"serve_alg": False, "rotate": False, "list": False, "rotate_help": ""}
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        report.add("preflight", "server binary exists", "keycard", False, f"{binary} is not an executable file")
        return found
    serve = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True, timeout=30)
    found["serve_alg"] = "KEYCARD_JWT_ALGORITHM" in serve.stdout
    report.add("preflight", "`keycard serve` knows KEYCARD_JWT_ALGORITHM", "keycard", found["serve_alg"],
               "not in `keycard serve --help`: this binary predates asymmetric signing (issue 13, branch h-store)")
    rotate = subprocess.run([binary, "keys", "rotate", "--help"], capture_output=True, text=True, timeout=30)
    found["rotate"] = rotate.returncode == 0
    found["rotate_help"] = rotate.stdout
    report.add("preflight", "`keycard keys rotate` exists", "keycard", found["rotate"],
               f"`keycard keys rotate --help` exited {rotate.returncode}: {(rotate.stderr or rotate.stdout).strip()[:200]}")
    listing = subprocess.run([binary, "keys", "list", "--help"], capture_output=True, text=True, timeout=30)
    found["list"] = listing.returncode == 0
    report.add("preflight", "`keycard keys list` exists", "keycard", found["list"],
               f"`keycard keys list --help` exited {listing.returncode}")
    return found


def register_and_login(server: Server, username: str) -> dict:
    status, _, body = common.http("POST", server.base + "/register", {"username": username, "password": PASSWORD})
    if status != 201:
        raise RuntimeError(f"POST /register: HTTP {status} {body!r}")
    return login(server, username)


def login(server: Server, username: str) -> dict:
    status, _, body = common.http("POST", server.base + "/login", {"username": username, "password": PASSWORD})
    if status != 200 or not isinstance(body, dict) or "access_token" not in body:
        raise RuntimeError(f"POST /login: HTTP {status} {body!r}")
    return body


def protected(server: Server, token: str) -> tuple[int, object]:
    status, _, body = common.http("GET", server.base + "/protected", headers={"Authorization": f"Bearer {token}"})
    return status, body


def server_refuses(server: Server):
    def check(token: str) -> tuple[bool, str]:
        status, body = protected(server, token)
        good = status in (401, 422) and isinstance(body, dict) and isinstance(body.get("msg"), str)
        return good, f"GET /protected answered HTTP {status} {body!r}"
    return check


def check_discovery(report: suite.Report, section: str, server: Server, alg: str) -> tuple[str | None, str, dict | None]:
    """(issuer, jwks_uri, jwks) from the server's discovery document and JWKS, checked; jwks is
    None when the server serves none (then jwks_uri is the default path)."""
    status, _, config = common.http("GET", server.base + "/.well-known/openid-configuration")
    issuer, jwks_uri = None, server.base + "/.well-known/jwks.json"
    if alg == "HS256" and not server.issuer and status == 404:
        # h-store's choice: with HS256 and no KEYCARD_ISSUER tokens carry no iss (exactly FJE's),
        # so there is no issuer to discover. HS256+issuer checks the other case.
        report.info(section, "no discovery document on HS256 without KEYCARD_ISSUER", "keycard", f"HTTP {status}")
    elif report.add(section, "GET /.well-known/openid-configuration", "keycard",
                  status == 200 and isinstance(config, dict) and isinstance(config.get("issuer"), str)
                  and isinstance(config.get("jwks_uri"), str), f"HTTP {status} {config!r}"[:300]):
        issuer, jwks_uri = config["issuer"], config["jwks_uri"]
        if issuer != server.base:
            report.info(section, "issuer is not the default public URL", "keycard", f"{issuer!r} vs {server.base!r}")
        report.add(section, "jwks_uri is served by this server", "keycard",
                   jwks_uri.startswith(issuer.rstrip("/") + "/") or jwks_uri.startswith(server.base + "/"), jwks_uri)
        supported = config.get("id_token_signing_alg_values_supported")
        if alg != "HS256":
            report.add(section, "discovery lists the signing algorithm", "keycard",
                       isinstance(supported, list) and alg in supported, f"id_token_signing_alg_values_supported={supported!r}")
        # "lists only endpoints that exist"
        for name, value in sorted(config.items()):
            if (name.endswith("_endpoint") or name == "jwks_uri") and isinstance(value, str) and value.startswith(server.base):
                st, _, _ = common.http("GET", value)
                report.add(section, f"discovery's {name} exists", "keycard", st != 404, f"GET {value}: HTTP {st}")
    status, headers, jwks = common.http("GET", jwks_uri)
    ok = status == 200 and isinstance(jwks, dict) and isinstance(jwks.get("keys"), list)
    report.add(section, "GET jwks_uri", "keycard", ok, f"HTTP {status} {jwks!r}"[:300])
    if not ok:
        return issuer, jwks_uri, None
    ctype = (headers.get("Content-Type") or "").lower()
    report.add(section, "JWKS is served as JSON", "keycard",
               ctype.startswith("application/json") or ctype.startswith("application/jwk-set+json"),
               f"Content-Type: {ctype!r}")
    cache = (headers.get("Cache-Control") or "").lower()
    report.add(section, "JWKS has a Cache-Control max-age", "keycard", "max-age=" in cache, f"Cache-Control: {cache!r}")
    keys = jwks["keys"]
    if alg == "HS256":
        report.add(section, "JWKS is empty on HS256 (never the HMAC secret)", "keycard", keys == [], f"{keys!r}"[:300])
    else:
        report.add(section, f"JWKS has a {alg} key", "keycard", any(k.get("alg") == alg for k in keys),
                   f"algs {[k.get('alg') for k in keys]}")
    for key in keys:
        leaked = [m for m in PRIVATE_MEMBERS if m in key]
        report.add(section, f"JWK {key.get('kid')} has no private members", "keycard", not leaked, f"has {leaked}")
        try:
            tp = common.thumbprint(key)
        except Exception as e:  # noqa: BLE001
            tp = f"<{type(e).__name__}: {e}>"
        report.add(section, f"JWK {key.get('kid')} kid is its RFC 7638 thumbprint", "keycard", key.get("kid") == tp,
                   f"thumbprint {tp}")
        if "use" in key:
            report.add(section, f"JWK {key.get('kid')} use is sig", "keycard", key["use"] == "sig", f"use={key['use']!r}")
    return issuer, jwks_uri, jwks


def check_token(report: suite.Report, section: str, token: str, alg: str, issuer: str | None, jwks: dict, label: str):
    header, claims, _ = common.segments(token)
    report.add(section, f"{label}: header alg is {alg}", "keycard", header.get("alg") == alg, f"header {header}")
    kids = [k.get("kid") for k in jwks.get("keys", [])]
    if alg != "HS256":
        report.add(section, f"{label}: kid is a published kid", "keycard", header.get("kid") in kids,
                   f"kid {header.get('kid')!r}, published {kids}")
    elif "kid" not in header:
        report.info(section, f"{label}: no kid on HS256", "keycard", f"header {header}")
    if alg == "HS256" and issuer is None and "iss" not in claims:
        report.info(section, f"{label}: no iss on HS256 without KEYCARD_ISSUER (FJE's format)", "keycard", "")
    else:
        report.add(section, f"{label}: iss is the discovery issuer", "keycard",
                   issuer is not None and claims.get("iss") == issuer, f"iss {claims.get('iss')!r}, issuer {issuer!r}")
    aud = claims.get("aud")
    report.add(section, f"{label}: aud is KEYCARD_AUDIENCE", "keycard",
               aud == AUDIENCE or (isinstance(aud, list) and AUDIENCE in aud), f"aud {aud!r}")


def check_keys_at_rest(report: suite.Report, section: str, server: Server):
    """The signing_keys table (DESIGN-13): with KEYCARD_KEY_ENCRYPTION_KEY every private key is
    sealed (not loadable as PKCS#8 DER); without it, what is stored is reported."""
    import sqlite3

    from cryptography.hazmat.primitives import serialization

    path = server.database_url[len("sqlite://"):]
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        cur = conn.execute("SELECT * FROM signing_keys")
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, row)) for row in cur.fetchall()]
        conn.close()
    except Exception as e:  # noqa: BLE001
        if server.kek:
            report.add(section, "private keys sealed at rest", "keycard", False,
                       f"cannot read the signing_keys table of {path}: {e}")
        else:
            report.info(section, "signing_keys table", "keycard", f"not readable: {e}")
        return
    mode = os.stat(path).st_mode & 0o777
    report.info(section, "database file mode", "keycard", oct(mode))
    blobs = [r.get("private_key") for r in rows]
    plain = []
    for row, blob in zip(rows, blobs):
        try:
            serialization.load_der_private_key(bytes(blob), None)
            plain.append(row.get("kid"))
        except Exception:  # noqa: BLE001 - not a plain PKCS#8 key: sealed (or another format)
            pass
    if server.kek:
        report.add(section, "private keys sealed at rest (KEYCARD_KEY_ENCRYPTION_KEY)", "keycard",
                   bool(rows) and not plain, f"{len(rows)} rows, plain PKCS#8 for {plain}")
        if "sealed" in names:
            report.add(section, "signing_keys.sealed is set on every row", "keycard",
                       all(r["sealed"] in (1, True, "1", "true") for r in rows), f"{[r['sealed'] for r in rows]}")
    else:
        readable = "readable by group/others" if mode & 0o044 else "owner-only"
        report.info(section, "private keys at rest without an encryption key", "keycard",
                    f"{len(rows)} rows, {len(plain)} plain PKCS#8, in a database file {readable} ({oct(mode)})")


def run_alg(report: suite.Report, args, spec: str, offered: dict, log_dir: str):
    """spec: an algorithm, or ALG+kek to run it with KEYCARD_KEY_ENCRYPTION_KEY set."""
    alg, _, variant = spec.partition("+")
    if variant not in ("", "kek", "issuer"):
        report.add(f"keycard {spec}", "known variant", "harness", False, f"unknown variant +{variant} (kek, issuer)")
        return
    kek = common.b64u(os.urandom(32)) if variant == "kek" else None
    section = f"keycard {spec}"
    server = None
    try:
        server = Server(args.server_bin, alg, log_dir, args.start_timeout, kek, set_issuer=variant == "issuer")
        report.add(section, "server starts and answers /healthz", "keycard", True)
        issuer, jwks_url, jwks = check_discovery(report, section, server, alg)
        username = f"interop-{spec.lower().replace('+', '-')}"
        pair = register_and_login(server, username)
        access = pair["access_token"]
        check_token(report, section, access, alg, issuer, jwks or {"keys": []}, "access token")
        status, body = protected(server, access)
        report.add(section, "keycard accepts its own access token", "keycard",
                   status == 200 and isinstance(body, dict) and body.get("logged_in_as") == username,
                   f"GET /protected: HTTP {status} {body!r}")
        iss = issuer or server.base
        if jwks is None:
            # No JWKS to give the clients: one clear failure (above), then what keycard itself
            # must still refuse.
            report.add(section, "client checks", "all", False,
                       "not run: the server serves no usable JWKS (see GET jwks_uri)")
            suite.check_attacks(report, section, iss, {"keys": []}, jwks_url, alg, AUDIENCE, access,
                                server_check=server_refuses(server), clients=())
            return
        if alg == "HS256":
            for client in suite.CLIENTS:
                r = common.verify_once(client, ["--jwks-url", jwks_url], iss, suite.BROAD, access, AUDIENCE)
                bad = common.check_fetch_error(r) or ("accepted: the JWKS let a client verify an HS256 token"
                                                      if r.get("ok") else None)
                report.add(section, "client refuses the HS256 token (no public key)", client, bad is None,
                           bad or "")
            suite.check_attacks(report, section, iss, {"keys": []}, jwks_url, alg, AUDIENCE, access,
                                server_check=server_refuses(server))
            return
        kid = common.segments(access)[0].get("kid")
        suite.check_genuine(report, section, iss, jwks_url, access, alg, kid, AUDIENCE)
        suite.check_controls(report, section, iss, jwks_url, access, alg, AUDIENCE)
        n = suite.check_attacks(report, section, iss, jwks, jwks_url, alg, AUDIENCE, access,
                                server_check=server_refuses(server))
        report.info(section, "attack tokens", "all", f"{n} tokens")

        # --- rotation ---------------------------------------------------------------------------
        rsection = f"keycard {spec} rotation"
        if not offered["rotate"]:
            report.add(rsection, "keys rotate", "keycard", False,
                       "`keycard keys rotate` is missing from this binary: rotation not tested")
            return
        rotate_args = ["keys", "rotate", "--database-url", server.database_url]
        # KEYCARD_JWT_ALGORITHM is in the CLI's environment too; pass the flag where there is one.
        for flag in ("--jwt-algorithm", "--algorithm"):
            if re.search(rf"(?<![\w-]){flag}\b", offered["rotate_help"]):
                rotate_args += [flag, alg]
                break
        old_pair = login(server, username)

        def rotate():
            done = server.cli(*rotate_args)
            if done.returncode != 0:
                raise RuntimeError(f"`keycard {' '.join(rotate_args)}` exited {done.returncode}: {done.stderr.strip()}")
            report.info(rsection, "keys rotate output", "keycard", (done.stdout + done.stderr).strip()[:200])

        suite.check_rotation(report, rsection, iss, jwks_url, alg, AUDIENCE,
                             mint=lambda: login(server, username)["access_token"], rotate=rotate,
                             deadline_s=args.rotation_deadline)
        old_kid = common.segments(old_pair["access_token"])[0].get("kid")
        status, body = protected(server, old_pair["access_token"])
        report.add(rsection, "keycard still accepts a pre-rotation access token", "keycard", status == 200,
                   f"HTTP {status} {body!r}")
        status, _, body = common.http("POST", server.base + "/token/refresh",
                                      headers={"Authorization": f"Bearer {old_pair['refresh_token']}"})
        refreshed = isinstance(body, dict) and body.get("access_token")
        report.add(rsection, "a pre-rotation refresh token still refreshes", "keycard", status == 200 and bool(refreshed),
                   f"HTTP {status} {body!r}"[:300])
        if refreshed:
            new_kid = common.segments(refreshed)[0].get("kid")
            report.add(rsection, "the refreshed access token is signed with the new key", "keycard",
                       new_kid != old_kid, f"kid {new_kid}")
        jwks_after = common.get_json(jwks_url)
        if offered["list"]:
            listing = server.cli("keys", "list", "--database-url", server.database_url)
            out = listing.stdout + listing.stderr
            kids_after = [k.get("kid") for k in jwks_after.get("keys", [])]
            report.add(rsection, "`keys list` shows every published kid", "keycard",
                       listing.returncode == 0 and all(k in out for k in kids_after),
                       f"exit {listing.returncode}, published {kids_after}, output {out.strip()[:300]!r}")
            report.add(rsection, "`keys list` shows no key material", "keycard",
                       "PRIVATE KEY" not in out and '"d"' not in out, out.strip()[:300])
        else:
            report.add(rsection, "`keys list`", "keycard", False, "`keycard keys list` is missing from this binary")
        check_keys_at_rest(report, rsection, server)
        # Two keys of one algorithm now: the foreign-kid attacks have a real target.
        new_access = login(server, username)["access_token"]
        suite.check_attacks(report, rsection, iss, jwks_after, jwks_url, alg, AUDIENCE, new_access,
                            server_check=server_refuses(server))
    except Exception as e:  # noqa: BLE001
        report.add(section, "ran to the end", "harness", False, f"{type(e).__name__}: {e}")
    finally:
        if server is not None:
            log = server.log_text()
            report.add(section, "server log has no private key material", "keycard",
                       "PRIVATE KEY" not in log and '"d":' not in log, "found PRIVATE KEY or a JWK d member")
            died = server.proc.poll()
            report.add(section, "server still running at the end", "keycard", died is None, f"exited {died}")
            server.stop()
            if any(r[0].startswith(section) and r[3] == "FAIL" for r in report.rows):
                tail = "\n".join(log.splitlines()[-30:])
                print(f"--- last lines of the {alg} server's log ({server.log_path}):\n{tail}\n---", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server-bin", required=True, help="the keycard binary (e.g. target/debug/keycard)")
    parser.add_argument("--algs", default="ES256,EdDSA,RS256,HS256,HS256+issuer,ES256+kek",
                        help="algorithms to run; ALG+kek runs ALG with KEYCARD_KEY_ENCRYPTION_KEY set, "
                             "ALG+issuer with KEYCARD_ISSUER set to the server's URL")
    parser.add_argument("--start-timeout", type=float, default=30)
    parser.add_argument("--rotation-deadline", type=float, default=3)
    parser.add_argument("--log-dir", help="keep the servers' logs here (default: a temporary folder)")
    args = parser.parse_args()
    args.server_bin = os.path.abspath(args.server_bin)
    log_dir = args.log_dir or tempfile.mkdtemp(prefix="keycard-jwks-logs-")
    os.makedirs(log_dir, exist_ok=True)

    report = suite.Report()
    offered = preflight(report, args.server_bin)
    if os.path.isfile(args.server_bin):
        for spec in [a for a in args.algs.split(",") if a]:
            print(f"== {spec}", flush=True)
            started = time.monotonic()
            run_alg(report, args, spec, offered, log_dir)
            report.info(f"keycard {spec}", "duration", "harness", f"{time.monotonic() - started:.1f} s")

    print()
    print(report.table())
    if report.failures:
        print(f"\nE2E FAILED: {len(report.failures)} check(s); server logs in {log_dir}", file=sys.stderr)
        for section, check, who, _, detail in report.failures:
            print(f"  [{section}] {check} ({who}): {detail}", file=sys.stderr)
        return 1
    if not args.log_dir:
        shutil.rmtree(log_dir, ignore_errors=True)
    print("\ne2e: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
