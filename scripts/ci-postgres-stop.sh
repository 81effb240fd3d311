#!/usr/bin/env bash
# Stop the server started by scripts/ci-postgres.sh and delete its data.
#   scripts/ci-postgres-stop.sh [DIR]     (default: $ESCALATION_PG_DIR, else the last one started)
set -euo pipefail
DIR="${1:-${ESCALATION_PG_DIR:-$(cat "${TMPDIR:-/tmp}/escalation-pg.last" 2>/dev/null || true)}}"
if [ -z "$DIR" ] || [ ! -d "$DIR/data" ]; then
    echo "ci-postgres-stop: no server directory found" >&2
    exit 0
fi
BINDIR="$(cat "$DIR/bindir")"
if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$BINDIR/pg_ctl" -D "$DIR/data" -m fast -w stop >&2 || true
else
    "$BINDIR/pg_ctl" -D "$DIR/data" -m fast -w stop >&2 || true
fi
case "$DIR" in
    /tmp/escalation-pg.*|"${TMPDIR:-/tmp}"/escalation-pg.*) rm -rf "$DIR" ;;
    *) echo "ci-postgres-stop: left $DIR in place (not a temporary directory)" >&2 ;;
esac
rm -f "${TMPDIR:-/tmp}/escalation-pg.last"
