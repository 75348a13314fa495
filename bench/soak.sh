#!/usr/bin/env bash
# bench/soak.sh -- keycard's memory under a long mixed load: RSS just after start, after a login
# flood, and sampled every 30 s over a 10-minute mix of 70 % GET /protected, 20 % GET /user,
# 5 % POST /token/refresh and 5 % POST /login (bench/mixed.lua).
#
# Usage:
#   bench/soak.sh                         # 10 minutes; builds keycard (release) first
#   bench/soak.sh --duration 120 --no-build
#   bench/soak.sh --env MALLOC_ARENA_MAX=2  # an experiment: extra environment for the server
#
# Options:
#   --duration S      seconds of mixed load (default 600)
#   --interval S      seconds between RSS samples (default 30)
#   --flood S         seconds of the login flood before the soak (default 10)
#   --connections C   wrk connections, flood and soak (default 64)
#   --env VAR=VALUE   extra environment for the server (repeatable)
#   --label NAME      names the run in its SOAK line (default: keycard)
#   --keycard PATH    the keycard binary (default: $CARGO_TARGET_DIR or target, release/keycard)
#   --no-build        do not build keycard first
#   --raw FILE        also append the SOAK line to FILE (bench/run.sh's raw file)
#   -h, --help        this text
#
# The server runs on a fresh SQLite database with its defaults (Argon2id m=19456 KiB, t=2, p=1;
# hash concurrency = the cores it may use) except KEYCARD_RATE_LIMIT=0 (wrk is one client
# address), pinned to CPU 1; wrk runs on CPU 0 (as bench/run.sh and ../shared/anchors). Output in
# target/bench/soak-<timestamp>/: rss.csv (one row per sample: seconds since the soak began, VmRSS,
# VmHWM, RssAnon, RssFile, threads), the server's smaps_rollup and its big mappings at start,
# after the flood and at the end (smaps_rollup-*.txt, big-mappings-*.txt), the server log, and one
# SOAK line (also printed) with
#   start_kib    RSS 1 s after the first 200 from /healthz
#   flood_kib    RSS once the login flood's queued hashes are done
#   soak0_kib    RSS when the mixed load starts (after the flood and logging in the refresh sessions)
#   soak30_kib   the first sample under load; end_kib the last one (when wrk stops); max_kib the largest
#   growth_kib   end - soak0; drift_kib end - soak30 (growth once warmed up)
#   series       every sample as T/RSS_KIB, colon-separated
# plus wrk's counts (requests, non2xx, socket errors, requests of each kind). RSS is read from
# /proc/PID/status in KiB.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
COMMAND="bench/soak.sh${*:+ $*}"

DURATION=600 INTERVAL=30 FLOOD=10 CONNS=64 LABEL=keycard BUILD=1 KEYCARD_OVERRIDE="" RAW_OUT=""
EXTRA_ENV=()

die() { echo "soak.sh: $*" >&2; exit 2; }
log() { echo "soak.sh: $*" >&2; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration) DURATION="$2"; shift 2 ;;
    --interval) INTERVAL="$2"; shift 2 ;;
    --flood) FLOOD="$2"; shift 2 ;;
    --connections) CONNS="$2"; shift 2 ;;
    --env) EXTRA_ENV+=("$2"); shift 2 ;;
    --label) LABEL="$2"; shift 2 ;;
    --keycard) KEYCARD_OVERRIDE="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --raw) RAW_OUT="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
for v in DURATION INTERVAL FLOOD CONNS; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "--${v,,} must be a positive integer"
done

ANCHORS=""
for d in "${ANCHORS_DIR:-}" "$ROOT/../shared/anchors" "$ROOT/shared/anchors" /work/shared/anchors; do
  if [[ -n "$d" && -f "$d/bench.lua" ]]; then ANCHORS="$(cd "$d" && pwd)"; break; fi
done
[[ -n "$ANCHORS" ]] || die "anchors not found (expected ../shared/anchors; or set ANCHORS_DIR)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
KEYCARD="${KEYCARD_OVERRIDE:-$TARGET_DIR/release/keycard}"
WORK="$TARGET_DIR/bench/soak-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$WORK"
CSV="$WORK/rss.csv"

