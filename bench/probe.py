#!/usr/bin/env python3
"""Helpers for bench/run.sh that are awkward in bash. Standard library only.

  probe.py sessions URL USER PASS N OUT
      POST /login N times (4 at a time) and write the N refresh tokens to OUT, one a line.
  probe.py mint-tokens TOKEN N OUT   (the HS256 secret on stdin)
      Write N valid access tokens to OUT, one a line: TOKEN's header and claims with a new random
      `jti` and `sid` each, signed with the secret. For load with cold revocation lookups.
  probe.py seed-revocations DB N
      Insert N revoked ids (random UUIDs, expiring in 30 days) into keycard's `revocations`
      table. The schema must exist (run any keycard command on DB first).
  probe.py startup URL RUNS -- CMD...
      RUNS times: exec CMD, poll URL/healthz every 2 ms until it answers 200, then read the
      process's RSS after 1 s idle, terminate it. Prints one `STARTUP` line per run.
  probe.py conns HOST PORT PATH N PID
      Open N keep-alive connections, send one GET PATH on each and read the answer, keep them
      all open, then print the RSS of PID. Prints one `CONNS` line.
  probe.py rss PID
      Prints the RSS (VmRSS) and peak RSS (VmHWM) of PID in KiB.
"""

import base64
import concurrent.futures
import hashlib
import hmac
import json
import os
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid


def rss_kib(pid):
    """(VmRSS, VmHWM) of pid in KiB."""
    rss = hwm = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return rss, hwm


def login(url, user, password):
    body = json.dumps({"username": user, "password": password}).encode()
    req = urllib.request.Request(
        url.rstrip("/") + "/login", data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.load(resp)["refresh_token"]


def cmd_sessions(url, user, password, n, out):
    n = int(n)
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        tokens = list(pool.map(lambda _: login(url, user, password), range(n)))
    if len(set(tokens)) != n:
        sys.exit("probe.py: duplicate refresh tokens")
    with open(out, "w") as f:
        f.write("\n".join(tokens) + "\n")
    print(f"SESSIONS n={n}")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def cmd_mint_tokens(token, n, out):
    secret = sys.stdin.readline().rstrip("\n").encode()
    header_b64, payload_b64, _ = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4)))
    lines = []
    for _ in range(int(n)):
        claims["jti"] = str(uuid.uuid4())
        claims["sid"] = str(uuid.uuid4())
        signed = header_b64.encode() + b"." + b64url(json.dumps(claims, separators=(",", ":")).encode())
        tag = hmac.new(secret, signed, hashlib.sha256).digest()
        lines.append((signed + b"." + b64url(tag)).decode())
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"MINTED n={n}")


def cmd_seed_revocations(db, n):
    n = int(n)
    now = int(time.time())
    expires = now + 30 * 24 * 3600
    con = sqlite3.connect(db)
    with con:
        con.executemany(
            "INSERT INTO revocations (id, expires_at, revoked_at) VALUES (?, ?, ?)",
            ((str(uuid.uuid4()), expires, now) for _ in range(n)),
        )
    count = con.execute("SELECT count(*) FROM revocations WHERE expires_at > ?", (now,)).fetchone()[0]
    con.close()
    print(f"SEEDED revocations={count}")


def http_ok(url):
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return resp.status == 200
    except (urllib.error.URLError, ConnectionError, OSError):
        return False


def cmd_startup(url, runs, cmd):
    health = url.rstrip("/") + "/healthz"
    for _ in range(int(runs)):
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while not http_ok(health):
                if proc.poll() is not None:
                    sys.exit(f"probe.py: server exited with {proc.returncode} before answering")
                if time.monotonic() - t0 > 120:
                    sys.exit("probe.py: server did not answer within 120 s")
                time.sleep(0.002)
            startup_ms = (time.monotonic() - t0) * 1000
            time.sleep(1)
            rss, hwm = rss_kib(proc.pid)
            print(f"STARTUP startup_ms={startup_ms:.1f} idle_rss_kib={rss} peak_rss_kib={hwm}", flush=True)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def cmd_conns(host, port, path, n, pid):
    n, port = int(n), int(port)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 256
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, soft), max(want, hard)))
    before, _ = rss_kib(pid)
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    socks = []
    t0 = time.monotonic()
    for _ in range(n):
        s = socket.create_connection((host, port), timeout=10)
        s.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                sys.exit("probe.py: connection closed by the server")
            data += chunk
        if not data.startswith(b"HTTP/1.1 200"):
            sys.exit(f"probe.py: unexpected answer {data[:40]!r}")
        socks.append(s)
    opened_s = time.monotonic() - t0
    time.sleep(2)
    rss, hwm = rss_kib(pid)
    # Still open? Each socket must not have been closed by the server meanwhile.
    alive = 0
    for s in socks:
        s.setblocking(False)
        try:
            alive += 0 if s.recv(1) == b"" else 1
        except BlockingIOError:
            alive += 1
    for s in socks:
        s.close()
    print(
        f"CONNS n={n} alive={alive} open_s={opened_s:.1f} rss_before_kib={before} "
        f"rss_kib={rss} peak_rss_kib={hwm} per_conn_kib={(rss - before) / n:.2f}"
    )


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return
    cmd, args = argv[1], argv[2:]
    if cmd == "sessions" and len(args) == 5:
        cmd_sessions(*args)
    elif cmd == "mint-tokens" and len(args) == 3:
        cmd_mint_tokens(*args)
    elif cmd == "seed-revocations" and len(args) == 2:
        cmd_seed_revocations(*args)
    elif cmd == "startup" and len(args) >= 4 and args[2] == "--":
        cmd_startup(args[0], args[1], args[3:])
    elif cmd == "conns" and len(args) == 5:
        cmd_conns(*args)
    elif cmd == "rss" and len(args) == 1:
        rss, hwm = rss_kib(args[0])
        print(f"RSS rss_kib={rss} peak_rss_kib={hwm}")
    else:
        sys.exit(f"probe.py: bad arguments (see --help): {' '.join(argv[1:])}")


if __name__ == "__main__":
    main(sys.argv)
