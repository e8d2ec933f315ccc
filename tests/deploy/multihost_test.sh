#!/usr/bin/env bash
# Conveyor as separate hosts, for real: every process in its own Linux network
# namespace with its own address on a private bridge (10.77.0.0/24, which
# exists only inside the namespaces this script creates; the host's own
# network is never touched, not even given an interface).
#
#   10.77.0.2        redis
#   10.77.0.5        "the internet": HTTP server with the test image + webhook receiver
#   10.77.0.11, .12  orchestrator 1 and 2
#   10.77.0.21, .22  download 1, 2     10.77.0.31, .32  resize 1, 2
#   10.77.0.41, .42  filter 1, 2       10.77.0.51, .52  upload 1, 2
#   10.77.0.61, .62  webhook 1, 2      10.77.0.100      the client (conveyor CLI)
#
# Each orchestrator reaches a stage through one target naming both replicas
# (ipv4:10.77.0.31:50062,10.77.0.32:50062) with gRPC round_robin, as a headless
# Service's DNS name does in Kubernetes. Chains: download -> resize -> filter
# -> upload (file:// into a directory both upload replicas share) -> webhook.
#
# Scenarios:
#   failover  a bounded load of chains; mid-run, SIGKILL one resize replica and
#             one orchestrator. Every chain must still SUCCEED exactly once with
#             one uploaded object (multihost_check.py).
#   rolling   chains flow while every worker replica, then every orchestrator,
#             is SIGTERMed and restarted one at a time (a rolling update). Every
#             SIGTERMed process must exit 0 and no chain may fail.
#
# Usage: multihost_test.sh failover|rolling <build>/bin
# Exit: 0 pass, 1 fail, 77 skipped (not root / no network namespaces).
# MULTIHOST_KEEP=1 keeps the logs and data (printed path) after a pass too.
set -uo pipefail

scenario=${1:?usage: multihost_test.sh failover|rolling BIN_DIR}
bin_dir=${2:?usage: multihost_test.sh failover|rolling BIN_DIR}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly scenario bin_dir here
readonly skip_code=77
readonly started=$SECONDS
# The whole test must end well inside ctest's TIMEOUT (240 s).
readonly budget_s=180

log() { printf '[multihost %s +%03ds] %s\n' "$scenario" "$((SECONDS - started))" "$*"; }
skip() { log "SKIPPED: $*"; exit "$skip_code"; }
fail() { log "FAILED: $*"; exit 1; }

case "$scenario" in failover | rolling) ;; *) fail "unknown scenario '$scenario'" ;; esac

# This test is about placement, failover and rolling restarts across hosts,
# not gRPC TLS (tests/integration/tls_test.cc): every server and the CLI run
# plaintext, which they do only when told.
export CONVEYOR_INSECURE=1

# ------------------------------------------------------------ preconditions --
[[ $(id -u) -eq 0 ]] || skip "needs root to create network namespaces (ip netns); run as root"
command -v ip >/dev/null || skip "iproute2 ('ip') is not installed"
command -v redis-server >/dev/null || fail "redis-server is not installed (tools/setup.sh)"
for binary in conveyor-orchestrator conveyor-download conveyor-resize conveyor-filter \
  conveyor-upload conveyor-webhook conveyor; do
  [[ -x $bin_dir/$binary ]] || fail "$bin_dir/$binary is missing: build it first"
done

tag="cvmh$$"                 # namespace prefix, unique per run
work=$(mktemp -d /tmp/conveyor-multihost.XXXXXX)
readonly tag work
mkdir -p "$work/logs" "$work/objects" "$work/final" "$work/events" "$work/redis"
: >"$work/chains"
: >"$work/hooks.jsonl"
namespaces=()
declare -A pid=()            # host name -> pid of the process serving it
declare -A generation=()     # host name -> how many times it was started
background=()                # helper subshells (load generators)

cleanup() {
  local rc=$?
  trap - EXIT
  local p
  for p in "${background[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pid[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  local ns
  for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null; done
  [[ -n ${hosts_dir:-} ]] && rm -rf "$hosts_dir"
  [[ -n ${created_etc_netns:-} ]] && rmdir /etc/netns 2>/dev/null
  if ((rc != 0 && rc != skip_code)) || [[ -n ${MULTIHOST_KEEP:-} ]]; then
    log "logs kept in $work/logs; last lines of each:"
    local f
    for f in "$work"/logs/*.log; do
      [[ -s $f ]] || continue
      echo "----- ${f##*/}"
      tail -n 6 "$f" | cut -c 1-240
    done
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Can this machine (container) create network namespaces at all?
if ! err=$(ip netns add "$tag-probe" 2>&1); then
  skip "cannot create network namespaces here (ip netns add: $err)"
