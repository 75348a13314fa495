#!/usr/bin/env bash
# bench/run.sh -- keycard's benchmark suite: keycard against the anchors in ../shared/anchors
# (rust_floor: bare axum + jsonwebtoken; flask_seed: the Flask + Flask-JWT-Extended original),
# measured in the same run, and the result written to BENCHMARKS.md.
#
# Usage:
#   bench/run.sh                      # everything, 3 rounds of 10 s runs (about 25 minutes)
#   bench/run.sh --quick              # smoke run: 1 round of 3 s runs, no waiting for quiet
#   bench/run.sh --scenarios protected,refresh --rounds 5
#   bench/run.sh --scenarios protected,user,library --no-flask   # a subset: the report keeps the
#                       other sections of the existing BENCHMARKS.md, marked as from the earlier run
#   bench/run.sh --scenarios algorithms --rounds 3 --no-flask    # issue 13: HS256/ES256/EdDSA/RS256
#   bench/run.sh --scenarios resource_server --rounds 3 --no-flask   # issue 15: the JWKS + SSF verifier
#
# Options:
#   --rounds N          rounds of every throughput comparison (default 3); the targets of a
#                       group run one after the other (A B A B ...), their order rotated by one
#                       every round; the table shows medians over the rounds
#   --duration S        seconds per wrk run (default 10)
#   --connections C     wrk connections (default 64, as the anchors' campaign)
#   --scenarios LIST    comma-separated subset of: protected user library algorithms resource_server
#                       refresh login memory soak (default: all).
#                       protected includes the 1,000,000-revoked-ids server;
#                       library is keycard-axum's examples (simple, additional_data_in_access_token,
#                       jwt_locations with cookie + CSRF) against rust_floor /protected;
#                       soak is bench/soak.sh (RSS over a long mixed load, on its own server);
#                       algorithms is keycard GET /protected signing with HS256, ES256, EdDSA, RS256
#                       (KEYCARD_JWT_ALGORITHM), each asymmetric one with the verified-token cache
#                       (one token repeated: cache hits) and without (KEYCARD_VERIFIED_TOKEN_CACHE=0:
#                       every request verifies the signature), against rust_floor /protected (HS256)
#                       and bench/floor_es256 (rust_floor with FLOOR_ALG=HS256|ES256|EdDSA|RS256 on
#                       jsonwebtoken's aws_lc_rs backend) in the same rounds;
#                       resource_server is issue 15's resource server (keycard-jwks's example
#                       resource_server: JWKS verifier + Shared Signals revocation feed) GET /protected
#                       with one ES256 token from a keycard issuer (KEYCARD_JWT_ALGORITHM=ES256, on CPU 0
#                       with wrk: it only serves the keys and the SSF poll), with its verified-token cache
#                       (cache hits) and without (KEYCARD_VERIFIED_TOKEN_CACHE=0), against rust_floor
#                       /protected (HS256) and bench/floor_es256 (FLOOR_ALG=ES256) in the same rounds.
#                       With a subset, sections and rows of scenarios not run are copied from the
#                       existing report (--output) and marked as from the earlier run
#   --soak-duration S   seconds of the soak's mixed load (default 600)
#   --revoked N         revoked ids loaded for the "revoked" server (default 1000000)
#   --idle-conns N      idle keep-alive connections for the memory scenario (default 10000)
#   --quiet-below PCT   before each run wait until the machine is below PCT % busy (of one
#                       core, summed over cores) for 3 s (default 25; 0 = don't wait)
#   --quiet-max-wait S  wait at most S seconds for quiet before a run, then measure anyway
#                       (default 300)
#   --max-foreign PCT   re-run (up to twice) a run during which other processes used more than
#                       PCT % of a core (default 15)
#   --no-flask          leave flask_seed out (it needs a Python venv from PyPI)
#   --no-build          use the existing release binaries
#   --keycard PATH      measure this keycard binary (e.g. another build, for an A/B); not built
#   --output FILE       where the report goes (default: BENCHMARKS.md at the repository root)
#   --quick             --rounds 1 --duration 3 --quiet-below 0 --max-foreign 1000
#                       --soak-duration 60
#   -h, --help          this text
#
# Pinning (as the anchors): every measured server on CPU 1 (`taskset -c 1`), wrk on CPU 0, so each
# number is one server core driven by one load-generator core (resource_server's keycard issuer, not
# measured, on CPU 0). Needs: cargo, python3, curl, taskset, ss,
# and wrk (installed from the Debian package when missing). Raw result lines and logs go to
# target/bench/<timestamp>/ (the raw lines also at the end of the report).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
COMMAND="bench/run.sh${*:+ $*}"

ROUNDS=3 DURATION=10 CONNS=64 SCENARIOS="protected,user,library,algorithms,resource_server,refresh,login,memory,soak" REVOKED=1000000 SOAK_DURATION=600
IDLE_CONNS=10000 QUIET=25 QUIET_MAX=300 MAX_FOREIGN=15 RETRIES=2 FLASK=1 BUILD=1
OUTPUT="$ROOT/BENCHMARKS.md" PROBE_CONNS=8 MEM_RUNS=3 KEYCARD_OVERRIDE=""

die() { echo "run.sh: $*" >&2; exit 2; }
log() { echo "run.sh: $*" >&2; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --connections) CONNS="$2"; shift 2 ;;
    --scenarios) SCENARIOS="$2"; shift 2 ;;
    --soak-duration) SOAK_DURATION="$2"; shift 2 ;;
    --revoked) REVOKED="$2"; shift 2 ;;
    --idle-conns) IDLE_CONNS="$2"; shift 2 ;;
    --quiet-below) QUIET="$2"; shift 2 ;;
    --max-foreign) MAX_FOREIGN="$2"; shift 2 ;;
    --quiet-max-wait) QUIET_MAX="$2"; shift 2 ;;
    --no-flask) FLASK=0; shift ;;
    --no-build) BUILD=0; shift ;;
    --keycard) KEYCARD_OVERRIDE="$2"; shift 2 ;;
    --output) OUTPUT="$2"; shift 2 ;;
    --quick) ROUNDS=1 DURATION=3 QUIET=0 MAX_FOREIGN=1000 RETRIES=0 MEM_RUNS=1 SOAK_DURATION=60; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"
