#!/bin/sh
# Validations per second of a typical device message against a typical
# device-type schema (src/jsonschema). Usage: bench/jsonschema.sh [ITER [REPEATS]]
# BUILD selects the build directory (default: build), configured in Release
# mode for figures worth comparing.
set -eu
BUILD=${BUILD:-build}
if [ ! -f "$BUILD/build.ninja" ] && [ ! -f "$BUILD/Makefile" ]; then
  cmake -S "$(dirname "$0")/.." -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DARGUS_MODULES="core;jsonschema" -DARGUS_TESTS=OFF
fi
cmake --build "$BUILD" --target jsonschema_bench
exec "$BUILD/src/jsonschema/jsonschema_bench" "$@"
