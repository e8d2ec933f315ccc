#!/usr/bin/env bash
# Redis over TLS through the shipped stunnel client configurations, for real:
#
#   redis_tunnel_test.sh <build>/bin
#
# A CA and certificates made now (tools/make-deploy-secrets.sh, so that
# script is tested too); redis-server with --port 0 --tls-port <free>,
# client certificates required and the generated ACL file; stunnel4 in the
# foreground with deploy/stunnel/redis-client.conf (compose) and with the
# conveyor-redis-tunnel ConfigMap of deploy/k8s/orchestrator.yaml, each with
# only its addresses and file paths rewritten for this host (the name check,
# the CA check, the client certificate stay as shipped). Through the tunnel:
# redis-cli PING/SET/GET as the ACL user, and a real orchestrator + filter
# worker running a chain (its source image and every state transition go
# through the tunnel). Refusals: plaintext and certificate-less TLS straight
# to Redis, the ACL's default user writing, and stunnel with a CA that did not
# sign Redis's certificate or expecting another name.
set -euo pipefail

bin="$(cd "${1:?usage: $0 <build>/bin}" && pwd)"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
for tool in redis-server redis-cli stunnel openssl python3; do
  command -v "$tool" >/dev/null || { echo "redis_tunnel_test: $tool missing (tools/setup.sh)"; exit 1; }
done

work="$(mktemp -d /tmp/conveyor-redis-tunnel.XXXXXX)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  [[ "${REDIS_TUNNEL_KEEP:-0}" == 1 ]] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "redis_tunnel_test: FAIL: $*" >&2; for f in "$work"/*.log; do echo "== $f"; tail -20 "$f"; done >&2; exit 1; }
pass() { echo "redis_tunnel_test: ok: $*"; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

"$root/tools/make-deploy-secrets.sh" "$work/secrets" >/dev/null
"$root/tools/make-deploy-secrets.sh" "$work/other" >/dev/null  # a CA that signed nothing here
secrets="$work/secrets"
# The key files are 0644 inside a 0700 directory, so containers of another
# uid can read their bind mounts while other host users cannot.
[[ $(stat -c %a "$secrets") == 700 && $(stat -c %a "$secrets/ca.key") == 600 ]] ||
  fail "make-deploy-secrets.sh: the directory must be 0700 and ca.key 0600"
grep -q '^user conveyor on #[0-9a-f]\{64\} ' "$secrets/redis-users.acl" ||
  fail "the ACL file must hold the password's SHA-256, not the password"
! grep -qF "$(cat "$secrets/redis-password")" "$secrets/redis-users.acl" ||
  fail "the Redis password is in the ACL file in clear"
export REDISCLI_AUTH
REDISCLI_AUTH="$(cat "$secrets/redis-password")"  # redis-cli's way, never argv

# ------------------------------------------------------------- Redis, TLS ----
redis_port=$(free_port)
redis-server --port 0 --tls-port "$redis_port" --bind 127.0.0.1 \
  --tls-cert-file "$secrets/redis.crt" --tls-key-file "$secrets/redis.key" \
  --tls-ca-cert-file "$secrets/ca.crt" --tls-auth-clients yes \
  --aclfile "$secrets/redis-users.acl" --save "" --appendonly no --dir "$work" \
  >"$work/redis.log" 2>&1 &
pids+=($!)
wait_port "$redis_port" || fail "redis-server did not listen on TLS port $redis_port"

out=$(redis-cli -h 127.0.0.1 -p "$redis_port" PING 2>&1 || true)
[[ "$out" != PONG ]] || fail "plaintext to the TLS port answered"
out=$(redis-cli --tls --cacert "$secrets/ca.crt" -h 127.0.0.1 -p "$redis_port" PING 2>&1 || true)
[[ "$out" != PONG ]] || fail "TLS without a client certificate answered"
pass "Redis refuses plaintext and TLS without a client certificate"

# ------------------------------------------------------------------ tunnels --
# $1 = config text, $2 = local port, $3 = name; sets tunnel_pid.
start_tunnel() {
  local conf="$work/$3.conf"
  printf '%s\n' "$1" | sed \
    -e "s|^accept = .*|accept = 127.0.0.1:$2|" \
    -e "s|^connect = .*|connect = 127.0.0.1:$redis_port|" >"$conf"
  stunnel "$conf" >"$work/$3.log" 2>&1 &
  tunnel_pid=$!
  pids+=("$tunnel_pid")
  wait_port "$2" || fail "stunnel ($3) did not listen on $2"
}

compose_conf="$(sed -e "s|/run/secrets/|$secrets/|g" "$root/deploy/stunnel/redis-client.conf")"
k8s_conf="$(python3 - "$root/deploy/k8s/orchestrator.yaml" <<'EOF'
import sys, yaml
for doc in yaml.safe_load_all(open(sys.argv[1])):
    if doc and doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "conveyor-redis-tunnel":
        print(doc["data"]["redis-client.conf"])
EOF
)"
[[ -n "$k8s_conf" ]] || fail "no conveyor-redis-tunnel ConfigMap in deploy/k8s/orchestrator.yaml"
k8s_conf="$(printf '%s\n' "$k8s_conf" | sed -e "s|/etc/conveyor/tls/ca.crt|$secrets/ca.crt|" \
  -e "s|/etc/conveyor/tls/tls.crt|$secrets/orchestrator.crt|" \
  -e "s|/etc/conveyor/tls/tls.key|$secrets/orchestrator.key|")"