[[ "$DURATION" =~ ^[1-9][0-9]*$ ]] || die "--duration must be a positive integer"
SCENARIOS=",${SCENARIOS// /,},"
for s in ${SCENARIOS//,/ }; do
  case "$s" in protected|user|library|algorithms|resource_server|refresh|login|memory|soak) ;; *) die "unknown scenario $s" ;; esac
done
want() { [[ "$SCENARIOS" == *",$1,"* ]]; }

# ---- where things are ---------------------------------------------------------------------
ANCHORS=""
for d in "${ANCHORS_DIR:-}" "$ROOT/../shared/anchors" "$ROOT/shared/anchors" /work/shared/anchors; do
  if [[ -n "$d" && -x "$d/bench.sh" && -x "$d/serve.sh" ]]; then ANCHORS="$(cd "$d" && pwd)"; break; fi
done
[[ -n "$ANCHORS" ]] || die "anchors not found (expected ../shared/anchors next to the repository; or set ANCHORS_DIR)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
EXAMPLES="$TARGET_DIR/release/examples"
# rust_floor: the anchors' own build when it is there (setup.sh), else ours (built below into our
# target directory, so the shared anchors checkout is not written to).
RF_BIN="$ANCHORS/rust_floor/target/release/rust_floor"
[[ -x "$RF_BIN" ]] || RF_BIN="$TARGET_DIR/rust_floor/release/rust_floor"
KEYCARD="${KEYCARD_OVERRIDE:-$TARGET_DIR/release/keycard}"
# bench/floor_es256: its own Cargo project (not in the workspace), built into our target directory.
FLOOR_BIN="$TARGET_DIR/release/floor_es256"
# keycard-jwks's resource_server example (issue 15), built in release below.
RS_BIN="$EXAMPLES/resource_server"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
WORK="$TARGET_DIR/bench/$STAMP"
RAW="$WORK/raw.txt"
mkdir -p "$WORK"
: >"$RAW"

# Ports away from the anchors' defaults, so a campaign someone else runs does not collide.
P_RUST=18080 P_KC=18081 P_KC_REV=18082 P_SCRATCH=18083 P_FLASK=18050
P_LIB_SIMPLE=18084 P_LIB_CLAIMS=18085 P_LIB_COOKIE=18086
# algorithms: the floors (bench/floor_es256, one per algorithm) and one keycard per algorithm and
# cache setting (HS256 is the main keycard server: HMAC tokens are never cached).
P_FLOOR_HS256=18087 P_FLOOR_ES256=18088 P_FLOOR_EDDSA=18089 P_FLOOR_RS256=18090
P_KC_ES256=18091 P_KC_ES256_NC=18092 P_KC_EDDSA=18093 P_KC_EDDSA_NC=18094 P_KC_RS256=18095 P_KC_RS256_NC=18096
ASYM_ALGS=(ES256 EdDSA RS256)
# resource_server: the keycard issuer (ES256, a transmitter for the resource servers' credential) and
# the resource servers, with and without their verified-token cache.
P_KC_ISSUER=18097 P_RS=18098 P_RS_NC=18099
RS_CREDENTIAL="bench-resource-server-credential-0123456789" RS_USER="reader"
# The server's settings the algorithms scenario relies on (checked against `keycard serve --help`).
ALG_ENV=KEYCARD_JWT_ALGORITHM CACHE_ENV=KEYCARD_VERIFIED_TOKEN_CACHE
SECRET="bench-only-secret-0123456789abcdef0123456789abcdef"
USERNAME="bench" PASSWORD="bench-password"

# 10,000 idle connections need as many descriptors, in the servers (started from this shell)
# and in the client.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# ---- tools ----------------------------------------------------------------------------------
for tool in cargo python3 curl taskset ss; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
if ! command -v wrk >/dev/null; then
  log "installing wrk from Debian"
  if ! apt-get install -y wrk >/dev/null 2>&1; then
    apt-get update >/dev/null && apt-get install -y wrk >/dev/null
  fi
fi

if [[ $BUILD -eq 1 ]]; then
  if [[ -z "$KEYCARD_OVERRIDE" ]]; then
    log "building keycard (release)"
    (cd "$ROOT" && cargo build --release -p keycard-server --bin keycard) >&2
  fi
  if want library; then
    # Only the measured examples: `--examples` builds all of them, and one need not compile for
    # these three to be measured.
    log "building keycard-axum's examples (release)"
    (cd "$ROOT" && cargo build --release -p keycard-axum --example simple \
      --example additional_data_in_access_token --example jwt_locations) >&2
  fi
  if want resource_server; then
    log "building keycard-jwks's resource_server example (release)"
    (cd "$ROOT" && cargo build --release -p keycard-jwks --example resource_server) >&2
  fi
  if want algorithms || want resource_server; then
    log "building bench/floor_es256 (release, into $TARGET_DIR)"
    CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release --locked --manifest-path "$HERE/floor_es256/Cargo.toml" >&2
  fi
  if [[ "$RF_BIN" == "$ANCHORS/rust_floor/target/release/rust_floor" ]]; then
    log "building rust_floor (release, in the anchors' checkout)"
    (cd "$ANCHORS/rust_floor" && CARGO_TARGET_DIR="$ANCHORS/rust_floor/target" cargo build --release) >&2
  else
    log "building rust_floor (release, into $TARGET_DIR/rust_floor)"
    CARGO_TARGET_DIR="$TARGET_DIR/rust_floor" cargo build --release --locked \
      --manifest-path "$ANCHORS/rust_floor/Cargo.toml" >&2
  fi
fi
[[ -x "$KEYCARD" ]] || die "no keycard binary at $KEYCARD (run without --no-build)"
[[ -x "$RF_BIN" ]] || die "no rust_floor build (run without --no-build)"
if want algorithms || want resource_server; then
  [[ -x "$FLOOR_BIN" ]] || die "no floor_es256 build at $FLOOR_BIN (run without --no-build)"