fi
ip netns del "$tag-probe"

# ------------------------------------------------------------------ network --
declare -A address=(
  [redis]=10.77.0.2 [http]=10.77.0.5 [client]=10.77.0.100
  [orchestrator1]=10.77.0.11 [orchestrator2]=10.77.0.12
  [download1]=10.77.0.21 [download2]=10.77.0.22
  [resize1]=10.77.0.31 [resize2]=10.77.0.32
  [filter1]=10.77.0.41 [filter2]=10.77.0.42
  [upload1]=10.77.0.51 [upload2]=10.77.0.52
  [webhook1]=10.77.0.61 [webhook2]=10.77.0.62
)
declare -A port=([download]=50061 [resize]=50062 [filter]=50063 [upload]=50064
  [webhook]=50065 [orchestrator]=50051)
readonly stages=(download resize filter upload webhook)

lan="$tag-lan"
ip netns add "$lan" || fail "ip netns add $lan"
namespaces+=("$lan")
ip -n "$lan" link add br0 type bridge || fail "cannot create a bridge"
ip -n "$lan" link set br0 up
n=0
for host in "${!address[@]}"; do
  ns="$tag-$host"
  ip netns add "$ns" || fail "ip netns add $ns"
  namespaces+=("$ns")
  n=$((n + 1))
  ip -n "$lan" link add "veth$n" type veth peer name eth0 netns "$ns" || fail "veth for $host"
  ip -n "$lan" link set "veth$n" master br0 up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "${address[$host]}/24" dev eth0
  ip -n "$ns" link set eth0 up
done
log "network: ${#address[@]} hosts in namespaces $tag-*, bridge in $lan"

# --------------------------------------------------------------- processes --
# start HOST COMMAND...: runs COMMAND inside HOST's namespace (ip netns exec
# execs it, so the pid is the server's own).
start() {
  local host=$1
  shift
  generation[$host]=$((${generation[$host]:-0} + 1))
  ip netns exec "$tag-$host" "$@" >"$work/logs/$host.${generation[$host]}.log" 2>&1 &
  pid[$host]=$!
}

# in_client COMMAND...: run in the client's namespace.
in_client() { ip netns exec "$tag-client" "$@"; }
cli() { in_client "$bin_dir/conveyor" "$@"; }

# wait_port HOST PORT: until HOST accepts TCP connections on PORT (bounded).
wait_port() {
  local host=$1 p=$2 i
  for ((i = 0; i < 200; i++)); do
    kill -0 "${pid[$host]}" 2>/dev/null ||
      fail "$host exited at start-up: $(tail -n 5 "$work/logs/$host.${generation[$host]}.log")"
    if in_client bash -c "exec 3<>/dev/tcp/${address[$host]}/$p" 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  fail "$host is not listening on ${address[$host]}:$p after 10 s"
}

# Every stage flag the test uses must exist; --allow-cidr is narrower than
# --allow-private-networks, so use it where the binary has it.
private_net_flag() {
  if "$bin_dir/$1" --help | grep -q -- '--allow-cidr'; then
    echo "--allow-cidr=10.77.0.0/24"
  else
    echo "--allow-private-networks"
  fi
}
download_net_flag=$(private_net_flag conveyor-download)
webhook_net_flag=$(private_net_flag conveyor-webhook)
readonly download_net_flag webhook_net_flag
(umask 077; echo "default whsec_bXVsdGlob3N0LXRlc3Qtc2VjcmV0LTAxMjM0NTY3" > "$work/webhook-secrets")
export CONVEYOR_WEBHOOK_SECRETS_FILE="$work/webhook-secrets"

# Capacity as docs/deploy.md asks: both orchestrators' calls to a stage
# (2 x --max-in-flight 8) fit in ONE replica's threads + queue (2 + 16), so a
# stage that lost a replica queues the work instead of refusing it.
start_worker() {
  local host=$1 stage=${1%[0-9]}
  local common=(--listen "${address[$host]}:${port[$stage]}" --worker-threads 2
    --max-queued 16 --shutdown-grace 20s)
  case "$stage" in
    download) start "$host" "$bin_dir/conveyor-download" "${common[@]}" "$download_net_flag" ;;
    resize) start "$host" "$bin_dir/conveyor-resize" "${common[@]}" ;;
    filter) start "$host" "$bin_dir/conveyor-filter" "${common[@]}" ;;
    upload) start "$host" "$bin_dir/conveyor-upload" "${common[@]}" --file-root "$work/objects" ;;
    webhook) start "$host" "$bin_dir/conveyor-webhook" "${common[@]}" "$webhook_net_flag" ;;
  esac
}