for variant in compose k8s; do
  conf_var="${variant}_conf"
  port=$(free_port)
  start_tunnel "${!conf_var}" "$port" "tunnel-$variant"
  cli=(redis-cli -h 127.0.0.1 -p "$port")
  [[ "$("${cli[@]}" --user conveyor PING 2>&1)" == PONG ]] || fail "$variant tunnel: no PONG"
  [[ "$("${cli[@]}" --user conveyor SET tunnel:$variant ok 2>&1)" == OK ]] ||
    fail "$variant tunnel: SET"
  [[ "$("${cli[@]}" --user conveyor GET tunnel:$variant 2>&1)" == ok ]] ||
    fail "$variant tunnel: GET"
  out=$(REDISCLI_AUTH= "${cli[@]}" SET tunnel:anonymous x 2>&1 || true)
  [[ "$out" == *NOPERM* || "$out" == *NOAUTH* ]] || fail "$variant: default user may write: $out"
  pass "$variant tunnel: PING, SET, GET as user conveyor; the default user may not write"
  [[ $variant == compose ]] && compose_port=$port
done

# A CA that did not sign Redis's certificate, then a name Redis's does not carry.
bad_ca="$(printf '%s\n' "$compose_conf" | sed -e "s|^CAfile = .*|CAfile = $work/other/ca.crt|")"
bad_name="$(printf '%s\n' "$compose_conf" | sed -e "s|^checkHost = .*|checkHost = redis.example.com|")"
for case in bad_ca bad_name; do
  port=$(free_port)
  start_tunnel "${!case}" "$port" "tunnel-$case"
  out=$(timeout 10 redis-cli -h 127.0.0.1 -p "$port" --user conveyor PING 2>&1 || true)
  [[ "$out" != PONG ]] || fail "stunnel with $case reached Redis"
  for _ in $(seq 50); do
    grep -qi "certificate verify failed\|verify error\|rejected" "$work/tunnel-$case.log" && break
    sleep 0.1
  done
  grep -qi "certificate verify failed\|verify error\|rejected" "$work/tunnel-$case.log" ||
    fail "stunnel with $case did not report a verification failure"
  pass "stunnel refuses Redis with $case"
done

# ------------------------------------ a real chain, Redis only via the tunnel --
# Not `--help | grep -q`: grep exits at the first match, the binary then
# dies of SIGPIPE, and pipefail makes the flag look missing.
has_flag() { grep -q -- "$2" <<<"$("$bin/$1" --help 2>/dev/null)"; }
server_flags=()
has_flag conveyor-filter --insecure && server_flags+=(--insecure)
orchestrator_flags=("${server_flags[@]}")
has_flag conveyor-orchestrator --allow-anonymous && orchestrator_flags+=(--allow-anonymous)
if has_flag conveyor-orchestrator --redis-password-file; then
  orchestrator_flags+=(--redis-user conveyor --redis-password-file "$secrets/redis-password")
  redis_url="redis://127.0.0.1:$compose_port/0"
else
  # Before --redis-password-file: the password in the environment, not argv.
  redis_url="redis://conveyor:$REDISCLI_AUTH@127.0.0.1:$compose_port/0"
fi

"$bin/conveyor-filter" --listen 127.0.0.1:0 --port-file "$work/filter.port" \
  "${server_flags[@]}" >"$work/filter.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [[ -s "$work/filter.port" ]] && break; sleep 0.1; done
[[ -s "$work/filter.port" ]] || fail "the filter worker did not start"
CONVEYOR_REDIS_URL="$redis_url" "$bin/conveyor-orchestrator" --listen 127.0.0.1:0 \
  --port-file "$work/orchestrator.port" --filter-target "127.0.0.1:$(cat "$work/filter.port")" \
  "${orchestrator_flags[@]}" >"$work/orchestrator.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [[ -s "$work/orchestrator.port" ]] && break; sleep 0.1; done
[[ -s "$work/orchestrator.port" ]] || fail "the orchestrator did not start"

# A 64x48 PNG, made here.
python3 - "$work/source.png" <<'EOF'
import struct, sys, zlib
w, h = 64, 48
rows = b"".join(b"\x00" + bytes(v for x in range(w) for v in (x * 4, y * 5, 128))
                for y in range(h))
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
png += chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)
EOF
conveyor=("$bin/conveyor" --server "127.0.0.1:$(cat "$work/orchestrator.port")" --timeout 10s)
has_flag conveyor --insecure && conveyor+=(--insecure)
chain=$(timeout 60 "${conveyor[@]}" submit --file "$work/source.png" --filter sepia) ||
  fail "submit through the orchestrator failed"
timeout 60 "${conveyor[@]}" watch "$chain" >"$work/watch.log" 2>&1 || true
state=$(timeout 20 "${conveyor[@]}" --json get "$chain" |
        python3 -c 'import json,sys; print(json.load(sys.stdin).get("state",""))')
[[ "$state" == SUCCEEDED ]] || fail "chain $chain ended $state"
keys=$(redis-cli -h 127.0.0.1 -p "$compose_port" --user conveyor --scan | wc -l)
((keys > 1)) || fail "the chain left no keys in Redis"
pass "chain $chain SUCCEEDED with Redis only through the tunnel ($keys keys)"
echo "redis_tunnel_test: PASS"