fi
if want resource_server; then
  [[ -x "$RS_BIN" ]] || die "no resource_server example build at $RS_BIN (run without --no-build)"
  # As for keycard below: a setting the example does not know would be ignored silently (the
  # "cache off" row would measure the cache).
  grep -qaF "$CACHE_ENV" "$RS_BIN" || die "$RS_BIN does not know $CACHE_ENV (an older build of the example?)"
  help=$("$KEYCARD" serve --help 2>&1 || true)
  for v in "$ALG_ENV" KEYCARD_PUBLIC_URL KEYCARD_RESOURCE_SERVER_TOKENS; do
    [[ "$help" == *"$v"* ]] || grep -qaF "$v" "$KEYCARD" ||
      die "$KEYCARD does not know $v: this keycard cannot run the resource_server scenario"
  done
fi
if want algorithms; then
  # A setting keycard does not know would be ignored silently (the "cache off" rows would measure
  # the cache): it must be in `serve --help` or at least a string in the binary.
  help=$("$KEYCARD" serve --help 2>&1 || true)
  for v in "$ALG_ENV" "$CACHE_ENV"; do
    [[ "$help" == *"$v"* ]] || grep -qaF "$v" "$KEYCARD" ||
      die "$KEYCARD does not know $v: this keycard cannot run the algorithms scenario"
  done
fi
if want library; then
  for ex in simple additional_data_in_access_token jwt_locations; do
    [[ -x "$EXAMPLES/$ex" ]] || die "no example build at $EXAMPLES/$ex (run without --no-build)"
  done
fi
if [[ $FLASK -eq 1 && ! -x "$ANCHORS/flask_seed/.venv/bin/gunicorn" ]]; then
  log "creating flask_seed's venv (as the anchors' setup.sh does)"
  if ! { python3 -m venv "$ANCHORS/flask_seed/.venv" &&
         "$ANCHORS/flask_seed/.venv/bin/pip" install -q -r "$ANCHORS/flask_seed/requirements.txt"; } >&2; then
    log "flask_seed venv could not be set up: leaving flask_seed out"
    FLASK=0
  fi
fi

# ---- servers --------------------------------------------------------------------------------
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! ss -ltnH "( sport = :$1 )" 2>/dev/null | grep -q .; }

wait_http() {  # URL: until it answers at all (any status), 60 s at most
  local i code
  for ((i = 0; i < 600; i++)); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "$1" 2>/dev/null || true)
    [[ "$code" != 000 ]] && return 0
    sleep 0.1
  done
  return 1
}

# The environment of a keycard server on PORT with database DB. Default settings otherwise, except
# KEYCARD_RATE_LIMIT=0: the per-client-address limit on /login, /register and /token/refresh
# (60 a minute) would otherwise answer 429 to a load generator that is one address.
# Sets the array KC_ENV.
keycard_env() {
  KC_ENV=("KEYCARD_BIND=127.0.0.1:$1" "KEYCARD_DATABASE_URL=sqlite://$2" "KEYCARD_JWT_SECRET=$SECRET"
    KEYCARD_ACCESS_TTL=1h KEYCARD_REFRESH_TTL=30d KEYCARD_RATE_LIMIT=0)
}

# On CPU 1 as every measured server; KC_CPU=0 start_keycard ... puts an auxiliary one (the
# resource_server scenario's issuer) on the load generator's core instead.
start_keycard() {  # LABEL PORT DB [VAR=VALUE...] -> pid in $STARTED (the VAR=VALUEs added to KC_ENV)
  local label="$1" port="$2" db="$3"; shift 3
  port_free "$port" || die "port $port is in use"
  keycard_env "$port" "$db"
  env "${KC_ENV[@]}" "$@" taskset -c "${KC_CPU:-1}" "$KEYCARD" serve >"$WORK/$label.log" 2>&1 &
  STARTED=$!
  PIDS+=("$STARTED")
  wait_http "http://127.0.0.1:$port/healthz" || { cat "$WORK/$label.log" >&2; die "$label did not start"; }
}

start_anchor() {  # LABEL PORT serve.sh-args -> pid in $STARTED
  local label="$1" port="$2"; shift 2
  port_free "$port" || die "port $port is in use"
  if [[ "$1" == rust ]]; then
    # What serve.sh rust does, with the binary found above (which may be our own build).
    BIND="127.0.0.1:$port" JWT_SECRET_KEY="$SECRET" taskset -c 1 "$RF_BIN" >"$WORK/$label.log" 2>&1 &
  else
    SERVER_CPU=1 JWT_SECRET_KEY="$SECRET" SEED_USER="$USERNAME:$PASSWORD" \
      "$ANCHORS/serve.sh" "$@" --port "$port" >"$WORK/$label.log" 2>&1 &
  fi
  STARTED=$!
  PIDS+=("$STARTED")
  wait_http "http://127.0.0.1:$port/" || { cat "$WORK/$label.log" >&2; die "$label did not start"; }
}

