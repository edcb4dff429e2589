#!/usr/bin/env bash
# A throw-away PostgreSQL server for the deployment test (tests/pipelines/test_postgres.py).
#
#   tests/setup_postgres.sh start [DIR]   install Debian's postgresql if missing, create a cluster in DIR
#                                         (default: a new /tmp/dagster-pg.XXXXXX), start it on a free
#                                         127.0.0.1 port, create database "dagster", and print the
#                                         connection as KEY=VALUE lines (also written to DIR/env):
#                                         DAGSTER_PG_HOST, DAGSTER_PG_PORT, DAGSTER_PG_USERNAME,
#                                         DAGSTER_PG_PASSWORD, DAGSTER_PG_DB, DAGSTER_PG_DIR
#   tests/setup_postgres.sh stop DIR      stop that server and delete DIR
#   tests/setup_postgres.sh install       only install Debian's postgresql if missing (make test-deps)
#
# Use from a shell:  eval "$(tests/setup_postgres.sh start | sed 's/^/export /')"
# The server never runs as root: as root the cluster belongs to the "postgres" user the package
# creates. It listens on 127.0.0.1 (password, scram-sha-256) and on a unix socket in DIR only, with
# fsync off: it is for tests, never for data you want to keep.
#
# Exit codes: 0 ok, 1 the server failed to start, 3 PostgreSQL is missing and cannot be installed
# (not root, or no apt-get).
set -euo pipefail

log() { echo "setup_postgres: $*" >&2; }

find_bindir() {
  local dir
  # Debian/Ubuntu: /usr/lib/postgresql/<major>/bin, highest major first.
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [[ -n "$dir" && -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then
    echo "$dir"
    return 0
  fi
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v initdb)"
    return 0
  fi
  return 1
}

install_postgres() {
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    log "PostgreSQL is not installed and cannot be installed here (needs root and apt-get):"
    log "  apt-get install -y postgresql"
    exit 3
  fi
  log "installing Debian's postgresql package"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q --no-install-recommends postgresql >&2; then
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends postgresql >&2
  fi
}

# Run a command as the cluster owner: "postgres" when we are root (initdb refuses root), else us.
as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

random_port() {
  local port
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 40000))
    if ! port_in_use "$port"; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

start() {
  local dir="${1:-}"
  local bindir
  bindir=$(find_bindir) || { install_postgres; bindir=$(find_bindir); } || {
    log "postgresql installed, but initdb/pg_ctl were not found"
    exit 3
  }
  if [[ $(id -u) -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
    log "running as root but there is no 'postgres' user to own the cluster"
    exit 3
  fi

  if [[ -z "$dir" ]]; then
    dir=$(mktemp -d "${TMPDIR:-/tmp}/dagster-pg.XXXXXX")
  else
    mkdir -p "$dir"
  fi
  dir=$(cd "$dir" && pwd)
  local password
  password=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')
  printf '%s\n' "$password" >"$dir/pwfile"
  chmod 600 "$dir/pwfile"
  if [[ $(id -u) -eq 0 ]]; then
    chown -R postgres: "$dir"
  fi

  as_owner "$bindir/initdb" -D "$dir/data" -U dagster --pwfile="$dir/pwfile" \
    --auth-host=scram-sha-256 --auth-local=trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 || {
    log "initdb failed:"
    cat "$dir/initdb.log" >&2
    exit 1
  }
  rm -f "$dir/pwfile"

  local port started=""
  for _ in 1 2 3 4 5; do
    port=$(random_port) || break
    if as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
      start >/dev/null 2>&1; then
      started=1
      break
    fi
    log "could not start on port $port, trying another"
  done
  if [[ -z "$started" ]]; then
    log "PostgreSQL did not start; its log:"
    tail -n 30 "$dir/postgres.log" >&2 || true
    exit 1
  fi

  # Create the database over TCP with the password: the same path Dagster uses.
  PGPASSWORD="$password" "$bindir/psql" -X -q -h 127.0.0.1 -p "$port" -U dagster -d postgres \
    -v ON_ERROR_STOP=1 -c "CREATE DATABASE dagster" >&2

  {
    echo "DAGSTER_PG_HOST=127.0.0.1"
    echo "DAGSTER_PG_PORT=$port"
    echo "DAGSTER_PG_USERNAME=dagster"
    echo "DAGSTER_PG_PASSWORD=$password"
    echo "DAGSTER_PG_DB=dagster"
    echo "DAGSTER_PG_DIR=$dir"
  } | tee "$dir/env"
  chmod 600 "$dir/env"
}

stop() {
  local dir="${1:?usage: setup_postgres.sh stop DIR}"
  local bindir
  if [[ -d "$dir/data" ]] && bindir=$(find_bindir); then
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  case "$dir" in
    */dagster-pg.*) rm -rf "$dir" ;;
    *) rm -rf "$dir/data" "$dir/env" "$dir/postgres.log" "$dir/initdb.log" ;;
  esac
}

case "${1:-}" in
  install) find_bindir >/dev/null || install_postgres ;;
  start) start "${2:-}" ;;
  stop) stop "${2:-}" ;;
  *)
    echo "usage: $0 install | start [DIR] | stop DIR" >&2
    exit 2
    ;;
esac
