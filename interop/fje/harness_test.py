#!/usr/bin/env python3
"""Tests of differential.py itself, before any Rust port exists.

1. --self-test (the original against a second original) must pass everything.
2. A faithful fake port (fake_port.py: the original made to answer 401 for 422, require exp and
   write a string sub) must pass, with the allow-listed divergences reported as ALLOW.
3. Each mutation of the fake port (and a missing binary, a port that crashes at start) must make
   the harness fail, naming the expected difference.

Usage: harness_test.py  (with the interop venv's python). Exit status 1 if any case is wrong.
"""

import os
import stat
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
DIFF = os.path.join(HERE, "differential.py")
FAKE = os.path.join(HERE, "fake_port.py")
EXAMPLES = [
    "simple", "refresh_tokens", "token_freshness", "additional_data_in_access_token",
    "automatic_user_loading", "blocklist_database", "blocklist_redis", "custom_decorators",
    "loaders", "optional_protected_endpoints", "jwt_locations", "implicit_refresh",
]

# (case, FAKE_MUTATION, --only examples, expected exit status, strings the output must contain)
CASES = [
    ("self-test", None, [], 0, ["all checks passed"]),
    ("faithful fake port", "", [], 0, ["ALLOW automatic_user_loading: who_am_i with the login token (batman)",
                                       "ALLOW simple: edge: token without exp",
                                       "PASS  simple: edge: token without jti",
                                       "claim sub: the original writes the int user id", "all checks passed"]),
    ("FJE's 422 kept", "keep-422", ["simple"], 1, ["status: port 422, want 401 (FJE's 422 becomes 401)"]),
    ("exp not required", "exp-optional", ["simple"], 1, ["allow-listed (keycard always requires exp"]),
    ("another expired message", "expired-msg", ["simple"], 1, ['body: port 401 application/json {"msg": "Token expired"}']),
    ("an extra claim", "extra-claim", ["simple"], 1, ["claim names differ: port lacks [], port adds ['extra']"]),
    ("another lifetime", "lifetime", ["refresh_tokens"], 1, ["lifetime (exp - iat): port 1800, original 3600"]),
    ("another secret", "other-secret", ["simple"], 1, ["not an HS256 token signed with the shared secret"]),
    ("integer sub kept", "int-sub", ["automatic_user_loading"], 1, ["but the port must answer 200",
                                                                    "came from the port"]),
    ("cookies not HttpOnly", "no-httponly", ["jwt_locations"], 1, ["Set-Cookie (name, set/deleted, HttpOnly if set, Path)"]),
    ("refresh cookies not unset", "no-unset-refresh", ["jwt_locations"], 1, ["Set-Cookie (name, set/deleted, HttpOnly if set, Path)"]),
    ("no CSRF", "csrf-off", ["jwt_locations"], 1, ["FAIL  jwt_locations: protected POST: cookies without X-CSRF-TOKEN"]),
    ("no implicit refresh", "no-refresh", ["implicit_refresh"], 1,
     ["FAIL  implicit_refresh: protected: cookie expiring in 10 minutes -> 200 and a new access cookie"]),
    ("blocklist not in Redis", "memory-blocklist", ["blocklist_redis"], 1,
     ["FAIL  blocklist_redis: redis: the port's logout stored key=jti",
      "FAIL  blocklist_redis: cross: GET /protected after logout (revoked by the issuer, refused by both) [access issued by the port]"]),
    ("port crashes at start", "crash", ["loaders"], 1, ["exited with status 3 before answering"]),
    ("binary missing", "MISSING", ["loaders"], 1, ["FAIL  loaders: start loaders port", "no such file"]),
]


def write_wrappers(bin_dir: str) -> None:
    for name in EXAMPLES:
        path = os.path.join(bin_dir, name)
        with open(path, "w") as f:
            f.write(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" {name}\n')
        os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)


def main() -> int:
    bad = 0
    with tempfile.TemporaryDirectory(prefix="fje-fake-ports-") as bin_dir, \
            tempfile.TemporaryDirectory(prefix="fje-empty-bin-") as empty_dir:
        write_wrappers(bin_dir)
        for case, mutation, only, want_rc, needles in CASES:
            argv = [sys.executable, DIFF]
            env = dict(os.environ)
            if mutation is None:
                argv.append("--self-test")
            else:
                argv += ["--bin-dir", empty_dir if mutation == "MISSING" else bin_dir]
                env["FAKE_MUTATION"] = mutation
            for o in only:
                argv += ["--only", o]
            p = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
            missing = [n for n in needles if n not in p.stdout]
            ok = p.returncode == want_rc and not missing
            summary = next((line.strip() for line in p.stdout.splitlines() if line.strip().startswith("total")), "")
            print(f"{'PASS' if ok else 'FAIL'}  {case}: exit {p.returncode} (want {want_rc}); {summary}")
            if not ok:
                bad += 1
                for n in missing:
                    print(f"      output lacks: {n}")
                print("      --- output (last 60 lines) ---")
                for line in p.stdout.splitlines()[-60:]:
                    print("      " + line)
            sys.stdout.flush()
    print(f"harness_test: {len(CASES) - bad}/{len(CASES)} cases as expected")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