stop_pid() {  # PID: stop one server this script started
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  local keep=() p
  for p in "${PIDS[@]}"; do [[ "$p" == "$1" ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

start_floor() {  # LABEL PORT ALG: bench/floor_es256 with FLOOR_ALG=ALG -> pid in $STARTED
  local label="$1" port="$2" alg="$3"
  port_free "$port" || die "port $port is in use"
  FLOOR_ALG="$alg" BIND="127.0.0.1:$port" JWT_SECRET_KEY="$SECRET" taskset -c 1 "$FLOOR_BIN" \
    >"$WORK/$label.log" 2>&1 &
  STARTED=$!
  PIDS+=("$STARTED")
  wait_http "http://127.0.0.1:$port/hello" || { cat "$WORK/$label.log" >&2; die "$label did not start"; }
}

token_alg() {  # TOKEN -> the alg of its header
  python3 -c 'import base64,json,sys; h=sys.argv[1].split(".")[0]; print(json.loads(base64.urlsafe_b64decode(h+"="*(-len(h)%4)))["alg"])' "$1"
}

start_example() {  # NAME PORT: one of keycard-axum's examples -> pid in $STARTED
  local name="$1" port="$2"
  port_free "$port" || die "port $port is in use"
  KEYCARD_BIND="127.0.0.1:$port" KEYCARD_JWT_SECRET="$SECRET" taskset -c 1 "$EXAMPLES/$name" \
    >"$WORK/example-$name.log" 2>&1 &
  STARTED=$!
  PIDS+=("$STARTED")
  wait_http "http://127.0.0.1:$port/protected" || { cat "$WORK/example-$name.log" >&2; die "example $name did not start"; }
}

start_resource_server() {  # LABEL PORT [VAR=VALUE...]: the resource_server example against $KC_ISSUER -> pid in $STARTED
  local label="$1" port="$2"; shift 2
  port_free "$port" || die "port $port is in use"
  env KEYCARD_ISSUER_URL="$KC_ISSUER" KEYCARD_SSF_TOKEN="$RS_CREDENTIAL" KEYCARD_BIND="127.0.0.1:$port" "$@" \
    taskset -c 1 "$RS_BIN" >"$WORK/$label.log" 2>&1 &
  STARTED=$!
  PIDS+=("$STARTED")
  wait_http "http://127.0.0.1:$port/protected" || { cat "$WORK/$label.log" >&2; die "$label did not start"; }
}

# registered_token BASE_URL USER: POST /register (a new account: 201; 409 if it exists), then the
# access token from POST /login.
registered_token() {
  local body code
  body=$(printf '{"username":"%s","password":"%s"}' "$2" "$PASSWORD")
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' -d "$body" "$1/register")
  [[ "$code" == 201 || "$code" == 409 ]] || die "POST $1/register answered $code"
  curl -sf -X POST -H 'Content-Type: application/json' -d "$body" "$1/login" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}

# example_token BASE_URL: an access token from an example's POST /login (test/test). The examples
# issue 15-minute tokens, so each run logs in again just before it.
example_token() {
  curl -sf -X POST -H 'Content-Type: application/json' -d '{"username":"test","password":"test"}' "$1/login" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}

# example_cookies BASE_URL FILE: jwt_locations' POST /login_with_cookies -> FILE for bench/cookie.lua
# (the Cookie header with access_token_cookie and csrf_access_token, then the CSRF token); checks
# that a POST /protected with them answers 200.
example_cookies() {
  curl -sf -D - -o /dev/null -X POST "$1/login_with_cookies" | python3 -c '
import sys
jar = {}
for line in sys.stdin:
    name, _, value = line.strip().partition(":")
    if name.lower() == "set-cookie":
        k, _, v = value.strip().split(";", 1)[0].partition("=")
        jar[k] = v
assert "access_token_cookie" in jar and "csrf_access_token" in jar, jar
print("; ".join(f"{k}={jar[k]}" for k in ("access_token_cookie", "csrf_access_token")))
print(jar["csrf_access_token"])' >"$2" || die "no cookies from $1/login_with_cookies"
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Cookie: $(sed -n 1p "$2")" \
    -H "X-CSRF-TOKEN: $(sed -n 2p "$2")" "$1/protected")
  [[ "$code" == 200 ]] || die "POST $1/protected with the cookies answered $code"
}

# cookie_bench TARGET BASE_URL: POST /protected with the access cookie and X-CSRF-TOKEN.
cookie_bench() {
  local cookies="$WORK/cookies.txt"
  example_cookies "$2" "$cookies"
  lua_bench "$1" library POST /protected "$2" "$HERE/cookie.lua" COOKIE_FILE="$cookies"
  rm -f "$cookies"
}

json_creds() { printf '{"username":"%s","password":"%s"}' "$USERNAME" "$PASSWORD"; }

access_token() {  # BASE_URL -> access token from POST /login
  curl -sf -X POST -H 'Content-Type: application/json' -d "$(json_creds)" "$1/login" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}

new_keycard_db() {  # PATH: a migrated database holding the bench user
  rm -f "$1" "$1-wal" "$1-shm"
  keycard_env 0 "$1"
  printf '%s\n' "$PASSWORD" | env "${KC_ENV[@]}" "$KEYCARD" user add "$USERNAME" >/dev/null
}

# ---- measurement ----------------------------------------------------------------------------
field() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

bench_cmd() {  # bench.sh with the common options
  "$ANCHORS/bench.sh" -d "$DURATION" --loadgen-cpu 0 --quiet-below "$QUIET" --quiet-max-wait "$QUIET_MAX" "$@"
}

# record LINE: append a BENCH line to the raw file (and show it)
record() { echo "$1" | tee -a "$RAW" >&2; }

# measure CMD...: run a command printing one BENCH line; re-run it while other processes used
# more than --max-foreign of a core (keeping the spoiled line as #CONTAMINATED).
measure() {
  local attempt line f
  for ((attempt = 0; attempt <= RETRIES; attempt++)); do
    line=$("$@" | grep '^BENCH' | tail -n1) || die "measurement failed: $*"
    [[ -n "$line" ]] || die "no result from: $*"
    f=$(field "$line" foreign_cpu_pct)
    if [[ "$f" == NA || "$f" -le "$MAX_FOREIGN" ]] || ((attempt == RETRIES)); then
      ((attempt == RETRIES && RETRIES > 0)) && [[ "$f" != NA && "$f" -gt "$MAX_FOREIGN" ]] && line="$line contaminated=1"
      record "$line"
      return 0
    fi
    record "#CONTAMINATED $line"
  done
}

proc_ticks() {
  local t=0 p
  for p in "$@"; do
    [[ -r /proc/$p/stat ]] && t=$((t + $(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
  done
  echo "$t"
}

# wait_idle PID: until the server has used < 5 % of a core over 1 s (queued password hashes of a
# finished /login run), 120 s at most.
wait_idle() {
  local i a b clk
  clk=$(getconf CLK_TCK)
  for ((i = 0; i < 120; i++)); do
    a=$(proc_ticks "$@"); sleep 1; b=$(proc_ticks "$@")
    (((b - a) * 100 < 5 * clk)) && return 0
  done
}

pids_on_port() { ss -ltnpH "( sport = :$1 )" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u | tr '\n' ' '; }

machine_busy_1s() {
  local a b
  a=$(awk '/^cpu /{print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat); sleep 1
  b=$(awk '/^cpu /{print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
  awk -v a="$a" -v b="$b" -v n="$(nproc --all)" 'BEGIN{split(a,x," "); split(b,y," ");
      dt=y[2]-x[2]; if (dt<=0) dt=1; printf "%.0f", n*100*(y[1]-x[1])/dt}'
}

wait_quiet() {  # as bench.sh --quiet-below; sets WAITED
  WAITED=0
  [[ "$QUIET" == 0 ]] && return 0
  local start=$SECONDS ok=0 busy
  while :; do
    busy=$(machine_busy_1s)
    if ((busy < QUIET)); then ok=$((ok + 1)); else ok=0; fi
    ((ok >= 3)) && break
    ((SECONDS - start >= QUIET_MAX)) && { log "machine still busy (${busy}%), measuring anyway"; break; }
  done
  WAITED=$((SECONDS - start))
}

# lua_bench TARGET TAG METHOD PATH BASE_URL LUA [VAR=VALUE...]: one wrk run with one of bench/'s Lua
# scripts (configured through the environment VAR=VALUE...), measured as the anchors' bench.sh
# measures; prints a BENCH line in its format, plus the script's own counters.
lua_bench() {
  local target="$1" tag="$2" method="$3" path="$4" url="$5" lua="$6"; shift 6
  local pids; read -r -a pids <<<"$(pids_on_port "${url##*:}")"
  wait_quiet
  local clk load1 s0 s1 c0 c1 ts out tf
  clk=$(getconf CLK_TCK)
  load1=$(cut -d' ' -f1 /proc/loadavg)
  c0=$(awk '/^cpu[0-9]+ /{busy=$2+$3+$4+$7+$8; tot=busy+$5+$6+$9; print $1, busy, tot, $9}' /proc/stat)
  s0=$(proc_ticks "${pids[@]}")
  ts=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  out=$(mktemp) tf=$(mktemp)
  local TIMEFORMAT='%R %U %S'
  { time env "$@" taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}s" --timeout 10s -s "$lua" "$url$path" \
      >"$out" 2>&1; } 2>"$tf" || { cat "$out" >&2; die "wrk failed"; }
  s1=$(proc_ticks "${pids[@]}")
  c1=$(awk '/^cpu[0-9]+ /{busy=$2+$3+$4+$7+$8; tot=busy+$5+$6+$9; print $1, busy, tot, $9}' /proc/stat)
  local wrk_line wall wusr wsys
  wrk_line=$(grep '^WRK_RESULT' "$out" || true)
  read -r wall wusr wsys <<<"$(tail -n1 "$tf")"
  rm -f "$out" "$tf"
  [[ -n "$wrk_line" ]] || die "wrk produced no result"
  local cores allbusy srv wrkc
  cores=$(paste -d' ' <(echo "$c0") <(echo "$c1") | awk '{db=$6-$2; dt=$7-$3; ds=$8-$4; if (dt<=0) dt=1;
      printf "%s%s=%.0f/%.0f", (NR>1?",":""), $1, 100*db/dt, 100*ds/dt }')
  allbusy=$(paste -d' ' <(echo "$c0") <(echo "$c1") | awk '{dt=$7-$3; if (dt<=0) dt=1; s+=100*($6-$2)/dt} END{printf "%.0f", s}')
  srv=$(awk -v a="$s0" -v b="$s1" -v c="$clk" -v w="$wall" 'BEGIN{printf "%.0f", 100*(b-a)/c/w}')
  wrkc=$(awk -v u="$wusr" -v s="$wsys" -v w="$wall" 'BEGIN{printf "%.0f", 100*(u+s)/w}')
  awk -v L="$wrk_line" -v target="$target" -v tag="$tag" -v method="$method" -v path="$path" -v conns="$CONNS" \
      -v dur="$DURATION" -v ts="$ts" -v srv="$srv" -v wrkc="$wrkc" -v cores="$cores" -v load1="$load1" \
      -v foreign="$((allbusy - srv - wrkc))" -v waited="$WAITED" '
    BEGIN {
      n = split(L, kv, " "); extra = "";
      for (i = 2; i <= n; i++) {
        split(kv[i], p, "="); v[p[1]] = p[2];
        if (p[1] !~ /^(requests|duration_us|rps|p50_us|p90_us|p99_us|max_us|non2xx|err_.*)$/) extra = extra " " kv[i];
      }
      printf "BENCH ts=%s target=%s tag=%s method=%s path=%s conns=%s threads=1 dur_s=%s rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f requests=%d non2xx=%d sock_err=%s/%s/%s/%s srv_cpu_pct=%s wrk_cpu_pct=%s core_busy_steal_pct=%s foreign_cpu_pct=%s load1=%s waited_s=%s%s\n",
        ts, target, tag, method, path, conns, dur, v["rps"], v["p50_us"]/1000, v["p90_us"]/1000, v["p99_us"]/1000,
        v["max_us"]/1000, v["requests"], v["non2xx"], v["err_connect"], v["err_read"], v["err_write"],
        v["err_timeout"], srv, wrkc, cores, foreign, load1, waited, extra
    }'
}

# refresh_bench TARGET BASE_URL: POST /token/refresh, every request rotating (bench/refresh.lua).
refresh_bench() {
  local target="$1" url="$2" tokens="$WORK/refresh-tokens.txt"
  # One session per connection (and a spare per connection), logged in before the clock runs.
  python3 "$HERE/probe.py" sessions "$url" "$USERNAME" "$PASSWORD" $((CONNS * 2)) "$tokens" >/dev/null
  # shellcheck disable=SC2046
  wait_idle $(pids_on_port "${url##*:}")
  lua_bench "$target" refresh POST /token/refresh "$url" "$HERE/refresh.lua" \
    REFRESH_TOKENS_FILE="$tokens" REFRESH_THREADS=1
  rm -f "$tokens"
}

# many_bench TARGET BASE_URL TOKENS_FILE: GET /protected with a different access token on each
# request (bench/tokens.lua), so that the revocation lookups hit cold memory as real traffic does.
many_bench() {
  lua_bench "$1" protected_many GET /protected "$2" "$HERE/tokens.lua" ACCESS_TOKENS_FILE="$3"
}

rotate() {  # N ITEMS...: the items rotated left by N
  local n="$1"; shift
  local items=("$@") k i
  k=${#items[@]}
  for ((i = 0; i < k; i++)); do echo "${items[$(((i + n) % k))]}"; done
}

# ---- machine ----------------------------------------------------------------------------------
{
  echo "MACHINE nproc=$(nproc --all)"
  echo "MACHINE cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
  echo "MACHINE memory=$(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "MACHINE kernel=$(uname -sr)"
  echo "MACHINE rustc=$(rustc --version)"
  echo "MACHINE wrk=$(wrk -v 2>&1 | head -n1 | awk '{print $1, $2}')"
  echo "MACHINE git=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
  echo "MACHINE settings=rounds=$ROUNDS duration=${DURATION}s connections=$CONNS quiet_below=$QUIET max_foreign=$MAX_FOREIGN revoked=$REVOKED idle_conns=$IDLE_CONNS"
} >>"$RAW"

# ---- microbenchmarks, on the server core -------------------------------------------------------
MICRO=()
if want protected; then
  log "token microbenchmarks (pinned to CPU 1)"
  (cd "$ROOT" && taskset -c 1 cargo bench -p keycard-token --bench tokens) >"$WORK/tokens.txt" 2>"$WORK/tokens.err" ||
    { cat "$WORK/tokens.err" >&2; die "cargo bench failed"; }
  MICRO+=(--micro "$WORK/tokens.txt")
fi
# argon2_bench: the raw Argon2id rate with keycard's parameters on the server core (divan, median
# of 30 hashes); run in every round next to the /login runs, so the ratio compares like with like.
argon2_bench() {
  wait_quiet
  (cd "$ROOT" && taskset -c 1 cargo bench -p keycard-server --bench argon2) >"$WORK/argon2.txt" 2>"$WORK/argon2.err" ||
    { cat "$WORK/argon2.err" >&2; die "cargo bench failed"; }
  python3 - "$WORK/argon2.txt" <<'EOF2' | tee -a "$RAW" >&2
import re, sys
units = {"ns": 1e-6, "µs": 1e-3, "us": 1e-3, "ms": 1.0, "s": 1e3}
out = []
for line in open(sys.argv[1], encoding="utf-8"):
    m = re.match(r"^\W*(hash_raw|verify_phc)\s+(.*)$", line)
    if not m:
        continue
    cols = [c.strip() for c in m.group(2).split("│")]
    value, unit = cols[2].split()  # fastest │ slowest │ median │ mean │ samples │ iters
    out.append(f"{m.group(1)}_ms={float(value) * units[unit]:.3f}")
if len(out) != 2:
    sys.exit("run.sh: could not parse the argon2 benchmark output")
print("ARGON2 " + " ".join(out))
EOF2
}

if want login; then
  log "building the Argon2id microbenchmark"
  (cd "$ROOT" && cargo bench -p keycard-server --bench argon2 --no-run) >&2
  MICRO+=(--micro "$WORK/argon2.txt")
fi

# ---- start the servers --------------------------------------------------------------------------
log "starting servers (pinned to CPU 1) in $WORK"
new_keycard_db "$WORK/keycard.db"
start_keycard keycard "$P_KC" "$WORK/keycard.db"; KC_PID=$STARTED
KC="http://127.0.0.1:$P_KC"
KC_TOKEN=$(access_token "$KC")

if want protected || want memory; then
  log "seeding $REVOKED revoked ids"
  new_keycard_db "$WORK/keycard-revoked.db"
  python3 "$HERE/probe.py" seed-revocations "$WORK/keycard-revoked.db" "$REVOKED" >&2
fi
if want protected; then
  start_keycard keycard_revoked "$P_KC_REV" "$WORK/keycard-revoked.db"
  KC_REV="http://127.0.0.1:$P_KC_REV"
  KC_REV_TOKEN=$(access_token "$KC_REV")
  # 65,536 distinct valid access tokens per server (new jti and sid each), signed with the
  # server's secret from one real token.
  python3 "$HERE/probe.py" mint-tokens "$KC_TOKEN" 65536 "$WORK/many-kc.txt" <<<"$SECRET" >&2
  python3 "$HERE/probe.py" mint-tokens "$KC_REV_TOKEN" 65536 "$WORK/many-kc-rev.txt" <<<"$SECRET" >&2
fi
if want protected || want user || want library || want algorithms || want resource_server; then
  start_anchor rust_floor "$P_RUST" rust
  RF="http://127.0.0.1:$P_RUST"
  RF_TOKEN=$(access_token "$RF")
fi
if [[ $FLASK -eq 1 ]] && { want protected || want user || want login; }; then
  start_anchor flask_seed "$P_FLASK" flask -w 1 -k gthread --threads 4
  FL="http://127.0.0.1:$P_FLASK"
  FL_TOKEN=$(access_token "$FL")
fi

# algorithms and resource_server: the URL and token of every target but rust_floor, by target name.
declare -A ALG_URL=() ALG_TOKEN=()
alg_target() {  # TARGET URL ALG: records the target's URL and a token, checking the token's alg
  local t
  t=$(access_token "$2") || die "no token from $2/login"
  [[ "$(token_alg "$t")" == "$3" ]] || die "$1 signs with $(token_alg "$t"), not $3 (is $ALG_ENV honoured?)"
  ALG_URL[$1]="$2" ALG_TOKEN[$1]="$t"
}
if want algorithms; then
  log "starting the algorithms scenario's servers"
  for a in HS256 "${ASYM_ALGS[@]}"; do
    lc=${a,,} pv=P_FLOOR_${a^^}
    start_floor "floor_$lc" "${!pv}" "$a"
    alg_target "floor_$lc" "http://127.0.0.1:${!pv}" "$a"
  done
  alg_target keycard_hs256 "$KC" HS256
  for a in "${ASYM_ALGS[@]}"; do
    lc=${a,,}
    for cache in cached nocache; do
      pv=P_KC_${a^^}; [[ $cache == nocache ]] && pv=${pv}_NC
      name=keycard_$lc; extra=("$ALG_ENV=$a")
      [[ $cache == nocache ]] && { name=${name}_nocache; extra+=("$CACHE_ENV=0"); }
      new_keycard_db "$WORK/$name.db"
      start_keycard "$name" "${!pv}" "$WORK/$name.db" "${extra[@]}"
      alg_target "$name" "http://127.0.0.1:${!pv}" "$a"
    done
  done
fi

if want resource_server; then
  log "starting the resource_server scenario's servers"
  if [[ -z "${ALG_URL[floor_es256]:-}" ]]; then
    start_floor floor_es256 "$P_FLOOR_ES256" ES256
    alg_target floor_es256 "http://127.0.0.1:$P_FLOOR_ES256" ES256
  fi
  # The issuer: not measured (it serves the JWK Set once and answers the feeds' long polls), so on
  # the load generator's core, leaving CPU 1 to the resource server.
  new_keycard_db "$WORK/keycard_issuer.db"
  KC_ISSUER="http://127.0.0.1:$P_KC_ISSUER"
  KC_CPU=0 start_keycard keycard_issuer "$P_KC_ISSUER" "$WORK/keycard_issuer.db" "$ALG_ENV=ES256" \
    "KEYCARD_PUBLIC_URL=$KC_ISSUER" "KEYCARD_RESOURCE_SERVER_TOKENS=$RS_CREDENTIAL"
  RS_TOKEN=$(registered_token "$KC_ISSUER" "$RS_USER") || die "no token from $KC_ISSUER"
  [[ "$(token_alg "$RS_TOKEN")" == ES256 ]] || die "the issuer signs with $(token_alg "$RS_TOKEN"), not ES256"
  start_resource_server resource_server "$P_RS"
  start_resource_server resource_server_nocache "$P_RS_NC" "$CACHE_ENV=0"
  for t in resource_server:$P_RS resource_server_nocache:$P_RS_NC; do
    u="http://127.0.0.1:${t#*:}"
    got=$(curl -s -H "Authorization: Bearer $RS_TOKEN" "$u/protected")
    [[ "$got" == *"\"logged_in_as\":\"$RS_USER\""* ]] || die "${t%%:*}: GET /protected answered $got"
    ALG_URL[${t%%:*}]="$u" ALG_TOKEN[${t%%:*}]="$RS_TOKEN"
  done
fi

if want library; then
  start_example simple "$P_LIB_SIMPLE"; LIB_SIMPLE="http://127.0.0.1:$P_LIB_SIMPLE"
  start_example additional_data_in_access_token "$P_LIB_CLAIMS"; LIB_CLAIMS="http://127.0.0.1:$P_LIB_CLAIMS"
  start_example jwt_locations "$P_LIB_COOKIE"; LIB_COOKIE="http://127.0.0.1:$P_LIB_COOKIE"
fi

# run_target SCENARIO NAME: one measured run of one target of a scenario
run_target() {
  local s="$1" name="$2"
  case "$name" in
    kc_protected) measure bench_cmd --url "$KC" --target keycard --tag "$s" --path /protected --token "$KC_TOKEN" ;;
    kc_rev_protected) measure bench_cmd --url "$KC_REV" --target keycard_revoked --tag "$s" --path /protected --token "$KC_REV_TOKEN" ;;
    kc_user) measure bench_cmd --url "$KC" --target keycard --tag "$s" --path /user --token "$KC_TOKEN" ;;
    rf_protected) measure bench_cmd --url "$RF" --target rust_floor --tag "$s" --path /protected --token "$RF_TOKEN" ;;
    rf_revocation) measure bench_cmd --url "$RF" --target rust_floor --tag "$s" --path /protected_revocation --token "$RF_TOKEN" ;;
    fl_protected) measure bench_cmd --url "$FL" --target flask_seed --tag "$s" --path /protected --token "$FL_TOKEN" ;;
    fl_user) measure bench_cmd --url "$FL" --target flask_seed --tag "$s" --path /user --token "$FL_TOKEN" ;;
    kc_login)
      measure bench_cmd --url "$KC" --target keycard --tag "$s" --mode login --user "$USERNAME:$PASSWORD"
      wait_idle "$KC_PID" ;;
    fl_login)
      measure bench_cmd --url "$FL" --target flask_seed --tag "$s" --mode login --user "$USERNAME:$PASSWORD"
      # shellcheck disable=SC2046
      wait_idle $(pids_on_port "$P_FLASK") ;;
    kc_refresh) measure refresh_bench keycard "$KC" ;;
    lib_simple) measure bench_cmd --url "$LIB_SIMPLE" --target example_simple --tag "$s" --path /protected \
      --token "$(example_token "$LIB_SIMPLE")" ;;
    lib_claims) measure bench_cmd --url "$LIB_CLAIMS" --target example_additional_data --tag "$s" --path /protected \
      --token "$(example_token "$LIB_CLAIMS")" ;;
    lib_cookie) measure cookie_bench example_jwt_locations "$LIB_COOKIE" ;;
    argon2) argon2_bench ;;
    kc_many) measure many_bench keycard "$KC" "$WORK/many-kc.txt" ;;
    kc_rev_many) measure many_bench keycard_revoked "$KC_REV" "$WORK/many-kc-rev.txt" ;;
    alg_rust_floor) measure bench_cmd --url "$RF" --target rust_floor --tag "$s" --path /protected --token "$RF_TOKEN" ;;
    alg_*) measure bench_cmd --url "${ALG_URL[${name#alg_}]}" --target "${name#alg_}" --tag "$s" --path /protected \
      --token "${ALG_TOKEN[${name#alg_}]}" ;;
    *) die "unknown run $name" ;;
  esac
}

