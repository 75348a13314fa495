#!/usr/bin/env bash
# CI step for the JWKS interop test (interop/jwks/README.md).
#
#   interop/jwks/run-ci.sh --server-bin PATH [more e2e.py flags, e.g. --algs ES256,HS256]
#   interop/jwks/run-ci.sh --selftest-only
#
# 1. creates or updates the venv interop/jwks/.venv (git-ignored) from requirements.txt, and
#    interop/jwks/node_modules (git-ignored) from package-lock.json with `npm ci`; fails if
#    either install fails or python3/node/npm are missing;
# 2. selftest.py: both clients and every attack token against the stand-in issuer provider.py,
#    and e2e.py itself against fake_keycard.py (a correct stand-in and five broken ones);
# 3. e2e.py against the real keycard binary PATH (build it first: cargo build -p keycard-server).
set -euo pipefail
cd "$(dirname "$0")"

fail() {
    echo "FATAL: $*" >&2
    exit 1
}

SERVER_BIN=""
SELFTEST_ONLY=0
E2E_ARGS=()
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
        --selftest-only)
            SELFTEST_ONLY=1
            shift
            ;;
        *)
            E2E_ARGS+=("$1")
            shift
            ;;
    esac
done
if [ "$SELFTEST_ONLY" = 0 ]; then
    [ -n "$SERVER_BIN" ] || fail "usage: $0 --server-bin PATH (the keycard binary) | --selftest-only"
    case "$SERVER_BIN" in /*) ;; *) SERVER_BIN="$OLDPWD/$SERVER_BIN" ;; esac
    [ -x "$SERVER_BIN" ] || fail "server binary $SERVER_BIN is missing or not executable (cargo build -p keycard-server)"
fi

echo "== interop/jwks venv (.venv) and node_modules"
command -v python3 >/dev/null || fail "python3 not found"
command -v node >/dev/null || fail "node not found (jose is the second JWKS client; apt-get install nodejs npm)"
command -v npm >/dev/null || fail "npm not found (apt-get install npm)"
NODE_MAJOR=$(node -p 'process.versions.node.split(".")[0]')
[ "$NODE_MAJOR" -ge 20 ] || fail "node $(node --version) is too old: jose 6 needs node >= 20"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv || fail "python3 -m venv interop/jwks/.venv failed"
fi
.venv/bin/python -m pip install --disable-pip-version-check --no-input -q -r requirements.txt \
    || fail "pip could not install interop/jwks/requirements.txt into interop/jwks/.venv"
npm ci --no-audit --no-fund --loglevel=error >/dev/null \
    || fail "npm ci could not install jose from interop/jwks/package-lock.json"
.venv/bin/python -c 'import importlib.metadata as m; print("PyJWT", m.version("PyJWT"), "| cryptography", m.version("cryptography"))' \
    || fail "PyJWT/cryptography not importable from the venv"
node -e 'import("jose").then(() => console.log("jose", require("./node_modules/jose/package.json").version, "| node", process.version))' \
    || fail "jose not importable from interop/jwks/node_modules"

echo "== selftest: clients and attack tokens vs provider.py; e2e.py vs fake_keycard.py"
.venv/bin/python selftest.py || fail "selftest failed: the interop harness itself is broken"

if [ "$SELFTEST_ONLY" = 1 ]; then
    echo "== e2e skipped (--selftest-only)"
    exit 0
fi
echo "== e2e: PyJWT PyJWKClient and jose vs keycard ($SERVER_BIN)"
.venv/bin/python e2e.py --server-bin "$SERVER_BIN" "${E2E_ARGS[@]+"${E2E_ARGS[@]}"}"

echo "== Shared Signals: PyJWT verifies keycard's security event tokens with the JWKS (ssf_sets.py)"
.venv/bin/python ssf_sets.py --server-bin "$SERVER_BIN"
