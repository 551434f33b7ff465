#!/usr/bin/env bash
# Whole-system benchmark on this machine: the origin on PostGIS seeded with
# 1,000,000 users, the edge (repo Caddyfile) in front, and `spark loadtest`
# (dating mix, open model) at rising rates until P95 crosses 200 ms (or
# errors pass 1%). Prints one line per rate and the knee.
#
# Between the last rate under the line and the first over it, BENCH_BISECT
# (2) more runs narrow the knee down.
#
# The load comes from BENCH_ACTIVE (2000) active users (ids 1..BENCH_ACTIVE)
# of the BENCH_USERS in the database: what a user does is cached per user,
# so the hit ratio depends on how often each active user comes back, not on
# how many users exist; their suggestions are still drawn from all of them.
# The dating scenario's setup (each active user likes its partner) runs
# once, before the first rate; a non-zero count of stale responses (the
# scenario's correctness checker) fails the script.
#
# BENCH_STORE=embedded runs the origin on its embedded store with
# BENCH_USERS (there: BENCH_ACTIVE) demo users instead.
#
# Env: BENCH_STORE (postgis)  BENCH_USERS (1000000)  BENCH_ACTIVE (2000)  BENCH_DB (spark_loadtest_bench)
#      BENCH_RATES ("250 500 1000 1500 2000 3000 4000 6000 8000")
#      BENCH_STEP (20s per rate)  BENCH_SCENARIO (dating)  BENCH_P95_MS (200)
#      BENCH_OUT (.bench/system: JSON and HTML report per rate)
# The database is seeded once and reused while it holds BENCH_USERS users.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SPARK_BIN:-bin/spark}
STORE=${BENCH_STORE:-postgis}
ACTIVE=${BENCH_ACTIVE:-2000}
if [ "$STORE" = embedded ]; then
	USERS=${BENCH_USERS:-$ACTIVE}
else
	USERS=${BENCH_USERS:-1000000}
fi
DB=${BENCH_DB:-spark_loadtest_bench}
RATES=${BENCH_RATES:-"250 500 1000 1500 2000 3000 4000 6000 8000"}
STEP=${BENCH_STEP:-20s}
SCENARIO=${BENCH_SCENARIO:-dating}
P95_MS=${BENCH_P95_MS:-200}
OUT=${BENCH_OUT:-.bench/system}
SECRET=spark-bench-secret-local-only-not-for-production  # PostGIS: at least 32 bytes
PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
export PGHOST PGPORT PGUSER
mkdir -p "$OUT"

NAME=bench-system
. scripts/bench/lib.sh
if [ "$STORE" = embedded ]; then
	store_args=(--demo-users "$USERS")
else
	store_args=(--database-url "$(seeded_db "$DB" "$USERS")" --migrate)
fi

origin=127.0.0.1:$(free_port)
edge=127.0.0.1:$(free_port)
work_dir
mkdir -p "$work/photos"
"$BIN" origin --listen "$origin" "${store_args[@]}" --jwt-secret "$SECRET" --photo-dir "$work/photos" --location-limit-every 0 >"$work/origin.log" 2>&1 &
pids+=($!)
wait_ok "http://$origin/healthz"
SPARK_ORIGIN=$origin SPARK_LISTEN=$edge SPARK_ADMIN=127.0.0.1:$(free_port) SPARK_JWT_SECRET=$SECRET SPARK_EVENTS_TOKEN=${SPARK_EVENTS_TOKEN:-spark-bench-events-token-local-only} \
	"$BIN" run --config Caddyfile --adapter caddyfile >"$work/edge.log" 2>&1 &
pids+=($!)
wait_answering "http://$edge/healthz"

echo "bench-system: $SCENARIO against the edge at $edge (origin on $STORE, $USERS users, $ACTIVE active), $STEP per rate, $(nproc) cores"
echo "bench-system: machine: $(python3 scripts/bench/machine.py)"
printf '%8s %10s %9s %9s %9s %8s %7s %6s\n' "rate" "achieved" "P50 ms" "P95 ms" "P99 ms" "errors" "hit" "stale"
# step RATE: runs one rate, prints its line, sets $over (1: P95 or errors over).
step() {
	local rate=$1 json="$OUT/rate-$1.json" ach p50 p95 p99 err hit stale setup=--no-setup
	if [ -z "$setup_done" ]; then setup=; setup_done=1; fi
	# Exits non-zero on stale responses: counted below, after the line.
	"$BIN" loadtest --target "http://$edge" --scenario "$SCENARIO" --rate "$rate" --duration "$STEP" \
		--users "$ACTIVE" $setup --jwt-secret "$SECRET" --quiet --json "$json" --html "$OUT/rate-$rate.html" >/dev/null || true
	read -r ach p50 p95 p99 err hit stale over < <(python3 - "$json" "$P95_MS" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
l = r["latency"]
hit = "-" if r["hit_ratio"] is None else "%.1f%%" % (100 * r["hit_ratio"])
stale = "-" if r.get("checks") is None else str(r["checks"]["violations"])
over = int(l["p95_ms"] > float(sys.argv[2]) or r["error_rate"] > 0.01)
print("%.0f %.1f %.1f %.1f %.3f%% %s %s %d" % (r["steady_rps"], l["p50_ms"], l["p95_ms"], l["p99_ms"], 100 * r["error_rate"], hit, stale, over))
EOF
	)
	printf '%8s %10s %9s %9s %9s %8s %7s %6s\n' "$rate" "$ach" "$p50" "$p95" "$p99" "$err" "$hit" "$stale"
	if [ "$stale" != "-" ] && [ "$stale" != 0 ]; then stale_seen=1; fi
}
setup_done="" stale_seen=""
last_ok="" knee=""
for rate in $RATES; do
	step "$rate"
	if [ "$over" = 1 ]; then
		knee=$rate
		break
	fi
	last_ok=$rate
done
# Narrow the knee down by bisection.
if [ -n "$knee" ] && [ -n "$last_ok" ]; then
	for _ in $(seq "${BENCH_BISECT:-2}"); do
		mid=$(( (last_ok + knee) / 2 ))
		[ "$mid" -le "$last_ok" ] && break
		step "$mid"
		if [ "$over" = 1 ]; then knee=$mid; else last_ok=$mid; fi
	done
fi
echo
if [ -n "$knee" ]; then
	echo "knee: P95 stays under ${P95_MS} ms up to ${last_ok:-none} req/s and crosses it at $knee req/s"
else
	echo "knee: not reached; P95 under ${P95_MS} ms at every rate up to $last_ok req/s"
fi
echo "reports: $OUT/rate-*.html"
if [ -n "$stale_seen" ]; then
	echo "bench-system: stale responses seen (the correctness checker's violations): see the reports" >&2
	exit 1
fi
