#!/usr/bin/env bash
# CI step for the metrics (README "Metrics"):
#
#   interop/metrics/run-ci.sh --server-bin PATH
#
# 1. deploy/grafana/keycard.json is valid JSON (python3 -m json.tool);
# 2. creates or updates the venv interop/metrics/.venv (git-ignored) from requirements.txt; fails
#    if python3 is missing or the install fails;
# 3. check.py: the real keycard binary PATH (build it first: cargo build -p keycard-server) with
#    KEYCARD_METRICS_BIND, its /metrics parsed by the Prometheus Python client.
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
        --server-bin=*)
            SERVER_BIN="${1#--server-bin=}"
            shift
            ;;
        *) fail "unknown argument $1 (usage: $0 --server-bin PATH)" ;;
    esac
done
[ -n "$SERVER_BIN" ] || fail "usage: $0 --server-bin PATH (the keycard binary)"
case "$SERVER_BIN" in /*) ;; *) SERVER_BIN="$OLDPWD/$SERVER_BIN" ;; esac
[ -x "$SERVER_BIN" ] || fail "server binary $SERVER_BIN is missing or not executable (cargo build -p keycard-server)"
command -v python3 >/dev/null || fail "python3 not found"

echo "== deploy/grafana/keycard.json is valid JSON"
python3 -m json.tool ../../deploy/grafana/keycard.json >/dev/null || fail "deploy/grafana/keycard.json is not valid JSON"

echo "== interop/metrics venv (.venv)"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv || fail "python3 -m venv interop/metrics/.venv failed"
fi
.venv/bin/python -m pip install --disable-pip-version-check --no-input -q -r requirements.txt \
    || fail "pip could not install interop/metrics/requirements.txt into interop/metrics/.venv"
.venv/bin/python -c 'import importlib.metadata as m; print("prometheus-client", m.version("prometheus-client"))' \
    || fail "prometheus-client not importable from the venv"

echo "== keycard /metrics parsed by prometheus_client ($SERVER_BIN)"
.venv/bin/python check.py --server-bin "$SERVER_BIN"
