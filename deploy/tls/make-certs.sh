#!/bin/sh
# Make the broker's TLS certificates for the device listener (8883): a private CA for the district and a
# server certificate signed by it. Devices get ca.crt (public) and check the broker against it.
#
#   deploy/tls/make-certs.sh [OUT_DIR]        default OUT_DIR: deploy/certs
#
# Environment (none of it secret except the optional passphrase, which is read from a file, never argv):
#   GULOU_TLS_HOSTS          comma-separated DNS names and IP addresses devices use to reach the broker
#                            (default: localhost,127.0.0.1); the first one is the certificate's common name
#   GULOU_TLS_DAYS           server certificate lifetime in days (default 825)
#   GULOU_TLS_CA_DAYS        CA lifetime in days (default 3650)
#   GULOU_TLS_CA_PASSPHRASE_FILE  if set, the CA key is encrypted with the passphrase in this file
#
# An existing CA (ca.key, ca.crt) is kept: running the script again renews only the server certificate, so
# devices keep trusting the broker. Keys are written 0600; ca.key is not needed by the broker: keep it offline.
set -eu

out="${1:-$(dirname "$0")/../certs}"
hosts="${GULOU_TLS_HOSTS:-localhost,127.0.0.1}"
days="${GULOU_TLS_DAYS:-825}"
ca_days="${GULOU_TLS_CA_DAYS:-3650}"

mkdir -p "$out"
# Nothing in this directory may ever be committed.
[ -f "$out/.gitignore" ] || printf '*\n' > "$out/.gitignore"
umask 077

ca_pass_in=""
ca_pass_out=""
if [ -n "${GULOU_TLS_CA_PASSPHRASE_FILE:-}" ]; then
    # openssl reads the passphrase from the file itself; only the file's name is on the command line.
    ca_pass_in="-passin file:$GULOU_TLS_CA_PASSPHRASE_FILE"
    ca_pass_out="-aes-256-cbc -pass file:$GULOU_TLS_CA_PASSPHRASE_FILE"
fi

if [ ! -f "$out/ca.key" ] || [ ! -f "$out/ca.crt" ]; then
    # shellcheck disable=SC2086  # $ca_pass_out is a list of options
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 $ca_pass_out -out "$out/ca.key"
    # shellcheck disable=SC2086
    openssl req -x509 -new -key "$out/ca.key" $ca_pass_in -sha256 -days "$ca_days" \
        -subj "/O=Gulou Smart Brain/CN=Gulou Smart Brain device CA" \
        -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out "$out/ca.crt"
    echo "make-certs: new CA $out/ca.crt" >&2
fi

# subjectAltName from the host list: IP:... for addresses, DNS:... for names.
san=""
cn=""
old_ifs="$IFS"
IFS=","
for host in $hosts; do
    [ -n "$host" ] || continue
    [ -n "$cn" ] || cn="$host"
    case "$host" in
        *[!0-9.]*) entry="DNS:$host" ;;
        *) entry="IP:$host" ;;
    esac
    case "$host" in *:*) entry="IP:$host" ;; esac
    san="${san:+$san,}$entry"
done
IFS="$old_ifs"
if [ -z "$san" ]; then
    echo "make-certs: GULOU_TLS_HOSTS names no host" >&2
    exit 2
fi

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$out/server.key"
openssl req -new -key "$out/server.key" -subj "/O=Gulou Smart Brain/CN=$cn" -out "$out/server.csr"
ext="$out/server.ext"
printf 'subjectAltName=%s\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' \
    "$san" > "$ext"
# shellcheck disable=SC2086
openssl x509 -req -in "$out/server.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" $ca_pass_in -CAcreateserial \
    -sha256 -days "$days" -extfile "$ext" -out "$out/server.crt"
rm -f "$out/server.csr" "$ext"
# The certificates are public; the devices need ca.crt.
chmod 0644 "$out/ca.crt" "$out/server.crt"
echo "make-certs: server certificate $out/server.crt for $san (valid $days days)" >&2
