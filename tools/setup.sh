#!/usr/bin/env bash
# Installs everything Conveyor's build, tests, demo and benchmarks need, from
# Debian 12's packages (and from the npm registry s3rver, for the S3 tests,
# and puppeteer-core, for the dashboard's browser test).
# Idempotent: installs only what is missing; safe to run again and again.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

packages=(
  # build
  build-essential cmake ninja-build ccache pkg-config
  # libraries
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler grpc-proto
  libabsl-dev libhiredis-dev libcurl4-openssl-dev libssl-dev libcli11-dev
  libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev
  libjpeg62-turbo-dev libpng-dev libwebp-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev libcpp-httplib-dev redis-server redis-sentinel
  iproute2 python3 python3-yaml jq
  # Redis over TLS through the deployment's stunnel sidecar (deploy_redis_tunnel)
  stunnel4
  # the sanitizer build and the fuzzers (docs/testing.md): clang, libFuzzer and
  # the sanitizer runtimes, llvm-symbolizer for readable stacks
  clang-14 libclang-rt-14-dev llvm-14
  # real photos for the demo and the benchmarks
  mate-backgrounds
  # the dashboard's browser test (tests/dashboard/): headless Chromium
  chromium
)

# Node.js runs s3rver. A machine that already has node and npm (from any
# source) keeps them: Debian's npm conflicts with other Node.js builds.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if ((${#missing[@]} > 0)); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -q
  "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# s3rver, an S3-compatible server on loopback for the upload tests; the lock
# file pins it. Installed into tools/s3rver/node_modules (git-ignored).
if [[ -f "$root/tools/s3rver/package-lock.json" && ! -d "$root/tools/s3rver/node_modules/s3rver" ]]; then
  echo "setup: installing s3rver (npm)"
  (cd "$root/tools/s3rver" && npm ci --no-audit --no-fund --loglevel=error)
fi

# puppeteer-core, which drives Chromium in the dashboard's browser test; the
# lock file pins it. Into tests/dashboard/node_modules (git-ignored). No
# browser download: it drives Debian's /usr/bin/chromium.
if [[ -f "$root/tests/dashboard/package-lock.json" && ! -d "$root/tests/dashboard/node_modules/puppeteer-core" ]]; then
  echo "setup: installing puppeteer-core (npm)"
  (cd "$root/tests/dashboard" && npm ci --no-audit --no-fund --loglevel=error)
fi

echo "setup: ok"
