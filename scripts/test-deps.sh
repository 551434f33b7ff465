#!/usr/bin/env bash
# Installs and starts what `make test` needs on a Debian 12 machine:
# PostgreSQL 15 with PostGIS (scripts/test-origin-deps.sh), Redis on
# 127.0.0.1:6379, promtool and systemd-analyze (deploy/'s checks).
# Idempotent; fails with the reason when it cannot.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

apt_install() {
  if ! apt-get install -y -qq "$@" >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq "$@"
  fi
}

if ! pkg-config --exists vips 2>/dev/null; then
  echo "test-deps: installing libvips-dev (image proxy, cgo)" >&2
  apt_install libvips-dev pkg-config
fi
if ! command -v redis-server >/dev/null 2>&1; then
  echo "test-deps: installing redis-server" >&2
  apt_install redis-server
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "test-deps: starting Redis on 127.0.0.1:6379" >&2
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/spark-test.log
  for _ in $(seq 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null || { echo "test-deps: Redis did not start" >&2; exit 1; }
fi
if ! command -v promtool >/dev/null 2>&1; then
  echo "test-deps: installing prometheus (promtool: deploy/prometheus rule checks and unit tests)" >&2
  apt_install --no-install-recommends prometheus
fi
command -v promtool >/dev/null 2>&1 || { echo "test-deps: promtool still missing after installing prometheus" >&2; exit 1; }
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "test-deps: installing systemd (systemd-analyze verifies deploy/systemd)" >&2
  apt_install systemd
fi
if ! command -v psql >/dev/null 2>&1; then
  echo "test-deps: installing PostgreSQL 15" >&2
  apt_install postgresql-15
fi
# PostGIS and the fresh test database: scripts/test-origin-deps.sh, which
# make test runs next and whose last line is the database URL.
