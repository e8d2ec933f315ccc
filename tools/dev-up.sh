#!/usr/bin/env bash
# Starts a complete local Conveyor stack and leaves it running: a private
# redis-server, the five stage workers, the orchestrator, an HTTP server with
# sample photos and a webhook receiver that verifies Standard Webhooks
# signatures. Everything listens on 127.0.0.1, on free ports.
#
#   tools/dev-up.sh [--build-dir DIR] [--state-dir DIR] [--out-dir DIR]
#                   [--photo-dir DIR] [--quiet]
#
# Pids, ports and logs go to the state dir (default /tmp/conveyor-dev);
# `source <state>/env` sets CONVEYOR_SERVER for the CLI. Stop it all with
# tools/dev-down.sh [--state-dir DIR]. Needs the binaries built in
# <build>/bin (tools/demo.sh builds them; or: ninja -C build conveyor
# conveyor-orchestrator conveyor-download conveyor-resize conveyor-filter
# conveyor-upload conveyor-webhook).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${CONVEYOR_BUILD_DIR:-$root/build}"
state="${CONVEYOR_DEV_STATE:-/tmp/conveyor-dev}"
out=""
photos="/usr/share/backgrounds/mate/nature"
quiet=0

usage() { sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while (($#)); do
  case "$1" in
    --build-dir) build="$2"; shift 2 ;;
    --state-dir) state="$2"; shift 2 ;;
    --out-dir) out="$2"; shift 2 ;;
    --photo-dir) photos="$2"; shift 2 ;;
    --quiet) quiet=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "dev-up: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
build="$(cd "$build" 2>/dev/null && pwd)" || { echo "dev-up: no build dir $build" >&2; exit 2; }
bin="$build/bin"
out="${out:-$state/out}"

say() { ((quiet)) || echo "dev-up: $*"; }
die() { echo "dev-up: $*" >&2; exit 1; }

for b in conveyor conveyor-orchestrator conveyor-download conveyor-resize conveyor-filter \
         conveyor-upload conveyor-webhook; do
  [[ -x "$bin/$b" ]] || die "missing $bin/$b; build it first (tools/demo.sh builds everything)"
done
command -v redis-server >/dev/null || die "redis-server not found; run tools/setup.sh"
command -v python3 >/dev/null || die "python3 not found; run tools/setup.sh"
[[ -d "$photos" ]] || die "no photo directory $photos (Debian package mate-backgrounds)"

if [[ -f "$state/pids" ]]; then
  die "a stack seems to be running already (state in $state); run tools/dev-down.sh --state-dir $state"
fi
mkdir -p "$state/logs" "$state/redis" "$out"
state="$(cd "$state" && pwd)"
out="$(cd "$out" && pwd)"
: > "$state/pids"

# If anything below fails, stop what was already started.
started_ok=0
cleanup_on_error() {
  if ((started_ok == 0)); then
    echo "dev-up: start-up failed; logs in $state/logs" >&2
    "$root/tools/dev-down.sh" --state-dir "$state" --keep-logs >/dev/null 2>&1 || true
  fi
}
trap cleanup_on_error EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_port NAME PORT PID: until 127.0.0.1:PORT accepts connections (20 s).
wait_port() {
  local name="$1" port="$2" pid="$3"
  for _ in $(seq 1 200); do
    if ! kill -0 "$pid" 2>/dev/null; then
      die "$name exited during start-up; see $state/logs/$name.log: $(tail -n 3 "$state/logs/$name.log" 2>/dev/null)"
    fi
    if python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.2); sys.exit(s.connect_ex(('127.0.0.1',$port)))" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  die "$name did not listen on 127.0.0.1:$port within 20 s; see $state/logs/$name.log"
}

# start NAME PORT CMD...: in its own session, so it outlives this script and
# ignores the terminal's Ctrl-C; dev-down.sh stops it.
start() {
  local name="$1" port="$2"
  shift 2
  setsid "$@" >"$state/logs/$name.log" 2>&1 < /dev/null &
  local pid=$!
  echo "$name $pid $port" >> "$state/pids"
  wait_port "$name" "$port" "$pid"
  say "$name pid $pid on 127.0.0.1:$port"
}

redis_port=$(free_port)
start redis "$redis_port" redis-server --bind 127.0.0.1 --port "$redis_port" --save "" \
  --appendonly yes --appendfsync everysec --dir "$state/redis" --protected-mode yes

# whsec_ + base64 of 24 random bytes: the Standard Webhooks secret format.
secret="whsec_$(python3 -c 'import base64,os; print(base64.b64encode(os.urandom(24)).decode())')"
echo "$secret" > "$state/webhook-secret"
chmod 600 "$state/webhook-secret"

declare -A port
for stage in download resize filter upload webhook; do port[$stage]=$(free_port); done
start conveyor-download "${port[download]}" "$bin/conveyor-download" \
  --listen "127.0.0.1:${port[download]}" --allow-private-networks
start conveyor-resize "${port[resize]}" "$bin/conveyor-resize" --listen "127.0.0.1:${port[resize]}"
start conveyor-filter "${port[filter]}" "$bin/conveyor-filter" --listen "127.0.0.1:${port[filter]}"
start conveyor-upload "${port[upload]}" "$bin/conveyor-upload" \
  --listen "127.0.0.1:${port[upload]}" --file-root "$out"
CONVEYOR_WEBHOOK_SECRET="$secret" start conveyor-webhook "${port[webhook]}" \
  "$bin/conveyor-webhook" --listen "127.0.0.1:${port[webhook]}" --allow-private-networks

