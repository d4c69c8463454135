#!/usr/bin/env bash
# apiserver: kube-apiserver built from Go modules (stack/build/kube pins the release and every
# k8s.io staging module), cached as $RIPPLE_CACHE/bin/kube-apiserver-<version>. Needs etcd.
# There is no controller-manager or scheduler: nothing finalizes deleted namespaces, runs the
# garbage collector, creates ServiceAccounts/tokens or derives EndpointSlices from Services;
# tests create EndpointSlices themselves.
#
# PKI (made once per run dir with openssl, under $RIPPLE_RUN/apiserver/pki): ca.crt/ca.key,
# server.crt/key (127.0.0.1, localhost), admin.crt/key (CN=ripple-admin, O=system:masters),
# sa.key/sa.pub (service-account token signing). $RIPPLE_RUN/apiserver/kubeconfig embeds them.
#   curl --cacert pki/ca.crt --cert pki/admin.crt --key pki/admin.key https://127.0.0.1:$RIPPLE_APISERVER_PORT/readyz
#
# "410 Gone / too old resource version" on demand: watches are served from the apiserver's
# watch cache, which keeps recent events whatever etcd compacted, so compacting etcd alone does
# not expire an old resourceVersion. Restarting the apiserver does (its caches start at the
# current revision), and so does etcd compaction with RIPPLE_APISERVER_EXTRA_ARGS=--watch-cache=false.
# Recipes and the rest of the gotchas: stack/build/kube/README.md.

apiserver_version() {
  awk '$1 == "k8s.io/kubernetes" { print $2; exit }' "$STACK_DIR/build/kube/go.mod"
}

apiserver_bin() { echo "$RIPPLE_CACHE/bin/kube-apiserver-$(apiserver_version)"; }

apiserver_install() {
  kube_build apiserver kube-apiserver "$(apiserver_bin)" "several minutes on 2 cores"
}

# kube_build COMPONENT CMD BIN NOTE: build k8s.io/kubernetes/cmd/CMD at the pinned release into
# BIN (once; kubectl.sh uses it too).
kube_build() {
  local comp="$1" cmd="$2" bin="$3" note="$4"
  [[ -x "$bin" ]] && return 0
  command -v go >/dev/null || die "$comp: the go toolchain is needed to build $cmd"
  mkdir -p "$RIPPLE_CACHE/bin"
  rm -f "$bin".tmp.*
  local v; v="$(apiserver_version)"
  local minor="${v#v*.}"; minor="${minor%%.*}"
  # Stamp the release like the upstream build does (`go build` alone reports v0.0.0-master).
  local x="" p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    x+=" -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  local tmp="$bin.tmp.$$" t0=$SECONDS
  log "$comp: building $cmd $v from Go modules ($note)"
  if ! (cd "$STACK_DIR/build/kube" &&
        go build -mod=readonly -buildvcs=false -trimpath -ldflags="-s -w$x" -o "$tmp" \
          "k8s.io/kubernetes/cmd/$cmd"); then
    rm -f "$tmp"; log "$comp: build failed"; return 1
  fi
  mv -f "$tmp" "$bin"
  log "$comp: built $bin in $(( SECONDS - t0 ))s"
}

apiserver_pki_dir() { echo "$(comp_dir apiserver)/pki"; }
apiserver_kubeconfig() { echo "$(comp_dir apiserver)/kubeconfig"; }

# _apiserver_sign NAME SUBJECT EXTENSIONS: an EC key and a certificate signed by ca.* (in cwd).
_apiserver_sign() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null
  openssl req -new -key "$1.key" -subj "$2" -config ssl.cnf -out "$1.csr"
  printf '%b\n' "$3" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" \
    -days 3650 -sha256 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

