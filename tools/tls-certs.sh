#!/usr/bin/env bash
# Makes a throwaway CA and the certificates a local Conveyor stack needs for
# TLS + mTLS on every hop, with openssl, into DIR (created; keys mode 0600):
#
#   tools/tls-certs.sh DIR
#
#   ca.pem ca.key                the CA (ca.key signs; keep it or delete it)
#   orchestrator.pem/.key        the orchestrator: serves the API and is the
#                                client certificate the workers accept
#                                (SAN DNS:orchestrator, DNS:localhost, IP:127.0.0.1)
#   <worker>.pem/.key            download, resize, filter, upload, webhook: each
#                                worker's server certificate (SAN its name,
#                                DNS:localhost, IP:127.0.0.1)
#   cli.pem/.key                 the CLI's (and grpcurl's) client certificate
#                                (CN conveyor-cli)
#
# Every leaf is valid for serverAuth and clientAuth, for 30 days (CA: 90).
# Existing files are kept unless --force: rerunning on a state dir reuses its
# CA. For development and tests only; production certificates come from
# your PKI or cert-manager (docs/security.md, "TLS and mTLS").
set -euo pipefail

force=0
dir=""
while (($#)); do
  case "$1" in
    --force) force=1; shift ;;
    -h|--help) sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "tls-certs: unknown flag $1" >&2; exit 2 ;;
    *) [[ -z "$dir" ]] || { echo "tls-certs: one DIR only" >&2; exit 2; }; dir="$1"; shift ;;
  esac
done
[[ -n "$dir" ]] || { echo "usage: tools/tls-certs.sh [--force] DIR" >&2; exit 2; }
command -v openssl >/dev/null || { echo "tls-certs: openssl not found (apt-get install openssl)" >&2; exit 1; }
mkdir -p "$dir"
umask 077

new_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; chmod 600 "$1"; }

if ((force)) || [[ ! -s "$dir/ca.pem" || ! -s "$dir/ca.key" ]]; then
  new_key "$dir/ca.key"
  openssl req -x509 -new -key "$dir/ca.key" -sha256 -days 90 -subj "/CN=Conveyor dev CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$dir/ca.pem"
  force=1  # a new CA: every leaf must be issued again
fi

# issue NAME CN SAN: NAME.pem/NAME.key signed by the CA.
issue() {
  local name="$1" cn="$2" san="$3"
  if ((force == 0)) && [[ -s "$dir/$name.pem" && -s "$dir/$name.key" ]]; then return 0; fi
  new_key "$dir/$name.key"
  openssl req -new -key "$dir/$name.key" -subj "/CN=$cn" -out "$dir/$name.csr"
  printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth,clientAuth" "subjectAltName=$san" > "$dir/$name.ext"
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 30 -sha256 -extfile "$dir/$name.ext" \
    -out "$dir/$name.pem" 2>/dev/null
  rm -f "$dir/$name.csr" "$dir/$name.ext"
  chmod 644 "$dir/$name.pem"
}

local_sans="DNS:localhost,IP:127.0.0.1"
issue orchestrator orchestrator "DNS:orchestrator,DNS:conveyor-orchestrator,$local_sans"
for worker in download resize filter upload webhook; do
  issue "$worker" "$worker" "DNS:$worker,DNS:conveyor-$worker,$local_sans"
done
issue cli conveyor-cli "DNS:conveyor-cli"
chmod 644 "$dir/ca.pem"
