#!/bin/sh
# Regenerates the fixed test PKI of the fuzzer (and of the recorder and the corpus test): a CA, a
# server certificate and a client certificate, all EC P-256, valid for 100 years. Test keys only.
# After regenerating, re-record the corpus (node fuzz/record.js): recorded flights carry these certificates.
set -eu
cd "$(dirname "$0")"
ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
ec ca.key
openssl req -x509 -new -key ca.key -sha256 -days 36500 -subj '/CN=osc fuzz CA' \
  -addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign,cRLSign -out ca.pem
leaf() { # name subject extensions...
  name=$1 subj=$2
  shift 2
  ec "$name.key"
  openssl req -new -key "$name.key" -subj "$subj" -out "$name.csr"
  printf '%s\n' "$@" > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 -days 36500 \
    -extfile "$name.ext" -out "$name.pem"
  rm -f "$name.csr" "$name.ext"
}
leaf server /CN=localhost basicConstraints=CA:false subjectAltName=DNS:localhost,IP:127.0.0.1 \
  extendedKeyUsage=serverAuth
leaf client '/CN=osc fuzz client' basicConstraints=CA:false extendedKeyUsage=clientAuth
rm -f ca.srl ca.key
