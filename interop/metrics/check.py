"""keycard's /metrics read by the Prometheus Python client's parser (interop/metrics).

Starts the real keycard binary with KEYCARD_METRICS_BIND=127.0.0.1:0 in a temporary directory,
makes a few requests (register, a login, a failed login, a 404), scrapes /metrics and parses it
with prometheus_client.parser.text_string_to_metric_families, which rejects malformed exposition
text. Checks every documented family with its type, the route template labels and the counts,
that the public port does not serve /metrics, and that SIGTERM stops both listeners.

    python check.py --server-bin PATH
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

FAMILIES = {
    "keycard_http_requests": "counter",
    "keycard_http_request_duration_seconds": "histogram",
    "keycard_logins": "counter",
    "keycard_throttled_requests": "counter",
    "keycard_login_lockouts": "counter",
    "keycard_refresh_token_reuse": "counter",
    "keycard_revocations": "gauge",
    "keycard_password_hash_queue_depth": "gauge",
    "keycard_password_hash_slots": "gauge",
    "keycard_db_pool_connections": "gauge",
    "keycard_db_pool_max_connections": "gauge",
    "keycard_build_info": "gauge",
}


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def request(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server-bin", required=True)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="keycard-metrics-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYCARD_") and k != "RUST_LOG"}
    env.update(
        KEYCARD_BIND="127.0.0.1:0",
        KEYCARD_METRICS_BIND="127.0.0.1:0",
        KEYCARD_ARGON2_MEMORY_KIB="1024",
        KEYCARD_ARGON2_ITERATIONS="1",
    )
    server = subprocess.Popen(
        [args.server_bin, "serve"], cwd=workdir, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    lines = []
    found = {}
    ready = threading.Event()

    def read():
        for line in server.stderr:
            lines.append(line)
            for key in ("addr", "address"):
                m = re.search(rf" {key}=(\S+)", line)
                if m and key not in found:
                    found[key] = m.group(1)
            if "addr" in found and "address" in found:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        if not ready.wait(30):
            fail("keycard did not log both listeners within 30 s:\n" + "".join(lines))
        public, metrics = f"http://{found['addr']}", f"http://{found['address']}"
        user = {"username": "interop", "password": "correct horse battery"}
        assert request("POST", f"{public}/register", user)[0] == 201
        assert request("POST", f"{public}/login", user)[0] == 200
        assert request("POST", f"{public}/login", {**user, "password": "wrong password!"})[0] == 401
        assert request("GET", f"{public}/no/such/path/4711")[0] == 404
        status, _, _ = request("GET", f"{public}/metrics")
        if status != 404:
            fail(f"the public port answers /metrics with {status}")

        status, headers, text = request("GET", f"{metrics}/metrics")
        if status != 200:
            fail(f"GET /metrics answered {status}: {text}")
        if not headers.get("content-type", "").startswith("text/plain; version=0.0.4"):
            fail(f"content type {headers.get('content-type')}")
        families = {f.name: f for f in text_string_to_metric_families(text)}
        for name, kind in FAMILIES.items():
            if name not in families:
                fail(f"{name} missing; parsed {sorted(families)}")
            if families[name].type != kind:
                fail(f"{name} is a {families[name].type}, documented as a {kind}")

        def value(family, sample_name, **labels):
            for s in families[family].samples:
                if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items()):
                    return s.value
            fail(f"no sample {sample_name}{labels}")

        routes = {s.labels["route"] for s in families["keycard_http_requests"].samples}
        if routes != {"/register", "/login", "unmatched"}:
            fail(f"route labels {routes}")
        checks = [
            (value("keycard_http_requests", "keycard_http_requests_total", route="/login", status="200"), 1),
            (value("keycard_http_requests", "keycard_http_requests_total", route="/login", status="401"), 1),
            (value("keycard_logins", "keycard_logins_total", outcome="success"), 1),
            (value("keycard_logins", "keycard_logins_total", outcome="bad_credentials"), 1),
            (value("keycard_http_request_duration_seconds", "keycard_http_request_duration_seconds_count",
                   route="/login", method="POST"), 2),
            (value("keycard_http_request_duration_seconds", "keycard_http_request_duration_seconds_bucket",
                   route="/login", le="+Inf"), 2),
            (value("keycard_build_info", "keycard_build_info"), 1),
        ]
        for got, want in checks:
            if got != want:
                fail(f"expected {want}, got {got}: {checks}")
        print(f"ok: {len(families)} families parsed by prometheus_client, {len(text)} bytes")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            fail("keycard did not stop within 15 s of SIGTERM")
    if code != 0:
        fail(f"keycard exited with {code}:\n" + "".join(lines))
    print("ok: keycard stopped cleanly")


if __name__ == "__main__":
    main()
