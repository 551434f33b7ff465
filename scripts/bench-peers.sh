#!/usr/bin/env bash
# Cache comparison on this machine: the same hit-heavy workload (spark
# loadtest's built-in "peers" scenario: 1 KB JSON profiles over 10,000 ids and
# 64 KB blobs, Zipf popularity, closed model) against Varnish, nginx
# proxy_cache and the Spark edge (repo Caddyfile), each in front of the same
# static nginx origin, one after another. Prints throughput, P50/P99, hit
# ratio and origin requests for each, with ratios to the Spark edge; then
# nginx and the edge over TLS + HTTP/2 with h2load (BENCH_TLS=0 skips it).
# Configuration files: loadtest/peers/. Installs varnish and nginx-light
# (Debian packages) when missing, without starting their system services.
#
# Env: BENCH_DURATION (15s)  BENCH_CONCURRENCY (64)  BENCH_WARM (5s)  BENCH_TLS (1)
#      BENCH_OUT (.bench/peers: JSON and HTML report per cache)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SPARK_BIN:-bin/spark}
DUR=${BENCH_DURATION:-15s}
CONC=${BENCH_CONCURRENCY:-64}
WARM=${BENCH_WARM:-5s}
OUT=${BENCH_OUT:-.bench/peers}
PEERS=loadtest/peers
mkdir -p "$OUT"

