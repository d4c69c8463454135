#!/usr/bin/env bash
# promtool: a tool, not a server (no process, no port). Prometheus' rule checker, built from Go
# modules through the wrapper module stack/build/promtool (go.mod pins the release), cached as
# $RIPPLE_CACHE/bin/promtool-<version>. `install` and `up` build it once; `up` writes its path to
# $RIPPLE_RUN/env as RIPPLE_PROMTOOL. The monitoring tests check deploy/monitoring/ with it:
#   "$RIPPLE_PROMTOOL" check rules deploy/monitoring/prometheus/ripple-alerts.yaml

PROMTOOL_VERSION=v0.316.0  # keep equal to the github.com/prometheus/prometheus line in build/promtool/go.mod
PROMTOOL_RELEASE=3.16.0    # the Prometheus release of that module version (what --version prints)

promtool_bin() { echo "$RIPPLE_CACHE/bin/promtool-$PROMTOOL_VERSION"; }

promtool_install() {
  local bin src tmp t0=$SECONDS
  bin="$(promtool_bin)"
  [[ -x "$bin" ]] && return 0
  src="$STACK_DIR/build/promtool"
  grep -q "github.com/prometheus/prometheus $PROMTOOL_VERSION" "$src/go.mod" \
    || die "promtool: $src/go.mod does not pin github.com/prometheus/prometheus $PROMTOOL_VERSION"
  command -v go >/dev/null || die "promtool: the Go toolchain is needed to build promtool"
  log "promtool: building promtool $PROMTOOL_RELEASE from Go modules (minutes on 2 cores when nothing is cached)"
  mkdir -p "$RIPPLE_CACHE/bin"
  rm -f "$bin".tmp.*  # leftovers of an interrupted build
  tmp="$bin.tmp.$$"
  if ! (cd "$src" && go build -mod=readonly -buildvcs=false -trimpath \
      -ldflags="-s -w -X github.com/prometheus/common/version.Version=$PROMTOOL_RELEASE" \
      -o "$tmp" github.com/prometheus/prometheus/cmd/promtool); then
    rm -f "$tmp"
    return 1
  fi
  mv -f "$tmp" "$bin"
  log "promtool: built $bin in $(( SECONDS - t0 ))s"
}

promtool_env() {
  local bin; bin="$(promtool_bin)"
  if [[ -x "$bin" ]]; then echo "RIPPLE_PROMTOOL=$bin"; fi
}
