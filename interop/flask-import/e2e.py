"""keycard user import against hashes made right now by werkzeug, bcrypt and argon2-cffi.

For every format (werkzeug's default scrypt and pbkdf2, pbkdf2:sha512, bcrypt $2b$ and $2a$ at
Flask-Bcrypt's default cost 12, argon2-cffi's default argon2id) and a few passwords (ASCII,
non-ASCII, a 6-character one Flask allowed, one longer than bcrypt's 72 bytes): make the hash with
the Python library, check it with the library, import all accounts with `keycard user import`,
start `keycard serve`, and over HTTP: a wrong password is refused with 401 and leaves the hash
alone, the right one logs in, the stored hash is then keycard's argon2id (an imported argon2id
hash is kept as it is), and it logs in again.
"""

import argparse
import json
import os
import secrets
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import bcrypt
from argon2 import PasswordHasher
from werkzeug.security import check_password_hash, generate_password_hash

PASSWORDS = {
    "ascii": "correct horse battery " + secrets.token_hex(4),
    "unicode": "pässwörd ünïcode ✓ " + secrets.token_hex(4),
    "short": secrets.token_hex(3),
    "long": "x" * 80 + secrets.token_hex(4),
}


def make_hashes():
    """(username, scheme, password, hash) for every format and password."""
    out = []
    for label, password in PASSWORDS.items():
        werkzeug = {
            "scrypt": generate_password_hash(password, method="scrypt"),
            "pbkdf2": generate_password_hash(password, method="pbkdf2"),
            "pbkdf2-sha512": generate_password_hash(password, method="pbkdf2:sha512:600000"),
        }
        for scheme, h in werkzeug.items():
            assert check_password_hash(h, password), scheme
            out.append((f"{scheme}-{label}", scheme, password, h))
        raw = password.encode()
        if len(raw) <= 72:  # bcrypt 5 refuses longer passwords; older versions truncated them
            for prefix in (b"2b", b"2a"):
                h = bcrypt.hashpw(raw, bcrypt.gensalt(rounds=12, prefix=prefix)).decode()
                assert bcrypt.checkpw(raw, h.encode())
                out.append((f"bcrypt{prefix.decode()}-{label}", "bcrypt", password, h))
        h = PasswordHasher().hash(password)
        out.append((f"argon2-{label}", "argon2id", password, h))
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url, body):
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server-bin", required=True)
    args = parser.parse_args()
    accounts = make_hashes()
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "keycard.db")
        url = f"sqlite://{db}"
        lines = "".join(json.dumps({"username": u, "password_hash": h}) + "\n" for u, _, _, h in accounts)
        env = dict(os.environ, KEYCARD_JWT_SECRET=secrets.token_urlsafe(32), KEYCARD_DATABASE_URL=url,
                   KEYCARD_ARGON2_MEMORY_KIB="1024", KEYCARD_ARGON2_ITERATIONS="1", KEYCARD_RATE_LIMIT="0",
                   KEYCARD_LOGIN_MAX_FAILURES="0")
        done = subprocess.run([args.server_bin, "user", "import", "-"], input=lines, env=env, text=True,
                              capture_output=True, check=False)
        print(done.stdout.strip())
        if done.returncode != 0:
            sys.exit(f"FAIL: keycard user import exited {done.returncode}: {done.stderr}")
        if f"imported {len(accounts)} users" not in done.stdout:
            sys.exit(f"FAIL: unexpected summary: {done.stdout}")
        port = free_port()
        server = subprocess.Popen([args.server_bin, "serve", "--bind", f"127.0.0.1:{port}"], env=env,
                                  stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    urllib.request.urlopen(base + "/healthz", timeout=1)
                    break
                except OSError:
                    time.sleep(0.1)
            else:
                sys.exit("FAIL: keycard serve did not answer /healthz")
            store = sqlite3.connect(db)

            def stored(name):
                return store.execute("SELECT password_hash FROM users WHERE username = ?", (name,)).fetchone()[0]

            for username, scheme, password, h in accounts:
                status, body = post(base + "/login", {"username": username, "password": password + "!"})
                if status != 401 or body.get("msg") != "Bad username or password" or stored(username) != h:
                    failures.append(f"{username}: a wrong password answered {status} {body}")
                status, body = post(base + "/login", {"username": username, "password": password})
                after = stored(username)
                if status != 200 or "access_token" not in body:
                    failures.append(f"{username}: the right password answered {status} {body}")
                elif scheme == "argon2id" and after != h:
                    # Already argon2id: kept as imported (its parameters are in the string).
                    failures.append(f"{username}: an imported argon2id hash was changed")
                elif scheme != "argon2id" and not after.startswith("$argon2id$v=19$m=1024,t=1,p=1$"):
                    failures.append(f"{username}: the stored hash is not keycard's argon2id after login")
                status, _ = post(base + "/login", {"username": username, "password": password})
                if status != 200:
                    failures.append(f"{username}: the second login answered {status}")
                print(f"  {username:<24} {scheme:<14} ok" if not failures or not failures[-1].startswith(username)
                      else f"  {username:<24} {scheme:<14} FAILED")
        finally:
            server.terminate()
            server.wait(timeout=30)
    if failures:
        print("\n".join(failures), file=sys.stderr)
        sys.exit(f"FAIL: {len(failures)} problem(s)")
    print(f"all {len(accounts)} imported accounts logged in; every werkzeug and bcrypt hash was replaced by argon2id")


if __name__ == "__main__":
    main()