if ! command -v varnishd >/dev/null || ! command -v nginx >/dev/null; then
	echo "bench-peers: installing varnish and nginx-light (Debian packages; their services are not started)"
	created_policy=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && created_policy=1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq varnish nginx-light >/dev/null || { apt-get update -qq && apt-get install -y -qq varnish nginx-light >/dev/null; }
	[ -n "$created_policy" ] && rm -f /usr/sbin/policy-rc.d
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ok() { for _ in $(seq 100); do curl -fs -m 2 -o /dev/null ${2:-} "$1" && return 0; sleep 0.2; done; echo "bench-peers: $1 not answering; logs:" >&2; tail -n 20 "$work"/*.log >&2; return 1; }

work=$(mktemp -d)
chmod 755 "$work" # varnishd reads its VCL after dropping privileges
pids=()
stop_all() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	pids=()
}
origin_pid=""
trap 'stop_all; [ -n "$origin_pid" ] && kill "$origin_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT INT TERM

# The origin's content: deterministic 1 KB profiles, incompressible 64 KB blobs.
python3 - "$work/root" <<'PY'
import json, os, random, sys
root = sys.argv[1]
# Under /static/: the repo Caddyfile routes only /api/* and /static/* to an origin.
os.makedirs(root + "/static/profiles"); os.makedirs(root + "/static/blobs")
rng = random.Random(1)
for i in range(1, 10001):
    p = {"id": i, "name": "User %d" % i, "age": 18 + i % 40, "gender": ["woman", "man", "nonbinary"][i % 3],
         "photos": ["https://img.spark.example/u/%d/%d.jpg" % (i, k) for k in range(3)], "active": True}
    p["bio"] = ("".join(rng.choice("abcdefghijklmnopqrstuvwxyz    ") for _ in range(1024)))[: 1024 - len(json.dumps(p)) - 10]
    open("%s/static/profiles/%d.json" % (root, i), "w").write(json.dumps(p))
for i in range(1, 257):
    open("%s/static/blobs/%d.bin" % (root, i), "wb").write(os.urandom(64 * 1024))
PY
mkdir -p "$work/cache"
origin_port=$(free_port)
sed -e "s#@WORK@#$work#g" -e "s#@ROOT@#$work/root#g" -e "s#@PORT@#$origin_port#g" "$PEERS/origin.nginx.conf" >"$work/origin.conf"
nginx -c "$work/origin.conf" -g 'daemon off;' >"$work/origin.log" 2>&1 &
origin_pid=$!
wait_ok "http://127.0.0.1:$origin_port/healthz"
origin_requests() { wc -l <"$work/origin.access.log"; }

start_cache() { # name port
	case $1 in
	varnish)
		sed -e "s#@ORIGIN_HOST@#127.0.0.1#" -e "s#@ORIGIN_PORT@#$origin_port#" "$PEERS/varnish.vcl" >"$work/varnish.vcl"
		varnishd -F -a "127.0.0.1:$2" -f "$work/varnish.vcl" -s malloc,512m -n "$work/varnish" -T none >"$work/varnish.log" 2>&1 &
		;;
	nginx)
		sed -e "s#@WORK@#$work#g" -e "s#@PORT@#$2#g" -e "s#@ORIGIN@#127.0.0.1:$origin_port#g" "$PEERS/nginx-cache.conf" >"$work/nginx-cache.conf"
		nginx -c "$work/nginx-cache.conf" -g 'daemon off;' >"$work/nginx-cache.log" 2>&1 &
		;;
	spark | spark-nofast)
		# spark_auth guards /api/* only (the peers scenario reads other paths);
		# the repo Caddyfile still needs its secret to start. spark-nofast is
		# the same edge with the listener fast path off.
		fast=on
		[ "$1" = spark-nofast ] && fast=off
		spark_admin=127.0.0.1:$(free_port)
		SPARK_FASTPATH=$fast SPARK_ORIGIN=127.0.0.1:$origin_port SPARK_LISTEN=127.0.0.1:$2 SPARK_ADMIN=$spark_admin \
			SPARK_JWT_SECRET=spark-bench-peers-secret-not-for-production \
			SPARK_EVENTS_TOKEN=spark-bench-peers-events-token-local-only \
			"$BIN" run --config Caddyfile --adapter caddyfile >"$work/spark.log" 2>&1 &
		;;
	esac
	pids+=($!)
	wait_ok "http://127.0.0.1:$2/static/profiles/1.json"
}

declare -A rps p50 p99 hit origin_n fastshare
# spark_metric PATTERN: the sum of the edge's metric lines matching PATTERN.
spark_metric() { curl -fs "http://$spark_admin/metrics" | awk -v pat="$1" '$0 ~ pat && $0 !~ /^#/ {s+=$2} END {printf "%d", s}'; }
for name in varnish nginx spark spark-nofast; do
	port=$(free_port)
	start_cache "$name" "$port"
	"$BIN" loadtest --target "http://127.0.0.1:$port" --scenario peers --mode closed --concurrency 8 \
		--duration "$WARM" --ramp 0s --quiet >/dev/null
	before=$(origin_requests)
	if [ "$name" = spark ]; then # the listener fast path's share of the L1 hits
		fast0=$(spark_metric '^spark_cache_fastpath_responses_total'); l10=$(spark_metric '^spark_cache_requests_total.*layer="l1".*result="hit"')
	fi
	"$BIN" loadtest --target "http://127.0.0.1:$port" --scenario peers --mode closed --concurrency "$CONC" \
		--duration "$DUR" --ramp 0s --quiet --json "$OUT/$name.json" --html "$OUT/$name.html" >/dev/null
	origin_n[$name]=$(( $(origin_requests) - before ))
	fastshare[$name]=-
	if [ "$name" = spark ]; then
		fastshare[$name]=$(awk -v f="$(( $(spark_metric '^spark_cache_fastpath_responses_total') - fast0 ))" \
			-v h="$(( $(spark_metric '^spark_cache_requests_total.*layer="l1".*result="hit"') - l10 ))" 'BEGIN { printf "%.1f%%", h ? 100 * f / h : 0 }')
	fi
	read -r rps[$name] p50[$name] p99[$name] hit[$name] < <(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
h = "-" if r["hit_ratio"] is None else "%.1f%%" % (100 * r["hit_ratio"])
print("%.0f %.3f %.3f %s" % (r["rps"], r["latency"]["p50_ms"], r["latency"]["p99_ms"], h))' "$OUT/$name.json")
	stop_all
done

# TLS + HTTP/2 (BENCH_TLS=0 skips): nginx proxy_cache (ssl http2) and the Spark
# edge (the repo Caddyfile served on https with the same self-signed
# certificate) — Varnish has no TLS — with h2load (Debian's nghttp2-client):
# 64 connections, one stream each, over 2,000 profile URIs, after a warm pass.
declare -A trps tp50 tp99
tls_names=()
if [ "${BENCH_TLS:-1}" = 1 ]; then
	command -v h2load >/dev/null || apt-get install -y -qq nghttp2-client >/dev/null || { apt-get update -qq && apt-get install -y -qq nghttp2-client >/dev/null; }
	openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
		-keyout "$work/tls.key" -out "$work/tls.crt" >/dev/null 2>&1
	for name in nginx spark; do
		port=$(free_port)
		case $name in
		nginx)
			sed -e "s#@WORK@#$work#g" -e "s#@PORT@#$port#g" -e "s#@ORIGIN@#127.0.0.1:$origin_port#g" \
				-e "s#listen 127.0.0.1:$port;#listen 127.0.0.1:$port ssl http2; ssl_certificate $work/tls.crt; ssl_certificate_key $work/tls.key;#" \
				"$PEERS/nginx-cache.conf" >"$work/nginx-tls.conf"
			nginx -c "$work/nginx-tls.conf" -g 'daemon off;' >"$work/nginx-tls.log" 2>&1 &
			;;
		spark)
			sed -e 's#^\tmetrics$#\tmetrics\n\tauto_https disable_redirects#' \
				-e "s#^http://{\$SPARK_LISTEN::8080} {#https://{\$SPARK_LISTEN::8080} {\n\ttls $work/tls.crt $work/tls.key#" Caddyfile >"$work/Caddyfile.tls"
			SPARK_ORIGIN=127.0.0.1:$origin_port SPARK_LISTEN=127.0.0.1:$port SPARK_ADMIN=127.0.0.1:$(free_port) \
				SPARK_JWT_SECRET=spark-bench-peers-secret-not-for-production \
				SPARK_EVENTS_TOKEN=spark-bench-peers-events-token-local-only \
				"$BIN" run --config "$work/Caddyfile.tls" --adapter caddyfile >"$work/spark-tls.log" 2>&1 &
			;;
		esac
		pids+=($!)
		wait_ok "https://127.0.0.1:$port/static/profiles/1.json" -k
		python3 -c 'import random, sys; r = random.Random(2); print("\n".join("https://127.0.0.1:%s/static/profiles/%d.json" % (sys.argv[1], r.randint(1, 10000)) for _ in range(2000)))' "$port" >"$work/uris.txt"
		h2load -c 8 -m 1 -n 20000 -i "$work/uris.txt" >/dev/null 2>&1
		h2load -t 2 -c "$CONC" -m 1 -D "${DUR%s}" -i "$work/uris.txt" --log-file "$work/h2-$name.log" >"$work/h2-$name.txt" 2>&1
		read -r trps[$name] tp50[$name] tp99[$name] < <(python3 -c '
import re, sys
out = open(sys.argv[1]).read()
rps = float(re.search(r"finished in [^,]+, ([0-9.]+) req/s", out).group(1))
t = sorted(int(l.split()[2]) for l in open(sys.argv[2]) if l.strip())
print("%.0f %.3f %.3f" % (rps, t[len(t) // 2] / 1000, t[int(len(t) * 0.99)] / 1000))' "$work/h2-$name.txt" "$work/h2-$name.log")
		tls_names+=("$name")
		stop_all
	done
fi
kill "$origin_pid" 2>/dev/null || true
wait "$origin_pid" 2>/dev/null || true

echo
echo "Cache comparison: peers scenario (1 KB profiles over 10,000 ids, 64 KB blobs), closed model, $CONC workers, $DUR each after $WARM warm-up, $(nproc) cores"
printf '%-22s %10s %9s %9s %8s %12s %12s %12s\n' "" "req/s" "P50 ms" "P99 ms" "hit" "origin reqs" "req/s ratio" "P99 ratio"
for name in spark spark-nofast varnish nginx; do
	label=$name
	case $name in spark) label="spark edge" ;; spark-nofast) label="spark, fast path off" ;; nginx) label="nginx proxy_cache" ;; esac
	printf '%-22s %10s %9s %9s %8s %12s %12s %12s\n' "$label" "${rps[$name]}" "${p50[$name]}" "${p99[$name]}" "${hit[$name]}" "${origin_n[$name]}" \
		"$(awk -v a="${rps[$name]}" -v b="${rps[spark]}" 'BEGIN { printf "%.2f", a/b }')" \
		"$(awk -v a="${p99[$name]}" -v b="${p99[spark]}" 'BEGIN { printf "%.2f", a/b }')"
done
echo "(ratios are to the Spark edge; reports: $OUT/*.html)"
echo "Spark edge: ${fastshare[spark]} of its L1 hits answered by the listener fast path (spark_cache_fastpath_responses_total)"
if [ ${#tls_names[@]} -gt 0 ]; then
	echo
	echo "TLS + HTTP/2: 1 KB profiles (2,000 URIs over 10,000 ids), h2load -t2 -c$CONC -m1, $DUR each after a 20,000-request warm pass"
	printf '%-22s %10s %9s %9s %12s %12s\n' "" "req/s" "P50 ms" "P99 ms" "req/s ratio" "P99 ratio"
	for name in "${tls_names[@]}"; do
		label=$name
		case $name in spark) label="spark edge" ;; nginx) label="nginx proxy_cache" ;; esac
		printf '%-22s %10s %9s %9s %12s %12s\n' "$label" "${trps[$name]}" "${tp50[$name]}" "${tp99[$name]}" \
			"$(awk -v a="${trps[$name]}" -v b="${trps[spark]}" 'BEGIN { printf "%.2f", a/b }')" \
			"$(awk -v a="${tp99[$name]}" -v b="${tp99[spark]}" 'BEGIN { printf "%.2f", a/b }')"
	done
	echo "(ratios are to the Spark edge)"
fi
