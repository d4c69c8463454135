#!/usr/bin/env bash
# redis_cluster (HA profile): Redis Cluster of 3 masters + 3 replicas from Debian's
# redis-server, on loopback ports RIPPLE_REDIS_CLUSTER_PORT .. +5 (cluster bus: each port
# + 10000). Each node is its own process (pid, log and data under
# $RIPPLE_RUN/redis_cluster-<i>/), AOF on, and nodes.conf kept in its data dir, so a restarted
# node rejoins the cluster (a restarted former master comes back as a replica of the replica
# that took over). The cluster is created once (`redis-cli --cluster create ... --cluster-replicas
# 1`); the component is ready when every node reports cluster_state:ok with all 16384 slots.

: "${RIPPLE_REDIS_CLUSTER_PORT:=17001}"
# A master unreachable this long is failed over to its replica (Redis's default: 15000).
: "${RIPPLE_REDIS_CLUSTER_NODE_TIMEOUT_MS:=3000}"
REDIS_CLUSTER_NODES=6

redis_cluster_port() { echo $(( RIPPLE_REDIS_CLUSTER_PORT + $1 - 1 )); }
redis_cluster_name() { echo "redis_cluster-$1"; }

redis_cluster_install() { redis_install; }

redis_cluster_cli() { local p="$1"; shift; redis-cli -h 127.0.0.1 -p "$p" "$@"; }

redis_cluster_node_up() {
  [[ "$(redis_cluster_cli "$(redis_cluster_port "$1")" ping 2>/dev/null)" == "PONG" ]]
}

# redis_cluster_formed: every node sees an ok cluster with every slot assigned.
redis_cluster_formed() {
  local i info
  for i in $(seq 1 "$REDIS_CLUSTER_NODES"); do
    info="$(redis_cluster_cli "$(redis_cluster_port "$i")" cluster info 2>/dev/null)" || return 1
    [[ "$info" == *"cluster_state:ok"* && "$info" == *"cluster_slots_assigned:16384"* ]] || return 1
  done
}

# redis_cluster_running: the stack's "is it up" for this component: every node's pid alive.
redis_cluster_running() {
  local i
  for i in $(seq 1 "$REDIS_CLUSTER_NODES"); do
    is_running "$(redis_cluster_name "$i")" || return 1
  done
}

redis_cluster_start_node() {
  local i="$1" name data port
  name="$(redis_cluster_name "$i")"; port="$(redis_cluster_port "$i")"
  is_running "$name" && return 0
  data="$(comp_data "$name")"
  start_proc "$name" redis-server --bind 127.0.0.1 --port "$port" \
    --cluster-enabled yes --cluster-config-file "$data/nodes.conf" \
    --cluster-node-timeout "$RIPPLE_REDIS_CLUSTER_NODE_TIMEOUT_MS" \
    --dir "$data" --appendonly yes --appendfsync everysec --save "" \
    --protected-mode yes --daemonize no --maxmemory 1gb --maxmemory-policy noeviction
  _REDIS_CLUSTER_PROBE_NODE="$i"
  wait_ready "$name" 20 redis_cluster_probe_node
}

redis_cluster_probe_node() { redis_cluster_node_up "$_REDIS_CLUSTER_PROBE_NODE"; }

redis_cluster_start() {
  local i addrs=() known
  for i in $(seq 1 "$REDIS_CLUSTER_NODES"); do
    redis_cluster_start_node "$i" || return 1
    addrs+=("127.0.0.1:$(redis_cluster_port "$i")")
  done
  # A node that knows no other node has never been part of a cluster: create it.
  known="$(redis_cluster_cli "$(redis_cluster_port 1)" cluster info | tr -d '\r' \
    | sed -n 's/^cluster_known_nodes://p')"
  if [[ "$known" == 1 ]]; then
    log "redis_cluster: creating the cluster (3 masters, 3 replicas) on ${addrs[*]}"
    redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes \
      >>"$(comp_log "$(redis_cluster_name 1)")" 2>&1 \
      || { log "redis_cluster: cluster create failed"; return 1; }
  fi
  local deadline=$(( $(date +%s) + 60 ))
  until redis_cluster_formed; do
    (( $(date +%s) < deadline )) || { log "redis_cluster: not ok after 60s"; return 1; }
    sleep 0.2
  done
}

redis_cluster_stop() {
  local i
  for ((i=REDIS_CLUSTER_NODES; i>=1; i--)); do stop_proc "$(redis_cluster_name "$i")"; done
}

redis_cluster_pids() {
  local i
  for i in $(seq 1 "$REDIS_CLUSTER_NODES"); do
    is_running "$(redis_cluster_name "$i")" && cat "$(comp_pidfile "$(redis_cluster_name "$i")")"
  done
  return 0
}

redis_cluster_env() {
  local i nodes=()
  for i in $(seq 1 "$REDIS_CLUSTER_NODES"); do nodes+=("127.0.0.1:$(redis_cluster_port "$i")"); done
  local IFS=,
  echo "RIPPLE_REDIS_URL=redis+cluster://${nodes[*]}"
  echo "RIPPLE_REDIS_CLUSTER_NODES=${nodes[*]}"
}
