#!/usr/bin/env bash
# Realtime benchmark (issue 12's figures), each beside the reference hub
# (loadtest/refhub: a bare in-process gorilla/websocket hub, the physical
# limit) measured in the same run, with the ratio:
#   (c) idle memory per connection at the edge: RSS and Go heap delta over
#       CONNS idle connections (target <= 32 KB)
#   (a) ephemeral fan-out through Redis: typing at TYPING_RATE/s over CONNS
#       connections, pairs split across the two edges: P99 (target <= 5 ms)
#   (b) chat messages stored in PostGIS and delivered: MSG_RATE/s over CONNS
#       connections on two edges sharing Redis, DROP of them dropped and
#       resumed on the other edge mid-run: P99 send->receive (target <= 50 ms),
#       lost, duplicated
# It starts what it needs: a fresh PostGIS database (BENCH_DB, seeded with
# CONNS users and nothing else), its own redis-server on a free port, the
# origin publishing there, two edges on the repository's Caddyfile with
# `events redis`, the reference hub, and the load client as its own process.
#
# Env: CONNS (10000)  TYPING_RATE (5000)  MSG_RATE (2000)  DROP (0.1)
#      REST_RATE (0)  STEP (30s per run)  IDLE_HOLD (15s)
#      FIGURES ("c a b": which figures to measure, e.g. FIGURES=c)
#      BENCH_DB (spark_realtime_bench)  BENCH_OUT (.bench/realtime)
#      ORIGIN_ARGS (extra `spark origin` flags, e.g. "--message-batch-lanes 4")
# Quick try: CONNS=2000 TYPING_RATE=1000 MSG_RATE=400 STEP=15s make bench-realtime
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SPARK_BIN:-bin/spark}
CONNS=${CONNS:-10000}
TYPING_RATE=${TYPING_RATE:-5000}
MSG_RATE=${MSG_RATE:-2000}
DROP=${DROP:-0.1}
REST_RATE=${REST_RATE:-0}
STEP=${STEP:-30s}
IDLE_HOLD=${IDLE_HOLD:-15s}
FIGURES=" ${FIGURES:-c a b} "
figure() { [[ "$FIGURES" == *" $1 "* ]]; }
DB=${BENCH_DB:-spark_realtime_bench}
OUT=${BENCH_OUT:-.bench/realtime}
SECRET=spark-bench-secret-local-only-not-for-production  # PostGIS: at least 32 bytes
PREFIX=rtbench:
ORIGIN_ARGS=${ORIGIN_ARGS:-}
PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
export PGHOST PGPORT PGUSER
NAME=bench-realtime
. scripts/bench/lib.sh
mkdir -p "$OUT"
[ $((CONNS % 2)) -eq 0 ] || { echo "$NAME: CONNS must be even" >&2; exit 2; }

work_dir

# A fresh database each run: the matches the load client makes and the
# messages it sends do not pile up from run to run.
# Spare users: the seed's few heavy swipers may have passed on their
# neighbour; the chat scenario replaces such pairs with the next ids.
users=$((CONNS + CONNS / 20 + 20))
echo "$NAME: fresh database $DB with $users users" >&2
url=$(scripts/test-origin-deps.sh "$DB" | tail -n1 | cut -d= -f2-)
"$BIN" origin migrate --database-url "$url" >/dev/null
"$BIN" origin seed --database-url "$url" --users "$users" --swipes-per-user 0 --matched-share 0 --messages-per-match 0 >/dev/null 2>&1

rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
redis_pid=$!
pids+=($redis_pid)
for _ in $(seq 100); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done

origin=127.0.0.1:$(free_port) origin_debug=127.0.0.1:$(free_port)
mkdir -p "$work/photos"
"$BIN" origin --listen "$origin" --debug-listen "$origin_debug" --database-url "$url" --jwt-secret "$SECRET" --photo-dir "$work/photos" \
	--events-redis "127.0.0.1:$rport" --events-redis-prefix "$PREFIX" $ORIGIN_ARGS >"$work/origin.log" 2>&1 &
origin_pid=$!
pids+=($origin_pid)
wait_ok "http://$origin/healthz"

