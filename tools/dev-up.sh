#!/usr/bin/env bash
# Starts a complete local Conveyor stack and leaves it running: a private
# redis-server, the five stage workers, the orchestrator, an HTTP server with
# sample photos and a webhook receiver that verifies Standard Webhooks
# signatures. Everything listens on 127.0.0.1, on ports the kernel picks
# (each server binds port 0 and writes the port it got to a port file).
#
#   tools/dev-up.sh [--build-dir DIR] [--state-dir DIR] [--out-dir DIR]
#                   [--photo-dir DIR] [--insecure] [--quiet]
#
# TLS + mTLS on every hop by default: tools/tls-certs.sh makes a throwaway CA
# and certificates in <state>/tls; the workers serve only the orchestrator's
# client certificate, the orchestrator the CLI's. --insecure: plaintext.
# Pids, ports and logs go to the state dir (default /tmp/conveyor-dev);
# `source <state>/env` sets CONVEYOR_SERVER for the CLI and CONVEYOR_DEV_*
# (photo server, webhook receiver, upload folder, each worker's address,
# the dashboard's URL: the orchestrator's --http-listen),
# CONVEYOR_TLS_CA/_CERT/_KEY (the CLI's certificate) and CONVEYOR_TOKEN (a
# random bearer token made at each start: principal "dev" of tenant
# "default" with every scope; <state>/token, mode 0600). <state>/tokens is
# the orchestrator's --tokens-file: the SHA-256 of that token, and of
# <state>/operator-token (principal "operator" of every tenant, "*").
# Stop it all with tools/dev-down.sh [--state-dir DIR]. Needs the binaries in
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

usage() { sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
insecure=0
while (($#)); do
  case "$1" in
    --build-dir) build="$2"; shift 2 ;;
    --state-dir) state="$2"; shift 2 ;;
    --out-dir) out="$2"; shift 2 ;;
    --photo-dir) photos="$2"; shift 2 ;;
    --quiet) quiet=1; shift ;;
    --insecure) insecure=1; shift ;;
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
command -v openssl >/dev/null || die "openssl not found; run tools/setup.sh"
[[ -d "$photos" ]] || die "no photo directory $photos (Debian package mate-backgrounds)"

if [[ -f "$state/pids" ]]; then
  die "a stack seems to be running already (state in $state); run tools/dev-down.sh --state-dir $state"
fi
mkdir -p "$state/logs" "$state/redis" "$out"
state="$(cd "$state" && pwd)"
out="$(cd "$out" && pwd)"
: > "$state/pids"

# TLS: only what this script passes counts, not a CONVEYOR_TLS_* left in the
# shell by an earlier `source <state>/env` (the servers read those names too).
unset CONVEYOR_TLS_CERT CONVEYOR_TLS_KEY CONVEYOR_TLS_CLIENT_CA CONVEYOR_TLS_CLIENT_NAME \
  CONVEYOR_TLS_CA CONVEYOR_TLS_SERVER_NAME CONVEYOR_WORKER_TLS_CA CONVEYOR_WORKER_TLS_CERT \
  CONVEYOR_WORKER_TLS_KEY CONVEYOR_WORKER_TLS_SERVER_NAME CONVEYOR_INSECURE
# Caller identity likewise: only the tokens file below.
unset CONVEYOR_TOKENS_FILE CONVEYOR_JWT_KEYS CONVEYOR_JWT_ISSUER CONVEYOR_JWT_AUDIENCE \
  CONVEYOR_ALLOW_ANONYMOUS CONVEYOR_ANONYMOUS_SCOPES CONVEYOR_TOKEN CONVEYOR_TOKEN_FILE
tls="$state/tls"
# Paths under the state dir go unquoted through server_tls: no spaces there.
[[ "$state" != *" "* ]] || die "the state dir must not contain spaces: $state"
# server_tls NAME: the TLS flags of server NAME (its certificate, mTLS; the
# workers serve only the orchestrator's certificate).
server_tls() {
  if ((insecure)); then echo "--insecure"; return; fi
  echo "--tls-cert $tls/$1.pem --tls-key $tls/$1.key --tls-client-ca $tls/ca.pem"
  [[ "$1" == orchestrator ]] || echo "--tls-client-name orchestrator"
}
if ((insecure)); then
  worker_tls="--insecure"
  cli_tls=(--insecure)
