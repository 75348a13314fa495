#!/usr/bin/env bash
# CI step: `keycard user import` against hashes made at run time by werkzeug, bcrypt and
# argon2-cffi from PyPI (interop/flask-import/README.md).
#
#   interop/flask-import/run-ci.sh --server-bin PATH
#
# Creates or updates the git-ignored venv interop/flask-import/.venv from requirements.txt
# (fails if python3 or the install fails), then runs e2e.py against the keycard binary PATH.
set -euo pipefail
cd "$(dirname "$0")"

fail() {
    echo "FATAL: $*" >&2
    exit 1
}

SERVER_BIN=""
while [ $# -gt 0 ]; do
    case "$1" in
        --server-bin)
            [ $# -ge 2 ] || fail "--server-bin needs a path"
            SERVER_BIN="$2"
            shift 2
            ;;
        *) fail "unknown argument $1 (usage: $0 --server-bin PATH)" ;;
    esac
done
[ -n "$SERVER_BIN" ] || fail "usage: $0 --server-bin PATH (the keycard binary)"
case "$SERVER_BIN" in /*) ;; *) SERVER_BIN="$OLDPWD/$SERVER_BIN" ;; esac
[ -x "$SERVER_BIN" ] || fail "server binary $SERVER_BIN is missing or not executable (cargo build -p keycard-server)"

echo "== interop/flask-import venv (.venv)"
command -v python3 >/dev/null || fail "python3 not found"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv || fail "python3 -m venv interop/flask-import/.venv failed"
fi
.venv/bin/python -m pip install --disable-pip-version-check --no-input -q -r requirements.txt \
    || fail "pip could not install interop/flask-import/requirements.txt"
.venv/bin/python -c 'import importlib.metadata as m; print("werkzeug", m.version("werkzeug"), "| bcrypt", m.version("bcrypt"), "| argon2-cffi", m.version("argon2-cffi"))' \
    || fail "werkzeug/bcrypt/argon2-cffi not importable from the venv"

echo "== e2e: fresh Flask hashes imported into keycard ($SERVER_BIN), logged in over HTTP"
.venv/bin/python e2e.py --server-bin "$SERVER_BIN"
