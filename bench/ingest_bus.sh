#!/usr/bin/env bash
# Ingest throughput and end-to-end latency with an external bus: argus serve
# --bus redis:// or nats:// (ingest publishes, the archive, normalize and
# device-writer stages consume, all in one process), a private PostgreSQL,
# Redis and NATS on loopback, and argus sim on the same 2 cores.
#
# accepted/s  what the simulator got 202 for (durable in the bus);
# persisted/s device-writer commits, from the start of the load to the
#             moment the pipeline has drained;
# e2e p50..   receipt by ingest → points committed, from the server's
#             argus_pipeline_e2e_seconds histogram (bucket-interpolated);
#             for a steady rate, of the measured run after WARMUP (3) s of
#             the same load, so that the consumers' start-up (taking their
#             partitions) is not in it.
#   bench/ingest_bus.sh   DURATION=10 ROUNDS=3 STORES="postgres" BUSES="redis nats"
#   (SKIP_BATCHES=1 runs only the steady-rate scenario)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${ARGUS_BIN:-$ROOT/build/argus}
SIM=${SIM_BIN:-$BIN} # the load generator (SIM_BIN: another build's, to compare servers)
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-3}
STORES=${STORES:-postgres}
BUSES=${BUSES:-redis nats}
WORK=$(mktemp -d /tmp/argus-ingest-bus.XXXXXX)
PGDIR=$(mktemp -d /tmp/argus-pg.XXXXXX)
PID="" BUSPID=""
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null
  [ -n "$BUSPID" ] && kill "$BUSPID" 2>/dev/null
  wait 2>/dev/null || true
  "$ROOT/scripts/pg-test.sh" stop "$PGDIR" >/dev/null 2>&1 || true
  rm -rf "$WORK" "$PGDIR"
}
trap cleanup EXIT

. "$ROOT/bench/lib.sh"

PG_URL=""
case " $STORES " in *" postgres "*) PG_URL=$("$ROOT/scripts/pg-test.sh" start "$PGDIR") ;; esac
store_url() { # kind → a fresh store URL
  if [ "$1" = sqlite ]; then rm -f "$WORK"/bench.db*; echo "sqlite:$WORK/bench.db"; return; fi
  psql -X -q "$PG_URL" -c 'DROP DATABASE IF EXISTS bench WITH (FORCE)' -c 'CREATE DATABASE bench' >/dev/null
  echo "${PG_URL%/*}/bench"
}

start() { start_argus --store "$1" --bus "$BUS_URL"; }
stop() { stop_argus; }
metric() { curl -s "$URL/metrics" | awk -v k="$1" '$1 == k {print $2}'; }
written() { metric 'argus_stage_messages_total{stage="device-writer",result="ok"}'; }
published() { metric 'argus_pipeline_messages_total{result="published"}'; }
rss_mb() { rss_peak_mb "$PID"; }
# q1 q2 q3 of the e2e histogram, from /metrics on stdin.

command -v curl >/dev/null || { echo "curl is needed" >&2; exit 1; }

scenario() { # store bus label sim-args...
  local store=$1 bus=$2 label=$3; shift 3
  local acc=() per=() p50=() p95=() p99=() ack99=()
  for _ in $(seq "$ROUNDS"); do
    start_bus "$bus"
    start "$(store_url "$store")"
    # A steady rate is measured in steady state: after WARMUP seconds of
    # the same load (consumers have taken their partitions), drained.
    local w0=0
    if [[ " $* " == *" --rate "* ]] && [ "$WARMUP" -gt 0 ]; then
      "$SIM" sim --url "$URL" --duration "$WARMUP" "$@" >/dev/null 2>&1 || true
      for _ in $(seq 300); do
        [ "$(written | cut -d. -f1)" -ge "$(published | cut -d. -f1)" ] 2>/dev/null && break
        sleep 0.1
      done
      w0=$(written | cut -d. -f1)
    fi
    curl -s "$URL/metrics" >"$WORK/base.metrics"
    local t0; t0=$(date +%s.%N)
    local out; out=$("$SIM" sim --url "$URL" --duration "$DURATION" "$@" 2>/dev/null || true)
    local want; want=$(( $(echo "$out" | field 'd["acceptedMessages"]') + w0 ))
    # Drained: every accepted message written (at most 120 s more).
    for _ in $(seq 1200); do
      [ "$(written | cut -d. -f1)" -ge "$want" ] 2>/dev/null && break
      sleep 0.1
    done
    local t1; t1=$(date +%s.%N)
    acc+=("$(echo "$out" | field 'd["acceptedPerSecond"]')")
    per+=("$(python3 -c "print(round(($(written) - $w0) / ($t1 - $t0)))")")
    read -r a b c < <(curl -s "$URL/metrics" | e2e_quantiles "$WORK/base.metrics")
    p50+=("$a"); p95+=("$b"); p99+=("$c")
    ack99+=("$(echo "$out" | field 'd["latencyMs"]["p99"]')")
    RSS=$(rss_mb)
    stop
    stop_bus
  done
  printf '%-44s %10.0f %11.0f %8.1f %8.1f %8.1f %9.1f %6s\n' "$store + $bus: $label" \
    "$(printf '%s\n' "${acc[@]}" | median)" "$(printf '%s\n' "${per[@]}" | median)" \
    "$(printf '%s\n' "${p50[@]}" | median)" "$(printf '%s\n' "${p95[@]}" | median)" \
    "$(printf '%s\n' "${p99[@]}" | median)" "$(printf '%s\n' "${ack99[@]}" | median)" "$RSS"
}

printf 'argus ingest bench with an external bus (serve: ingest + stages in one process), %s s x %s rounds, medians; servers and load generator on the same 2 cores\n' "$DURATION" "$ROUNDS"
printf '%-44s %10s %11s %8s %8s %8s %9s %6s\n' scenario 'accepted/s' 'persisted/s' 'e2e p50' 'e2e p95' 'e2e p99' 'ack p99' 'RSS MB'
for store in $STORES; do
  for bus in $BUSES; do
    [ -n "${SKIP_BATCHES:-}" ] || scenario "$store" "$bus" "batches of 100 x 5 metrics" --devices 100 --connections 4 --batch 100 --metrics 5
    scenario "$store" "$bus" "steady 10,000 msgs/s, single" --devices 200 --connections 32 --batch 1 --metrics 5 --rate 10000
  done
done
