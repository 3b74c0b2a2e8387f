#!/usr/bin/env bash
# Makes sure a PostgreSQL server is running for the test suite and prints an admin
# connection URL on stdout (tests create and drop a throwaway database in it).
# Installs Debian's postgresql when missing, then starts a private cluster (its own
# data dir, port and socket; trust auth on 127.0.0.1 only), reused across runs.
#   WRENN_PG_TEST_DIR   data dir (default /var/tmp/wrenn-postgres-test)
#   WRENN_PG_TEST_PORT  port (default 55432)
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

PG_DIR="${WRENN_PG_TEST_DIR:-/var/tmp/wrenn-postgres-test}"
PG_PORT="${WRENN_PG_TEST_PORT:-55432}"

pg_bin_dir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  [ -n "$dir" ] || die "no PostgreSQL server binaries under /usr/lib/postgresql"
  printf '%s\n' "$dir"
}

# Runs a server binary as the cluster's owner: postgres when we are root (the server
# refuses to run as root), else ourselves.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

ensure_installed() {
  ensure_apt_packages postgresql
}

ensure_cluster() {
  local bin="$1"
  if [ ! -f "$PG_DIR/PG_VERSION" ]; then
    log_step "creating a private PostgreSQL cluster in $PG_DIR" 
    mkdir -p "$PG_DIR"
    [ "$(id -u)" -ne 0 ] || chown postgres:postgres "$PG_DIR"
    chmod 700 "$PG_DIR"
    as_owner "$bin/initdb" -D "$PG_DIR" -U postgres --auth=trust --encoding=UTF8 --no-sync >/dev/null
  fi
}

ensure_running() {
  local bin="$1"
  if as_owner "$bin/pg_ctl" -D "$PG_DIR" status >/dev/null 2>&1; then return 0; fi
  log_step "starting PostgreSQL on 127.0.0.1:$PG_PORT"
  as_owner "$bin/pg_ctl" -D "$PG_DIR" -l "$PG_DIR/server.log" -w -t 60 \
    -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
}

main() {
  ensure_installed
  local bin
  bin=$(pg_bin_dir)
  ensure_cluster "$bin"
  ensure_running "$bin"
  printf 'postgresql://postgres@127.0.0.1:%s/postgres\n' "$PG_PORT"
}

main "$@"
