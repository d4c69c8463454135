#!/usr/bin/env bash
# jaeger: Jaeger v2 all-in-one (an OpenTelemetry collector build) with in-memory storage.
# Built from Go modules through the wrapper module stack/build/jaeger (go.mod pins the release).
# Listens on 127.0.0.1 only: OTLP gRPC, OTLP HTTP, the query HTTP API (/api/services,
# /api/traces/<id>, /api/v3/...) and the query gRPC API on an ephemeral port (see config.yaml).
# Storage is in memory: traces are lost when Jaeger stops. The web UI is a placeholder page:
# its assets are built with npm from the jaeger-ui repository and are not in the Go module.

JAEGER_VERSION=v1.76.0  # keep equal to the github.com/jaegertracing/jaeger line in build/jaeger/go.mod

jaeger_bin() { echo "$RIPPLE_CACHE/bin/jaeger-$JAEGER_VERSION"; }

jaeger_install() {
  local bin src tmp
  bin="$(jaeger_bin)"
  [[ -x "$bin" ]] && return 0
  src="$STACK_DIR/build/jaeger"
  grep -q "github.com/jaegertracing/jaeger $JAEGER_VERSION " "$src/go.mod" \
    || die "jaeger: $src/go.mod does not pin github.com/jaegertracing/jaeger $JAEGER_VERSION"
  command -v go >/dev/null || die "jaeger: the Go toolchain is needed to build Jaeger"
  log "jaeger: building Jaeger $JAEGER_VERSION from Go modules (takes minutes on 2 cores)"
  mkdir -p "$RIPPLE_CACHE/bin"
  rm -f "$bin".tmp.*  # leftovers of an interrupted build
  tmp="$bin.tmp.$$"
  if ! (cd "$src" && go build -mod=readonly -trimpath \
      -ldflags="-s -w -X github.com/jaegertracing/jaeger/internal/version.latestVersion=$JAEGER_VERSION" \
      -o "$tmp" github.com/jaegertracing/jaeger/cmd/jaeger); then
    rm -f "$tmp"
    return 1
  fi
  mv -f "$tmp" "$bin"
}

jaeger_probe() { http_ok "http://127.0.0.1:$RIPPLE_JAEGER_QUERY_PORT/api/services"; }

jaeger_start() {
  local dir port; dir="$(comp_dir jaeger)"
  mkdir -p "$dir"
  for port in "$RIPPLE_JAEGER_OTLP_GRPC_PORT" "$RIPPLE_JAEGER_OTLP_HTTP_PORT" "$RIPPLE_JAEGER_QUERY_PORT"; do
    if tcp_open "$port"; then log "jaeger: 127.0.0.1:$port is already taken by another process"; return 1; fi
  done
  # The committed config reads its ports from the environment (${env:VAR}); `env` execs the
  # binary, so the recorded pid is Jaeger's own.
  start_proc jaeger env \
    RIPPLE_JAEGER_OTLP_GRPC_PORT="$RIPPLE_JAEGER_OTLP_GRPC_PORT" \
    RIPPLE_JAEGER_OTLP_HTTP_PORT="$RIPPLE_JAEGER_OTLP_HTTP_PORT" \
    RIPPLE_JAEGER_QUERY_PORT="$RIPPLE_JAEGER_QUERY_PORT" \
    "$(jaeger_bin)" --config "file:$STACK_DIR/build/jaeger/config.yaml"
  wait_ready jaeger 30 jaeger_probe
}

jaeger_env() {
  echo "RIPPLE_OTLP_ENDPOINT=http://127.0.0.1:$RIPPLE_JAEGER_OTLP_GRPC_PORT"
  echo "RIPPLE_OTLP_HTTP_ENDPOINT=http://127.0.0.1:$RIPPLE_JAEGER_OTLP_HTTP_PORT"
  echo "RIPPLE_JAEGER_QUERY_URL=http://127.0.0.1:$RIPPLE_JAEGER_QUERY_PORT"
}
