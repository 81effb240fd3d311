#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for the audit-journal tests.
#
#   eval "$(scripts/ci-postgres.sh)"     # exports ESCALATION_TEST_POSTGRES_DSN
#   ...run tests...
#   scripts/ci-postgres-stop.sh
#
# Installs the `postgresql` package with apt-get when no server binaries are
# found (needs root, Debian/Ubuntu), initialises a data directory under
# $ESCALATION_PG_DIR (default: a new temporary directory), starts the server
# on 127.0.0.1 on a free port (trust authentication: it listens on loopback
# only and lives as long as the test run), creates the database
# `escalation_test`, and prints the `export` line on stdout. Everything else
# goes to stderr. Run as root, the server runs as the `postgres` user.
set -euo pipefail

log() { echo "ci-postgres: $*" >&2; }

find_bindir() {
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then echo "$dir"; return 0; fi
    done
    if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
        dirname "$(command -v initdb)"; return 0
    fi
    return 1
}

BINDIR="$(find_bindir || true)"
if [ -z "$BINDIR" ]; then
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
        log "no PostgreSQL server binaries, and cannot install them (needs root and apt-get)"
        exit 1
    fi
    log "installing postgresql with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends postgresql >&2
    BINDIR="$(find_bindir)"
fi

DIR="${ESCALATION_PG_DIR:-$(mktemp -d /tmp/escalation-pg.XXXXXX)}"
mkdir -p "$DIR"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
DB=escalation_test

if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir "$DIR" --shell /bin/false postgres
    chown -R postgres: "$DIR"
    chmod 700 "$DIR"
    as_pg() { runuser -u postgres -- "$@"; }
    DBUSER=postgres
else
    as_pg() { "$@"; }
    DBUSER="$(id -un)"
fi

log "initdb in $DIR/data ($BINDIR)"
as_pg "$BINDIR/initdb" -D "$DIR/data" -U "$DBUSER" --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 \
    || { cat "$DIR/initdb.log" >&2; exit 1; }
log "starting on 127.0.0.1:$PORT"
as_pg "$BINDIR/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -c unix_socket_directories=$DIR -c fsync=on" start >&2 \
    || { cat "$DIR/server.log" >&2; exit 1; }
as_pg "$BINDIR/createdb" -h 127.0.0.1 -p "$PORT" -U "$DBUSER" "$DB" >&2

DSN="postgresql://$DBUSER@127.0.0.1:$PORT/$DB"
printf '%s\n' "$BINDIR" >"$DIR/bindir"
printf '%s\n' "$DSN" >"$DIR/dsn"
# The stop script finds the server through this file.
printf '%s\n' "$DIR" >"${TMPDIR:-/tmp}/escalation-pg.last"
log "ready: $DSN (data in $DIR; stop with scripts/ci-postgres-stop.sh $DIR)"
echo "export ESCALATION_TEST_POSTGRES_DSN=$DSN"
echo "export ESCALATION_PG_DIR=$DIR"
