#!/usr/bin/env bash
# etcd: single member on loopback, built from Go modules (stack/build/etcd pins the release;
# Debian's etcd-server is 3.4, too old for current kube-apiservers). The binary is cached as
# $RIPPLE_CACHE/bin/etcd-<version>, the version read from stack/build/etcd/go.mod.
#
# Compaction: etcd compacts on its own (revision mode, keeps the last 1000 revisions, checked
# every 5 minutes) and kube-apiserver compacts every 5 minutes too. To force one now (tests
# that want "410 Gone / too old resource version"), use the v3 HTTP gateway:
#   rev=$(curl -s -X POST $RIPPLE_ETCD_ENDPOINT/v3/kv/range -d '{"key":"AA=="}' | jq -r .header.revision)
#   curl -s -X POST $RIPPLE_ETCD_ENDPOINT/v3/kv/compaction -d "{\"revision\":\"$rev\",\"physical\":true}"

etcd_version() {
  awk '$1 == "go.etcd.io/etcd/server/v3" { print $2; exit }' "$STACK_DIR/build/etcd/go.mod"
}

etcd_bin() { echo "$RIPPLE_CACHE/bin/etcd-$(etcd_version)"; }

etcd_install() {
  local bin; bin="$(etcd_bin)"
  [[ -x "$bin" ]] && return 0
  command -v go >/dev/null || die "etcd: the go toolchain is needed to build etcd"
  mkdir -p "$RIPPLE_CACHE/bin"
  rm -f "$bin".tmp.*
  local tmp="$bin.tmp.$$" t0=$SECONDS
  log "etcd: building etcd $(etcd_version) from Go modules (about 1 min on 2 cores)"
  if ! (cd "$STACK_DIR/build/etcd" &&
        go build -mod=readonly -buildvcs=false -trimpath -ldflags='-s -w' -o "$tmp" go.etcd.io/etcd/server/v3); then
    rm -f "$tmp"; log "etcd: build failed"; return 1
  fi
  mv -f "$tmp" "$bin"
  log "etcd: built $bin in $(( SECONDS - t0 ))s"
}

etcd_probe() {
  curl -fsS --max-time 2 "http://127.0.0.1:$RIPPLE_ETCD_PORT/health" 2>/dev/null | grep -q '"health":"true"'
}

etcd_start() {
  local data; data="$(comp_data etcd)"
  chmod 700 "$data"
  local client="http://127.0.0.1:$RIPPLE_ETCD_PORT" peer="http://127.0.0.1:$RIPPLE_ETCD_PEER_PORT"
  # --initial-* flags only matter on the first start; later starts reuse the member in $data.
  start_proc etcd "$(etcd_bin)" --name ripple --data-dir "$data" \
    --listen-client-urls "$client" --advertise-client-urls "$client" \
    --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
    --initial-cluster "ripple=$peer" --initial-cluster-state new \
    --initial-cluster-token ripple-stack \
    --auto-compaction-mode=revision --auto-compaction-retention=1000 \
    --quota-backend-bytes=$(( 4 * 1024 * 1024 * 1024 )) \
    --max-request-bytes=$(( 3 * 1024 * 1024 / 2 )) \
    --log-level=warn
  wait_ready etcd 30 etcd_probe
}

etcd_env() { echo "RIPPLE_ETCD_ENDPOINT=http://127.0.0.1:$RIPPLE_ETCD_PORT"; }
