#!/usr/bin/env bash
# CI step for the browser test of keycard's /demo page (interop/browser/README.md).
#
#   interop/browser/run-ci.sh --server-bin PATH [--artifacts DIR]
#
# 1. installs Debian's chromium with apt-get if /usr/bin/chromium is missing (fails loudly if it
#    cannot);
# 2. creates or updates the venv interop/browser/.venv (git-ignored) from requirements.txt
#    (Playwright from PyPI, pinned). `playwright install` is never run: it would download a
#    browser of its own; the test launches /usr/bin/chromium;
# 3. demo_test.py: the real keycard binary PATH (cargo build --workspace --bins) in cookie mode on a
#    fresh SQLite database and a free port, the page driven as a user would; a screenshot goes to
#    DIR/demo.png (default target/artifacts under the repository root; the path is printed).
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(cd ../.. && pwd)

fail() {
    echo "FATAL: $*" >&2
    exit 1
}

SERVER_BIN=""
ARTIFACTS="$ROOT/target/artifacts"
while [ $# -gt 0 ]; do
    case "$1" in
        --server-bin)
            [ $# -ge 2 ] || fail "--server-bin needs a path"
            SERVER_BIN="$2"
            shift 2
            ;;
        --artifacts)
            [ $# -ge 2 ] || fail "--artifacts needs a directory"
            ARTIFACTS="$2"
            shift 2
            ;;
        *)
            fail "unknown argument $1 (usage: $0 --server-bin PATH [--artifacts DIR])"
            ;;
    esac
done
[ -n "$SERVER_BIN" ] || fail "usage: $0 --server-bin PATH (the keycard binary) [--artifacts DIR]"
case "$SERVER_BIN" in /*) ;; *) SERVER_BIN="$OLDPWD/$SERVER_BIN" ;; esac
case "$ARTIFACTS" in /*) ;; *) ARTIFACTS="$OLDPWD/$ARTIFACTS" ;; esac
[ -x "$SERVER_BIN" ] || fail "server binary $SERVER_BIN is missing or not executable (cargo build --workspace --bins)"

echo "== chromium (Debian package)"
CHROMIUM=/usr/bin/chromium
if [ ! -x "$CHROMIUM" ]; then
    echo "$CHROMIUM is missing: installing Debian's chromium"
    command -v apt-get >/dev/null || fail "$CHROMIUM is missing and apt-get is not available: install chromium"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q || fail "apt-get update failed: cannot install chromium"
    apt-get install -y -q chromium || fail "apt-get install -y chromium failed"
    [ -x "$CHROMIUM" ] || fail "apt-get installed chromium but $CHROMIUM is still missing"
fi
"$CHROMIUM" --headless --no-sandbox --disable-gpu --version || fail "$CHROMIUM does not run"

echo "== interop/browser venv (.venv)"
command -v python3 >/dev/null || fail "python3 not found"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv || fail "python3 -m venv interop/browser/.venv failed"
fi
.venv/bin/python -m pip install --disable-pip-version-check --no-input -q -r requirements.txt \
    || fail "pip could not install interop/browser/requirements.txt into interop/browser/.venv"
.venv/bin/python -c 'import importlib.metadata as m; print("playwright", m.version("playwright"))' \
    || fail "playwright not importable from the venv"

echo "== /demo in headless chromium, driven by Playwright"
mkdir -p "$ARTIFACTS" || fail "cannot create $ARTIFACTS"
.venv/bin/python demo_test.py --server-bin "$SERVER_BIN" --chromium "$CHROMIUM" --artifacts "$ARTIFACTS" \
    || fail "the browser test of /demo failed (screenshot and keycard's log in $ARTIFACTS)"
