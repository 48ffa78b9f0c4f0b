#!/usr/bin/env bash
# Ingest throughput and latency, embedded (SQLite, in-process pipeline), then
# with PostgreSQL and Redis Streams / NATS JetStream (bench/ingest_bus.sh):
# argus sim drives the real server over HTTP keep-alive on the same machine.
# A 202 is sent once a message is durable in the raw store; its points are
# written a moment later (runner.c, "Deferred points"). "persisted" counts
# messages whose points are committed (the server's own counter, read once
# they caught up), "ack" is the 202's latency at the load generator, and
# "e2e" is the server's ingest receipt → points committed
# (argus_pipeline_e2e_seconds). Single messages flat out use 128
# connections: a 202 waits for a group commit and its fdatasync (~3 ms
# under load), so 40,000 requests/s need about that many in flight; the
# simulator's connections are cheap (two event-loop threads). The steady
# scenario keeps 32, as in earlier figures.
#   bench/ingest.sh   DURATION=10 ROUNDS=3 [ARGUS_BIN=… SIM_BIN=…]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${ARGUS_BIN:-$ROOT/build/argus}
SIM=${SIM_BIN:-$BIN} # the load generator (SIM_BIN: another build's, to compare servers)
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
WORK=$(mktemp -d /tmp/argus-ingest.XXXXXX)
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

. "$ROOT/bench/lib.sh"
start() { rm -f "$WORK"/bench.db*; start_argus --store "sqlite:$WORK/bench.db" "$@"; }
stop() { stop_argus; }
stored() { curl -s "$URL/metrics" | awk '/^argus_pipeline_messages_total\{result="stored"\}/ {print $2}'; }
rss_mb() { rss_peak_mb "$PID"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; } # user + system

command -v curl >/dev/null || apt-get install -y -qq curl >/dev/null
[ -x /usr/bin/time ] || apt-get install -y -qq time >/dev/null

scenario() { # label sim-args...
  local label=$1; shift
  local acc=() per=() p50=() p95=() p99=() e99=() scpu=() gcpu=()
  for _ in $(seq "$ROUNDS"); do
    start
    local before; before=$(stored)
    local t0; t0=$(cpu_ticks)
    local out; out=$(/usr/bin/time -o "$WORK/simcpu" -f '%U %S' \
      "$SIM" sim --url "$URL" --duration "$DURATION" "$@" 2>/dev/null || true)
    local t1; t1=$(cpu_ticks)
    # Points follow the acknowledgement by up to a few tens of ms.
    local want; want=$(echo "$out" | field 'd["acceptedMessages"]')
    for _ in $(seq 100); do
      [ "$(( $(stored | cut -d. -f1) - ${before%.*} ))" -ge "$want" ] && break
      sleep 0.05
    done
    local after; after=$(stored)
    read -r _ _ e < <(curl -s "$URL/metrics" | e2e_quantiles)
    e99+=("$e")
    local secs; secs=$(echo "$out" | field 'd["seconds"]')
    # CPU of the server and of the load generator, in % of one core over
    # the run (both include the generator's set-up of its devices).
    scpu+=("$(python3 -c "print(round(($t1 - $t0) / $(getconf CLK_TCK) / $secs * 100))")")
    gcpu+=("$(awk -v s="$secs" '{printf "%.0f", ($1 + $2) / s * 100}' "$WORK/simcpu")")
    acc+=("$(echo "$out" | field 'd["acceptedPerSecond"]')")
    per+=("$(python3 -c "print(round(($after - $before) / $secs))")")
    p50+=("$(echo "$out" | field 'd["latencyMs"]["p50"]')")
    p95+=("$(echo "$out" | field 'd["latencyMs"]["p95"]')")
    p99+=("$(echo "$out" | field 'd["latencyMs"]["p99"]')")
    RSS=$(rss_mb)
    stop
  done
  printf '%-52s %12.0f %12.0f %8.2f %8.2f %8.2f %8.1f %7s %8s %8s\n' "$label" \
    "$(printf '%s\n' "${acc[@]}" | median)" "$(printf '%s\n' "${per[@]}" | median)" \
    "$(printf '%s\n' "${p50[@]}" | median)" "$(printf '%s\n' "${p95[@]}" | median)" \
    "$(printf '%s\n' "${p99[@]}" | median)" "$(printf '%s\n' "${e99[@]}" | median)" "$RSS" \
    "$(printf '%s\n' "${scpu[@]}" | median)" "$(printf '%s\n' "${gcpu[@]}" | median)"
}

printf 'argus ingest bench (embedded: SQLite + in-process pipeline), %s s x %s rounds, medians; load generator on the same 2 cores\n' "$DURATION" "$ROUNDS"
printf '%-52s %12s %12s %8s %8s %8s %8s %7s %8s %8s\n' scenario 'accepted/s' 'persisted/s' 'ack p50' 'ack p95' 'ack p99' 'e2e p99' 'RSS MB' 'srv CPU%' 'sim CPU%'
scenario "batches of 100 msgs x 5 metrics, flat out" --devices 100 --connections 4 --batch 100 --metrics 5
scenario "single messages x 5 metrics, flat out" --devices 200 --connections 128 --batch 1 --metrics 5
scenario "steady 10,000 msgs/s, single messages" --devices 200 --connections 32 --batch 1 --metrics 5 --rate 10000

# The same with an external bus and PostgreSQL (BUSES=, STORES= to choose;
# SKIP_BUS=1 for the embedded figures alone).
if [ "${SKIP_BUS:-0}" != 1 ]; then
  echo
  ARGUS_BIN="$BIN" DURATION="$DURATION" ROUNDS="$ROUNDS" "$ROOT/bench/ingest_bus.sh"
fi