# login_flood ROUND: GET /protected latency (a light probe: $PROBE_CONNS connections) while
# 64 connections flood POST /login, then the same probe alone.
login_flood() {
  local flood_d=$((DURATION + 4)) probe_line
  wait_quiet
  "$ANCHORS/bench.sh" --url "$KC" --target keycard --tag flood --mode login --user "$USERNAME:$PASSWORD" \
    -d "$flood_d" -c "$CONNS" --loadgen-cpu 0 >"$WORK/flood.out" 2>&1 &
  local flood=$!
  sleep 2
  probe_line=$("$ANCHORS/bench.sh" --url "$KC" --target keycard --tag flood_probe --path /protected \
    --token "$KC_TOKEN" -d "$DURATION" -c "$PROBE_CONNS" --loadgen-cpu 0 | grep '^BENCH')
  wait "$flood" || { cat "$WORK/flood.out" >&2; die "login flood failed"; }
  record "$probe_line"
  record "$(grep '^BENCH' "$WORK/flood.out")"
  wait_idle "$KC_PID"
  measure bench_cmd --url "$KC" --target keycard --tag probe --path /protected --token "$KC_TOKEN" -c "$PROBE_CONNS"
}

# ---- the rounds ----------------------------------------------------------------------------------
groups=()
if want protected; then
  g="protected:kc_protected rf_protected rf_revocation kc_rev_protected kc_many kc_rev_many"
  [[ $FLASK -eq 1 ]] && g="$g fl_protected"
  groups+=("$g")
