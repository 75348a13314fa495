#!/usr/bin/env bash
# CI step for the Flask-JWT-Extended differential test (interop/fje/README.md).
#
#   interop/fje/run-ci.sh [differential.py flags, e.g. --bin-dir target/release/examples]
#
# 1. creates or updates the venv .venv-interop (repository root, git-ignored) from
#    interop/fje/requirements.txt; fails if pip cannot install it;
# 2. tests the harness itself without any Rust (harness_test.py: the original against a second
#    original, a faithful stand-in port, and stand-ins broken on purpose that must be caught);
# 3. runs differential.py over all 12 examples against the ports, by default in
#    target/debug/examples (build them first: cargo build --workspace --examples).
# Needs Redis on 127.0.0.1:6379 (database 0; the test's keys are random jtis, deleted at the end).
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=.venv-interop
fail() {
    echo "FATAL: $*" >&2
    exit 1
}

echo "== interop venv ($VENV)"
command -v python3 >/dev/null || fail "python3 not found"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" || fail "python3 -m venv $VENV failed"
fi
"$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q \
    -r interop/fje/requirements.txt \
    || fail "pip could not install interop/fje/requirements.txt into $VENV"
"$VENV/bin/python" -c 'import importlib.metadata as m; print("flask-jwt-extended", m.version("flask-jwt-extended"), "| PyJWT", m.version("PyJWT"), "| Flask", m.version("flask"))'
"$VENV/bin/python" -c 'import redis; redis.Redis(host="127.0.0.1", port=6379, db=0).ping()' \
    || fail "Redis does not answer on 127.0.0.1:6379 (blocklist_redis needs it)"

echo "== differential harness: self-test"
"$VENV/bin/python" interop/fje/harness_test.py

echo "== differential test: FJE examples vs their keycard-axum ports"
"$VENV/bin/python" interop/fje/differential.py "$@"