# apiserver_pki: generate the PKI once per run dir, into a temp dir moved into place at the end.
apiserver_pki() {
  local dir; dir="$(apiserver_pki_dir)"
  [[ -f "$dir/ca.crt" ]] && return 0
  mkdir -p "$(dirname "$dir")"
  rm -rf "$dir".tmp.*
  local tmp="$dir.tmp.$$"
  mkdir -m 700 "$tmp"
  (
    set -e
    cd "$tmp"
    printf '[req]\ndistinguished_name = dn\n[dn]\n' >ssl.cnf
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key 2>/dev/null
    openssl req -x509 -new -key ca.key -subj "/CN=ripple-stack-ca" -config ssl.cnf -days 3650 -sha256 \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -addext "subjectKeyIdentifier=hash" -out ca.crt
    local common='basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nauthorityKeyIdentifier=keyid'
    _apiserver_sign server "/CN=kube-apiserver" "$common\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.96.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
    _apiserver_sign admin "/O=system:masters/CN=ripple-admin" "$common\nextendedKeyUsage=clientAuth"
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
    openssl pkey -in sa.key -pubout -out sa.pub
    rm -f ssl.cnf
    chmod 600 ./*.key
  ) || { rm -rf "$tmp"; log "apiserver: PKI generation failed"; return 1; }
  mv "$tmp" "$dir"
}

apiserver_write_kubeconfig() {
  local pki; pki="$(apiserver_pki_dir)"
  local kc; kc="$(apiserver_kubeconfig)"
  rm -f "$kc.tmp"; touch "$kc.tmp"; chmod 600 "$kc.tmp"
  cat >>"$kc.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: ripple
  cluster:
    server: https://127.0.0.1:$RIPPLE_APISERVER_PORT
    certificate-authority-data: $(base64 -w0 "$pki/ca.crt")
users:
- name: ripple-admin
  user:
    client-certificate-data: $(base64 -w0 "$pki/admin.crt")
    client-key-data: $(base64 -w0 "$pki/admin.key")
contexts:
- name: ripple
  context:
    cluster: ripple
    user: ripple-admin
current-context: ripple
EOF
  mv -f "$kc.tmp" "$kc"
}

# apiserver_curl ARGS...: curl as ripple-admin (for probes, and handy in a shell).
apiserver_curl() {
  local pki; pki="$(apiserver_pki_dir)"
  curl -sS --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" "$@"
}

apiserver_probe() {
  [[ "$(apiserver_curl -f --max-time 2 "https://127.0.0.1:$RIPPLE_APISERVER_PORT/readyz" 2>/dev/null)" == "ok" ]]
}

apiserver_start() {
  http_ok "http://127.0.0.1:$RIPPLE_ETCD_PORT/health" 2>/dev/null ||
    { log "apiserver: etcd is not answering on 127.0.0.1:$RIPPLE_ETCD_PORT; start etcd first"; return 1; }
  apiserver_pki
  apiserver_write_kubeconfig
  local pki; pki="$(apiserver_pki_dir)"
  # RIPPLE_APISERVER_EXTRA_ARGS (word-split, appended, so a repeated flag overrides ours), e.g.
  # "--watch-cache=false" for a test that needs etcd compaction to expire resourceVersions at once.
  # --advertise-address=127.0.0.1 is refused with the default lease endpoint reconciler ("cannot
  # use public IP 127.0.0.1 with endpoint reconciler ... may not be in the loopback range"); with
  # reconciler "none" it is accepted and default/kubernetes simply has no endpoints.
  # shellcheck disable=SC2086
  start_proc apiserver "$(apiserver_bin)" \
    --bind-address=127.0.0.1 --secure-port="$RIPPLE_APISERVER_PORT" \
    --advertise-address=127.0.0.1 --endpoint-reconciler-type=none \
    --etcd-servers="http://127.0.0.1:$RIPPLE_ETCD_PORT" \
    --authorization-mode=RBAC \
    --client-ca-file="$pki/ca.crt" \
    --tls-cert-file="$pki/server.crt" --tls-private-key-file="$pki/server.key" \
    --cert-dir="$pki" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
    --service-cluster-ip-range=10.96.0.0/16 \
    ${RIPPLE_APISERVER_EXTRA_ARGS:-}
  wait_ready apiserver 120 apiserver_probe
}

apiserver_env() {
  echo "KUBECONFIG=$(apiserver_kubeconfig)"
  echo "RIPPLE_KUBE_APISERVER=https://127.0.0.1:$RIPPLE_APISERVER_PORT"
}
