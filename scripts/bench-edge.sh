#!/usr/bin/env bash
# End-to-end hit benchmark: spark_cache hits vs Caddy's respond serving the
# same 1 KB JSON, in one run, on this machine. Prints both and the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SPARK_BIN:-bin/spark}
DUR=${BENCH_DURATION:-15s}
CONNS=${BENCH_CONNECTIONS:-64}
export BENCH_KEYS=${BENCH_KEYS:-10000}
command -v wrk >/dev/null || { echo "installing wrk (Debian package)"; apt-get install -y -qq wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export BENCH_ADMIN=127.0.0.1:$(free_port) BENCH_RESPOND_PORT=$(free_port) BENCH_CACHE_PORT=$(free_port) BENCH_ORIGIN_PORT=$(free_port) BENCH_L2_PORT=$(free_port)
export BENCH_REDIS=${BENCH_REDIS:-127.0.0.1:6379} BENCH_REDIS_PREFIX="spark-bench:$$:"
redis-cli -u "redis://$BENCH_REDIS" ping >/dev/null || { echo "Redis at $BENCH_REDIS unreachable (scripts/test-deps.sh starts it)"; exit 1; }
export BENCH_BODY=$(python3 -c 'import json; print(json.dumps({"id":42,"name":"Ada","bio":"x"*860,"age":31,"city":"Lisbon"}))')

work=$(mktemp -d); trap 'kill $pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
"$BIN" run --config scripts/bench/edge.Caddyfile --adapter caddyfile >"$work/spark.log" 2>&1 &
pid=$!
for _ in $(seq 50); do curl -fs "http://$BENCH_ADMIN/config/" >/dev/null 2>&1 && break; sleep 0.1; done

run() { # name port -> "rps p50 p99"
  wrk -t2 -c"$CONNS" -d"$DUR" --latency -s scripts/bench/keys.lua "http://127.0.0.1:$2" >"$work/$1.txt"
  awk '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} END {print rps, p50, p99}' "$work/$1.txt"
}
to_ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) printf "%.3f", v/1000; else if (v ~ /ms$/) printf "%.3f", v+0; else printf "%.3f", v*1000 }'; }

metric() { curl -fs "http://$BENCH_ADMIN/metrics" | awk -v pat="$1" '$0 ~ pat {s+=$2} END {printf "%d\n", s}'; }
# Every key in L1 before the L1 row and in Redis before the L2 row: warm
# until each key went to the origin once (L1) and Redis holds every key
# (L2; a write Redis timed out on a loaded machine is not there). Fixed
# warm-ups of 5 s and 4 s did not reach them all at load average 20-30,
# and the rows then measured origin round trips.
echo "warming $BENCH_KEYS keys through the cache..."
for _ in $(seq 20); do
	BENCH_SEQUENTIAL=1 wrk -t1 -c8 -d2s -s scripts/bench/keys.lua "http://127.0.0.1:$BENCH_CACHE_PORT" >/dev/null
	[ "$(metric 'cache="default",layer="origin",result="miss"')" -ge "$BENCH_KEYS" ] && break
done
for _ in $(seq 20); do
	BENCH_SEQUENTIAL=1 wrk -t1 -c8 -d2s -s scripts/bench/keys.lua "http://127.0.0.1:$BENCH_L2_PORT" >/dev/null
	[ "$(redis-cli -u "redis://$BENCH_REDIS" --scan --pattern "${BENCH_REDIS_PREFIX}k:*" | wc -l)" -ge "$BENCH_KEYS" ] && break
done
misses_before=$(metric 'cache="default",layer="origin",result="miss"')

read -r r_rps r_p50 r_p99 < <(run respond "$BENCH_RESPOND_PORT")
read -r c_rps c_p50 c_p99 < <(run cache "$BENCH_CACHE_PORT")
l2h0=$(metric 'cache="bench-l2",layer="l2",result="hit"'); l1h0=$(metric 'cache="bench-l2",layer="l1",result="hit"'); m0=$(metric 'cache="bench-l2",layer="origin",result="miss"')
read -r l_rps l_p50 l_p99 < <(run l2 "$BENCH_L2_PORT")
l2h=$(( $(metric 'cache="bench-l2",layer="l2",result="hit"') - l2h0 )); l1h=$(( $(metric 'cache="bench-l2",layer="l1",result="hit"') - l1h0 )); lm=$(( $(metric 'cache="bench-l2",layer="origin",result="miss"') - m0 ))
misses_after=$(metric 'cache="default",layer="origin",result="miss"')
hits=$(metric 'cache="default",layer="l1",result="hit"')

r50=$(to_ms "$r_p50"); r99=$(to_ms "$r_p99"); c50=$(to_ms "$c_p50"); c99=$(to_ms "$c_p99"); l50=$(to_ms "$l_p50"); l99=$(to_ms "$l_p99")
echo
echo "Edge hit benchmark: 1 KB JSON, $BENCH_KEYS keys, $CONNS connections, $DUR each, wrk -t2, $(nproc) cores"
printf '%-28s %12s %10s %10s\n' "" "req/s" "P50 ms" "P99 ms"
printf '%-28s %12.0f %10s %10s\n' "respond (reference)" "$r_rps" "$r50" "$r99"
printf '%-28s %12.0f %10s %10s\n' "spark_cache L1 hit" "$c_rps" "$c50" "$c99"
printf '%-28s %12.0f %10s %10s\n' "spark_cache L2 hit (Redis)" "$l_rps" "$l50" "$l99"
awk -v a="$c_rps" -v b="$r_rps" -v p="$c99" -v q="$r99" 'BEGIN {
  t = a/b; l = p/q
  printf "throughput ratio cache/respond: %.3f (required >= 0.85, aim 0.95) %s\n", t, (t >= 0.85 ? "PASS" : "FAIL")
  printf "P99 ratio cache/respond:        %.3f (required <= 1.30) %s\n", l, (l <= 1.3 ? "PASS" : "FAIL")
}'
awk -v a="$l_rps" -v b="$c_rps" -v h2="$l2h" -v h1="$l1h" -v m="$lm" 'BEGIN {
  t = a/b; n = h2 + h1 + m; if (n == 0) n = 1
  printf "throughput ratio L2 hit/L1 hit:  %.3f (required >= 0.5) %s; that run: %.1f%% L2 hits, %.1f%% L1, %.1f%% origin\n", t, (t >= 0.5 ? "PASS" : "FAIL"), 100*h2/n, 100*h1/n, 100*m/n
}'
echo "origin requests during the measured run: $((misses_after - misses_before)) (L1 hits so far: $hits)"