PORT=18090
SECRET="bench-only-secret-0123456789abcdef0123456789abcdef"
USERNAME="bench" PASSWORD="bench-password"
LOGIN_BODY=$(printf '{"username":"%s","password":"%s"}' "$USERNAME" "$PASSWORD")

for tool in python3 curl taskset ss wrk; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
if [[ $BUILD -eq 1 && -z "$KEYCARD_OVERRIDE" ]]; then
  log "building keycard (release)"
  (cd "$ROOT" && cargo build --release -p keycard-server --bin keycard) >&2
fi
[[ -x "$KEYCARD" ]] || die "no keycard binary at $KEYCARD (run without --no-build)"

KC_ENV=("KEYCARD_BIND=127.0.0.1:$PORT" "KEYCARD_DATABASE_URL=sqlite://$WORK/keycard.db"
  "KEYCARD_JWT_SECRET=$SECRET" KEYCARD_ACCESS_TTL=1h KEYCARD_REFRESH_TTL=30d KEYCARD_RATE_LIMIT=0)

SERVER=""
WRK_PID=""
cleanup() {
  [[ -n "$WRK_PID" ]] && kill "$WRK_PID" 2>/dev/null || true
  if [[ -n "$SERVER" ]]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
  rm -f "$WORK"/keycard.db "$WORK"/keycard.db-wal "$WORK"/keycard.db-shm "$WORK"/refresh-tokens.txt
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# status_kib PID FIELD: a /proc/PID/status field in KiB (Threads: the count)
status_kib() { awk -v f="$2:" '$1 == f {print $2; exit}' "/proc/$1/status"; }
rss() { status_kib "$SERVER" VmRSS; }

# snapshot NAME: the server's smaps_rollup and its mappings with more than 1 MiB resident, to
# see where the memory is (heap, thread arenas, stacks, files)
snapshot() {
  cat "/proc/$SERVER/smaps_rollup" >"$WORK/smaps_rollup-$1.txt" 2>/dev/null || true
  awk '/^[0-9a-f]+-[0-9a-f]+ /{m=$0} $1=="Rss:" && $2>1024 {print $2 " KiB  " m}' "/proc/$SERVER/smaps" \
    >"$WORK/big-mappings-$1.txt" 2>/dev/null || true
}

proc_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
wait_idle() {  # until the server used < 5 % of a core over 1 s (queued hashes done), 120 s at most
  local i a b clk
  clk=$(getconf CLK_TCK)
  for ((i = 0; i < 120; i++)); do
    a=$(proc_ticks "$SERVER"); sleep 1; b=$(proc_ticks "$SERVER")
    (((b - a) * 100 < 5 * clk)) && return 0
  done
}

# ---- server on a fresh database -----------------------------------------------------------------
ss -ltnH "( sport = :$PORT )" 2>/dev/null | grep -q . && die "port $PORT is in use"
printf '%s\n' "$PASSWORD" | env "${KC_ENV[@]}" "$KEYCARD" user add "$USERNAME" >/dev/null
env "${KC_ENV[@]}" "${EXTRA_ENV[@]}" taskset -c 1 "$KEYCARD" serve >"$WORK/server.log" 2>&1 &
SERVER=$!
for ((i = 0; i < 600; i++)); do
  [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/healthz" || true)" == 200 ]] && break
  kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/server.log" >&2; die "keycard exited"; }
  sleep 0.1
done
sleep 1
START_KIB=$(rss)
log "RSS just after start: $START_KIB KiB"
snapshot start

# ---- login flood --------------------------------------------------------------------------------
log "login flood: ${FLOOD} s, $CONNS connections"
BENCH_METHOD=POST BENCH_BODY="$LOGIN_BODY" taskset -c 0 wrk -t1 -c"$CONNS" -d"${FLOOD}s" --timeout 60s \
  -s "$ANCHORS/bench.lua" "http://127.0.0.1:$PORT/login" >"$WORK/flood.txt" 2>&1 || die "wrk failed (flood)"
wait_idle
FLOOD_KIB=$(rss)
FLOOD_LINE=$(grep '^WRK_RESULT' "$WORK/flood.txt" || true)
log "RSS after the login flood: $FLOOD_KIB KiB ($FLOOD_LINE)"
snapshot flood