sed "s|events origin {env.SPARK_EVENTS_TOKEN}|events redis {\$SPARK_REDIS} {\n\t\t\t\tkey_prefix $PREFIX\n\t\t\t}|" Caddyfile >"$work/Caddyfile"
grep -q "key_prefix $PREFIX" "$work/Caddyfile" || { echo "$NAME: the Caddyfile has no 'events origin' line to replace" >&2; exit 1; }
edges=() admins=() edge_pids=()
for i in 0 1; do
	listen=127.0.0.1:$(free_port) admin=127.0.0.1:$(free_port)
	SPARK_ORIGIN=$origin SPARK_LISTEN=$listen SPARK_ADMIN=$admin SPARK_JWT_SECRET=$SECRET SPARK_REDIS=127.0.0.1:$rport \
		HOME="$work/home$i" XDG_CONFIG_HOME="$work/home$i/config" XDG_DATA_HOME="$work/home$i/data" \
		"$BIN" run --config "$work/Caddyfile" --adapter caddyfile >"$work/edge$i.log" 2>&1 &
	pids+=($!) edge_pids+=($!)
	wait_answering "http://$listen/healthz"
	edges+=("http://$listen") admins+=("$admin")
done
hub=127.0.0.1:$(free_port)
"$BIN" loadtest refhub --listen "$hub" --jwt-secret "$SECRET" >"$work/refhub.log" 2>&1 &
hub_pid=$!
pids+=($hub_pid)
wait_answering "http://$hub/metrics"
edge_list=$(IFS=,; echo "${edges[*]}")

echo "$NAME: $CONNS connections, two edges sharing Redis (127.0.0.1:$rport), origin on PostGIS, $(nproc) cores"
echo "$NAME: machine: $(python3 scripts/bench/machine.py)"

# mem PID METRICS_URL: prints "rss_bytes heap_inuse_bytes" (the smallest
# heap of three samples a second apart: garbage not yet collected is not
# the connections').
mem() {
	local rss heap best=""
	for _ in 1 2 3; do
		heap=$(curl -fs "$2" | awk '/^go_memstats_heap_inuse_bytes /{printf "%d", $2}')
		if [ -z "$best" ] || [ "$heap" -lt "$best" ]; then best=$heap; fi
		sleep 1
	done
	rss=$(awk '/^VmRSS:/{print $2 * 1024}' "/proc/$1/status")
	echo "$rss $best"
}

# live METRICS_URL: prints the heap in use after a forced GC (Caddy's
# admin /debug/pprof/heap?gc=1), what the process holds rather than
# garbage no GC has been due for yet. Edges only (the reference hub has no
# pprof).
live() {
	curl -fs -o /dev/null "${1%/metrics}/debug/pprof/heap?gc=1"
	curl -fs "$1" | awk '/^go_memstats_heap_inuse_bytes /{printf "%d\n", $2}'
}

# load NAME ARGS...: the load client as its own process, JSON report in $OUT.
load() {
	local name=$1; shift
	rm -f "$OUT/$name.json" "$OUT/$name.html" "$OUT/$name.txt"
	/usr/bin/time -o "$work/$name.cpu" -f "%U %S" "$BIN" loadtest --scenario chat --users "$CONNS" --jwt-secret "$SECRET" --quiet \
		--json "$OUT/$name.json" --html "$OUT/$name.html" "$@" >"$OUT/$name.txt" 2>"$work/$name.err" || {
		local rc=$?
		# exit 1 with a report: targets missed (the table says which)
		[ -s "$OUT/$name.json" ] || { echo "$NAME: load $name failed:" >&2; cat "$work/$name.err" "$OUT/$name.txt" >&2; exit $rc; }
	}
}

# idle NAME PIDS METRICS_URLS ARGS...: memory before, during an idle hold
# of CONNS connections, per connection (summed over the processes).
idle() {
	local name=$1 pids=$2 urls=$3; shift 3
	local before=() after=() lb=0 la=0 i=0 p u
	if [ "$name" = idle-edge ]; then for u in $urls; do lb=$((lb + $(live "$u"))); done; fi
	for p in $pids; do u=$(echo "$urls" | cut -d' ' -f$((i + 1))); before+=("$(mem "$p" "$u")"); i=$((i + 1)); done
	rm -f "$work/ready"
	load "$name" --rate 0 --duration "$IDLE_HOLD" --drain 1s --ready-file "$work/ready" "$@" &
	local lp=$!
	for _ in $(seq 1500); do [ -s "$work/ready" ] && break; kill -0 $lp 2>/dev/null || break; sleep 0.2; done
	[ -s "$work/ready" ] || { echo "$NAME: $name: connections not open:" >&2; cat "$work/$name.err" >&2; exit 1; }
	sleep 3
	i=0
	for p in $pids; do u=$(echo "$urls" | cut -d' ' -f$((i + 1))); after+=("$(mem "$p" "$u")"); i=$((i + 1)); done
	if [ "$name" = idle-edge ]; then for u in $urls; do la=$((la + $(live "$u"))); done; fi
	# What the connections hold: the first process's heap profile, after a
	# GC (taken after the samples; GODEBUG=memprofilerate=4096 in the
	# environment for a detailed one).
	curl -fs -o "$OUT/$name.heap" "$(echo "$urls" | cut -d' ' -f1 | sed 's|/metrics$|/debug/pprof/heap?gc=1|')" || true
	wait $lp
	python3 - "$CONNS" "${before[*]}" "${after[*]}" "$lb" "$la" >"$work/$name.mem" <<'PY'
import sys
n = int(sys.argv[1]); b = list(map(int, sys.argv[2].split())); a = list(map(int, sys.argv[3].split()))
rss = sum(a[0::2]) - sum(b[0::2]); heap = sum(a[1::2]) - sum(b[1::2]); live = int(sys.argv[5]) - int(sys.argv[4])
print("%.1f %.1f %.1f" % (rss / n / 1024, heap / n / 1024, live / n / 1024))
PY
}

