#!/usr/bin/env python3
"""keycard against its own OpenAPI document (README.md beside this file).

    .venv/bin/python run.py --server-bin target/debug/keycard [--max-examples N] [--seed N]

1. starts the real `keycard serve` on a free port with a fresh SQLite database in a temp folder
   (cheap Argon2, no per-address rate limit, an issuer so discovery answers), after creating an
   admin account with `keycard user add NAME --role admin`;
2. fetches /openapi.json and validates it (openapi-spec-validator, OpenAPI 3.1);
3. runs schemathesis against the live server with the checks not_a_server_error,
   status_code_conformance, content_type_conformance and response_schema_conformance, and also
   negative_data_rejection, unsupported_method, allow_header_conformance, ignored_auth and
   response_headers_conformance (KC_OPENAPI_CHECKS overrides the list); tokens
   come from POST /login as the admin (schemathesis' dynamic auth, one per security scheme:
   the access token for `access_token` routes, the refresh token for `refresh_token`), fetched
   again whenever a request is answered 401 (a fuzzed logout revokes them);
4. starts a second server, a Shared Signals transmitter (ES256, KEYCARD_RESOURCE_SERVER_TOKENS = a
   random 64-hex credential, a 4 s request timeout so long polls wait 2 s), makes four streams
   with a verification event queued on each and a user's token pair, and runs schemathesis on
   the `ssf`-tagged operations with the credential for `receiver_credential` and, half of the
   time, real stream ids and tokens (dictionaries);
5. fails on any finding, if schemathesis tested fewer operations than the document has, if a
   server died, or if its log shows a panic or an internal error;
6. selftest: three broken copies of the document (an undescribed 401, a wrong body type, an
   undescribed content type) must each make schemathesis fail against the first server, and one
   (a wrong stream body type) against the transmitter.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
VENV_BIN = os.path.join(HERE, ".venv", "bin")
# The four the issue names, then: invalid input is refused (the described validation is what the
# server does), other methods answer 405, protected routes refuse missing or bad credentials,
# described headers are sent as described.
CHECKS = os.environ.get("KC_OPENAPI_CHECKS", ",".join([
    "not_a_server_error", "status_code_conformance", "content_type_conformance", "response_schema_conformance",
    "negative_data_rejection", "unsupported_method", "allow_header_conformance", "ignored_auth",
    "response_headers_conformance",
]))


def fail(message: str) -> None:
    print(f"FATAL: {message}", file=sys.stderr)
    sys.exit(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: dict | None = None, token: str | None = None) -> tuple[int, object]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def wait_ready(base: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            fail(f"keycard exited with {proc.returncode} before it was ready")
        try:
            if http("GET", base + "/readyz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    fail(f"keycard was not ready within {timeout} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server-bin", required=True, help="the keycard binary")
    parser.add_argument("--max-examples", type=int, default=100, help="schemathesis cases per operation and phase")
    parser.add_argument("--seed", type=int, default=None, help="schemathesis seed (default: random, printed)")
    parser.add_argument("--workers", default="2", help="schemathesis workers")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (database, logs, report)")
    parser.add_argument("--no-selftest", action="store_true",
                        help="skip checking that schemathesis fails on broken copies of the document")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)

    work = tempfile.mkdtemp(prefix="keycard-openapi-")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    username = f"openapi-admin-{secrets.token_hex(6)}"
    password = f"openapi {secrets.token_hex(12)}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYCARD_")}
    env.update({
        "KEYCARD_BIND": f"127.0.0.1:{port}",
        "KEYCARD_DATABASE_URL": f"sqlite://{work}/keycard.db",
        "KEYCARD_SECRET_FILE": os.path.join(work, "keycard.secret"),
        "KEYCARD_ISSUER": base,
        "KEYCARD_RATE_LIMIT": "0",
        # Fuzzed password changes would otherwise lock the admin out of its own logins.
        "KEYCARD_LOGIN_MAX_FAILURES": "0",
        "KEYCARD_ARGON2_MEMORY_KIB": "1024",
        "KEYCARD_ARGON2_ITERATIONS": "1",
        "RUST_LOG": env.get("RUST_LOG", "info"),
    })
    log_path = os.path.join(work, "keycard.log")
    proc = ssf_proc = None
    try:
        add = subprocess.run([args.server_bin, "user", "add", username, "--role", "admin"], input=password + "\n",
                             cwd=work, env=env, capture_output=True, text=True, timeout=60)
        if add.returncode != 0:
            fail(f"keycard user add failed: {add.stderr}")
        with open(log_path, "w") as log:
            proc = subprocess.Popen([args.server_bin, "serve"], cwd=work, env=env, stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_ready(base, proc, 60)
        print(f"keycard serving on {base} (data in {work})")

        status, document = http("GET", base + "/openapi.json")
        if status != 200 or not isinstance(document, dict):
            fail(f"GET /openapi.json answered {status}")
        if not str(document.get("openapi", "")).startswith("3.1."):
            fail(f"the document is OpenAPI {document.get('openapi')!r}, not 3.1")
        from openapi_spec_validator import validate
        from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
        try:
            validate(document)
        except OpenAPIValidationError as e:
            fail(f"openapi-spec-validator refuses the document: {e}")
        operations = sum(
            1 for item in document["paths"].values() for method in item
            if method in ("get", "put", "post", "delete", "patch", "options", "head", "trace")
        )
        print(f"the document is valid OpenAPI {document['openapi']} ({operations} operations)")

        status, pair = http("POST", base + "/login", {"username": username, "password": password})
        if status != 200:
            fail(f"the seeded admin cannot log in: {status} {pair}")

        config = os.path.join(work, "schemathesis.toml")
        with open(config, "w") as f:
            for scheme, pointer in (("access_token", "/access_token"), ("refresh_token", "/refresh_token")):
                f.write(f"[auth.dynamic.openapi.{scheme}]\n"
                        'path = "/login"\n'
                        'payload = { username = "${KC_OPENAPI_USERNAME}", password = "${KC_OPENAPI_PASSWORD}" }\n'
                        f'extract_selector = "{pointer}"\n\n')
        junit = os.path.join(work, "junit.xml")
        st_env = dict(os.environ, KC_OPENAPI_USERNAME=username, KC_OPENAPI_PASSWORD=password)
        command = [
            os.path.join(VENV_BIN, "st"), "--config-file", config, "--no-color", "run", base + "/openapi.json",
            "--checks", CHECKS, "--max-examples", str(args.max_examples), "--seed", str(seed),
            "--workers", args.workers, "--generation-database", "none", "--request-timeout", "10",
            "--report", "junit", "--report-junit-path", junit,
        ]
        print(f"schemathesis seed {seed}: {' '.join(command)}", flush=True)
        result = subprocess.run(command, env=st_env, cwd=work)
        if not args.no_selftest:
            selftest(document, work, base, config, st_env)
        problems = outcome("the first server (no resource-server credential: every /ssf route and /introspect 404)",
                           result, proc, log_path, junit, operations)

        # The second server: a Shared Signals transmitter (ES256, one receiver credential), so the
        # /ssf routes and /introspect are fuzzed authenticated, with the credential schemathesis
        # sends for `receiver_credential` (a fixed bearer: the scheme has no endpoint issuing it).
        ssf_work = os.path.join(work, "ssf")
        os.mkdir(ssf_work)
        ssf_port = free_port()
        ssf_base = f"http://127.0.0.1:{ssf_port}"
        credential = secrets.token_hex(32)
        ssf_env = dict(env, **{
            "KEYCARD_BIND": f"127.0.0.1:{ssf_port}",
            "KEYCARD_DATABASE_URL": f"sqlite://{ssf_work}/keycard.db",
            "KEYCARD_SECRET_FILE": os.path.join(ssf_work, "keycard.secret"),
            "KEYCARD_ISSUER": ssf_base,
            "KEYCARD_JWT_ALGORITHM": "ES256",
            "KEYCARD_RESOURCE_SERVER_TOKENS": credential,
            # A long poll waits up to the request timeout less 2 s: 2 s here, not 25.
            "KEYCARD_REQUEST_TIMEOUT": "4s",
        })
        ssf_log_path = os.path.join(ssf_work, "keycard.log")
        with open(ssf_log_path, "w") as log:
            ssf_proc = subprocess.Popen([args.server_bin, "serve"], cwd=ssf_work, env=ssf_env, stdout=log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_ready(ssf_base, ssf_proc, 60)
        status, ssf_document = http("GET", ssf_base + "/openapi.json")
        if status != 200 or ssf_document != document:
            fail("the transmitter serves another document than the first server")
        ssf_operations = sum(
            1 for item in document["paths"].values() for method, operation in item.items()
            if method in ("get", "put", "post", "delete", "patch") and "ssf" in operation.get("tags", [])
        )
        # Real data half of the time: streams (each with a verification event queued, so a poll
        # answers at once instead of waiting), and a live token pair to introspect.
        streams = []
        for i in range(4):
            status, stream = http("POST", ssf_base + "/ssf/streams", {"delivery": {"method": "urn:ietf:rfc:8936"},
                                  "description": f"schemathesis {i}"}, token=credential)
            if status != 201:
                fail(f"the transmitter did not make a stream: {status} {stream}")
            streams.append(stream["stream_id"])
            status, answer = http("POST", ssf_base + "/ssf/verify", {"stream_id": stream["stream_id"]},
                                  token=credential)
            if status != 204:
                fail(f"the transmitter did not queue a verification event: {status} {answer}")
        if http("POST", ssf_base + "/register", {"username": username, "password": password})[0] != 201:
            fail("cannot register on the transmitter")
        status, ssf_pair = http("POST", ssf_base + "/login", {"username": username, "password": password})
        if status != 200:
            fail(f"cannot log in on the transmitter: {status}")
        ssf_config = os.path.join(ssf_work, "schemathesis.toml")
        with open(ssf_config, "w") as f:
            f.write('[auth.openapi.receiver_credential]\nbearer = "${KC_OPENAPI_RECEIVER}"\n\n'
                    f"[dictionaries.streams]\nvalues = {json.dumps(streams)}\n\n"
                    f"[dictionaries.tokens]\nvalues = {json.dumps([ssf_pair['access_token'], ssf_pair['refresh_token']])}\n\n"
                    "[parameters]\n"
                    '"query.stream_id" = { dictionary = "streams", probability = 0.5 }\n'
                    '"path.stream_id" = { dictionary = "streams", probability = 0.5 }\n'
                    '"body.stream_id" = { dictionary = "streams", probability = 0.5 }\n'
                    '"body.token" = { dictionary = "tokens", probability = 0.5 }\n')
        if not args.no_selftest:
            selftest(document, ssf_work, ssf_base, ssf_config, dict(os.environ, KC_OPENAPI_RECEIVER=credential),
                     SSF_SELFTESTS)
        ssf_junit = os.path.join(ssf_work, "junit.xml")
        command = [
            os.path.join(VENV_BIN, "st"), "--config-file", ssf_config, "--no-color", "run", ssf_base + "/openapi.json",
            "--include-tag", "ssf", "--checks", CHECKS, "--max-examples", str(args.max_examples), "--seed", str(seed),
            "--workers", args.workers, "--generation-database", "none", "--request-timeout", "10",
            "--report", "junit", "--report-junit-path", ssf_junit,
        ]
        print(f"schemathesis vs the transmitter on {ssf_base}, seed {seed}: {' '.join(command)}", flush=True)
        ssf_result = subprocess.run(command, env=dict(os.environ, KC_OPENAPI_RECEIVER=credential), cwd=ssf_work)
        problems += outcome("the transmitter (ES256, KEYCARD_RESOURCE_SERVER_TOKENS set)", ssf_result, ssf_proc,
                            ssf_log_path, ssf_junit, ssf_operations)
        if problems:
            fail("\n".join(problems) + f"\n(reproduce with --seed {seed})")
        print(f"1 passed, 0 failed: schemathesis found nothing in {operations} operations, then in the "
              f"{ssf_operations} Shared Signals operations authenticated (seed {seed})")
    finally:
        for server in (proc, ssf_proc):
            if server is not None and server.poll() is None:
                server.terminate()
                try:
                    server.wait(10)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def outcome(server: str, result: subprocess.CompletedProcess, proc: subprocess.Popen, log_path: str, junit: str,
            operations: int) -> list[str]:
    """What went wrong in one schemathesis run against one server (its log is printed if anything)."""
    with open(log_path) as f:
        server_log = f.read()
    bad_lines = [line for line in server_log.splitlines() if "panicked" in line or "internal error" in line]
    problems = []
    if result.returncode != 0:
        problems.append(f"{server}: schemathesis failed (exit {result.returncode}): see its findings above")
    if proc.poll() is not None:
        problems.append(f"{server}: keycard died during the run (exit {proc.returncode})")
    if bad_lines:
        problems.append(f"{server}: keycard logged panics or internal errors:\n  " + "\n  ".join(bad_lines[:20]))
    tested = tested_operations(junit)
    if tested is None:
        problems.append(f"{server}: schemathesis wrote no JUnit report")
    elif tested < operations:
        problems.append(f"{server}: schemathesis tested {tested} of the {operations} operations")
    if problems:
        print(f"---- keycard log of {server} (last 60 lines)", file=sys.stderr)
        print("\n".join(server_log.splitlines()[-60:]), file=sys.stderr)
    return problems


# The harness must be able to fail: each broken copy of the document must make schemathesis fail
# against the same live server (a status the copy does not describe; a body it describes wrongly).
SELFTESTS = (
    ("an undescribed 401", "/protected", "status_code_conformance",
     lambda d: d["paths"]["/protected"]["get"]["responses"].pop("401")),
    ("a body described with a wrong type", "/healthz", "response_schema_conformance",
     lambda d: d["components"]["schemas"]["Health"]["properties"].update(status={"type": "integer"})),
    ("an undescribed error body type", "/register", "content_type_conformance",
     lambda d: d["paths"]["/register"]["post"]["responses"].update(
         {"415": {"description": "x", "content": {"text/plain": {"schema": {"type": "string"}}}}})),
)


# The same against the transmitter: an authenticated Shared Signals answer described wrongly
# (`GET /ssf/streams` lists the receiver's streams: run before the fuzzing, which deletes them).
SSF_SELFTESTS = (
    ("a stream body described with a wrong type", "/ssf/streams", "response_schema_conformance",
     lambda d: d["components"]["schemas"]["StreamConfig"]["properties"].update(
         min_verification_interval={"type": "string"}), ["--exclude-method-regex", "(?i)^(post|put|patch|delete)$"]),
)


def selftest(document: dict, work: str, base: str, config: str, st_env: dict, tests=SELFTESTS) -> None:
    for name, path, check, tamper, *extra in tests:
        broken = json.loads(json.dumps(document))
        tamper(broken)
        location = os.path.join(work, "broken.json")
        with open(location, "w") as f:
            json.dump(broken, f)
        command = [
            os.path.join(VENV_BIN, "st"), "--config-file", config, "--no-color", "run", location, "--url", base,
            "--include-path", path, "--checks", check, "--max-examples", "10", "--seed", "1",
            "--generation-database", "none", "--phases", "coverage,fuzzing", *(extra[0] if extra else []),
        ]
        result = subprocess.run(command, env=st_env, cwd=work, capture_output=True, text=True)
        if result.returncode == 0:
            print(result.stdout[-3000:], file=sys.stderr)
            fail(f"selftest: schemathesis did not notice {name} ({check} on {path}): the harness is broken")
        print(f"selftest: schemathesis notices {name} ({check} on {path})")


def tested_operations(junit_path: str) -> int | None:
    """The number of operations in the JUnit report (one test case each), or None without one."""
    if not os.path.exists(junit_path):
        return None
    import xml.etree.ElementTree as ET
    return len(ET.parse(junit_path).getroot().findall(".//testcase"))


if __name__ == "__main__":
    main()
