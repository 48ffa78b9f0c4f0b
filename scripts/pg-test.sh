#!/usr/bin/env bash
# A private PostgreSQL for tests, listening on 127.0.0.1 only.
#
#   scripts/pg-test.sh start DIR    initdb into DIR/data if needed, start it on
#                                   a free port, create database "argus", print
#                                   postgres://postgres@127.0.0.1:PORT/argus
#   scripts/pg-test.sh restart DIR  fast restart on the same port (tests use it
#                                   to check that clients survive a restart)
#   scripts/pg-test.sh stop DIR     stop it and remove DIR
#
# Every verb is idempotent. As root, the server runs as the "postgres" user.
# stdout carries the URL only; progress and errors go to stderr.
set -euo pipefail

die() { echo "pg-test: $*" >&2; exit 1; }

usage() { die "usage: $0 start|stop|restart DIR"; }

[ $# -eq 2 ] || usage
verb=$1
dir=$2
[ -n "$dir" ] || usage
case "$dir" in /*) ;; *) dir="$PWD/$dir" ;; esac

find_bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  if [ -z "$d" ] || [ ! -x "$d/initdb" ]; then
    d=$(pg_config --bindir 2>/dev/null || true)
  fi
  if [ -z "$d" ] || [ ! -x "$d/initdb" ] || [ ! -x "$d/pg_ctl" ]; then
    die "PostgreSQL server binaries (initdb, pg_ctl) not found; install the postgresql package (scripts/bootstrap.sh)"
  fi
  echo "$d"
}

# Runs a server binary as the owner of the data directory.
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

running() {
  [ -f "$dir/data/postmaster.pid" ] && as_pg "$bin/pg_ctl" status -D "$dir/data" >/dev/null 2>&1
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

url() { echo "postgres://postgres@127.0.0.1:$(cat "$dir/port")/argus"; }

create_db() {
  local port
  port=$(cat "$dir/port")
  if [ "$(as_pg "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAq \
          -c "SELECT 1 FROM pg_database WHERE datname = 'argus'")" != 1 ]; then
    as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres argus >&2 ||
      return 1
  fi
}

do_init() {
  as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 \
    --locale=C --no-sync >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2
    return 1
  }
  # Trust on the private socket and on 127.0.0.1, nothing else.
  cat >"$dir/data/pg_hba.conf" <<HBA
local all all trust
host  all all 127.0.0.1/32 trust
HBA
  cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = ${PG_TEST_SHARED_BUFFERS:-32MB}
# New WAL segments are not zero-filled first, and checkpoints come less
# often under the benchmarks' write rates (a server that has run a while
# recycles its segments instead).
wal_init_zero = off
max_wal_size = 2GB
CONF
  [ "$(id -u)" != 0 ] || chown postgres:postgres "$dir/data/pg_hba.conf"
}

# Tries a few random free ports: another process may take one between the
# check and the bind.
do_start() {
  local attempt port
  for attempt in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 30000))
    port_in_use "$port" && continue
    echo "$port" >"$dir/port"
    if as_pg "$bin/pg_ctl" start -D "$dir/data" -w -t 60 -l "$dir/server.log" \
         -o "-p $port" >/dev/null 2>&1; then
      return 0
    fi
    running && as_pg "$bin/pg_ctl" stop -D "$dir/data" -m immediate >/dev/null 2>&1 || true
    grep -q "could not bind\|Address already in use" "$dir/server.log" 2>/dev/null || break
  done
  echo "pg-test: server did not start; last lines of $dir/server.log:" >&2
  tail -n 20 "$dir/server.log" >&2 2>/dev/null || true
  return 1
}

start() {
  bin=$(find_bindir)
  if running && [ -f "$dir/port" ]; then
    create_db || die "could not create database argus"
    url
    return 0
  fi
  # The socket path must fit in sun_path (108 bytes with "/.s.PGSQL.NNNNN").
  [ ${#dir} -le 90 ] || die "DIR is too long for a unix socket path: $dir"
  local created=0
  if [ ! -d "$dir" ]; then
    mkdir -p "$dir" || die "cannot create $dir"
    created=1
  fi
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' user"
    chown postgres:postgres "$dir"
    runuser -u postgres -- test -w "$dir" ||
      die "user postgres cannot write $dir (is a parent directory closed to it?)"
  fi
  chmod 700 "$dir"

  fail() {
    running && as_pg "$bin/pg_ctl" stop -D "$dir/data" -m immediate >/dev/null 2>&1 || true
    [ "$created" = 0 ] || rm -rf "$dir"
    die "$1"
  }
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    rm -rf "$dir/data"
    do_init || fail "initdb failed"
  fi
  do_start || fail "could not start PostgreSQL in $dir"
  create_db || fail "could not create database argus"
  url
}

stop() {
  [ -d "$dir" ] || return 0
  bin=$(find_bindir)
  if running; then
    as_pg "$bin/pg_ctl" stop -D "$dir/data" -m fast -w -t 30 >/dev/null 2>&1 ||
      as_pg "$bin/pg_ctl" stop -D "$dir/data" -m immediate -w >/dev/null 2>&1 ||
      die "could not stop the server in $dir"
  fi
  rm -rf "$dir"
}

restart() {
  bin=$(find_bindir)
  [ -f "$dir/port" ] && [ -f "$dir/data/PG_VERSION" ] || die "no server in $dir; run start first"
  if running; then
    as_pg "$bin/pg_ctl" stop -D "$dir/data" -m fast -w -t 30 >/dev/null 2>&1 ||
      die "could not stop the server in $dir"
  fi
  as_pg "$bin/pg_ctl" start -D "$dir/data" -w -t 60 -l "$dir/server.log" \
    -o "-p $(cat "$dir/port")" >/dev/null 2>&1 || {
    tail -n 20 "$dir/server.log" >&2 2>/dev/null || true
    running && as_pg "$bin/pg_ctl" stop -D "$dir/data" -m immediate >/dev/null 2>&1 || true
    die "could not restart the server in $dir"
  }
}

case "$verb" in
  start) start ;;
  stop) stop ;;
  restart) restart ;;
  *) usage ;;
esac