target_of() { echo "ipv4:${address[${1}1]}:${port[$1]},${address[${1}2]}:${port[$1]}"; }

# orchestrator1 reaches each stage by a DNS name that resolves to both
# replicas, from its namespace's own hosts file (ip netns exec bind-mounts
# /etc/netns/<ns>/hosts over /etc/hosts), as a headless Service's name does in
# Kubernetes; orchestrator2 uses multi-address ipv4: targets. Both go through
# gRPC's round_robin.
# (Where /etc is read-only, both use ipv4: lists.)
[[ -d /etc/netns ]] || created_etc_netns=1
hosts_dir="/etc/netns/$tag-orchestrator1"
if mkdir -p "$hosts_dir" 2>/dev/null; then
  {
    echo "127.0.0.1 localhost"
    for stage in "${stages[@]}"; do
      echo "${address[${stage}1]} $stage.conveyor.test"
      echo "${address[${stage}2]} $stage.conveyor.test"
    done
  } >"$hosts_dir/hosts"
  name_target_of() { echo "dns:///$1.conveyor.test:${port[$1]}"; }
else
  log "cannot create $hosts_dir: orchestrator1 uses ipv4: lists too"
  hosts_dir=""
  name_target_of() { target_of "$1"; }
fi

start_orchestrator() {
  local host=$1 targets=() stage
  for stage in "${stages[@]}"; do
    if [[ $host == orchestrator1 ]]; then
      targets+=("--$stage-target" "$(name_target_of "$stage")")
    else
      targets+=("--$stage-target" "$(target_of "$stage")")
    fi
  done
  start "$host" "$bin_dir/conveyor-orchestrator" \
    --listen "${address[$host]}:${port[orchestrator]}" \
    --redis-url "redis://${address[redis]}:6379/0" "${targets[@]}" \
    --max-in-flight 8 --lease-timeout 3s --shutdown-grace 20s --replica-name "$host" \
    --allow-anonymous --anonymous-scopes chains.submit,chains.read,chains.cancel,admin
}

wait_orchestrator() {
  local host=$1 i
  wait_port "$host" "${port[orchestrator]}"
  for ((i = 0; i < 100; i++)); do
    if cli --server "${address[$host]}:${port[orchestrator]}" --timeout 2s status \
      >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  fail "$host does not answer 'conveyor status': $(cli --server \
    "${address[$host]}:${port[orchestrator]}" status 2>&1 | tail -n 3)"
}

# served HOST: request lines the current incarnation of a worker has logged.
served() {
  local n
  n=$(grep -c 'code=' "$work/logs/$1.${generation[$1]}.log" 2>/dev/null)
  echo "${n:-0}"
}

start redis redis-server --bind "${address[redis]}" --port 6379 --protected-mode no \
  --save "" --appendonly yes --dir "$work/redis"
start http python3 "$here/multihost_http.py" --bind "${address[http]}" --port 8080 \
  --hook-log "$work/hooks.jsonl"
for stage in "${stages[@]}"; do
  start_worker "${stage}1"
  start_worker "${stage}2"
done
wait_port redis 6379
wait_port http 8080
for stage in "${stages[@]}"; do
  wait_port "${stage}1" "${port[$stage]}"
  wait_port "${stage}2" "${port[$stage]}"
done
start_orchestrator orchestrator1
start_orchestrator orchestrator2
wait_orchestrator orchestrator1
wait_orchestrator orchestrator2
log "up: redis, http, 2 orchestrators, 2 replicas of each of ${stages[*]}"

# -------------------------------------------------------------------- load --
orchestrators=("${address[orchestrator1]}:${port[orchestrator]}"
  "${address[orchestrator2]}:${port[orchestrator]}")

# submit INDEX: one chain, first to orchestrator (INDEX % 2), else to the other
# one. The idempotency key makes the fallback safe: if the first replica
# stored the chain but died before answering, the second returns that chain.
submit() {
  local i=$1 first=$(($1 % 2)) attempt server name
  for attempt in 0 1 2 3 4 5; do
    server=${orchestrators[$(((first + attempt) % 2))]}
    if name=$(cli --server "$server" --timeout 10s submit --idempotency-key "$tag-$i" \
      --label "run=$tag" --url "http://${address[http]}:8080/img/$i.png" --resize 640x \
      --filter sepia --format jpeg --upload "file://$work/objects" \
      --webhook "http://${address[http]}:8080/hook" 2>>"$work/logs/submit.log"); then
      echo "$i $name" >>"$work/chains"
      return 0
    fi
    ((attempt % 2 == 1)) && sleep 0.5  # both replicas refused: give them a moment
  done
  echo "submit $i: no orchestrator accepted it" >>"$work/logs/submit.log"
  return 1
}

