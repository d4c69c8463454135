#!/usr/bin/env bash
# redis: Debian's redis-server, one instance on loopback, AOF on so a restart keeps the data.

redis_install() {
  command -v redis-server >/dev/null && return 0
  log "redis: installing Debian redis-server"
  apt_install redis-server
}

redis_probe() { [[ "$(redis-cli -h 127.0.0.1 -p "$RIPPLE_REDIS_PORT" ping 2>/dev/null)" == "PONG" ]]; }

redis_start() {
  local data; data="$(comp_data redis)"
  start_proc redis redis-server --bind 127.0.0.1 --port "$RIPPLE_REDIS_PORT" \
    --dir "$data" --appendonly yes --appendfsync everysec --save "" \
    --protected-mode yes --daemonize no --maxmemory 2gb --maxmemory-policy noeviction
  wait_ready redis 20 redis_probe
}

redis_env() { echo "RIPPLE_REDIS_URL=redis://127.0.0.1:$RIPPLE_REDIS_PORT/0"; }
