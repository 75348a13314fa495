#!/usr/bin/env bash
# CI step: keycard's OpenAPI document validated, then schemathesis against the live server
# (interop/openapi/README.md).
#
#   interop/openapi/run-ci.sh --server-bin PATH [more run.py flags, e.g. --seed 1234 --max-examples 100]
#
# 1. creates or updates the venv interop/openapi/.venv (git-ignored) from requirements.txt
#    (schemathesis and openapi-spec-validator, pinned, from PyPI); fails if the install fails or
#    python3 is missing;
# 2. run.py: the real keycard binary PATH on a fresh SQLite database and a free port, an admin
#    seeded with the CLI, /openapi.json validated, schemathesis with the checks
#    not_a_server_error, status_code_conformance, content_type_conformance,
#    response_schema_conformance, negative_data_rejection, unsupported_method,
#    allow_header_conformance, ignored_auth and response_headers_conformance; any finding fails
#    the step, and so does a harness that cannot fail (broken copies of the document must be
#    caught).
set -euo pipefail
cd "$(dirname "$0")"

fail() {
    echo "FATAL: $*" >&2
    exit 1
}

SERVER_BIN=""
RUN_ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --server-bin)
            [ $# -ge 2 ] || fail "--server-bin needs a path"
            SERVER_BIN="$2"
            shift 2
            ;;
        --server-bin=*)
            SERVER_BIN="${1#--server-bin=}"
            shift
            ;;
        *)
            RUN_ARGS+=("$1")
            shift
            ;;
    esac
done
[ -n "$SERVER_BIN" ] || fail "usage: $0 --server-bin PATH (the keycard binary: cargo build -p keycard-server)"
case "$SERVER_BIN" in /*) ;; *) SERVER_BIN="$OLDPWD/$SERVER_BIN" ;; esac
[ -x "$SERVER_BIN" ] || fail "server binary $SERVER_BIN is missing or not executable (cargo build -p keycard-server)"

echo "== interop/openapi venv (.venv)"
command -v python3 >/dev/null || fail "python3 not found"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv || fail "python3 -m venv interop/openapi/.venv failed"
fi
.venv/bin/python -m pip install --disable-pip-version-check --no-input -q -r requirements.txt \
    || fail "pip could not install interop/openapi/requirements.txt into interop/openapi/.venv"
.venv/bin/python -c 'import importlib.metadata as m; print("schemathesis", m.version("schemathesis"), "| openapi-spec-validator", m.version("openapi-spec-validator"))' \
    || fail "schemathesis/openapi-spec-validator not importable from the venv"
[ -x .venv/bin/st ] || fail "the schemathesis CLI (.venv/bin/st) is missing"

echo "== schemathesis vs keycard ($SERVER_BIN)"
.venv/bin/python run.py --server-bin "$SERVER_BIN" "${RUN_ARGS[@]+"${RUN_ARGS[@]}"}"
