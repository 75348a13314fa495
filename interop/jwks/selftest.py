#!/usr/bin/env python3
"""Self-test of the JWKS interop suite (README.md), no keycard needed: the two clients and the
attack tokens against the stand-in issuer provider.py.

    .venv/bin/python selftest.py [--algs ES256,EdDSA,RS256]

Proves that the clients verify well-formed tokens (by JWKS URL and by discovery, iss and aud
checked), that their checks bite (wrong iss/aud, algorithm outside the pinned list, expired),
that every attack token is refused by PyJWT and jose while the attacker's host is never
contacted, that they follow a rotation, and that an empty JWKS (keycard on HS256) is a refusal,
not a crash. Exit 1 on any failure, with a summary table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import suite  # noqa: E402

AUDIENCE = "interop-api"


def start_provider(algs: str) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen([common.VENV_PYTHON, os.path.join(common.HERE, "provider.py"), "--algs", algs],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"provider.py did not start: {proc.stderr.read()}")
    info = json.loads(line)
    common.wait_http(info["url"] + "/.well-known/jwks.json", 10, proc)
    return proc, info


# What e2e.py must report against each deliberately broken stand-in server (fake_keycard.py).
BROKEN = {
    "hs-confusion": "attack hs256-secret-pem [server]",
    "follow-jku": "no verifier fetched the attacker's jku/x5u",
    "no-rotation": "signs with a new kid within 3 s",
    "leak-private": "has no private members",
    "unsealed": "private keys sealed at rest",
}


def check_e2e_harness(report: suite.Report):
    """e2e.py itself, without Rust: it must pass against fake_keycard.py, a stand-in that does
    what the issue asks, and fail with the right check against each broken variant."""
    import tempfile

    section = "e2e.py vs fake_keycard.py"
    with tempfile.TemporaryDirectory(prefix="fake-keycard-") as tmp:
        wrapper = os.path.join(tmp, "keycard")
        with open(wrapper, "w") as f:
            f.write(f'#!/bin/sh\nexec "{common.VENV_PYTHON}" "{os.path.join(common.HERE, "fake_keycard.py")}" "$@"\n')
        os.chmod(wrapper, 0o755)
        e2e = [common.VENV_PYTHON, os.path.join(common.HERE, "e2e.py"), "--server-bin", wrapper]
        runs = [("", "ES256,EdDSA,RS256,HS256,HS256+issuer,ES256+kek")] + [
            (mode, "ES256+kek" if mode == "unsealed" else "ES256") for mode in BROKEN]
        for mode, algs in runs:
            env = dict(os.environ, FAKE_KEYCARD_BROKEN=mode)
            done = subprocess.run(e2e + ["--algs", algs], capture_output=True, text=True, env=env, timeout=600)
            if not mode:
                last = done.stdout.strip().splitlines()[-3:]
                report.add(section, "passes against a correct stand-in", "e2e.py", done.returncode == 0,
                           f"exit {done.returncode}: {done.stderr.strip()[-1500:]}")
                report.info(section, "correct stand-in summary", "e2e.py", " | ".join(last))
            else:
                fails = [line for line in done.stdout.splitlines() if line.startswith("FAIL")]
                caught = done.returncode == 1 and any(BROKEN[mode] in line for line in fails)
                report.add(section, f"fails against a stand-in broken with {mode}", "e2e.py", caught,
                           f"exit {done.returncode}, failures: {fails[:3]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algs", default="ES256,EdDSA,RS256")
    parser.add_argument("--skip-e2e", action="store_true",
                        help="do not test e2e.py against fake_keycard.py (saves about two minutes)")
    args = parser.parse_args()
    algs = [a for a in args.algs.split(",") if a]
    report = suite.Report()
    procs = []
    try:
        proc, info = start_provider(",".join(algs))
        procs.append(proc)
        issuer = info["issuer"]
        jwks_url = issuer + "/.well-known/jwks.json"

        def mint(alg: str, **query) -> str:
            q = "&".join(f"{k}={v}" for k, v in {"alg": alg, "aud": AUDIENCE, **query}.items())
            return common.get_json(f"{issuer}/token?{q}")["access_token"]

        for alg in algs:
            section = f"provider {alg}"
            token = mint(alg)
            kid = common.segments(token)[0]["kid"]
            suite.check_genuine(report, section, issuer, jwks_url, token, alg, kid, AUDIENCE)
            suite.check_controls(report, section, issuer, jwks_url, token, alg, AUDIENCE,
                                 expired=mint(alg, ttl=-300))
            jwks = common.get_json(jwks_url)
            n = suite.check_attacks(report, section, issuer, jwks, jwks_url, alg, AUDIENCE, token)
            report.info(section, "attack tokens", "all", f"{n} tokens")

        # The suite must catch a broken verifier: one that accepts unsigned tokens and follows jku.
        section = "harness catches a broken verifier"
        probe = suite.Report()
        import contextlib
        import io
        with contextlib.redirect_stdout(io.StringIO()):
            suite.check_attacks(probe, section, issuer, common.get_json(jwks_url), jwks_url, algs[0], AUDIENCE,
                                mint(algs[0]), clients=("broken",))
        caught = {r[1] for r in probe.failures}
        accepted = [c for c in caught if c.startswith("attack ")]
        report.add(section, "attacks accepted by it are reported", "broken", len(accepted) >= 10,
                   f"{len(accepted)} reported")
        report.add(section, "its jku fetch is reported", "broken",
                   "no verifier fetched the attacker's jku/x5u" in caught, f"failures: {sorted(caught)[:3]}")

        # Rotation (the first algorithm): a new kid at once, the old one still published.
        alg = algs[0]
        suite.check_rotation(report, f"provider {alg} rotation", issuer, jwks_url, alg, AUDIENCE,
                             mint=lambda: mint(alg), rotate=lambda: common.http("POST", f"{issuer}/rotate?alg={alg}"))

        # An empty JWKS (keycard on HS256 publishes none): refused as "no key", never fatal.
        proc, empty = start_provider("")
        procs.append(proc)
        section = "provider empty JWKS"
        empty_jwks = empty["issuer"] + "/.well-known/jwks.json"
        keys = common.get_json(empty_jwks).get("keys")
        report.add(section, "JWKS is empty", "provider", keys == [], f"keys: {keys}")
        hs = common.sign("HS256", "a-secret-of-thirty-two-bytes-min!", {"iss": empty["issuer"], "sub": "a",
                                                                       "exp": int(time.time()) + 60}, {"kid": "hs"})
        for client in suite.CLIENTS:
            try:
                r = common.verify_once(client, ["--jwks-url", empty_jwks], empty["issuer"], suite.BROAD, hs)
                bad = common.check_fetch_error(r) or ("accepted" if r.get("ok") else None)
                report.add(section, "an HS256 token is refused (no key)", client, bad is None, bad or r.get("error", ""))
            except Exception as e:  # noqa: BLE001
                report.add(section, "an HS256 token is refused (no key)", client, False, str(e))
        suite.check_attacks(report, section, empty["issuer"], {"keys": []}, empty_jwks, "HS256", None, None)
    except Exception as e:  # noqa: BLE001
        report.add("selftest", "ran to the end", "harness", False, f"{type(e).__name__}: {e}")
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(5)

    if not args.skip_e2e:
        check_e2e_harness(report)

    print()
    print(report.table())
    if report.failures:
        print(f"\nSELFTEST FAILED: {len(report.failures)} check(s)", file=sys.stderr)
        for section, check, who, _, detail in report.failures:
            print(f"  [{section}] {check} ({who}): {detail}", file=sys.stderr)
        return 1
    print("\nselftest: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
