#!/usr/bin/env bash
# Builds every image of deploy/Dockerfile with podman and runs the compose
# stack for real, on a machine with no container registry (Debian 12, root):
#
#   tools/containers-test.sh            # build, run one chain, check, stop
#   CONTAINERS_TEST_KEEP=1 tools/containers-test.sh   # leave logs and work dir
#   CONTAINERS_TEST_PREBUILT=build/bin tools/containers-test.sh
#       # the runtime images exactly as deploy/Dockerfile writes them, but
#       # with the builder stage swapped for these host-built binaries
#       # (stripped): minutes instead of the ~1 h full build on 2 cores
#
# 1. installs podman, buildah, debootstrap and runc (apt, only here: nothing
#    else needs them) and writes a containers.conf for this VM: runc (crun
#    fails on its cgroups), cgroup_manager "cgroupfs", default_ulimits [];
# 2. makes the base images the Dockerfile names, debian:12 and debian:12-slim,
#    with `debootstrap bookworm` + `podman import` from the host's apt mirror;
# 3. `podman build --isolation chroot --pull=never` of every target;
# 4. makes throwaway secrets (tools/make-deploy-secrets.sh) and starts every
#    compose service with `podman run` (tools/compose_to_podman.py reads
#    deploy/compose.yaml: image, command, environment, secrets, configs,
#    volumes, read_only, cap_drop, security_opt, mem_limit), with host
#    networking: every service name resolves to 127.0.0.1 and every server
#    listens on 127.0.0.1 only, so no traffic leaves loopback;
# 5. runs one chain (download -> resize -> filter -> upload file://) with the
#    CLI image, then checks each container's user (not root), read-only root
#    (a write fails) and image size, and stops everything.
#
# Bounded in time: each phase runs under `timeout`. Not in CI (it builds the
# whole tree in a container, with BUILD_JOBS=2 as every build on the shared
# machine); docs/deploy.md has its figures. Exit 0 only if every image built, the chain SUCCEEDED and every
# check passed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${CONTAINERS_TEST_DIR:-/var/tmp/conveyor-containers}"
keep="${CONTAINERS_TEST_KEEP:-0}"
prebuilt="${CONTAINERS_TEST_PREBUILT:-}"
binaries=(conveyor-orchestrator conveyor-download conveyor-resize conveyor-filter
          conveyor-upload conveyor-webhook conveyor)