# ---- the soak -----------------------------------------------------------------------------------
ACCESS=$(curl -sf -X POST -H 'Content-Type: application/json' -d "$LOGIN_BODY" "http://127.0.0.1:$PORT/login" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
python3 "$HERE/probe.py" sessions "http://127.0.0.1:$PORT" "$USERNAME" "$PASSWORD" "$CONNS" "$WORK/refresh-tokens.txt" >/dev/null
wait_idle

echo "t_s,rss_kib,hwm_kib,anon_kib,file_kib,threads" >"$CSV"
sample() {  # T: one CSV row; sets LAST
  local s
  s=$(awk '$1=="VmRSS:"{r=$2} $1=="VmHWM:"{h=$2} $1=="RssAnon:"{a=$2} $1=="RssFile:"{f=$2} $1=="Threads:"{t=$2}
           END{print r "," h "," a "," f "," t}' "/proc/$SERVER/status")
  echo "$1,$s" >>"$CSV"
  LAST=${s%%,*}
  SERIES+="${SERIES:+:}$1/$LAST"
}
SERIES=""
sample 0
SOAK0_KIB=$LAST
log "soak: ${DURATION} s of 70 % /protected, 20 % /user, 5 % refresh, 5 % login; RSS every ${INTERVAL} s -> $CSV"
ACCESS_TOKEN="$ACCESS" LOGIN_BODY="$LOGIN_BODY" REFRESH_TOKENS_FILE="$WORK/refresh-tokens.txt" REFRESH_THREADS=1 \
  taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}s" --timeout 60s -s "$HERE/mixed.lua" "http://127.0.0.1:$PORT/" \
  >"$WORK/soak.txt" 2>&1 &
WRK_PID=$!
T0=$SECONDS
SOAK30_KIB="" MAX_KIB=$SOAK0_KIB
next=$INTERVAL
while kill -0 "$WRK_PID" 2>/dev/null; do
  if ((SECONDS - T0 >= next)); then
    sample "$next"
    [[ -z "$SOAK30_KIB" ]] && SOAK30_KIB=$LAST
    ((LAST > MAX_KIB)) && MAX_KIB=$LAST
    log "t=${next}s RSS $LAST KiB"
    next=$((next + INTERVAL))
  fi
  sleep 0.5
done
wait "$WRK_PID" || { cat "$WORK/soak.txt" >&2; die "wrk failed (soak)"; }
WRK_PID=""
sample "$((SECONDS - T0))"
END_KIB=$LAST
snapshot end
((END_KIB > MAX_KIB)) && MAX_KIB=$END_KIB
SOAK30_KIB=${SOAK30_KIB:-$END_KIB}
WRK_LINE=$(grep '^WRK_RESULT' "$WORK/soak.txt" || true)
[[ -n "$WRK_LINE" ]] || { cat "$WORK/soak.txt" >&2; die "wrk produced no result"; }

kv() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
env_tag=$(IFS=,; echo "${EXTRA_ENV[*]:-}")
LINE="SOAK ts=$(date -u +%Y-%m-%dT%H:%M:%SZ) target=$LABEL env=${env_tag:-none} git=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
LINE+=" cmd=${COMMAND// /+} dur_s=$DURATION interval_s=$INTERVAL conns=$CONNS flood_s=$FLOOD flood_requests=$(kv "$FLOOD_LINE" requests)"
LINE+=" start_kib=$START_KIB flood_kib=$FLOOD_KIB soak0_kib=$SOAK0_KIB soak30_kib=$SOAK30_KIB end_kib=$END_KIB max_kib=$MAX_KIB"
LINE+=" growth_kib=$((END_KIB - SOAK0_KIB)) drift_kib=$((END_KIB - SOAK30_KIB)) threads_end=$(status_kib "$SERVER" Threads)"
LINE+=" series=$SERIES"
for k in requests rps non2xx err_connect err_read err_write err_timeout protected user refresh login starved; do
  LINE+=" $k=$(kv "$WRK_LINE" "$k")"
done
echo "$LINE" >"$WORK/soak-line.txt"
[[ -n "$RAW_OUT" ]] && echo "$LINE" >>"$RAW_OUT"
log "results in $WORK"
echo "$LINE"