else
  "$root/tools/tls-certs.sh" "$tls" || die "tools/tls-certs.sh failed"
  worker_tls="--worker-tls-ca $tls/ca.pem --worker-tls-cert $tls/orchestrator.pem --worker-tls-key $tls/orchestrator.key"
  cli_tls=(--tls-ca "$tls/ca.pem" --tls-cert "$tls/cli.pem" --tls-key "$tls/cli.key")
fi

# If anything below fails, stop what was already started.
started_ok=0
cleanup_on_error() {
  if ((started_ok == 0)); then
    echo "dev-up: start-up failed; logs in $state/logs" >&2
    "$root/tools/dev-down.sh" --state-dir "$state" --keep-logs >/dev/null 2>&1 || true
  fi
}
trap cleanup_on_error EXIT

# Servers bind port 0 and report the port they got (--port-file for ours, a
# port file for the Python helpers), so two services can never be handed the
# same port; only redis-server cannot bind 0, and its start is retried on a
# clash (it exits on a port in use). Never "bind 0, close, hand the number on".
mkdir -p "$state/ports.d"

# wait_port_file NAME PID FILE: until FILE holds the port NAME bound (20 s);
# prints it.
wait_port_file() {
  local name="$1" pid="$2" file="$3"
  for _ in $(seq 1 200); do
    if [[ -s "$file" ]]; then
      cat "$file"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      die "$name exited during start-up; see $state/logs/$name.log: $(tail -n 3 "$state/logs/$name.log" 2>/dev/null)"
    fi
    sleep 0.1
  done
  die "$name wrote no port to $file within 20 s; see $state/logs/$name.log"
}

# start NAME CMD...: in its own session, so it outlives this script and
# ignores the terminal's Ctrl-C; dev-down.sh stops it. CMD must write its port
# to $state/ports.d/NAME (a server gets --listen 127.0.0.1:0 --port-file
# appended by start_server). Sets started_port.
started_port=""
start() {
  local name="$1"
  shift
  rm -f "$state/ports.d/$name"
  setsid "$@" >"$state/logs/$name.log" 2>&1 < /dev/null &
  local pid=$!
  started_port="$(wait_port_file "$name" "$pid" "$state/ports.d/$name")"
  echo "$name $pid $started_port" >> "$state/pids"
  say "$name pid $pid on 127.0.0.1:$started_port"
}

# start_server NAME BINARY ARGS...: a Conveyor server on 127.0.0.1:0.
start_server() {
  local name="$1"
  shift
  start "$name" "$@" --listen 127.0.0.1:0 --port-file "$state/ports.d/$name"
}