targets=(orchestrator download resize filter upload webhook cli redis redis-tunnel)
mkdir -p "$work"
log() { echo "containers-test: $*"; }
fail() { echo "containers-test: FAIL: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || fail "run as root (podman with runc and cgroupfs, debootstrap)"

# ------------------------------------------------------------- 1. tools ----
missing=()
for package in podman buildah debootstrap runc; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
if ((${#missing[@]} > 0)); then
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -q --no-install-recommends \
    "${missing[@]}" >"$work/apt.log" 2>&1 || fail "apt-get install (see $work/apt.log)"
fi
cat >"$work/containers.conf" <<'EOF'
[containers]
default_ulimits = []
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
export CONTAINERS_CONF="$work/containers.conf"

# ------------------------------------------------------- 2. base images ----
# The host's apt sources (and its apt.conf.d settings, e.g. a snapshot mirror
# whose Release files are old) go into the base, so the images install the
# same package versions as tools/setup.sh did on the host.
make_base() {
  local name="$1" slim="$2" rootfs="$work/rootfs-$1"
  if podman image exists "docker.io/library/debian:$name"; then return; fi
  log "debootstrap bookworm for debian:$name"
  rm -rf "$rootfs"
  local mirror
  mirror="$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)"
  timeout 1200 debootstrap --variant=minbase bookworm "$rootfs" "${mirror:-http://deb.debian.org/debian}" \
    >"$work/debootstrap-$name.log" 2>&1 || fail "debootstrap (see $work/debootstrap-$name.log)"
  rm -f "$rootfs/etc/apt/sources.list"
  cp /etc/apt/sources.list.d/debian.sources "$rootfs/etc/apt/sources.list.d/"
  cp /etc/apt/apt.conf.d/99artifact-registry "$rootfs/etc/apt/apt.conf.d/" 2>/dev/null || true
  if [[ "$slim" == 1 ]]; then
    # What Docker's debian:*-slim leaves out: docs, man pages, locales.
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
    find "$rootfs/usr/share/doc" -mindepth 1 ! -name copyright -type f -delete 2>/dev/null || true
    rm -rf "$rootfs/usr/share/man" "$rootfs/usr/share/info" "$rootfs/usr/share/locale"
  fi
  rm -rf "$rootfs/var/cache/apt/archives/"*.deb "$rootfs/var/lib/apt/lists/"*
  tar -C "$rootfs" -c . | podman import - "docker.io/library/debian:$name" >/dev/null
  rm -rf "$rootfs"
}
make_base 12 0
make_base 12-slim 1

# ------------------------------------------------------------- 3. build ----
dockerfile="$root/deploy/Dockerfile"
context="$root"
build_args=(--build-arg BUILD_JOBS=2)
if [[ -n "$prebuilt" ]]; then
  # Everything after the builder stage is deploy/Dockerfile verbatim.
  context="$work/context"
  rm -rf "$context"
  mkdir -p "$context/prebuilt"
  for binary in "${binaries[@]}"; do
    [[ -x "$prebuilt/$binary" ]] || fail "$prebuilt/$binary is not built"
    strip -o "$context/prebuilt/$binary" "$prebuilt/$binary"
  done
  dockerfile="$context/Dockerfile"
  python3 - "$root/deploy/Dockerfile" >"$dockerfile" <<'EOF'
import sys
text = open(sys.argv[1]).read()
start = text.index("FROM debian:${DEBIAN_RELEASE} AS builder")
end = text.index("# ----", start)
print(text[:start] + "FROM debian:${DEBIAN_RELEASE}-slim AS builder\n"
      "COPY prebuilt/ /build/bin/\nRUN mkdir /build/objects\n\n" + text[end:], end="")
EOF
  build_args=()
  log "builder stage: the host's binaries from $prebuilt (stripped)"
fi
build_start=$(date +%s)
for target in "${targets[@]}"; do
  log "building conveyor/$target"
  start=$(date +%s)
  timeout 3600 podman build --isolation chroot --pull=never -f "$dockerfile" "${build_args[@]}" \
    --target "$target" -t "conveyor/$target:latest" "$context" >"$work/build-$target.log" 2>&1 ||
    fail "podman build --target $target (see $work/build-$target.log)"
  log "  built in $(($(date +%s) - start)) s"
done
log "all images built in $(($(date +%s) - build_start)) s"
for target in "${targets[@]}"; do
  size=$(podman image inspect --format '{{.Size}}' "conveyor/$target:latest")
  printf 'containers-test: image conveyor/%-13s %4d MB\n' "$target" $((size / 1000000))
done

# --------------------------------------------------------------- 4. run ----
names=()
cleanup() {
  for name in "${names[@]}"; do
    if [[ "$keep" == 1 ]]; then podman logs "$name" >"$work/log-$name.txt" 2>&1 || true; fi
    podman rm -f -t 5 "$name" >/dev/null 2>&1 || true
  done
  podman volume rm -f conveyor-test-redis-data conveyor-test-objects >/dev/null 2>&1 || true
  [[ -n "${http_pid:-}" ]] && kill "$http_pid" 2>/dev/null || true
  [[ "$keep" == 1 ]] || rm -rf "$work/secrets" "$work/serve"
}
trap cleanup EXIT

rm -rf "$work/secrets"
"$root/tools/make-deploy-secrets.sh" "$work/secrets" >/dev/null

# An orchestrator without --redis-password-file (built before that flag):
# the password goes in CONVEYOR_REDIS_URL (environment, not argv) instead.
capability() { podman run --rm --network none "conveyor/$1:latest" --help 2>/dev/null | grep -q -- "$2"; }
# Likewise a webhook worker without --secrets-file takes its one secret from
# CONVEYOR_WEBHOOK_SECRET.
overrides=()
if ! capability orchestrator --redis-password-file; then
  log "note: this orchestrator has no --redis-password-file; password in CONVEYOR_REDIS_URL"
  url="redis://conveyor:$(cat "$work/secrets/redis-password")@127.0.0.1:6380/0"
  overrides+=(--env "orchestrator-1=CONVEYOR_REDIS_URL=$url" --env "orchestrator-2=CONVEYOR_REDIS_URL=$url")
fi
if ! capability webhook --secrets-file; then
  log "note: this webhook worker has no --secrets-file; its secret in CONVEYOR_WEBHOOK_SECRET"
  overrides+=(--env "webhook=CONVEYOR_WEBHOOK_SECRET=$(awk '{print $2; exit}' "$work/secrets/webhook-secrets")")
fi

mkdir -p "$work/serve"
cp "$(ls /usr/share/backgrounds/mate/nature/*.jpg | head -1)" "$work/serve/source.jpg" 2>/dev/null ||
  fail "no source photo (tools/setup.sh installs mate-backgrounds)"
python3 -m http.server --bind 127.0.0.1 0 --directory "$work/serve" >"$work/http.log" 2>&1 &
http_pid=$!
http_port=""
for _ in $(seq 50); do
  http_port=$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$work/http.log" | head -1)
  [[ -n "$http_port" ]] && break
  sleep 0.1
done
[[ -n "$http_port" ]] || fail "the source HTTP server did not start"

podman volume create conveyor-test-redis-data >/dev/null
podman volume create conveyor-test-objects >/dev/null
while read -r name; do
  names+=("conveyor-test-$name")
done < <(python3 "$root/tools/compose_to_podman.py" --list "$root/deploy/compose.yaml")
python3 "$root/tools/compose_to_podman.py" "$root/deploy/compose.yaml" \
  --secrets "$work/secrets" --prefix conveyor-test- \
  --env "download=CONVEYOR_ALLOW_CIDR=127.0.0.1/32" "${overrides[@]}" >"$work/run.sh"
log "starting ${#names[@]} containers (commands in $work/run.sh)"
timeout 300 bash -e "$work/run.sh" >"$work/run.log" 2>&1 || fail "podman run (see $work/run.log)"

wait_port() {
  for _ in $(seq 150); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.2
  done
  return 1
}
for port in 6379 6380 50051 50052 50061 50062 50063 50064 50065; do
  wait_port "$port" || { podman ps -a; fail "nothing listens on 127.0.0.1:$port"; }
done

# ------------------------------------------------------------- 5. chain ----
# The CLI's files one by one, as compose mounts secrets: the secrets
# directory itself is 0700 root, which the CLI's user cannot enter.
cli=(podman run --rm --network host --read-only --cap-drop ALL)
for file in ca.crt cli.crt cli.key; do
  cli+=(-v "$work/secrets/$file:/run/secrets/$file:ro")
done
cli+=(conveyor/cli:latest --server 127.0.0.1:50051 --timeout 10s)
if capability cli --tls-ca; then
  cli+=(--tls-ca /run/secrets/ca.crt --tls-cert /run/secrets/cli.crt
        --tls-key /run/secrets/cli.key --tls-server-name orchestrator)
  cli=("${cli[@]:0:3}" -e "CONVEYOR_TOKEN=$(cat "$work/secrets/operator.token")" "${cli[@]:3}")
fi
chain_start=$(date +%s)
chain=$(timeout 120 "${cli[@]}" submit --url "http://127.0.0.1:$http_port/source.jpg" \
  --resize 640x --filter sepia --upload file:///var/lib/conveyor/objects) ||
  fail "submit failed"
timeout 120 "${cli[@]}" watch "$chain" >"$work/watch.txt" 2>&1 || true
state=$(timeout 30 "${cli[@]}" --json get "$chain" | python3 -c \
  'import json,sys; print(json.load(sys.stdin).get("state",""))')
log "chain $chain: $state in $(($(date +%s) - chain_start)) s"
[[ "$state" == SUCCEEDED ]] || { cat "$work/watch.txt"; fail "chain ended $state"; }
objects=$(podman run --rm -v conveyor-test-objects:/o:ro --entrypoint /usr/bin/find \
  conveyor/upload:latest /o -type f | wc -l)
[[ "$objects" -ge 1 ]] || fail "no object stored in the upload volume"
log "stored objects: $objects"

# ------------------------------------------------------------ 6. checks ----
# /tmp is world-writable in the image, so a write there fails only because
# the root file system is read-only, not for lack of permission.
failures=0
for name in "${names[@]}"; do
  user=$(podman exec "$name" id -u 2>/dev/null || echo "?")
  read_only=$(podman inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$name")
  memory=$(podman inspect --format '{{.HostConfig.Memory}}' "$name")
  caps=$(podman inspect --format '{{.EffectiveCaps}}' "$name")
  if podman exec "$name" bash -c ': > /tmp/probe' 2>/dev/null; then writable=yes; else writable=no; fi
  printf 'containers-test: %-30s uid %-5s read-only %-4s /tmp writable %-3s memory %4d MB caps %s\n' \
    "$name" "$user" "$read_only" "$writable" $((memory / 1048576)) "$caps"
  if [[ "$user" == 0 || "$user" == "?" || "$read_only" != true || "$writable" != no ||
        "$memory" == 0 || "$caps" != "[]" ]]; then
    failures=$((failures + 1))
  fi
done
((failures == 0)) || fail "$failures containers run as root, writable, unlimited or with capabilities"
log "PASS"
