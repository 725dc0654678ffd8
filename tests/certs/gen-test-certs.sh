#!/bin/sh
# gen-test-certs.sh OUTDIR - the certificates the TLS and upstream tests run against.
#
# Writes into OUTDIR (created if missing), all EC P-256, valid for ten years:
#   ca.crt ca.key              the test CA
#   server.crt server.key      signed by the CA for localhost / 127.0.0.1
#   wrongname.crt wrongname.key signed by the CA for not-the-host.example only
#   other-ca.crt other-ca.key  a second CA the tests never trust
#   untrusted.crt untrusted.key localhost / 127.0.0.1, signed by the other CA
#
# Host certificates carry 127.0.0.1 both as an IP and as a DNS subjectAltName: mbedTLS 2.28
# compares the name given to mbedtls_ssl_set_hostname() with dNSName entries only, so a
# provider configured as https://127.0.0.1:PORT verifies only through the DNS entry.
#
# Every run regenerates everything (a fresh set is always consistent); quiet unless a step
# fails, in which case openssl's own output is shown.
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
out=$1
mkdir -p "$out"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/llmgate-certs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

run() {
    if ! "$@" >"$tmp/log" 2>&1; then
        echo "gen-test-certs: failed: $*" >&2
        cat "$tmp/log" >&2
        exit 1
    fi
}

days=3650
genkey() {
    run openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"
}

# ca NAME CN: a self-signed CA
ca() {
    genkey "$tmp/$1.key"
    cat >"$tmp/$1.ext" <<EXT
[req]
distinguished_name = dn
x509_extensions = v3_ca
prompt = no
[dn]
CN = $2
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EXT
    run openssl req -new -x509 -config "$tmp/$1.ext" -key "$tmp/$1.key" -days $days -sha256 \
        -set_serial "0x$(openssl rand -hex 12)" -out "$tmp/$1.crt"
}

# leaf NAME ISSUER CN SAN: a server certificate signed by ISSUER
leaf() {
    genkey "$tmp/$1.key"
    run openssl req -new -key "$tmp/$1.key" -subj "/CN=$3" -out "$tmp/$1.csr"
    cat >"$tmp/$1.ext" <<EXT
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = $4
EXT
    run openssl x509 -req -in "$tmp/$1.csr" -CA "$tmp/$2.crt" -CAkey "$tmp/$2.key" \
        -set_serial "0x$(openssl rand -hex 12)" -days $days -sha256 -extfile "$tmp/$1.ext" \
        -out "$tmp/$1.crt"
}

ca ca "llmgate test CA"
ca other-ca "llmgate other test CA"
leaf server ca localhost "DNS:localhost, DNS:127.0.0.1, IP:127.0.0.1"
leaf wrongname ca not-the-host.example "DNS:not-the-host.example"
leaf untrusted other-ca localhost "DNS:localhost, DNS:127.0.0.1, IP:127.0.0.1"

for f in ca other-ca server wrongname untrusted; do
    cp "$tmp/$f.crt" "$out/$f.crt"
    cp "$tmp/$f.key" "$out/$f.key"
    chmod 600 "$out/$f.key"
done
