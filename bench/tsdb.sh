#!/usr/bin/env bash
# tsdb write path: points/s and raw messages/s persisted, on SQLite and on
# a private PostgreSQL (scripts/pg-test.sh), batches of 100 messages × 5
# metrics in one transaction each, median of several runs.
# Usage: bench/tsdb.sh [RUNS] [BATCHES]
# BUILD_DIR selects the CMake build folder (default: build-bench, a Release
# build of core, db and tsdb). ARGUS_TEST_PG_URL, if set, is used instead of
# a private PostgreSQL. SKIP_PG=1 leaves PostgreSQL out.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
BATCHES=${2:-200}
BUILD_DIR=${BUILD_DIR:-build-bench}
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DARGUS_MODULES="core;db;tsdb" >/dev/null
fi
cmake --build "$BUILD_DIR" --target tsdb_bench >/dev/null
BENCH="$BUILD_DIR/src/tsdb/tsdb_bench"

work=$(mktemp -d /tmp/argus-tsdb-bench-XXXXXX)
pgdir=$(mktemp -u /tmp/argus-tsdb-pg-XXXXXX) # pg-test.sh creates it for its own user
cleanup() {
  if [ -d "$pgdir" ]; then scripts/pg-test.sh stop "$pgdir" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== SQLite (WAL, synchronous=NORMAL) $(nproc) cores"
"$BENCH" "sqlite:$work/bench.db" --runs "$RUNS" --batches "$BATCHES"

if [ "${SKIP_PG:-0}" != 1 ]; then
  if [ -n "${ARGUS_TEST_PG_URL:-}" ]; then
    url=$ARGUS_TEST_PG_URL
  else
    url=$(scripts/pg-test.sh start "$pgdir")
  fi
  echo "== PostgreSQL ($(pg_config --version 2>/dev/null || echo unknown); private server: fsync off, synchronous_commit off)"
  "$BENCH" "$url" --runs "$RUNS" --batches "$BATCHES"
fi
