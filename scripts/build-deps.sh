#!/usr/bin/env bash
# Installs what building bin/spark needs beyond Go: libvips (cgo, for the
# image proxy). Idempotent; needs root (apt-get) only when something is
# missing.
set -euo pipefail
if pkg-config --exists vips 2>/dev/null; then
  exit 0
fi
echo "build-deps: installing libvips-dev (Debian package) for the image proxy" >&2
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -qq libvips-dev pkg-config >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq libvips-dev pkg-config
fi
pkg-config --exists vips || { echo "build-deps: libvips-dev installed but pkg-config cannot find vips" >&2; exit 1; }
