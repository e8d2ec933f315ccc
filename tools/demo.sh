#!/usr/bin/env bash
# One command to see Conveyor work, on a fresh Debian 12 machine:
#   1. installs what is missing (tools/setup.sh) and builds the seven binaries
#      (cmake + ninja into build/);
#   2. starts, in a temporary directory, a private redis-server, the five stage
#      workers, the orchestrator, an HTTP server with a sample photo and a
#      webhook receiver that verifies signatures (tools/dev-up.sh), with TLS +
#      mTLS on every gRPC hop from a throwaway CA (tools/tls-certs.sh);
#   3. runs download -> resize -> filter -> upload -> webhook on the photo with
#      live progress, then shows the output image and what the webhook got;
#   4. stops every process it started (also on Ctrl-C).
#
# Environment: CONVEYOR_BUILD_DIR (default build/), CONVEYOR_DEMO_DIR (work dir;
# default a new /tmp/conveyor-demo.XXXXXX), CONVEYOR_DEMO_SKIP_BUILD=1 to use
# existing binaries, CONVEYOR_DEMO_PHOTO (default Storm.jpg from
# /usr/share/backgrounds/mate/nature). The output image stays in
# <work dir>/out; everything else is removed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${CONVEYOR_BUILD_DIR:-$root/build}"
photo="${CONVEYOR_DEMO_PHOTO:-Storm.jpg}"
photo_dir="/usr/share/backgrounds/mate/nature"

step() { printf '\n==> %s\n' "$*"; }

if [[ "${CONVEYOR_DEMO_SKIP_BUILD:-0}" != 1 ]]; then
  step "Installing what is missing (tools/setup.sh)"
  "$root/tools/setup.sh"
  step "Building into $build"
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  ninja -C "$build" -j "${CONVEYOR_JOBS:-$(nproc)}" conveyor conveyor-orchestrator \
    conveyor-download conveyor-resize conveyor-filter conveyor-upload conveyor-webhook
fi
[[ -f "$photo_dir/$photo" ]] || { echo "demo: no $photo_dir/$photo (package mate-backgrounds)" >&2; exit 1; }

work="${CONVEYOR_DEMO_DIR:-$(mktemp -d /tmp/conveyor-demo.XXXXXX)}"
mkdir -p "$work"
work="$(cd "$work" && pwd)"
state="$work/state"
out="$work/out"

stopped=0
stop_stack() {
  ((stopped)) && return
  stopped=1
  step "Stopping everything the demo started"
  "$root/tools/dev-down.sh" --state-dir "$state" || true
}
trap 'stop_stack' EXIT
trap 'stop_stack; exit 130' INT
trap 'stop_stack; exit 143' TERM

step "Starting redis-server, 5 workers, the orchestrator (TLS + mTLS), a photo server and a webhook receiver"
"$root/tools/dev-up.sh" --build-dir "$build" --state-dir "$state" --out-dir "$out" \
  --photo-dir "$photo_dir" --quiet
# shellcheck disable=SC1091
source "$state/env"
conveyor="$build/bin/conveyor"
echo "TLS: CA and certificates in $CONVEYOR_DEV_TLS; the CLI's come from the env file"
echo "  (CONVEYOR_TLS_CA, CONVEYOR_TLS_CERT, CONVEYOR_TLS_KEY = --tls-ca, --tls-cert, --tls-key)."
echo "Callers need a bearer token: CONVEYOR_TOKEN, from $CONVEYOR_DEV_STATE/token (mode 0600),"
echo "  made at start; the orchestrator's tokens file holds only its SHA-256 ($CONVEYOR_DEV_TOKENS)."
echo "  grpcurl -cacert $CONVEYOR_TLS_CA -cert $CONVEYOR_TLS_CERT -key $CONVEYOR_TLS_KEY $CONVEYOR_SERVER list"
echo "  grpcurl -cacert $CONVEYOR_TLS_CA -cert $CONVEYOR_TLS_CERT -key $CONVEYOR_TLS_KEY \\"
echo "    -H \"authorization: Bearer \$CONVEYOR_TOKEN\" $CONVEYOR_SERVER conveyor.v1.Orchestrator/GetSystemStatus"
"$conveyor" status

step "conveyor submit: download -> resize 800x -> sepia -> upload -> webhook"
run_label="demo-run=$(date +%s)-$$"
echo "\$ conveyor submit --url $CONVEYOR_DEV_PHOTOS/$photo --resize 800x --filter sepia \\"
echo "    --upload file://$out --webhook $CONVEYOR_DEV_WEBHOOK --label $run_label --wait"
# Straight to the terminal, so it draws its progress bar there.
set +e
"$conveyor" submit --url "$CONVEYOR_DEV_PHOTOS/$photo" --resize 800x --filter sepia \
  --upload "file://$out" --webhook "$CONVEYOR_DEV_WEBHOOK" --label "$run_label" --wait
rc=$?
set -e
chain="$("$conveyor" list --label "$run_label" --json |
  python3 -c 'import json,sys; c=json.load(sys.stdin).get("chains",[]); print(c[0]["name"] if c else "")')"
if ((rc != 0)) || [[ -z "$chain" ]]; then
  echo "demo: the chain did not succeed (exit $rc); logs kept in $work/logs" >&2
  [[ -n "$chain" ]] && "$conveyor" get "$chain" >&2
  cp -r "$state/logs" "$work/logs" 2>/dev/null || true
  exit $((rc == 0 ? 1 : rc))
fi

step "Result"
"$conveyor" get --json "$chain" > "$work/chain.json"
python3 - "$work/chain.json" "$state/webhooks" "$chain" <<'PY'
import json, os, struct, sys, urllib.parse

chain = json.load(open(sys.argv[1]))
uri = chain["results"][0]["uri"]
path = urllib.parse.unquote(urllib.parse.urlparse(uri).path)

def jpeg_size(data):
    # Walk the markers to the first SOFn frame header: height, width.
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return w, h
        i += 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
    return None

data = open(path, "rb").read()
size = jpeg_size(data) if data[:2] == b"\xff\xd8" else None
dims = f"{size[0]}x{size[1]}" if size else "unknown size"
print(f"Output image: {path}")
print(f"              {dims}, {len(data)} bytes, {chain['results'][0].get('mediaType', '')}")

records = sorted(f for f in os.listdir(sys.argv[2]) if f.endswith(".json"))
if not records:
    print("Webhook: nothing received")
    sys.exit(1)
rec = json.load(open(os.path.join(sys.argv[2], records[-1])))
print(f"Webhook received POST {rec['path']} id={rec['webhook_id']}")
print("  signature: " + ("VERIFIED (Standard Webhooks, HMAC-SHA256)" if rec["signature_verified"]
                         else "NOT verified: " + rec["reason"]))
print("  body: " + json.dumps(rec["body"], indent=2).replace("\n", "\n  "))
if not rec["signature_verified"]:
    sys.exit(1)
if size is None:
    sys.exit(1)
PY
echo
echo "The output image stays in $out; the rest of $work is removed."
stop_stack
find "$work" -mindepth 1 -maxdepth 1 ! -name out -exec rm -rf {} +
