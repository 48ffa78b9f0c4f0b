#!/usr/bin/env bash
# Installs what Argus needs to build, run and test on Debian 12: the -dev
# libraries, the servers the system tests start privately, and the npm
# packages of the test clients (from the lockfile). Idempotent: packages
# already present are not fetched again.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# Build and runtime libraries, tools, and the servers the tests start.
PKGS=(
  build-essential cmake ninja-build pkg-config clang
  libmicrohttpd-dev libjansson-dev libsqlite3-dev libpq-dev libsodium-dev
  libjwt-dev libcmocka-dev libpcre2-dev libhiredis-dev libnats-dev
  postgresql redis-server nats-server sqlite3
  nodejs npm
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
# npm may come from outside Debian (nodesource); a working npm is enough.
if command -v npm >/dev/null 2>&1; then
  missing=("${missing[@]/npm}"); missing=("${missing[@]/nodejs}")
fi
want=()
for p in "${missing[@]}"; do [ -n "$p" ] && want+=("$p"); done
if [ "${#want[@]}" -gt 0 ]; then
  echo "bootstrap: installing ${want[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${want[@]}"
fi

# The packaged PostgreSQL cluster is not used: tests start private instances.
# Its binaries live in a versioned folder; nothing to do here beyond finding it.

if [ -f tests/system/package-lock.json ]; then
  if [ ! -d tests/system/node_modules ] || [ tests/system/package-lock.json -nt tests/system/node_modules/.package-lock.json ]; then
    (cd tests/system && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
echo "bootstrap: ok"
