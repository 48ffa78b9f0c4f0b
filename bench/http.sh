#!/usr/bin/env bash
# Request throughput of the API: an unauthenticated probe (/healthz) beside
# authenticated GETs (JWT check + role lookup + query), on SQLite and, when
# a PostgreSQL is at hand, on PostgreSQL. wrk drives it from the same
# machine over loopback; each figure is the median of ROUNDS runs.
#   bench/http.sh            ROUNDS=5 DURATION=5 CONNS=64 THREADS=2
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${ARGUS_BIN:-$ROOT/build/argus}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}

command -v wrk >/dev/null || { echo "bench: installing wrk"; apt-get install -y -qq wrk >/dev/null; }
command -v curl >/dev/null || apt-get install -y -qq curl >/dev/null

WORK=$(mktemp -d /tmp/argus-bench.XXXXXX)
PID=""
PGDIR=""
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  [ -n "$PGDIR" ] && "$ROOT/scripts/pg-test.sh" stop "$PGDIR" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

start() { # store-url
  "$BIN" serve --demo --store "$1" --port 0 --threads "$THREADS" \
    --log-requests=false --web-dir "$WORK" 2>"$WORK/log" &
  PID=$!
  for _ in $(seq 100); do
    URL=$(grep -o 'url=http://[^ ]*' "$WORK/log" | head -1 | cut -d= -f2) || true
    [ -n "${URL:-}" ] && break
    sleep 0.1
  done
  [ -n "${URL:-}" ] || { cat "$WORK/log"; exit 1; }
  TOKEN=$(curl -s "$URL/api/v1/auth/login" -H 'content-type: application/json' \
    -d '{"email":"admin@demo.argus.local","password":"argus-demo"}' |
    sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
  DEVICE=$(curl -s "$URL/api/v1/devices?limit=1" -H "authorization: Bearer $TOKEN" |
    grep -o '"id":"[^"]*"' | head -1 | cut -d'"' -f4)
}

stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""; }

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

measure() { # label path [auth]
  local label=$1 path=$2 auth=${3:-} rps=() lat=()
  for _ in $(seq "$ROUNDS"); do
    if [ -n "$auth" ]; then
      out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -H "Authorization: Bearer $TOKEN" "$URL$path")
    else
      out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$URL$path")
    fi
    if echo "$out" | grep -q 'Non-2xx'; then echo "bench: non-2xx answers for $path"; echo "$out"; exit 1; fi
    rps+=("$(echo "$out" | awk '/Requests\/sec/ {print $2}')")
    lat+=("$(echo "$out" | awk '$1=="99%" {v=$2; if (v ~ /ms/) {sub("ms","",v)} else if (v ~ /us/) {sub("us","",v); v=v/1000} else {sub("s","",v); v=v*1000}; print v}')")
  done
  printf '%-10s %-44s %10.0f %12.2f\n' "$STORE_LABEL" "$label" \
    "$(printf '%s\n' "${rps[@]}" | median)" "$(printf '%s\n' "${lat[@]}" | median)"
}

printf 'argus HTTP bench: %s rounds x %ss, %s connections, %s server threads, wrk 1 thread, same machine\n' \
  "$ROUNDS" "$DURATION" "$CONNS" "$THREADS"
printf '%-10s %-44s %10s %12s\n' store request 'req/s(med)' 'p99 ms(med)'

run_store() {
  start "$1"
  measure "GET /healthz (no auth)" /healthz
  measure "GET /api/v1/auth/me (JWT + user)" /api/v1/auth/me auth
  measure "GET /api/v1/devices/:id (JWT + 1 row)" "/api/v1/devices/$DEVICE" auth
  measure "GET /api/v1/devices?limit=10 (page+count)" "/api/v1/devices?limit=10" auth
  stop
}

STORE_LABEL=sqlite
run_store "sqlite:$WORK/bench.db"

if [ -x "$ROOT/scripts/pg-test.sh" ] && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  PGDIR=$(mktemp -d /tmp/argus-bench-pg.XXXXXX)
  STORE_LABEL=postgres
  run_store "$("$ROOT/scripts/pg-test.sh" start "$PGDIR")"
fi
