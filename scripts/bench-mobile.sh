#!/usr/bin/env bash
# App-open figures (issue 17): the origin (embedded store, demo users) and
# the edge on the repository's Caddyfile, then `spark loadtest appopen`: an
# app open of 5 calls (4 cached) as one /api/batch against five calls and
# against the slowest call alone, over a simulated 3G link (a delaying
# proxy on loopback: BENCH_RTT round trip, BENCH_MBPS each way). Prints
# each figure beside its reference and the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SPARK_BIN:-bin/spark}
RTT=${BENCH_RTT:-150ms}
MBPS=${BENCH_MBPS:-1.6}
RUNS=${BENCH_RUNS:-40}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
origin_port=$(free_port) edge_port=$(free_port) admin_port=$(free_port)
export SPARK_JWT_SECRET=${SPARK_JWT_SECRET:-spark-development-secret-not-for-production}
export SPARK_EVENTS_TOKEN=${SPARK_EVENTS_TOKEN:-spark-development-events-token-not-for-production}
export SPARK_ORIGIN=127.0.0.1:$origin_port SPARK_LISTEN=127.0.0.1:$edge_port SPARK_ADMIN=127.0.0.1:$admin_port

work=$(mktemp -d); pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
"$BIN" origin --listen "$SPARK_ORIGIN" --demo-users 2000 >"$work/origin.log" 2>&1 &
pids+=($!)
HOME=$work XDG_DATA_HOME=$work XDG_CONFIG_HOME=$work "$BIN" run --config Caddyfile --adapter caddyfile >"$work/edge.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  curl -fs "http://$SPARK_ORIGIN/readyz" >/dev/null 2>&1 && curl -s -o /dev/null "http://$SPARK_LISTEN/" && break
  sleep 0.2
done
"$BIN" loadtest appopen --target "http://$SPARK_LISTEN" --rtt "$RTT" --mbps "$MBPS" --runs "$RUNS" "$@" || {
  echo "bench-mobile failed; edge log:"; tail -20 "$work/edge.log"; exit 1; }
