#!/usr/bin/env bash
# Image benchmarks (issue 5): imageproxy's Transform for each size and
# format over the shared photos, two transforms in flight, against libvips'
# own thumbnail path (vips_thumbnail_buffer + save) interleaved in the same
# run; the header check that refuses bombs; peak RSS with two concurrent
# 800 px transforms of the largest photo; a cached variant served through
# Caddy against a plain spark_cache hit of the same bytes. Prints a summary.
#
#   BENCHTIME=32x   iterations per size/format (each photo 4 times)
#   STRICT=1        exit 1 when a median paired ratio is below 0.9
#   SPARK_TESTDATA  the shared test data (default: ../shared/testdata)
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
BENCHTIME=${BENCHTIME:-32x}
export SPARK_TESTDATA=${SPARK_TESTDATA:-$(cd .. && pwd)/shared/testdata}
# glibc arenas per thread multiply libvips' RSS (design/images.md); the edge
# runs with the same setting.
export MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2}
if ! pkg-config --exists vips 2>/dev/null; then
  [ -x scripts/build-deps.sh ] && scripts/build-deps.sh
  pkg-config --exists vips || { echo "bench-images: libvips-dev is missing" >&2; exit 1; }
fi

out=.bench/images
mkdir -p "$out"
echo "== transform vs libvips thumbnail ($BENCHTIME per case), header check"
$GO test -run '^$' -bench '^(BenchmarkTransform|BenchmarkInspect)$' -benchmem -benchtime "$BENCHTIME" -count 1 \
  -timeout 60m ./imageproxy | tee "$out/transform.txt"
echo "== peak RSS, 2 concurrent 800 px transforms of the 20 MP photo (jpeg, webp, avif)"
$GO test -run '^$' -bench '^BenchmarkPeakRSS$' -benchtime 3x -count 1 ./imageproxy | tee "$out/rss.txt"

echo "== cached variant vs plain spark_cache hit of the same bytes, one Caddy, interleaved"
$GO test -run '^$' -bench '^BenchmarkEdgeHit$' -benchtime "${HIT_BENCHTIME:-5s}" -count 1 ./caddymodule/image | tee "$out/hit.txt"

echo
echo "== summary (ms/img with 2 in flight; img/s; ratio = spark throughput / libvips thumbnail throughput,"
echo "   median = median per-photo paired ratio, what STRICT=1 checks)"
awk -v strict="${STRICT:-0}" '
  /^BenchmarkTransform\// {
    name = $1; sub(/^BenchmarkTransform\//, "", name); sub(/-[0-9]+$/, "", name)
    for (i = 3; i < NF; i += 2) m[$(i+1)] = $i
    flag = (m["median-ratio"] < 0.9) ? "  < 0.9" : ""
    if (flag != "") low++
    printf "%-12s spark %7.1f ms/img %6.1f img/s   vips %7.1f ms/img %6.1f img/s   ratio %.2f (median %.2f)  %5.1f KiB%s\n",
      name, m["spark-ms/img"], m["spark-img/s"], m["vips-ms/img"], m["vips-img/s"], m["ratio"], m["median-ratio"], m["KiB/img"], flag
  }
  /^BenchmarkInspect\// { n = $1; sub(/-[0-9]+$/, "", n); printf "%-34s %10.1f µs/op\n", n, $3 / 1000 }
  /^BenchmarkPeakRSS/ { for (i = 3; i < NF; i += 2) if ($(i+1) == "peak-RSS-MB") printf "peak RSS %.0f MB\n", $i }
  /^BenchmarkEdgeHit/ {
    for (i = 3; i < NF; i += 2) h[$(i+1)] = $i
    printf "edge hit: variant %.0f µs/req, plain %.0f µs/req, ratio %.2f (variant/plain throughput)\n", h["variant-µs/req"], h["plain-µs/req"], h["ratio"]
  }
  END { if (strict == 1 && low > 0) { printf "%d case(s) below 0.9\n", low; exit 1 } }
' "$out/transform.txt" "$out/rss.txt" "$out/hit.txt"
