#!/usr/bin/env bash
# make run: the origin with demo data on 127.0.0.1:8081 and the edge on :8080
# in front of it. No external services. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SPARK_BIN:-bin/spark}
export SPARK_ORIGIN=${SPARK_ORIGIN:-127.0.0.1:8081}
"$BIN" origin --listen "$SPARK_ORIGIN" --demo-users "${SPARK_DEMO_USERS:-2000}" &
origin=$!
trap 'kill $origin 2>/dev/null || true; wait $origin 2>/dev/null || true' EXIT INT TERM
echo "origin: http://$SPARK_ORIGIN   edge: http://localhost:8080   admin: http://localhost:2019"
"$BIN" run --config Caddyfile --adapter caddyfile
