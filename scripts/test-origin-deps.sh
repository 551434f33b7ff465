#!/usr/bin/env bash
# test-origin-deps.sh — make PostGIS available for the origin's tests.
#
# Idempotent. Installs postgresql-15-postgis-3 when the extension is missing,
# makes sure PostgreSQL answers on 127.0.0.1:5432, then (re)creates a fresh test
# database with the postgis and btree_gist extensions.
#
# Usage: scripts/test-origin-deps.sh [DBNAME]      (default: spark_test)
# Env:   PGHOST (127.0.0.1) PGPORT (5432) PGUSER (postgres)
# Prints on stdout, as its last line, the URL to export:
#   SPARK_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/spark_test?sslmode=disable
# so a caller can do: eval "export $(scripts/test-origin-deps.sh | tail -n1)"
set -euo pipefail

DB="${1:-spark_test}"
PGHOST="${PGHOST:-127.0.0.1}"
PGPORT="${PGPORT:-5432}"
PGUSER="${PGUSER:-postgres}"
PGVER=15
export PGHOST PGPORT PGUSER

log() { echo "test-origin-deps: $*" >&2; }

case "$DB" in
  *[!a-zA-Z0-9_]*|"") log "bad database name: $DB"; exit 2 ;;
esac

if [ ! -f "/usr/share/postgresql/${PGVER}/extension/postgis.control" ]; then
  log "PostGIS extension missing: installing postgresql-${PGVER}-postgis-3"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq "postgresql-${PGVER}-postgis-3" >&2
fi

ready() { pg_isready -q -h "$PGHOST" -p "$PGPORT" >/dev/null 2>&1; }
if ! ready; then
  log "PostgreSQL not answering on ${PGHOST}:${PGPORT}: starting cluster ${PGVER}/main"
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    pg_ctlcluster "$PGVER" main start >&2 || service postgresql start >&2 || true
  else
    service postgresql start >&2 || true
  fi
  for _ in $(seq 1 60); do ready && break; sleep 0.5; done
  ready || { log "PostgreSQL did not come up on ${PGHOST}:${PGPORT}"; exit 1; }
fi

# Over TCP as $PGUSER (trust auth on this machine kind); if that is refused,
# as the postgres OS user over the local socket.
run_psql() {
  if psql -qAt -d postgres -c 'SELECT 1' >/dev/null 2>&1; then
    psql -v ON_ERROR_STOP=1 -qAt "$@"
  else
    runuser -u postgres -- psql -v ON_ERROR_STOP=1 -qAt -p "$PGPORT" "$@"
  fi
}
run_psql -d postgres -c "DROP DATABASE IF EXISTS ${DB} WITH (FORCE)" >&2
run_psql -d postgres -c "CREATE DATABASE ${DB}" >&2
run_psql -d "$DB" -c "CREATE EXTENSION postgis" -c "CREATE EXTENSION btree_gist" >&2
log "fresh database ${DB} with postgis + btree_gist ready"
echo "SPARK_TEST_DATABASE_URL=postgres://${PGUSER}@${PGHOST}:${PGPORT}/${DB}?sslmode=disable"
