#!/usr/bin/env bash
# pitr-drill.sh — the point-in-time recovery drill of deploy/RUNBOOK.md.
#
# Starts a PostgreSQL 15 primary of its own with WAL archiving (the settings
# of deploy/postgres/archive.conf), takes a base backup, writes rows, records
# a timestamp, writes more rows, then restores the base backup plus the
# archived WAL to that timestamp into a new data directory and checks that
# every row written before the timestamp is there and none written after.
# Exits non-zero saying why when any step fails. As root, PostgreSQL runs as
# the postgres OS user.
#
# Usage: deploy/pitr-drill.sh
# Env:   PITR_PORT (25432) PITR_RESTORE_PORT (25433): ports on 127.0.0.1
#        PITR_ROWS (200): rows written on each side of the timestamp
#        PITR_KEEP=1: keep the work directory (printed) for inspection
set -euo pipefail

PORT="${PITR_PORT:-25432}"
RESTORE_PORT="${PITR_RESTORE_PORT:-25433}"
ROWS="${PITR_ROWS:-200}"
BIN="$(pg_config --bindir)"
WORK="$(mktemp -d /tmp/pitr-drill.XXXXXX)"
PRIMARY="$WORK/primary"
ARCHIVE="$WORK/wal-archive"
BASE="$WORK/base"
RESTORED="$WORK/restored"

log() { echo "pitr-drill: $*" >&2; }
fail() { log "FAILED: $*"; for f in "$WORK"/*.log; do [ -f "$f" ] && { log "--- $f"; tail -n 30 "$f" >&2; }; done; exit 1; }
# PostgreSQL refuses to run as root: its programs run as the postgres user.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg() { as_pg "$BIN/$1" "${@:2}"; }
sql() { local port="$1"; shift; pg psql -X -v ON_ERROR_STOP=1 -qAt -h 127.0.0.1 -p "$port" -U postgres -d postgres "$@"; }

cleanup() {
  for d in "$RESTORED" "$PRIMARY"; do
    [ -f "$d/postmaster.pid" ] && pg pg_ctl -D "$d" -m immediate -w stop >/dev/null 2>&1 || true
  done
  if [ "${PITR_KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
[ "$(id -u)" = 0 ] && chown postgres: "$WORK"
as_pg mkdir -p "$ARCHIVE"

# 1. A primary archiving every WAL segment to $ARCHIVE.
log "primary in $PRIMARY on 127.0.0.1:$PORT, archiving to $ARCHIVE"
pg initdb -D "$PRIMARY" -U postgres -A trust -E UTF8 --locale=C --no-sync --no-instructions >"$WORK/initdb.log" 2>&1 || fail "initdb"
as_pg tee -a "$PRIMARY/postgresql.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = ''
wal_level = replica
archive_mode = on
archive_command = 'test ! -f $ARCHIVE/%f && cp %p $ARCHIVE/%f'
archive_timeout = 60
EOF
pg pg_ctl -D "$PRIMARY" -l "$WORK/primary.log" -w start >/dev/null || fail "start the primary"
sql "$PORT" -c "CREATE TABLE drill (id bigserial PRIMARY KEY, phase text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())"

# 2. The base backup (plain format, with the WAL needed to make it consistent).
log "base backup into $BASE"
pg pg_basebackup -h 127.0.0.1 -p "$PORT" -U postgres -D "$BASE" -X stream -c fast || fail "pg_basebackup"

# 3. Rows before the target time, one transaction each; the target is
#    taken after the last of them committed; then rows after it.
# (Commits not waiting for their flush only make the drill quicker: the
# archive still gets every one.)
{ echo "SET synchronous_commit = off;"; for _ in $(seq "$ROWS"); do echo "INSERT INTO drill (phase) VALUES ('before');"; done; } | sql "$PORT"
TARGET="$(sql "$PORT" -c "SELECT clock_timestamp()")"
sql "$PORT" -c "SELECT pg_sleep(0.01)" >/dev/null
{ echo "SET synchronous_commit = off;"; for _ in $(seq "$ROWS"); do echo "INSERT INTO drill (phase) VALUES ('after');"; done; } | sql "$PORT"
log "target time $TARGET ($ROWS rows before it, $ROWS after)"

# 4. Close the current WAL segment and wait until it is archived: the
#    archive then holds every commit above.
SEGMENT="$(sql "$PORT" -c "SELECT pg_walfile_name(pg_switch_wal())")"
for _ in $(seq 600); do
  [ -f "$ARCHIVE/$SEGMENT" ] && break
  sleep 0.1
done
[ -f "$ARCHIVE/$SEGMENT" ] || fail "segment $SEGMENT not archived within 60 s (pg_stat_archiver: $(sql "$PORT" -c "SELECT failed_count, last_failed_wal FROM pg_stat_archiver"))"
log "archived up to $SEGMENT"

# 5. Restore: the base backup into a new data directory, replaying the
#    archive up to the target time, then promoted.
log "restoring into $RESTORED on 127.0.0.1:$RESTORE_PORT"
as_pg cp -a "$BASE" "$RESTORED"
as_pg tee -a "$RESTORED/postgresql.conf" >/dev/null <<EOF
port = $RESTORE_PORT
archive_mode = off
restore_command = 'cp $ARCHIVE/%f %p'
recovery_target_time = '$TARGET'
recovery_target_action = 'promote'
EOF
as_pg touch "$RESTORED/recovery.signal"
pg pg_ctl -D "$RESTORED" -l "$WORK/restored.log" -w start >/dev/null || fail "start the restored server"
for _ in $(seq 600); do
  [ "$(sql "$RESTORE_PORT" -c "SELECT pg_is_in_recovery()" 2>/dev/null)" = f ] && break
  sleep 0.1
done
[ "$(sql "$RESTORE_PORT" -c "SELECT pg_is_in_recovery()")" = f ] || fail "restored server still in recovery after 60 s"

# 6. The check: everything before the target, nothing after.
BEFORE="$(sql "$RESTORE_PORT" -c "SELECT count(*) FROM drill WHERE phase = 'before'")"
AFTER="$(sql "$RESTORE_PORT" -c "SELECT count(*) FROM drill WHERE phase = 'after'")"
log "restored: $BEFORE rows before the target (want $ROWS), $AFTER after (want 0)"
[ "$BEFORE" = "$ROWS" ] && [ "$AFTER" = 0 ] || fail "restored $BEFORE/$ROWS rows before the target and $AFTER after"
echo "pitr-drill: OK: restored to $TARGET: $BEFORE/$ROWS rows before, $AFTER after"