# load COUNT PACE_S CLIENTS: CLIENTS concurrent clients submit COUNT chains in
# all, each client one every PACE_S seconds, in the background; they stop
# early when $work/stop-load exists.
load() {
  local count=$1 pace=$2 clients=$3 c i
  for ((c = 0; c < clients; c++)); do
    (
      for ((i = c; i < count; i += clients)); do
        [[ -e $work/stop-load ]] && break
        submit "$i" || true
        sleep "$pace"
      done
    ) &
    background+=($!)
  done
}

# wait_all: follow every submitted chain to its end (WatchChain, no polling),
# then collect its final state and history. Bounded by the test's budget.
wait_all() {
  local i name left
  while read -r i name; do
    left=$((budget_s - (SECONDS - started)))
    ((left > 5)) || fail "out of time waiting for the chains to end"
    cli --timeout "${left}s" --server "${orchestrators[1]}" --json watch --max-wait "${left}s" \
      "$name" >"$work/events/$i.jsonl" 2>>"$work/logs/watch.log"
    cli --server "${orchestrators[1]}" --json get "$name" >"$work/final/$i.json" \
      2>>"$work/logs/watch.log" || fail "conveyor get $name failed"
  done <"$work/chains"
}

replicas_arg() {
  local stage out=""
  for stage in "${stages[@]}"; do
    out+="$stage=${address[${stage}1]},${address[${stage}2]};"
  done
  echo "${out%;}"
}

# ---------------------------------------------------------------- scenarios --
check_args=()
case "$scenario" in
  failover)
    chains=80
    load "$chains" 0 8
    # Mid-run: half the chains submitted, and the resize replica we kill has
    # done real work.
    for ((i = 0; i < 600; i++)); do
      (($(wc -l <"$work/chains") >= chains / 2 && $(served resize1) >= 3)) && break
      sleep 0.05
    done
    (($(served resize1) >= 3)) || fail "resize1 served no requests: is the load reaching it?"
    kill_time=$(date +%s.%N)
    kill -9 "${pid[resize1]}" "${pid[orchestrator1]}"
    wait "${pid[resize1]}" "${pid[orchestrator1]}" 2>/dev/null
    unset 'pid[resize1]' 'pid[orchestrator1]'
    log "SIGKILLed resize1 (${address[resize1]}) and orchestrator1" \
      "(${address[orchestrator1]}) after $(wc -l <"$work/chains") submissions"
    check_args=(--kill-time "$kill_time")
    wait "${background[@]}"
    background=()
    ;;
  rolling)
    chains=400            # upper bound; the load stops when the roll is done
    load "$chains" 0.2 2
    for ((i = 0; i < 100; i++)); do
      (($(wc -l <"$work/chains") >= 5)) && break
      sleep 0.1
    done
    for host in download1 download2 resize1 resize2 filter1 filter2 upload1 upload2 \
      webhook1 webhook2 orchestrator1 orchestrator2; do
      stage=${host%[0-9]}
      old=${pid[$host]}
      kill -TERM "$old"
      wait "$old"
      rc=$?
      ((rc == 0)) || fail "$host exited $rc after SIGTERM, want 0 (graceful drain)"
      if [[ $stage == orchestrator ]]; then
        start_orchestrator "$host"
        wait_orchestrator "$host"
      else
        start_worker "$host"
        wait_port "$host" "${port[$stage]}"
        # Roll on only once the orchestrators route calls to the new process
        # again, as a rollout waits for readiness before the next pod.
        for ((i = 0; i < 200; i++)); do
          (($(served "$host") >= 1)) && break
          sleep 0.1
        done
        (($(served "$host") >= 1)) || fail "$host got no calls for 20 s after its restart"
      fi
      log "rolled $host: SIGTERM -> exit 0 -> restarted"
    done
    touch "$work/stop-load"
    check_args=(--require-orchestrator-spread)
    wait "${background[@]}"
    background=()
    ;;
esac

submitted=$(wc -l <"$work/chains")
log "submitted $submitted chains; waiting for all to end"
((submitted > 0)) || fail "no chain was submitted: $(tail -n 3 "$work/logs/submit.log")"
wait_all
log "all chains ended; checking"
python3 "$here/multihost_check.py" --work "$work" --objects "$work/objects" \
  --hook-log "$work/hooks.jsonl" --replicas "$(replicas_arg)" --logs "$work/logs" \
  "${check_args[@]}" ||
  fail "the chains did not all complete exactly once (see above)"
log "PASSED in $((SECONDS - started)) s"