if figure c; then
	echo "$NAME: (c) idle memory, $CONNS connections held $IDLE_HOLD" >&2
	# --pairing fixed: no REST calls (whose cached responses would count as
	# connection memory); idle connections need no real conversation.
	idle idle-edge "${edge_pids[*]}" "http://${admins[0]}/metrics http://${admins[1]}/metrics" --edges "$edge_list" --pairing fixed
	idle idle-ref "$hub_pid" "http://$hub/metrics" --edges "http://$hub" --pairing fixed
fi
if figure a; then
	echo "$NAME: (a) typing fan-out, $TYPING_RATE/s for $STEP" >&2
	load typing-edge --edges "$edge_list" --rate 0 --typing-rate "$TYPING_RATE" --duration "$STEP" --drain 2s
	load typing-ref --edges "http://$hub" --pairing fixed --rate 0 --typing-rate "$TYPING_RATE" --duration "$STEP" --drain 2s
fi
if figure b; then
	echo "$NAME: (b) messages, $MSG_RATE/s for $STEP, $DROP dropped and resumed" >&2
	# Where the time goes: CPU seconds per process over the run (and per
	# message sent), CPU profiles of one edge (Caddy's admin /debug/pprof)
	# and of the origin (--debug-listen), PostgreSQL's statements per
	# message, and the origin's own latency of the send route. The counts
	# start once every connection is open (the load client's --ready-file),
	# so pairing and connecting are not in them: traffic, drops, resumes and
	# the drain are. PostgreSQL: the backends serving this database only
	# (the server is shared; its WAL writer and checkpointer are not counted).
	# pg_stats FILE: this database's transactions and per-table scans (rows:
	# name seq_scan seq_tup_read idx_scan idx_tup_fetch).
	pg_stats() {
		psql "$url" -qAt -F ' ' -c "SELECT 'transactions', xact_commit + xact_rollback, tup_returned, 0, tup_fetched FROM pg_stat_database WHERE datname = current_database()
			UNION ALL SELECT relname, seq_scan, seq_tup_read, coalesce(idx_scan, 0), coalesce(idx_tup_fetch, 0) FROM pg_stat_user_tables" >"$1" 2>/dev/null || true
	}
	# pg_pids: the backends serving this database (from PostgreSQL, not
	# from command lines, which can take seconds to read on a loaded box).
	pg_pids() { psql "$url" -qAt -c "SELECT string_agg(pid::text, ',') FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()" 2>/dev/null || true; }
	rm -f "$work/ready-b"
	load chat-edge --edges "$edge_list" --rate "$MSG_RATE" --drop "$DROP" --rest-rate "$REST_RATE" --duration "$STEP" --drain 30s --ready-file "$work/ready-b" &
	load_pid=$!
	# The backends are looked up every 2 s while the client connects (the
	# origin's pool keeps its connections), the snapshot taken the moment
	# every connection is open.
	pgp=$(pg_pids) client_pid=""
	for i in $(seq 3000); do
		[ -s "$work/ready-b" ] && break
		kill -0 $load_pid 2>/dev/null || break
		[ -n "$client_pid" ] || client_pid=$(pgrep -P "$(pgrep -P $load_pid | head -n1)" 2>/dev/null | head -n1 || true)
		[ $((i % 20)) -ne 0 ] || pgp=$(pg_pids)
		sleep 0.1
	done
	[ -s "$work/ready-b" ] || { wait $load_pid; echo "$NAME: chat-edge: connections not open:" >&2; cat "$work/chat-edge.err" >&2; exit 1; }
	procs=(edge0="${edge_pids[0]}" edge1="${edge_pids[1]}" origin="$origin_pid" redis="$redis_pid" postgres="$pgp" load-client="$client_pid")
	load_t0=$EPOCHREALTIME load_avg0=$(cut -d' ' -f1-3 /proc/loadavg)
	prof_s=$(echo "$STEP" | tr -dc 0-9)
	curl -fs -o "$OUT/chat-edge0.pprof" "http://${admins[0]}/debug/pprof/profile?seconds=$prof_s" &
	prof_pid=$!
	curl -fs -o "$OUT/chat-origin.pprof" "http://$origin_debug/debug/pprof/profile?seconds=$prof_s" &
	prof_origin_pid=$!
	python3 scripts/bench/proc_cpu.py "${procs[@]}" >"$work/cpu0"
	pg_stats "$work/pgstat0"
	# The load client's CPU at the end is what /usr/bin/time reports (it
	# has exited by then).
	wait $load_pid
	load_t1=$EPOCHREALTIME
	python3 scripts/bench/proc_cpu.py "${procs[@]}" >"$work/cpu1"
	pgp_end=$(pg_pids)
	awk -v t="$(getconf CLK_TCK)" '{printf "load-client %d\n", ($1 + $2) * t}' "$work/chat-edge.cpu" >>"$work/cpu1"
	sleep 1 # backends report their statistics at most once a second
	pg_stats "$work/pgstat1"
	wait $prof_pid $prof_origin_pid || true
	{
		sent=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["chat"]["messages"]["sent"])' "$OUT/chat-edge.json")
		python3 - "$work/cpu0" "$work/cpu1" "$sent" "$(getconf CLK_TCK)" "$(echo "$load_t1 - $load_t0" | bc -l)" "$load_avg0" "$(cut -d' ' -f1-3 /proc/loadavg)" "$(nproc)" <<'PY'