# redis-server cannot bind 0 and say which port it got: pick one, and if
# another process took it meanwhile (redis-server exits: address in use), try
# another. Its port file is written once it answers PING.
start_redis() {
  local attempt port pid
  for attempt in 1 2 3 4 5; do
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    setsid redis-server --bind 127.0.0.1 --port "$port" --save "" \
      --appendonly yes --appendfsync everysec --dir "$state/redis" --protected-mode yes \
      >"$state/logs/redis.log" 2>&1 < /dev/null &
    pid=$!
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      if [[ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" == PONG ]]; then
        echo "redis $pid $port" >> "$state/pids"
        redis_port="$port"
        say "redis pid $pid on 127.0.0.1:$port"
        return 0
      fi
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      die "redis-server did not answer PING on 127.0.0.1:$port within 10 s; see $state/logs/redis.log"
    fi
    grep -q "Address already in use" "$state/logs/redis.log" ||
      die "redis-server exited during start-up: $(tail -n 3 "$state/logs/redis.log")"
    say "redis port $port was taken (attempt $attempt); trying another"
  done
  die "redis-server found no free port in 5 attempts"
}

redis_port=""
start_redis

# whsec_ + base64 of 24 random bytes: the Standard Webhooks secret format.
# The worker reads it from its secrets file (tenant "default", the tenant of
# every chain while the orchestrator runs without per-tenant tokens); the
# receiver from webhook-secret. Neither is ever in argv.
secret="whsec_$(python3 -c 'import base64,os; print(base64.b64encode(os.urandom(24)).decode())')"
rm -f "$state/webhook-secret" "$state/webhook-secrets"
(umask 077; echo "$secret" > "$state/webhook-secret"
 echo "default $secret" > "$state/webhook-secrets")

# Bearer tokens for the orchestrator's callers, new at each start: only
# their SHA-256 goes into the tokens file; the tokens themselves into 0600
# files the env file reads (never argv, never the env file itself).
token="$(openssl rand -hex 32)"
operator_token="$(openssl rand -hex 32)"
digest_of() { printf %s "$1" | openssl dgst -sha256 -r | cut -d' ' -f1; }
rm -f "$state/token" "$state/operator-token" "$state/tokens"
(umask 077
 printf '%s\n' "$token" > "$state/token"
 printf '%s\n' "$operator_token" > "$state/operator-token"
 {
   echo "# tools/dev-up.sh: <credential> <principal> <tenant> <scopes> (docs/security.md)"
   echo "sha256:$(digest_of "$token") dev default chains.submit,chains.read,chains.cancel,admin"
   echo "sha256:$(digest_of "$operator_token") operator * chains.read,chains.cancel,admin"
 } > "$state/tokens")
export CONVEYOR_TOKEN="$token"

declare -A port
# shellcheck disable=SC2046
start_server conveyor-download "$bin/conveyor-download" $(server_tls download) --allow-private-networks
port[download]=$started_port
# shellcheck disable=SC2046
start_server conveyor-resize "$bin/conveyor-resize" $(server_tls resize)
port[resize]=$started_port
# shellcheck disable=SC2046
start_server conveyor-filter "$bin/conveyor-filter" $(server_tls filter)
port[filter]=$started_port
# shellcheck disable=SC2046
start_server conveyor-upload "$bin/conveyor-upload" $(server_tls upload) --file-root "$out"
port[upload]=$started_port
# shellcheck disable=SC2046
start_server conveyor-webhook "$bin/conveyor-webhook" $(server_tls webhook) \
  --secrets-file "$state/webhook-secrets" --allow-private-networks
port[webhook]=$started_port

# shellcheck disable=SC2046,SC2086
start_server conveyor-orchestrator "$bin/conveyor-orchestrator" $(server_tls orchestrator) $worker_tls \
  --redis-url "redis://127.0.0.1:$redis_port" --tokens-file "$state/tokens" \
  --download-target "127.0.0.1:${port[download]}" \
  --resize-target "127.0.0.1:${port[resize]}" \
  --filter-target "127.0.0.1:${port[filter]}" \
  --upload-target "127.0.0.1:${port[upload]}" \
  --webhook-target "127.0.0.1:${port[webhook]}" \
  --http-listen 127.0.0.1:0 --http-port-file "$state/ports.d/dashboard"
orchestrator_port=$started_port
# The dashboard's port file is written before the gRPC one.
dashboard_port="$(cat "$state/ports.d/dashboard")"
if ((insecure)); then
  dashboard_url="http://127.0.0.1:$dashboard_port/"
else
  dashboard_url="https://127.0.0.1:$dashboard_port/"
fi

# serve_port_file FILE: Python that, given a bound server `srv`, writes its
# port to FILE via a rename (readers never see a partial number).
serve_port_file='
def report_port(srv, path):
    import os
    with open(path + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]) + "\n")
    os.rename(path + ".tmp", path)
'

# The sample photos, over plain HTTP.
start photos python3 -c "$serve_port_file"'
import functools, http.server, sys
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
report_port(srv, sys.argv[2])
srv.serve_forever()
' "$photos" "$state/ports.d/photos"
photo_port=$started_port

# The webhook receiver: verifies webhook-signature = v1,base64(HMAC-SHA256(key,
# "<webhook-id>.<webhook-timestamp>.<body>")), key = base64-decoded secret
# after "whsec_"; answers 200 when it verifies, 401 otherwise, and records
# each delivery in <state>/webhooks/<time_ns>.json.
mkdir -p "$state/webhooks"
cat > "$state/webhook_receiver.py" <<'PY'
import base64, hashlib, hmac, http.server, json, os, sys, time

port_file, secret_file, record_dir = sys.argv[1], sys.argv[2], sys.argv[3]
secret = open(secret_file).read().strip()
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

srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]) + "\n")
os.rename(port_file + ".tmp", port_file)
srv.serve_forever()
PY
start webhook-receiver python3 "$state/webhook_receiver.py" "$state/ports.d/webhook-receiver" \
  "$state/webhook-secret" "$state/webhooks"
hook_port=$started_port

