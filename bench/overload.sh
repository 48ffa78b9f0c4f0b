#!/usr/bin/env bash
# Memory under overload: far more offered load than the server can store
# (1,000 keep-alive connections each with 100 messages in flight: five
# times an ingest queue of 20,000, and several times what the 2 cores
# persist), for
# DURATION seconds. Argus must answer 429/503 with Retry-After instead of
# growing: the script samples the resident memory of argus (and of the bus
# server) every second and prints the first and last five seconds' figures
# next to the answers the load generator got.
#   bench/overload.sh   DURATION=30 MODES="embedded redis"
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${ARGUS_BIN:-$ROOT/build/argus}
SIM=${SIM_BIN:-$BIN} # the load generator (SIM_BIN: another build's, to compare servers)
DURATION=${DURATION:-30}
MODES=${MODES:-embedded redis}
WORK=$(mktemp -d /tmp/argus-overload.XXXXXX)
PID="" BUSPID=""
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null
  [ -n "$BUSPID" ] && kill "$BUSPID" 2>/dev/null
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || true

. "$ROOT/bench/lib.sh"

run() { # mode
  local mode=$1 extra=(--ingest-queue 20000)
  rm -f "$WORK"/bench.db*
  if [ "$mode" = redis ]; then
    start_bus redis
    # A small bus capacity per partition, so that the bound shows within
    # the run: 16 partitions x 5,000 messages.
    extra+=(--bus "$BUS_URL" --bus-capacity 5000)
  fi
  start_argus --store "sqlite:$WORK/bench.db" "${extra[@]}"
  "$SIM" sim --url "$URL" --devices 1000 --connections 1000 --batch 100 --metrics 5 \
    --duration "$DURATION" >"$WORK/sim.json" 2>/dev/null &
  local simpid=$! samples=() bus_samples=()
  while kill -0 "$simpid" 2>/dev/null; do
    samples+=("$(rss_now_mb "$PID")")
    [ -n "$BUSPID" ] && bus_samples+=("$(rss_now_mb "$BUSPID")")
    sleep 1
  done
  wait "$simpid" || true
  local n=${#samples[@]}
  local first last peak
  first=$(printf '%s\n' "${samples[@]:0:5}" | sort -n | tail -1)
  last=$(printf '%s\n' "${samples[@]:$((n > 5 ? n - 5 : 0))}" | sort -n | tail -1)
  peak=$(printf '%s\n' "${samples[@]}" | sort -n | tail -1)
  local busmem="-"
  if [ -n "$BUSPID" ]; then
    busmem="$(printf '%s\n' "${bus_samples[@]:0:5}" | sort -n | tail -1) → $(printf '%s\n' "${bus_samples[@]}" | sort -n | tail -1)"
  fi
  python3 - "$mode" "$first" "$last" "$peak" "$busmem" "$WORK/sim.json" <<'EOF'
import json, sys
mode, first, last, peak, busmem, path = sys.argv[1:]
d = json.load(open(path))
st = d["status"]
print(f"{mode:<10} {d['acceptedPerSecond']:>10.0f} {st['202']:>8} {st['429']:>8} {st['5xx']:>8} {st['errors']:>7} "
      f"{first:>10} {last:>10} {peak:>9}   {busmem}")
EOF
  stop_argus
  if [ -n "$BUSPID" ]; then stop_bus; fi
}

printf 'argus under overload: 1,000 connections x batches of 100 x 5 metrics, flat out, %s s; SQLite store; load generator on the same 2 cores\n' "$DURATION"
printf '%-10s %10s %8s %8s %8s %7s %10s %10s %9s   %s\n' mode 'acc msg/s' '202' '429' '5xx' 'errors' 'RSS 0-5s' 'RSS last5' 'RSS peak' 'bus RSS first → peak (MB)'
for m in $MODES; do run "$m"; done