fi
if want user; then
  g="user:kc_user rf_protected"
  [[ $FLASK -eq 1 ]] && g="$g fl_user"
  groups+=("$g")
fi
want library && groups+=("library:rf_protected lib_simple lib_claims lib_cookie")
if want algorithms; then
  g="algorithms:alg_rust_floor alg_floor_hs256 alg_keycard_hs256"
  for a in "${ASYM_ALGS[@]}"; do g="$g alg_floor_${a,,} alg_keycard_${a,,} alg_keycard_${a,,}_nocache"; done
  groups+=("$g")
fi
want resource_server && groups+=("resource_server:alg_rust_floor alg_floor_es256 alg_resource_server alg_resource_server_nocache")
want refresh && groups+=("refresh:kc_refresh")
if want login; then
  g="login:argon2 kc_login"
  [[ $FLASK -eq 1 ]] && g="$g fl_login"
  groups+=("$g")
fi

warmed=0
for ((r = 0; r < ROUNDS; r++)); do
  log "round $((r + 1)) of $ROUNDS"
  if ((warmed == 0)) && { want protected || want user || want library || want algorithms || want resource_server; }; then
    # Unreported warm-up of each GET path, as the anchors' campaign does.
    warm=()
    for t in "${!ALG_URL[@]}"; do warm+=("${ALG_URL[$t]}/protected ${ALG_TOKEN[$t]}"); done
    for u in "$KC/protected $KC_TOKEN" "$KC/user $KC_TOKEN" ${RF:+"$RF/protected $RF_TOKEN"} \
        ${LIB_SIMPLE:+"$LIB_SIMPLE/protected $(example_token "$LIB_SIMPLE")"} \
        ${LIB_CLAIMS:+"$LIB_CLAIMS/protected $(example_token "$LIB_CLAIMS")"} "${warm[@]}"; do
      read -r wu wt <<<"$u"
      BENCH_TOKEN="$wt" taskset -c 0 wrk -t1 -c"$CONNS" -d2s -s "$ANCHORS/bench.lua" "$wu" >/dev/null 2>&1 || true
    done
    warmed=1
  fi
  for g in "${groups[@]}"; do
    scenario="${g%%:*}"
    read -r -a runs <<<"${g#*:}"
    for name in $(rotate "$r" "${runs[@]}"); do
      run_target "$scenario" "$name"
    done
  done
  want login && login_flood
