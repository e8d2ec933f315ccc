#!/usr/bin/env bash
# Makes every secret a Conveyor deployment needs, with openssl, into one
# directory that is never committed (deploy/secrets/ and deploy/k8s/secrets/
# are git-ignored):
#
#   tools/make-deploy-secrets.sh deploy/secrets        # for deploy/compose.yaml
#   tools/make-deploy-secrets.sh deploy/k8s/secrets    # for kubectl apply -k deploy/k8s
#
#   ca.crt, ca.key           the deployment's own CA (ca.key never leaves this
#                            directory: no container mounts it)
#   <name>.crt, <name>.key   one certificate per process, serverAuth+clientAuth,
#                            for orchestrator, download, resize, filter, upload,
#                            webhook, redis, and cli (the operator's client)
#   redis-password           random; the orchestrator reads it (--redis-password-file)
#   redis-users.acl          Redis ACL: user "conveyor" with the password's
#                            SHA-256; "default" may only PING
#   tokens                   the orchestrator's --tokens-file: one operator token
#                            (its SHA-256 only) with every scope, tenant "default"
#   operator.token           that token in clear, for the CLI (CONVEYOR_TOKEN)
#   webhook-secrets          the webhook worker's --secrets-file: "default whsec_..."
#   s3.env                   the upload worker's S3 endpoint and keys for Kubernetes,
#                            empty until you fill them in (file:// works without)
#
# Only missing files are made, so it is safe to run again; to rotate one
# secret, delete its file(s) and run it again (docs/security.md, "Deploy").
# Deleting ca.key and ca.crt makes a new CA: then delete every .crt too.
set -euo pipefail

usage() { echo "usage: $0 <directory>" >&2; exit 2; }
[[ $# -eq 1 ]] || usage
out="$1"
command -v openssl >/dev/null || { echo "make-deploy-secrets: openssl is missing" >&2; exit 1; }

# The directory is private to its owner; the files in it are readable, so the
# containers (users 10001 and 999) can read them through their bind mounts.
mkdir -p "$out"
chmod 0700 "$out"
umask 022

days=825
namespace=conveyor

# Names each certificate must carry: the compose service names, the
# Kubernetes Service names, and loopback for the tools on the host.
san_of() {
  local name="$1" k8s="conveyor-$1"
  local names="DNS:$name,DNS:localhost,IP:127.0.0.1"
  names+=",DNS:$k8s,DNS:$k8s.$namespace,DNS:$k8s.$namespace.svc,DNS:$k8s.$namespace.svc.cluster.local"
  [[ "$name" == orchestrator ]] && names+=",DNS:orchestrator-1,DNS:orchestrator-2"
  echo "$names"
}

if [[ ! -s "$out/ca.key" || ! -s "$out/ca.crt" ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
    -keyout "$out/ca.key" -out "$out/ca.crt" -days "$days" \
    -subj "/O=Conveyor/CN=Conveyor deployment CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  chmod 0600 "$out/ca.key"
  echo "make-deploy-secrets: new CA $out/ca.crt"
fi

for name in orchestrator download resize filter upload webhook redis cli; do
  [[ -s "$out/$name.crt" && -s "$out/$name.key" ]] && continue
  extensions="$(mktemp)"
  trap 'rm -f "$extensions" "$out/$name.csr"' EXIT
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=serverAuth,clientAuth"
    [[ "$name" == cli ]] && echo "subjectAltName=DNS:cli" || echo "subjectAltName=$(san_of "$name")"
  } >"$extensions"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
    -keyout "$out/$name.key" -out "$out/$name.csr" -subj "/O=Conveyor/CN=$name" 2>/dev/null
  openssl x509 -req -in "$out/$name.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" \
    -CAcreateserial -sha256 -days "$days" -extfile "$extensions" -out "$out/$name.crt" 2>/dev/null
  rm -f "$extensions" "$out/$name.csr"
  trap - EXIT
  chmod 0644 "$out/$name.key"  # the directory (0700) keeps other users out
  echo "make-deploy-secrets: certificate $name"
done
rm -f "$out/ca.srl"

if [[ ! -s "$out/redis-password" || ! -s "$out/redis-users.acl" ]]; then
  password="$(openssl rand -hex 32)"
  printf '%s\n' "$password" >"$out/redis-password"
  hash="$(printf '%s' "$password" | openssl dgst -sha256 -r | cut -d' ' -f1)"
  {
    echo "user default on nopass -@all +ping"
    echo "user conveyor on #$hash ~* &* +@all"
  } >"$out/redis-users.acl"
  echo "make-deploy-secrets: Redis password (ACL user conveyor)"
fi

if [[ ! -s "$out/tokens" || ! -s "$out/operator.token" ]]; then
  token="$(openssl rand -hex 32)"
  (umask 077; printf '%s\n' "$token" >"$out/operator.token")
  hash="$(printf '%s' "$token" | openssl dgst -sha256 -r | cut -d' ' -f1)"
  echo "sha256:$hash operator default chains.submit,chains.read,chains.cancel,admin" \
    >"$out/tokens"
  echo "make-deploy-secrets: operator token (all scopes, tenant default): $token"
  echo "  also in $out/operator.token; use it with CONVEYOR_TOKEN=\$(cat $out/operator.token)"
fi

if [[ ! -s "$out/webhook-secrets" ]]; then
  echo "default whsec_$(openssl rand -base64 32)" >"$out/webhook-secrets"
  echo "make-deploy-secrets: webhook secret for tenant default (give receivers the whsec_ value)"
fi

if [[ ! -e "$out/s3.env" ]]; then
  printf 'endpoint=\nregion=us-east-1\naccess-key-id=\nsecret-access-key=\n' >"$out/s3.env"
  echo "make-deploy-secrets: $out/s3.env is empty: put your S3 endpoint and keys there"
fi
