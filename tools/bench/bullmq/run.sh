#!/usr/bin/env bash
# BullMQ's 5-step chain on a redis-server of its own, for side-by-side figures
# with conveyor-bench (docs/benchmarks.md, "Against BullMQ"):
#   tools/bench/bullmq/run.sh [--chains 2000] [--concurrency 64] [--runs 3] [--warmup 200]
# Installs bullmq (pinned by package-lock.json) into node_modules on first use.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ ! -d "$here/node_modules/bullmq" ]]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi
data="$(mktemp -d /tmp/conveyor-bullmq-XXXXXX)"
pid=""
cleanup() {
  if [[ -n "$pid" ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$data"
}
trap cleanup EXIT
# The kernel picks the port: redis-server cannot report a port 0 bind, so try
# free-looking ports until one starts.
for _ in 1 2 3 4 5; do
  port=$(( 20000 + RANDOM % 20000 ))
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$data" \
    --daemonize no >"$data/redis.log" 2>&1 &
  pid=$!
  for _ in $(seq 50); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  redis-cli -p "$port" ping >/dev/null 2>&1 && break
  pid=""
done
[[ -n "$pid" ]] || { echo "run.sh: could not start redis-server" >&2; exit 1; }
node "$here/bench.js" --redis-port "$port" --redis-pid "$pid" "$@"
