#!/usr/bin/env bash
# JSONPath extractions per second on a typical device payload.
# Usage: bench/jsonpath.sh [SECONDS_PER_RUN] [RUNS]
# BUILD_DIR selects the CMake build folder (default: build). The bench is
# only meaningful in an optimised build without sanitizers.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$BUILD_DIR" --target jsonpath_bench >/dev/null
exec "$BUILD_DIR/src/jsonpath/jsonpath_bench" "$@"
