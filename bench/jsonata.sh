#!/usr/bin/env bash
# JSONata evaluations per second for typical IoT expressions, the C engine
# side by side with jsonata-js (npm package, same expressions and input,
# compiled once), with the speed-up ratio.
# Usage: bench/jsonata.sh [SECONDS_PER_RUN] [RUNS]
# BUILD_DIR selects the CMake build folder (default: build). The bench is
# only meaningful in an optimised build without sanitizers.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-0.5}
RUNS=${2:-5}
BUILD_DIR=${BUILD_DIR:-build}
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$BUILD_DIR" --target jsonata_bench >/dev/null
if [ ! -d bench/node_modules/jsonata ]; then
  (cd bench && npm ci --silent)
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$BUILD_DIR/src/jsonata/jsonata_bench" bench/jsonata_exprs.txt \
  bench/jsonata_input.json "$SECONDS_PER_RUN" "$RUNS" >"$tmp/c.tsv"
(cd bench && node jsonata_bench.mjs jsonata_exprs.txt jsonata_input.json \
  "$SECONDS_PER_RUN" "$RUNS") >"$tmp/js.tsv"
printf '%14s %14s %8s  %s\n' "C evals/s" "jsonata-js/s" "ratio" "expression"
paste "$tmp/c.tsv" "$tmp/js.tsv" | awk -F'\t' '{
  ratio = $3 > 0 ? $1 / $3 : 0
  printf "%14d %14d %7.1fx  %s\n", $1, $3, ratio, $2
}'
