#!/usr/bin/env bash
# Bus throughput per backend: publish, then consume+ack, batches of 100.
# Starts private redis-server (AOF, appendfsync everysec) and nats-server -js
# on free loopback ports with data in a temporary folder, and stops them.
# Usage: bench/bus.sh [MESSAGES]     BUILD_DIR selects the build (default:
# build); the figures mean something only in an optimised build without
# sanitizers.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
N=${1:-20000}
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$BUILD_DIR" --target bus_bench >/dev/null
BENCH="$BUILD_DIR/src/bus/bus_bench"

for bin in redis-server nats-server; do
  command -v "$bin" >/dev/null || { echo "bench/bus.sh: $bin is not installed" >&2; exit 1; }
done
dir=$(mktemp -d /tmp/argus-bus-bench-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 1 200); do
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "bench/bus.sh: server on port $1 did not start" >&2; exit 1
}

rport=$(free_port)
mkdir -p "$dir/redis" "$dir/nats"
redis-server --port "$rport" --bind 127.0.0.1 --dir "$dir/redis" \
  --appendonly yes --appendfsync everysec --save '' >"$dir/redis.log" 2>&1 &
pids+=($!)
nport=$(free_port)
echo "max_payload: 8MB" >"$dir/nats.conf"
nats-server -js -a 127.0.0.1 -p "$nport" -sd "$dir/nats" -c "$dir/nats.conf" \
  >"$dir/nats.log" 2>&1 &
pids+=($!)
wait_port "$rport"
wait_port "$nport"

"$BENCH" mem "$N"
"$BENCH" "redis://127.0.0.1:$rport" "$N"
"$BENCH" "nats://127.0.0.1:$nport" "$N"
