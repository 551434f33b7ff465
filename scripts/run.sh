#!/usr/bin/env bash
# make run: the origin with demo data on 127.0.0.1:8081 and the edge on :8080
# in front of it. No external services. Ctrl-C (or a TERM) stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SPARK_BIN:-bin/spark}
export SPARK_ORIGIN=${SPARK_ORIGIN:-127.0.0.1:8081}
# One HS256 secret for the origin and the edge's spark_auth: the published
# development secret unless one is set (`bin/spark origin token` uses the
# same default).
export SPARK_JWT_SECRET=${SPARK_JWT_SECRET:-spark-development-secret-not-for-production}
# One secret for the origin's event stream (GET /internal/events) and the
# edge's spark_realtime, which subscribes to it: a development one unless
# one is set.
export SPARK_EVENTS_TOKEN=${SPARK_EVENTS_TOKEN:-spark-development-events-token-not-for-production}
pids=()
stop() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap stop EXIT INT TERM
"$BIN" origin --listen "$SPARK_ORIGIN" --demo-users "${SPARK_DEMO_USERS:-2000}" &
pids+=($!)
"$BIN" run --config Caddyfile --adapter caddyfile &
pids+=($!)
echo "origin: http://$SPARK_ORIGIN   edge: http://localhost:8080   admin: http://localhost:2019" >&2
echo "token:  $BIN origin token --user 1" >&2
echo "chat:   ws://localhost:8080/api/realtime (subprotocol spark.v1; caddymodule/realtime/README.md)" >&2
wait -n   # either one exiting stops the other
