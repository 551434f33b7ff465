# Shared by the benchmark scripts (sourced): free ports, health waits, a
# work directory cleaned up on exit and the seeded PostGIS database. Expects BIN, PGHOST, PGPORT, PGUSER and NAME
# (the calling script's name, for messages).

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ok() { for _ in $(seq 300); do curl -fs -o /dev/null "$1" && return 0; sleep 0.2; done; echo "$NAME: $1 not healthy" >&2; return 1; }
# wait_answering URL: until URL answers HTTP, whatever the status (the repo
# Caddyfile's edge answers only /api/* and /static/*; its /healthz is a 404).
wait_answering() { for _ in $(seq 300); do curl -s -o /dev/null "$1" && return 0; sleep 0.2; done; echo "$NAME: $1 not answering" >&2; return 1; }

# seeded_db DB USERS: prints the URL of DB, seeding it first (once; later runs
# reuse it) when it holds fewer than USERS users.
seeded_db() {
	local db=$1 users=$2 url have
	url="postgres://${PGUSER}@${PGHOST}:${PGPORT}/${db}?sslmode=disable"
	have=$(psql "$url" -qAt -c 'SELECT count(*) FROM users' 2>/dev/null || echo 0)
	if [ "${have:-0}" -lt "$users" ]; then
		echo "$NAME: seeding $users users into $db (once; reused by later runs)" >&2
		url=$(scripts/test-origin-deps.sh "$db" | tail -n1 | cut -d= -f2-) || return 1
		"$BIN" origin migrate --database-url "$url" >&2 || return 1
		"$BIN" origin seed --database-url "$url" --users "$users" >&2 || return 1
	fi
	echo "$url"
}

# work_dir: sets work to a fresh temporary directory and pids to none; on
# exit (or INT, TERM) every process in pids is killed and work removed.
work_dir() {
	work=$(mktemp -d)
	pids=()
	trap cleanup_work EXIT INT TERM
}
cleanup_work() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
