#!/usr/bin/env bash
# Test PKI for the lvunet fleet broker: one CA, one broker cert, one client
# cert per device id (CN = device id) and an "operator" client cert.
# These are for labs, CI and bench carts only; a production fleet issues
# certificates from its own PKI (see README.md).
set -euo pipefail

usage() {
  cat >&2 <<'USAGE'
usage: make-certs.sh OUTDIR [DEVICE_ID...]

Creates (or completes) a test PKI in OUTDIR:
  ca.crt ca.key                 test CA (reused if already present)
  broker.crt broker.key         server cert, SAN localhost + 127.0.0.1 (+ $BROKER_SANS)
  <device-id>.crt <device-id>.key   client cert per device, CN = device id
  operator.crt operator.key     fleet dashboard / operator tools identity
  ingest-1.crt ingest-2.crt (+ .key)  fleet ingest identities (read-only, see acl)

Existing files are kept, so re-running only adds what is missing.
Environment:
  BROKER_SANS  extra subjectAltName entries, e.g. "DNS:broker.fleet.lan,IP:10.0.0.5"
  CA_CN        CA common name (default "lvunet test CA")
  BROKER_CN    broker certificate CN (default "localhost"; clients verify the SAN)
  BROKER_EKU   broker extendedKeyUsage (default "serverAuth"; a NATS cluster node also
               dials its peers with it: "serverAuth,clientAuth", see deploy/nats/)
  DAYS         leaf validity in days (default 825)
USAGE
  exit 2
}

[[ $# -ge 1 ]] || usage
case "$1" in -h|--help) usage ;; esac

outdir=$1
shift
days=${DAYS:-825}
ca_cn=${CA_CN:-lvunet test CA}
broker_sans="DNS:localhost,IP:127.0.0.1${BROKER_SANS:+,$BROKER_SANS}"

# Device ids become MQTT usernames and topic levels via the ACL's %u, so
# anything that could act as a wildcard or a level separator (+ # /) or
# escape the output directory must never reach a certificate.
for id in "$@"; do
  if [[ ! $id =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ ]]; then
    echo "make-certs.sh: invalid device id '$id' (allowed: [A-Za-z0-9._-], max 64, no leading punctuation)" >&2
    exit 2
  fi
  case "$id" in
    # "operator" and "ingest-N" are identities with fleet-wide rights in the
    # ACL; a device holding such a CN would inherit them. ca/broker would
    # overwrite the PKI's own files.
    operator|ingest-[0-9]*|ca|broker)
      echo "make-certs.sh: '$id' is reserved and cannot be a device id" >&2
      exit 2
      ;;
  esac
done

mkdir -p "$outdir"
# Private keys are created readable by the owner only.
umask 077

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

newkey() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

# Random serials avoid a .srl file and keep re-issued certs distinguishable.
serial() {
  echo "0x$(openssl rand -hex 16)"
}

if [[ ! -s $outdir/ca.key || ! -s $outdir/ca.crt ]]; then
  newkey "$outdir/ca.key"
  openssl req -x509 -new -key "$outdir/ca.key" -sha256 -days 3650 \
    -subj "/CN=$ca_cn" -set_serial "$(serial)" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" \
    -out "$outdir/ca.crt"
  echo "created $outdir/ca.crt"
fi

# issue NAME CN EXTENSIONS: signs NAME.crt with the CA unless it already exists.
issue() {
  local name=$1 cn=$2 ext=$3
  if [[ -s $outdir/$name.key && -s $outdir/$name.crt ]]; then
    return 0
  fi
  newkey "$outdir/$name.key"
  printf '%s\n' "$ext" >"$tmp/$name.ext"
  openssl req -new -key "$outdir/$name.key" -subj "/CN=$cn" -out "$tmp/$name.csr"
  openssl x509 -req -in "$tmp/$name.csr" -CA "$outdir/ca.crt" -CAkey "$outdir/ca.key" \
    -set_serial "$(serial)" -days "$days" -sha256 \
    -extfile "$tmp/$name.ext" -out "$outdir/$name.crt" 2>/dev/null
  echo "created $outdir/$name.crt (CN=$cn)"
}

client_ext='basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid'

issue broker "${BROKER_CN:-localhost}" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=${BROKER_EKU:-serverAuth}
subjectAltName=$broker_sans
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid"

issue operator operator "$client_ext"
issue ingest-1 ingest-1 "$client_ext"
issue ingest-2 ingest-2 "$client_ext"
for id in "$@"; do
  issue "$id" "$id" "$client_ext"
done

# Certificates are public; only keys stay 0600.
chmod 0644 "$outdir"/*.crt
