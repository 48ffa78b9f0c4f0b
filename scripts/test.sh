#!/usr/bin/env bash
# The whole test suite, as `make test` runs it:
#   1. release build: unit and conformance tests (ctest);
#   2. a private PostgreSQL on loopback for everything that needs one;
#   3. system tests (Node's test runner, the real binary over HTTP) on
#      SQLite and on PostgreSQL with the in-process bus, then the pipeline's
#      tests with Redis Streams and NATS JetStream (each server private to
#      its test), each bus with the other store in the ASan build;
#   4. the same in an ASan+UBSan build.
# --asan-only runs step 4 alone.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-build}
ASAN_BUILD=${ASAN_BUILD:-build-asan}
ASAN_ONLY=0
[ "${1:-}" = "--asan-only" ] && ASAN_ONLY=1

# System tests run this many test files at once: they mostly wait (for
# servers to start, for timers, for a killed process to come back), so on
# 2 cores 4 at a time took each suite from ~156 s to ~85 s, ASan builds
# included.
CONCURRENCY=${TEST_CONCURRENCY:-4}

step() { printf '\n==> [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

PGDIR=$(mktemp -d /tmp/argus-pg.XXXXXX)
cleanup() { "$ROOT/scripts/pg-test.sh" stop "$PGDIR" >/dev/null 2>&1 || true; }
trap cleanup EXIT

step "starting a private PostgreSQL"
export ARGUS_TEST_PG_URL
ARGUS_TEST_PG_URL=$("$ROOT/scripts/pg-test.sh" start "$PGDIR")
echo "$ARGUS_TEST_PG_URL"

failed=0
suite() { # build-dir label [cmake args...]
  local dir=$1 label=$2; shift 2
  step "$label: build"
  cmake -S . -B "$dir" -G Ninja "$@" >/dev/null
  cmake --build "$dir"
  step "$label: unit and conformance tests"
  ctest --test-dir "$dir" --output-on-failure -j2 || failed=1
  for store in sqlite postgres; do
    step "$label: system tests on $store"
    ARGUS_BIN="$ROOT/$dir/argus" ARGUS_TEST_STORE=$store \
      node --test --test-concurrency="$CONCURRENCY" tests/system/ || failed=1
  done
  # The pipeline on the external buses: store+bus pairs swap between the
  # builds, so each bus runs on each store.
  local pairs=("sqlite redis" "postgres nats")
  [ "$label" = asan ] && pairs=("postgres redis" "sqlite nats")
  for pair in "${pairs[@]}"; do
    set -- $pair
    step "$label: pipeline system tests on $1 + $2"
    ARGUS_BIN="$ROOT/$dir/argus" ARGUS_TEST_STORE=$1 ARGUS_TEST_BUS=$2 \
      node --test --test-concurrency="$CONCURRENCY" "${PIPELINE_TESTS[@]}" || failed=1
  done
}
PIPELINE_TESTS=(tests/system/telemetry.test.mjs tests/system/dlq.test.mjs
                tests/system/crash.test.mjs tests/system/bus.test.mjs)

if [ "$ASAN_ONLY" = 0 ]; then
  suite "$BUILD" release -DCMAKE_BUILD_TYPE=RelWithDebInfo -DARGUS_MODULES=all
fi
# ASan: leaks are errors; argon2's large allocations are legitimate.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
suite "$ASAN_BUILD" asan -DCMAKE_BUILD_TYPE=Debug -DARGUS_SANITIZE=ON -DARGUS_MODULES=all

if [ "$failed" != 0 ]; then
  step "FAILED"
  exit 1
fi
step "all tests passed"
