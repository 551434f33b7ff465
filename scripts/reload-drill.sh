#!/usr/bin/env bash
# reload-drill.sh — `spark reload` under load: wrk keeps RELOAD_CONNS
# keep-alive connections busy on cached keys of the edge
# (RELOAD_CONFIG, scripts/bench/reload.Caddyfile: spark_cache in front of an
# origin, with the repository Caddyfile's spark_handover) while the
# config is reloaded RELOADS times, then prints requests, errors by kind
# (connect/read/write/timeout, non-2xx) and origin fetches during the run
# (a lost L1 refetches every key). The same run without reloads first is
# the reference. Exits non-zero when the run with reloads failed a request
# or refetched more than a tenth of the keys (RELOAD_STRICT=0 only prints).
#
# Usage: scripts/reload-drill.sh
# Env:   SPARK_BIN (bin/spark) RELOADS (10) RELOAD_CONNS (32)
#        RELOAD_CONFIG (scripts/bench/reload.Caddyfile; scripts/bench/
#        edge.Caddyfile is the edge without spark_handover)
#        RELOAD_INTERVAL (1.5 s between reloads) RELOAD_KEYS (1000)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SPARK_BIN:-bin/spark}
RELOADS=${RELOADS:-10}
CONNS=${RELOAD_CONNS:-32}
INTERVAL=${RELOAD_INTERVAL:-1.5}
STRICT=${RELOAD_STRICT:-1}
export BENCH_KEYS=${RELOAD_KEYS:-1000}
CONFIG=${RELOAD_CONFIG:-scripts/bench/reload.Caddyfile}
command -v wrk >/dev/null || { echo "installing wrk (Debian package)"; apt-get install -y -qq wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export BENCH_ADMIN=127.0.0.1:$(free_port) BENCH_RESPOND_PORT=$(free_port) BENCH_CACHE_PORT=$(free_port) BENCH_ORIGIN_PORT=$(free_port) BENCH_L2_PORT=$(free_port)
export BENCH_REDIS=${BENCH_REDIS:-127.0.0.1:6379} BENCH_REDIS_PREFIX="spark-reload:$$:" # edge.Caddyfile's L2 site
export BENCH_BODY='{"id":42,"name":"Ada","city":"Lisbon"}'

work=$(mktemp -d); pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"' EXIT
"$BIN" run --config "$CONFIG" --adapter caddyfile >"$work/spark.log" 2>&1 &
pid=$!
for _ in $(seq 300); do curl -fs "http://$BENCH_ADMIN/config/" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "http://$BENCH_ADMIN/config/" >/dev/null || { cat "$work/spark.log"; echo "reload-drill: the edge did not start"; exit 1; }
metric() { curl -fs "http://$BENCH_ADMIN/metrics" | awk -v pat="$1" '$0 ~ pat {s+=$2} END {print s+0}'; }
misses() { metric '^spark_cache_requests_total.*cache="default".*layer="origin".*result="miss"'; }

# Every key once, then the runs hit L1 only.
BENCH_SEQUENTIAL=1 wrk -t1 -c1 -d3s -s scripts/bench/keys.lua "http://127.0.0.1:$BENCH_CACHE_PORT" >/dev/null
BENCH_SEQUENTIAL=1 wrk -t1 -c1 -d2s -s scripts/bench/keys.lua "http://127.0.0.1:$BENCH_CACHE_PORT" >/dev/null

dur=$(awk -v n="$RELOADS" -v i="$INTERVAL" 'BEGIN { printf "%d", n*i + 3 }')
# run NAME RELOADS -> "requests connect read write timeout non2xx origin_fetches"
run() {
  local m0; m0=$(misses)
  wrk -t2 -c"$CONNS" -d"${dur}s" -s scripts/bench/keys.lua "http://127.0.0.1:$BENCH_CACHE_PORT" >"$work/$1.txt" &
  local w=$!
  sleep 1
  for i in $(seq "$2"); do
    "$BIN" reload --config "$CONFIG" --adapter caddyfile --address "$BENCH_ADMIN" --force >>"$work/reload.log" 2>&1 ||
      { cat "$work/reload.log"; echo "reload-drill: reload $i failed"; exit 1; }
    sleep "$INTERVAL"
  done
  wait "$w"
  awk -v m="$(( $(misses) - m0 ))" '
    / requests in / {n=$1}
    /Socket errors/ {gsub(",", ""); c=$4; r=$6; w=$8; t=$10}
    /Non-2xx/ {x=$5}
    END {print n+0, c+0, r+0, w+0, t+0, x+0, m}' "$work/$1.txt"
}

read -r b_n b_c b_r b_w b_t b_x b_m < <(run baseline 0)
read -r r_n r_c r_r r_w r_t r_x r_m < <(run reloads "$RELOADS")
echo "spark reload under load: wrk -t2 -c$CONNS ${dur}s on $BENCH_KEYS cached keys, $(nproc) cores"
printf '%-22s %10s %8s %6s %6s %8s %8s %15s\n' "" requests connect read write timeout non-2xx origin-fetches
printf '%-22s %10s %8s %6s %6s %8s %8s %15s\n' "no reload (reference)" "$b_n" "$b_c" "$b_r" "$b_w" "$b_t" "$b_x" "$b_m"
printf '%-22s %10s %8s %6s %6s %8s %8s %15s\n' "$RELOADS reloads" "$r_n" "$r_c" "$r_r" "$r_w" "$r_t" "$r_x" "$r_m"
failed=$(( r_c + r_r + r_w + r_t + r_x ))
awk -v a="$r_n" -v b="$b_n" 'BEGIN { printf "throughput ratio reloads/reference: %.3f\n", a/b }'
# A lost L1 refetches every key: more than a tenth of them is a loss.
lost=$(( r_m * 10 > BENCH_KEYS ? 1 : 0 ))
echo "failed requests with reloads: $failed; origin fetches: $r_m of $BENCH_KEYS keys (L1 lost: $([ "$lost" = 1 ] && echo yes || echo no))"
if [ "$STRICT" = 1 ] && { [ "$failed" -gt 0 ] || [ "$lost" = 1 ]; }; then
  echo "reload-drill: FAIL"; exit 1
fi
echo "reload-drill: OK"