orchestrator_port=$(free_port)
start conveyor-orchestrator "$orchestrator_port" "$bin/conveyor-orchestrator" \
  --listen "127.0.0.1:$orchestrator_port" \
  --redis-url "redis://127.0.0.1:$redis_port" \
  --download-target "127.0.0.1:${port[download]}" \
  --resize-target "127.0.0.1:${port[resize]}" \
  --filter-target "127.0.0.1:${port[filter]}" \
  --upload-target "127.0.0.1:${port[upload]}" \
  --webhook-target "127.0.0.1:${port[webhook]}"

# The sample photos, over plain HTTP.
photo_port=$(free_port)
start photos "$photo_port" python3 -m http.server --bind 127.0.0.1 --directory "$photos" \
  "$photo_port"

# The webhook receiver: verifies webhook-signature = v1,base64(HMAC-SHA256(key,
# "<webhook-id>.<webhook-timestamp>.<body>")), key = base64-decoded secret
# after "whsec_"; answers 200 when it verifies, 401 otherwise, and records
# each delivery in <state>/webhooks/<time_ns>.json.
mkdir -p "$state/webhooks"
cat > "$state/webhook_receiver.py" <<'PY'
import base64, hashlib, hmac, http.server, json, os, sys, time

port, secret, record_dir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
key = base64.b64decode(secret[len("whsec_"):]) if secret.startswith("whsec_") else secret.encode()
TOLERANCE_S = 300

class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        msg_id = self.headers.get("webhook-id", "")
        stamp = self.headers.get("webhook-timestamp", "")
        sigs = self.headers.get("webhook-signature", "")
        expected = base64.b64encode(
            hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()).decode()
        why = ""
        if not (msg_id and stamp and sigs):
            why = "missing webhook-id/-timestamp/-signature header"
        elif not stamp.isdigit() or abs(time.time() - int(stamp)) > TOLERANCE_S:
            why = "timestamp outside the 5 minute tolerance"
        elif not any(s.startswith("v1,") and hmac.compare_digest(s[3:], expected)
                     for s in sigs.split()):
            why = "signature mismatch"
        verified = why == ""
        try:
            payload = json.loads(body)
        except ValueError:
            payload = body.decode("utf-8", "replace")
        record = {"path": self.path, "webhook_id": msg_id, "webhook_timestamp": stamp,
                  "signature_verified": verified, "reason": why, "body": payload}
        name = os.path.join(record_dir, f"{time.time_ns()}")
        with open(name + ".tmp", "w") as f:
            json.dump(record, f, indent=2)
        os.rename(name + ".tmp", name + ".json")
        print(f"webhook {msg_id} verified={verified} {why}", flush=True)
        self.send_response(200 if verified else 401)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, fmt, *args):
        pass

http.server.ThreadingHTTPServer(("127.0.0.1", port), Receiver).serve_forever()
PY
hook_port=$(free_port)
start webhook-receiver "$hook_port" python3 "$state/webhook_receiver.py" "$hook_port" \
  "$secret" "$state/webhooks"

# The orchestrator answers once it reached Redis and its stages.
for _ in $(seq 1 100); do
  if "$bin/conveyor" --server "127.0.0.1:$orchestrator_port" --timeout 2s status \
       >/dev/null 2>&1; then
    break
  fi
  sleep 0.1
done

cat > "$state/ports" <<EOF
orchestrator=$orchestrator_port
redis=$redis_port
download=${port[download]}
resize=${port[resize]}
filter=${port[filter]}
upload=${port[upload]}
webhook=${port[webhook]}
photos=$photo_port
webhook_receiver=$hook_port
EOF
cat > "$state/env" <<EOF
export CONVEYOR_SERVER=127.0.0.1:$orchestrator_port
export CONVEYOR_DEV_STATE=$state
export CONVEYOR_DEV_OUT=$out
export CONVEYOR_DEV_PHOTOS=http://127.0.0.1:$photo_port
export CONVEYOR_DEV_WEBHOOK=http://127.0.0.1:$hook_port/hook
export PATH=$bin:\$PATH
EOF
started_ok=1
trap - EXIT

if ((quiet == 0)); then
  cat <<EOF

Conveyor is running (state: $state).
  source $state/env          # sets CONVEYOR_SERVER, PATH and the URLs below

  conveyor status
  conveyor submit --url \$CONVEYOR_DEV_PHOTOS/Storm.jpg --resize 800x --filter sepia \\
      --upload file://$out --webhook \$CONVEYOR_DEV_WEBHOOK --wait
  conveyor list --since 1h
  ls $state/webhooks/        # what the webhook receiver got (signature checked)

With grpcurl (reflection is on):
  grpcurl -plaintext 127.0.0.1:$orchestrator_port list
  grpcurl -plaintext 127.0.0.1:$orchestrator_port describe conveyor.v1.Orchestrator
  grpcurl -plaintext -d '{"spec":{"steps":[{"download":{"url":"http://127.0.0.1:$photo_port/Storm.jpg"}},{"resize":{"width":800}},{"upload":{"destination":"file://$out"}}]}}' \\
      127.0.0.1:$orchestrator_port conveyor.v1.Orchestrator/SubmitChain
  grpcurl -plaintext -d '{"name":"chains/<id>"}' 127.0.0.1:$orchestrator_port conveyor.v1.Orchestrator/WatchChain

Logs: $state/logs/   Stop: tools/dev-down.sh --state-dir $state
EOF
fi