import sys
def read(p):
    d = {}
    for l in open(p):
        k, v = l.split()
        d[k] = int(v)  # the last line of a name wins (the client's, from time)
    return d
a, b = read(sys.argv[1]), read(sys.argv[2])
n, tick, secs = int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
print("CPU during (b), from all connections open to the end of the drain (%.0f s of %s cores; load average %s at the start, %s at the end), %d messages sent:" % (secs, sys.argv[8], sys.argv[6], sys.argv[7], n))
total = 0
for k in a:
    cs = (b.get(k, 0) - a[k]) / tick
    total += cs
    print("  %-12s %6.2f CPU-s  %5.0f us per message" % (k, cs, 1e6 * cs / n))
print("  %-12s %6.2f CPU-s  %5.0f us per message (postgres: this database's backends only)" % ("all", total, 1e6 * total / n))
PY
		echo "  (postgres backends: $(echo "$pgp" | tr ',' ' ' | wc -w) at the start; at the end $(echo "$pgp_end" | tr ',' '\n' | grep -cvxF -f <(echo "$pgp" | tr ',' '\n') || true) not counted, opened during the run)"
		python3 - "$work/pgstat0" "$work/pgstat1" "$sent" <<'PY'
import sys
def read(p):
    return {l.split()[0]: list(map(int, l.split()[1:])) for l in open(p) if l.strip()}
a, b, n = read(sys.argv[1]), read(sys.argv[2]), int(sys.argv[3])
rows = []
for k in b:
    d = [y - x for x, y in zip(a.get(k, [0, 0, 0, 0]), b[k])]
    if any(d):
        rows.append((k, d))
rows.sort(key=lambda r: (r[0] != "transactions", -(r[1][0] + r[1][2])))
print("postgres per message sent (pg_stat: this database; transactions, then per table seq scans / rows read by them, index scans / rows fetched):")
for k, d in rows:
    if k == "transactions":
        print("  transactions %.2f, rows returned %.1f, fetched %.1f" % (d[0] / n, d[1] / n, d[3] / n))
    else:
        print("  %-20s seq %.2f / %.1f rows, idx %.2f / %.1f rows" % (k, d[0] / n, d[1] / n, d[2] / n, d[3] / n))
PY
		curl -fs "http://$origin/metrics" | python3 -c '
import sys, re
s = {}; c = {}
for l in sys.stdin:
    m = re.match(r"spark_origin_http_request_duration_seconds_(sum|count)\{(.*)\} (\S+)", l)
    if m and "messages" in m.group(2) and "POST" in m.group(2):
        (s if m.group(1) == "sum" else c)[m.group(2)] = float(m.group(3))
    m = re.match(r"spark_origin_message_batch_size_(sum|count) (\S+)", l)
    if m: (s if m.group(1) == "sum" else c)["batch"] = float(m.group(2))
