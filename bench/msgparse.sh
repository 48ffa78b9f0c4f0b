#!/usr/bin/env bash
# The ingest parser alone: ns per message, jansson + the old normalize
# against msgparse, on a batch of 100 messages x 5 metrics.
# Usage: bench/msgparse.sh [SECONDS_PER_RUN] [RUNS]
# BUILD_DIR selects the CMake build folder (default: build). The bench is
# only meaningful in an optimised build without sanitizers.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$BUILD_DIR" --target msgparse_bench >/dev/null
exec "$BUILD_DIR/src/pipeline/msgparse_bench" "$@"