done

# ---- memory and start-up -------------------------------------------------------------------------
if want memory; then
  log "memory and start-up"
  for kind in empty revoked; do
    db="$WORK/keycard.db"; [[ $kind == revoked ]] && db="$WORK/keycard-revoked.db"
    keycard_env "$P_SCRATCH" "$db"
    taskset -c 0 python3 "$HERE/probe.py" startup "http://127.0.0.1:$P_SCRATCH" "$MEM_RUNS" -- \
      env "${KC_ENV[@]}" taskset -c 1 "$KEYCARD" serve |
      sed "s/^STARTUP /MEM target=keycard kind=startup_$kind /" | tee -a "$RAW" >&2
  done
  # 10,000 idle keep-alive connections, against a fresh keycard and a fresh rust_floor.
  start_keycard keycard_conns "$P_SCRATCH" "$WORK/keycard.db"
  pid=$STARTED
  taskset -c 0 python3 "$HERE/probe.py" conns 127.0.0.1 "$P_SCRATCH" /healthz "$IDLE_CONNS" "$pid" |
    sed 's/^CONNS /MEM target=keycard kind=conns /' | tee -a "$RAW" >&2
  stop_pid "$pid"
  start_anchor rust_floor_conns "$P_SCRATCH" rust
  pid=$STARTED
  taskset -c 0 python3 "$HERE/probe.py" conns 127.0.0.1 "$P_SCRATCH" /hello "$IDLE_CONNS" "$pid" |
    sed 's/^CONNS /MEM target=rust_floor kind=conns /' | tee -a "$RAW" >&2 || true
  stop_pid "$pid"