# The orchestrator answers once it reached Redis and its stages (the CLI
# sends CONVEYOR_TOKEN). UNAUTHENTICATED is an answer too: a CLI that does
# not send tokens yet.
for _ in $(seq 1 100); do
  if status_out="$("$bin/conveyor" --server "127.0.0.1:$orchestrator_port" "${cli_tls[@]}" \
       --timeout 2s status 2>&1)" || [[ "$status_out" == *UNAUTHENTICATED* ]]; then
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
dashboard=$dashboard_port
EOF
cat > "$state/env" <<EOF
export CONVEYOR_SERVER=127.0.0.1:$orchestrator_port
export CONVEYOR_DEV_STATE=$state
export CONVEYOR_DEV_OUT=$out
export CONVEYOR_DEV_PHOTOS=http://127.0.0.1:$photo_port
export CONVEYOR_DEV_WEBHOOK=http://127.0.0.1:$hook_port/hook
export CONVEYOR_DEV_DOWNLOAD=127.0.0.1:${port[download]}
export CONVEYOR_DEV_RESIZE=127.0.0.1:${port[resize]}
export CONVEYOR_DEV_FILTER=127.0.0.1:${port[filter]}
export CONVEYOR_DEV_UPLOAD=127.0.0.1:${port[upload]}
export CONVEYOR_DEV_WEBHOOK_STAGE=127.0.0.1:${port[webhook]}
export CONVEYOR_DEV_REDIS=redis://127.0.0.1:$redis_port
export CONVEYOR_DEV_TOKENS=$state/tokens
export CONVEYOR_DEV_DASHBOARD=$dashboard_url
export CONVEYOR_TOKEN=\$(cat $state/token)
export PATH=$bin:\$PATH
EOF
if ((insecure)); then
  echo "export CONVEYOR_INSECURE=1" >> "$state/env"
else
  cat >> "$state/env" <<EOF
export CONVEYOR_DEV_TLS=$tls
export CONVEYOR_TLS_CA=$tls/ca.pem
export CONVEYOR_TLS_CERT=$tls/cli.pem
export CONVEYOR_TLS_KEY=$tls/cli.key
EOF
fi
started_ok=1
trap - EXIT

if ((quiet == 0)); then
  cat <<EOF

Conveyor is running (state: $state).
  Dashboard: $dashboard_url   (log in with the token: cat $state/token)
$(if ((insecure)); then echo "  (plain HTTP: --insecure)"; else
    echo "  (HTTPS with dev-up's throwaway CA: trust $tls/ca.pem, or accept the browser's warning)"; fi)

  source $state/env          # sets CONVEYOR_SERVER, CONVEYOR_TOKEN, PATH and the URLs below

  conveyor status
  conveyor submit --url \$CONVEYOR_DEV_PHOTOS/Storm.jpg --resize 800x --filter sepia \\
      --upload file://$out --webhook \$CONVEYOR_DEV_WEBHOOK --wait
  conveyor list --since 1h
  ls $state/webhooks/        # what the webhook receiver got (signature checked)

$(if ((insecure)); then
    echo "Plaintext (--insecure): nothing is encrypted or authenticated."
  else
    echo "TLS + mTLS on every hop (certificates in $tls, tools/tls-certs.sh): the CLI's"
    echo "certificate is in the env file; the workers serve only orchestrator.pem."
  fi)
Callers of the orchestrator need a bearer token: CONVEYOR_TOKEN (from $state/token:
principal "dev", tenant "default", every scope); $state/operator-token is "operator" of
every tenant ("*"). Tokens file: $state/tokens (docs/security.md, "Caller identity").
With grpcurl (reflection is on; after the source line above; README.md has more):
$(if ((insecure)); then
    g="grpcurl -plaintext"; w="grpcurl -plaintext"
  else
    g="grpcurl -cacert $tls/ca.pem -cert $tls/cli.pem -key $tls/cli.key"
    w="grpcurl -cacert $tls/ca.pem -cert $tls/orchestrator.pem -key $tls/orchestrator.key"
  fi
  echo "  $g \$CONVEYOR_SERVER list"
  echo "  $g \$CONVEYOR_SERVER describe conveyor.v1.Orchestrator"
  echo "  $g -H \"authorization: Bearer \$CONVEYOR_TOKEN\" \$CONVEYOR_SERVER conveyor.v1.Orchestrator/GetSystemStatus"
  echo "  $w -d '{\"service\": \"conveyor.v1.ResizeStage\"}' \$CONVEYOR_DEV_RESIZE grpc.health.v1.Health/Check")
Workers: \$CONVEYOR_DEV_DOWNLOAD \$CONVEYOR_DEV_RESIZE \$CONVEYOR_DEV_FILTER \$CONVEYOR_DEV_UPLOAD \$CONVEYOR_DEV_WEBHOOK_STAGE

Logs: $state/logs/   Stop: tools/dev-down.sh --state-dir $state
EOF
fi
