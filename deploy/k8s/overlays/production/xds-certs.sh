#!/bin/sh
# Issue the mTLS certificates of the ADS port by hand with openssl (cert-manager: see
# docs/deploy.md, "mTLS between gateways and xds"):
#
#   deploy/k8s/overlays/production/xds-certs.sh DIR [TRUST_DOMAIN] [GATEWAY] [NAMESPACE]
#
# writes into DIR (made if missing):
#   ca.crt, ca.key        a CA of its own for the ADS port (keep ca.key offline); when DIR
#                         holds them already they are reused (another gateway's certificate)
#   xds.crt, xds.key      the xds server: DNS SANs ripple-xds, ripple-xds.NAMESPACE.svc
#                         (the gateway bootstrap verifies "ripple-xds"), serverAuth
#   gateway.crt, .key     the gateways' client certificate: URI SAN
#                         spiffe://TRUST_DOMAIN/gateway/GATEWAY (the gateway the xds server
#                         serves it as), clientAuth
# then prints the kubectl commands that make the Secrets xds-mtls.yaml mounts. Defaults:
# TRUST_DOMAIN cluster.local, GATEWAY ripple-gateway (RIPPLE_XDS_GATEWAYS in config.env and the
# DaemonSet's --service-cluster), NAMESPACE ripple; DAYS (env) 365 for the leaf certificates.
set -eu
dir=${1:?usage: xds-certs.sh DIR [TRUST_DOMAIN] [GATEWAY] [NAMESPACE]}
domain=${2:-cluster.local}
gateway=${3:-ripple-gateway}
namespace=${4:-ripple}
days=${DAYS:-365}
mkdir -p "$dir"
cd "$dir"
umask 077

if [ ! -f ca.key ] || [ ! -f ca.crt ]; then  # else: more certificates from the same CA
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days 3650 \
    -keyout ca.key -out ca.crt -subj "/CN=ripple ADS CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null
fi

issue() {  # issue NAME SUBJECT SAN EXTENDED_KEY_USAGE
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" \
    -out "$1.csr" -subj "$2" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=%s\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n' \
    "$3" "$4" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days "$days" \
    -sha256 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

issue xds "/CN=ripple-xds" "DNS:ripple-xds,DNS:ripple-xds.$namespace.svc" serverAuth
issue gateway "/CN=$gateway" "URI:spiffe://$domain/gateway/$gateway" clientAuth
chmod 0644 ca.crt xds.crt gateway.crt

cat <<KUBECTL
# the Secrets of deploy/k8s/overlays/production/xds-mtls.yaml:
kubectl -n $namespace create secret generic ripple-xds-tls --from-file=tls.crt=$PWD/xds.crt \\
  --from-file=tls.key=$PWD/xds.key --from-file=ca.crt=$PWD/ca.crt
kubectl -n $namespace create secret generic ripple-gateway-tls --from-file=tls.crt=$PWD/gateway.crt \\
  --from-file=tls.key=$PWD/gateway.key --from-file=ca.crt=$PWD/ca.crt
KUBECTL