fi

# ---- memory under load ---------------------------------------------------------------------------
if want soak; then
  log "soak: ${SOAK_DURATION} s of mixed load (bench/soak.sh)"
  wait_quiet
  "$HERE/soak.sh" --no-build --keycard "$KEYCARD" --duration "$SOAK_DURATION" --connections "$CONNS" \
    --raw "$RAW" >&2
fi

# ---- report --------------------------------------------------------------------------------------
cleanup
PIDS=()
rm -f "$WORK"/*.db "$WORK"/*.db-wal "$WORK"/*.db-shm   # up to ~100 MB each; logs and raw lines stay
# With a subset of the scenarios, the sections and rows the run did not produce are copied from the
# report being replaced, marked as from the earlier run.
PREVIOUS=()
[[ -f "$OUTPUT" ]] && { cp "$OUTPUT" "$WORK/BENCHMARKS.previous.md"; PREVIOUS=(--previous "$WORK/BENCHMARKS.previous.md"); }
python3 "$HERE/report.py" --raw "$RAW" --command "$COMMAND" --analysis "$HERE/analysis.md" "${MICRO[@]}" \
  "${PREVIOUS[@]}" >"$WORK/BENCHMARKS.new.md"
mv "$WORK/BENCHMARKS.new.md" "$OUTPUT"
cp "$OUTPUT" "$WORK/BENCHMARKS.md"
log "report written to $OUTPUT (raw lines and logs in $WORK)"
cat "$OUTPUT"
