#!/usr/bin/env bash
# Shared helpers for the local stack: paths, process supervision, readiness.
# Sourced by stack/stack and by every stack/components/*.sh file.
set -euo pipefail

STACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$STACK_DIR/.." && pwd)"
# Built binaries and downloaded jars live outside the checkout so clean clones reuse them.
RIPPLE_CACHE="${RIPPLE_CACHE:-$HOME/.cache/ripple}"
# Every process's pid, log and data live under one run directory.
RIPPLE_RUN="${RIPPLE_RUN:-$REPO_DIR/.stack}"
export RIPPLE_CACHE RIPPLE_RUN

# Ports (all bound to 127.0.0.1).
: "${RIPPLE_REDIS_PORT:=16379}"
: "${RIPPLE_KAFKA_PORT:=19092}"
: "${RIPPLE_KAFKA_CONTROLLER_PORT:=19093}"
# SASL_SSL listener (TLS + SASL PLAIN) beside the plaintext one, for the Kafka security settings.
: "${RIPPLE_KAFKA_SASL_PORT:=19094}"
: "${RIPPLE_ETCD_PORT:=12379}"
: "${RIPPLE_ETCD_PEER_PORT:=12380}"
: "${RIPPLE_APISERVER_PORT:=16443}"
: "${RIPPLE_JAEGER_OTLP_GRPC_PORT:=14317}"
: "${RIPPLE_JAEGER_OTLP_HTTP_PORT:=14318}"
: "${RIPPLE_JAEGER_QUERY_PORT:=16686}"
: "${RIPPLE_ENVOY_ADMIN_PORT:=19901}"
: "${RIPPLE_XDS_PORT:=18000}"

log() { printf '[stack %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

comp_dir() { echo "$RIPPLE_RUN/$1"; }
comp_pidfile() { echo "$RIPPLE_RUN/$1/pid"; }
comp_log() { echo "$RIPPLE_RUN/$1/log"; }
comp_data() { mkdir -p "$RIPPLE_RUN/$1/data"; echo "$RIPPLE_RUN/$1/data"; }

# pid_alive PID: true when PID exists and is not a zombie (an exited child not yet reaped).
pid_alive() {
  local state
  state="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
  [[ -n "$state" && "$state" != Z* ]]
}

# is_running NAME: true when NAME's recorded pid is alive.
is_running() {
  local pf; pf="$(comp_pidfile "$1")"
  [[ -f "$pf" ]] && pid_alive "$(cat "$pf")"
}

# start_proc NAME CMD...: start CMD detached in its own session, stdout+stderr to NAME's log.
start_proc() {
  local name="$1"; shift
  mkdir -p "$(comp_dir "$name")"
  local logf; logf="$(comp_log "$name")"
  printf '\n==== %s start: %s\n' "$(date -Is)" "$*" >>"$logf"
  setsid nohup "$@" >>"$logf" 2>&1 </dev/null &
  echo $! >"$(comp_pidfile "$name")"
}

# wait_ready NAME TIMEOUT_S PROBE_FN: poll PROBE_FN until it succeeds; on timeout or if the
# process dies, print the tail of the log and fail.
wait_ready() {
  local name="$1" timeout="$2" probe="$3"
  local deadline=$(( $(date +%s) + timeout ))
  while ! "$probe" >/dev/null 2>&1; do
    if ! is_running "$name"; then
      log "$name exited during start; last log lines:"; tail -n 40 "$(comp_log "$name")" >&2 || true
      return 1
    fi
    if (( $(date +%s) >= deadline )); then
      log "$name not ready after ${timeout}s; last log lines:"; tail -n 40 "$(comp_log "$name")" >&2 || true
      return 1
    fi
    sleep 0.2
  done
}

# stop_proc NAME: SIGTERM the recorded process group, wait, then SIGKILL. Only what we started.
stop_proc() {
  local name="$1" pf pid
  pf="$(comp_pidfile "$name")"
  [[ -f "$pf" ]] || return 0
  pid="$(cat "$pf")"
  if pid_alive "$pid"; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 200); do pid_alive "$pid" || break; sleep 0.1; done
    if pid_alive "$pid"; then
      log "$name did not stop in 20s, killing"; kill -KILL -- "-$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pf"
}

# tcp_open PORT: true when something listens on 127.0.0.1:PORT.
tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# http_ok URL: true on a 2xx answer.
http_ok() { curl -fsS -o /dev/null --max-time 2 "$@"; }

# apt_install PKG...: Debian packages, with one `apt-get update` per stack run.
apt_install() {
  if [[ -z "${_RIPPLE_APT_UPDATED:-}" ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    _RIPPLE_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}
