#!/usr/bin/env bash
# Starts s3rver (pinned in package-lock.json) on loopback for trying
# conveyor-upload by hand:
#   tools/s3rver/run.sh [port] [bucket]      # defaults: 4568, conveyor
# then: conveyor-upload --s3-endpoint http://127.0.0.1:4568 with
# AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER in the environment.
# Data lives in a temporary directory removed on exit. Run tools/setup.sh first.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
port="${1:-4568}"
bucket="${2:-conveyor}"
script="$here/node_modules/s3rver/bin/s3rver.js"
if [[ ! -f "$script" ]]; then
  echo "s3rver is not installed: run tools/setup.sh" >&2
  exit 1
fi
data="$(mktemp -d /tmp/conveyor-s3rver-XXXXXX)"
pid=""
cleanup() {
  if [[ -n "$pid" ]]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$data"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
echo "s3rver: http://127.0.0.1:$port, bucket $bucket, data in $data"
node "$script" --directory "$data" --address 127.0.0.1 --port "$port" \
  --no-vhost-buckets --configure-bucket "$bucket" &
pid=$!
wait "$pid"
