#!/usr/bin/env bash
# A throwaway PostgreSQL server on localhost for the survey's storage tests.
#
#   eval "$(bash .ci/postgres.sh)"     # start; stdout is `export SURVEY_TEST_PG_URL=...`
#   bash .ci/postgres.sh stop          # stop it and delete its data
#
# Installs Debian's `postgresql` package when no server binaries are found, creates a
# cluster of its own in $SURVEY_PG_DIR (default /tmp/survey-pg; the system cluster is
# left alone), listens on 127.0.0.1:$SURVEY_PG_PORT (default 54329) only, and creates
# the role and database the tests use. Running it again reuses a running server.
# Everything but the export line goes to stderr.
set -euo pipefail

PG_DIR=${SURVEY_PG_DIR:-/tmp/survey-pg}
PG_PORT=${SURVEY_PG_PORT:-54329}
PG_DB=survey_test
PG_ROLE=survey
PG_PASSWORD=survey-test # a throwaway server reachable from localhost only

say() { echo "postgres.sh: $*" >&2; }

find_bin() {
    # Debian keeps the server programs out of PATH, under /usr/lib/postgresql/<ver>/bin
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
        echo "$dir"
    elif command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
        dirname "$(command -v pg_ctl)"
    fi
}

BIN=$(find_bin)
if [ -z "$BIN" ]; then
    [ "$(id -u)" -eq 0 ] || { say "no PostgreSQL found and not root: install postgresql"; exit 1; }
    say "installing Debian's postgresql"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    BIN=$(find_bin)
    [ -n "$BIN" ] || { say "postgresql installed but initdb/pg_ctl not found"; exit 1; }
fi

# initdb and the server refuse to run as root: use the package's postgres account
if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    as_pg() { runuser -u postgres -- "$@"; }
    owner=postgres
else
    as_pg() { "$@"; }
    owner=$(id -un)
fi

DATA=$PG_DIR/data
SOCKET=$PG_DIR/socket

if [ "${1:-start}" = stop ]; then
    if [ -f "$DATA/PG_VERSION" ]; then
        as_pg "$BIN/pg_ctl" -D "$DATA" -m fast stop >&2 || true
    fi
    rm -rf "$PG_DIR"
    say "stopped and removed $PG_DIR"
    exit 0
fi

mkdir -p "$PG_DIR" "$SOCKET"
chown "$owner" "$PG_DIR" "$SOCKET"
chmod 700 "$PG_DIR"

if [ ! -f "$DATA/PG_VERSION" ]; then
    say "creating a cluster in $DATA with $BIN/initdb"
    as_pg "$BIN/initdb" -D "$DATA" -U postgres -E UTF8 --no-locale \
        --auth-local=trust --auth-host=scram-sha-256 >/dev/null
fi

if as_pg "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    say "server already running in $DATA"
else
    # fsync off: a test database that is thrown away needs no crash safety
    if ! as_pg "$BIN/pg_ctl" -D "$DATA" -l "$PG_DIR/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories=$SOCKET -c fsync=off" \
        start >&2; then
        say "server did not start; its log follows"
        cat "$PG_DIR/server.log" >&2 || true
        exit 1
    fi
fi

psql_admin() { as_pg "$BIN/psql" -h "$SOCKET" -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qtA "$@"; }

if [ -z "$(psql_admin -d postgres -c "SELECT 1 FROM pg_roles WHERE rolname = '$PG_ROLE'")" ]; then
    psql_admin -d postgres -c "CREATE ROLE $PG_ROLE LOGIN PASSWORD '$PG_PASSWORD'"
fi
if [ -z "$(psql_admin -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" ]; then
    psql_admin -d postgres -c "CREATE DATABASE $PG_DB OWNER $PG_ROLE"
fi

# the tests connect over TCP with a password, as a deployment would
PGPASSWORD=$PG_PASSWORD "$BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U "$PG_ROLE" -d "$PG_DB" \
    -v ON_ERROR_STOP=1 -qtA -c "SELECT 1" >/dev/null
say "ready on 127.0.0.1:$PG_PORT, database $PG_DB"
echo "export SURVEY_TEST_PG_URL=postgresql+psycopg://$PG_ROLE:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DB"