for k in c:
    if c[k]:
        what = "messages per batch" if k == "batch" else "POST %s latency (%s)" % (re.search("route=\"([^\"]*)\"", k).group(1), re.search("code=\"([^\"]*)\"", k).group(1))
        print("origin: %s mean %s" % (what, ("%.1f" % (s[k] / c[k])) if k == "batch" else "%.1f ms, %d requests" % (1000 * s[k] / c[k], c[k])))
'
		for w in edge0 origin; do
			if [ -s "$OUT/chat-$w.pprof" ]; then
				echo "$w CPU profile during (b), top by cumulative time ($OUT/chat-$w.pprof):"
				${GO:-go} tool pprof -top -cum -nodecount=25 "$BIN" "$OUT/chat-$w.pprof" 2>/dev/null | tail -n 26
			fi
		done
	} >"$work/where.txt" 2>&1 || true
	load chat-ref --edges "http://$hub" --pairing fixed --rate "$MSG_RATE" --drop "$DROP" --duration "$STEP" --drain 30s
fi

python3 - "$OUT" "$work" "$CONNS" "$TYPING_RATE" "$MSG_RATE" "$DROP" "$FIGURES" <<'PY'
import json, sys
out, work, conns, trate, mrate, drop = sys.argv[1:7]
figs = sys.argv[7].split()
j = lambda n: json.load(open("%s/%s.json" % (out, n)))["chat"]
mem = lambda n: list(map(float, open("%s/%s.mem" % (work, n)).read().split()))
def ratio(a, b): return "%.1fx" % (a / b) if b else "-"
def verdict(ok): return "PASS" if ok else "MISS"
rows = []
if "a" in figs:
  te, tr = j("typing-edge"), j("typing-ref")
  tp, trp = te["typing"]["latency"]["p99_ms"], tr["typing"]["latency"]["p99_ms"]
  rows.append(("(a) typing fan-out P99, %s conns, %s/s (received %d/%d)" % (conns, trate, te["typing"]["received"], te["typing"]["sent"]),
	"%.2f ms" % tp, "%.2f ms" % trp, ratio(tp, trp), "<= 5 ms", verdict(tp <= 5)))
if "b" in figs:
  ce, cr = j("chat-edge"), j("chat-ref")
  cp, crp = ce["delivery"]["p99_ms"], cr["delivery"]["p99_ms"]
  rows.append(("(b) send->receive P99, %s conns, %s msg/s, %.0f%% dropped" % (conns, mrate, 100 * float(drop)),
	"%.2f ms" % cp, "%.2f ms" % crp, ratio(cp, crp), "<= 50 ms", verdict(cp <= 50)))
  lp, lrp = ce["delivery_live"]["p99_ms"], cr["delivery_live"]["p99_ms"]
  rows.append(("    without the dropped pairs' messages", "%.2f ms" % lp, "%.2f ms" % lrp, ratio(lp, lrp), "", ""))
  m, mr_ = ce["messages"], cr["messages"]
  rows.append(("    lost / duplicated (of %d sent, %d received)" % (m["sent"], m["received"]),
	"%d / %d" % (m["lost"], m["duplicated"]), "%d / %d" % (mr_["lost"], mr_["duplicated"]), "", "0 / 0",
	verdict(m["lost"] == 0 and m["duplicated"] == 0 and m["misdelivered"] == 0 and m["unconfirmed"] == 0)))
if "c" in figs:
  me, mr = mem("idle-edge"), mem("idle-ref")
  rows.append(("(c) idle memory per connection, RSS", "%.1f KB" % me[0], "%.1f KB" % mr[0], ratio(me[0], mr[0]), "<= 32 KB", verdict(me[0] <= 32)))
  rows.append(("    idle memory per connection, Go heap", "%.1f KB" % me[1], "%.1f KB" % mr[1], ratio(me[1], mr[1]), "", ""))
  rows.append(("    idle memory per connection, Go heap after a GC", "%.1f KB" % me[2], "-", "", "", ""))
w = max(len(r[0]) for r in rows)
print("%-*s %10s %10s %7s %9s %s" % (w, "figure", "spark", "refhub", "ratio", "target", ""))
for r in rows:
	print("%-*s %10s %10s %7s %9s %s" % ((w,) + r))
if "b" in figs:
  print("(b) %d drops, %d resumes, server closes %s, misdelivered %d, unconfirmed %d" % (ce["drops"], ce["resumes"], ce["server_closes"] or "none", m["misdelivered"], m["unconfirmed"]))
PY
echo
[ -s "$work/where.txt" ] && cat "$work/where.txt"
echo "$NAME: reports in $OUT (JSON, HTML, text per run)"
