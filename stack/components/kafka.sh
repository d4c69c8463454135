#!/usr/bin/env bash
# kafka: Apache Kafka 4.x in KRaft mode, one node that is both broker and controller, on loopback.
# The jars come from Maven Central (stack/build/kafka/pom.xml, copied by maven-dependency-plugin)
# into $RIPPLE_CACHE/kafka-<version>/lib and run with the machine's Java 17+.
#
# Startup speed: install also trains an AppCDS archive (a dynamic class-data-sharing archive of
# the classes a broker loads while starting) for the current JDK; with it a start needs about
# 40% less CPU. Without it (e.g. another JDK) the broker starts the same way, only slower.

: "${RIPPLE_KAFKA_VERSION:=4.3.1}"
# Sized for a 2-core / 24 GiB dev machine; override with RIPPLE_KAFKA_HEAP_OPTS.
: "${RIPPLE_KAFKA_HEAP_OPTS:=-Xms256m -Xmx1g}"
# Extra JVM flags for the broker (e.g. a debugger or GC logging); empty by default.
: "${RIPPLE_KAFKA_JVM_OPTS:=}"
# The SASL_SSL listener's test user (SASL PLAIN and SCRAM-SHA-512, one password, generated once
# per run dir).
: "${RIPPLE_KAFKA_SASL_USER:=ripple}"

kafka_home() { echo "$RIPPLE_CACHE/kafka-$RIPPLE_KAFKA_VERSION"; }
kafka_java() { echo "${JAVA_HOME:+$JAVA_HOME/bin/}java"; }
kafka_log4j() { echo "$STACK_DIR/build/kafka/log4j2.yaml"; }

# The jar cache is keyed by the Kafka version (directory name) and by the pom's content (stamp),
# so a version bump or a pom change re-copies the jars.
kafka_build_stamp() {
  { echo "$RIPPLE_KAFKA_VERSION"; cat "$STACK_DIR/build/kafka/pom.xml"; } | sha256sum | cut -c1-16
}

# The CDS archive is only valid for the JVM build that wrote it: key it by that JVM's files.
kafka_cds_archive() {
  local java jvm
  java="$(readlink -f "$(command -v "$(kafka_java)")")" || return 1
  jvm="$(dirname "$java")/../lib/server/libjvm.so"
  [[ -f "$jvm" ]] || jvm="$java"
  echo "$(kafka_home)/cds-$(stat -L -c '%n %s %Y' "$java" "$jvm" | sha256sum | cut -c1-12).jsa"
}

# JVM flags shared by the broker and the CDS training run (the archive needs the same classpath).
kafka_jvm_flags() {
  # shellcheck disable=SC2086  # the *_OPTS are lists of JVM flags
  printf '%s\n' $RIPPLE_KAFKA_HEAP_OPTS \
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true -Djava.net.preferIPv4Stack=true \
    -Dlog4j2.configurationFile="$(kafka_log4j)" \
    -cp "$(kafka_home)/lib/*"
}

kafka_install() {
  local home stamp tmp old
  home="$(kafka_home)"
  stamp="$(kafka_build_stamp)"
  if [[ ! -f "$home/.stamp" || "$(cat "$home/.stamp")" != "$stamp" ]]; then
    command -v mvn >/dev/null || die "kafka: mvn (Maven) is needed to fetch the Kafka jars"
    log "kafka: fetching Apache Kafka $RIPPLE_KAFKA_VERSION jars from Maven Central"
    mkdir -p "$RIPPLE_CACHE"
    # Leftovers of interrupted installs (hidden, so never mistaken for a cached build).
    find "$RIPPLE_CACHE" -maxdepth 1 -name '.kafka-*' -mmin +60 -exec rm -rf {} + 2>/dev/null || true
    tmp="$(mktemp -d "$RIPPLE_CACHE/.kafka-$RIPPLE_KAFKA_VERSION.XXXXXX")"
    chmod 755 "$tmp"
    # copy-dependencies on a pom-packaged project writes only to -DoutputDirectory (no target/).
    if ! mvn -B -q -f "$STACK_DIR/build/kafka/pom.xml" -Dkafka.version="$RIPPLE_KAFKA_VERSION" \
        dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp/lib" \
        >"$tmp/mvn.log" 2>&1; then
      tail -n 30 "$tmp/mvn.log" >&2; rm -rf "$tmp"
      die "kafka: mvn could not fetch the Kafka $RIPPLE_KAFKA_VERSION jars"
    fi
    rm -f "$tmp/mvn.log"
    [[ -f "$tmp/lib/kafka_2.13-$RIPPLE_KAFKA_VERSION.jar" ]] \
      || { rm -rf "$tmp"; die "kafka: kafka_2.13 jar missing after mvn"; }
    echo "$stamp" >"$tmp/.stamp"
    if [[ -e "$home" ]]; then
      old="$(mktemp -d "$RIPPLE_CACHE/.kafka-old.XXXXXX")"
      mv "$home" "$old/"; mv "$tmp" "$home"; rm -rf "$old"
    else
      mv "$tmp" "$home"
    fi
    log "kafka: $(find "$home/lib" -name '*.jar' | wc -l) jars in $home/lib"
  fi
  local cds; cds="$(kafka_cds_archive)" || die "kafka: no java found (Kafka needs Java 17+)"
  [[ -f "$cds" ]] || kafka_train_cds "$cds"
}

# kafka_train_cds ARCHIVE: start a throwaway broker on free ports with -XX:ArchiveClassesAtExit,
# wait until it is up, SIGTERM it (the JVM writes the archive while exiting), and move the archive
# into place only if that all worked. A failure only costs startup speed, so it is not fatal.
kafka_train_cds() {
  local archive="$1" tmp port cport pid n=0 ok="" flags
  log "kafka: training a class-data-sharing archive for faster broker starts"
  tmp="$(mktemp -d "$RIPPLE_CACHE/.kafka-cds.XXXXXX")"
  port="$(kafka_free_port)"; cport="$(kafka_free_port "$port")"
  RIPPLE_KAFKA_PORT="$port" RIPPLE_KAFKA_CONTROLLER_PORT="$cport" \
    kafka_write_config "$tmp" "$tmp/data"
  if kafka_run kafka.tools.StorageTool format --cluster-id "$(kafka_new_cluster_id)" \
      --config "$tmp/server.properties" >"$tmp/log" 2>&1; then
    mapfile -t flags < <(kafka_jvm_flags)
    "$(kafka_java)" "${flags[@]}" -XX:ArchiveClassesAtExit="$tmp/kafka.jsa" -Xlog:cds*=off \
      kafka.Kafka "$tmp/server.properties" >>"$tmp/log" 2>&1 </dev/null &
    pid=$!
    while kill -0 "$pid" 2>/dev/null && (( n++ < 600 )); do
      if grep -q 'Kafka Server started' "$tmp/log"; then ok=1; break; fi
      sleep 0.2
    done
    kill -TERM "$pid" 2>/dev/null || true
    n=0; while kill -0 "$pid" 2>/dev/null && (( n++ < 300 )); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; ok=""; fi
    wait "$pid" 2>/dev/null || true
  fi
  if [[ -n "$ok" && -s "$tmp/kafka.jsa" ]]; then
    mv "$tmp/kafka.jsa" "$archive"
    log "kafka: CDS archive ready ($(du -m "$archive" | cut -f1) MiB)"
  else
    log "kafka: WARNING: CDS training failed (the broker still works, it only starts slower); log tail:"
    tail -n 15 "$tmp/log" >&2 || true
  fi
  rm -rf "$tmp"
}

# kafka_free_port [NOT]: a free TCP port on 127.0.0.1 (other than NOT) for the training run.
kafka_free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$(( 20000 + RANDOM % 30000 ))
    [[ "$p" != "${1:-}" ]] && ! tcp_open "$p" && { echo "$p"; return 0; }
  done
  return 1
}

# kafka_run CLASS ARGS...: run a Kafka main class (a tool) from the cached jars.
kafka_run() {
  local cls="$1"; shift
  "$(kafka_java)" -cp "$(kafka_home)/lib/*" -Dlog4j2.configurationFile="$(kafka_log4j)" \
    -Djava.awt.headless=true "$cls" "$@"
}

# kafka_tls_dir: the SASL_SSL listener's CA, server key+cert and the test user's password.
kafka_tls_dir() { echo "$(comp_dir kafka)/tls"; }

# kafka_ensure_tls DIR: a CA (ca.crt), a server certificate for 127.0.0.1/localhost signed by
# it (server.pem: PKCS#8 key + certificate, Kafka's PEM keystore) and the test user's password
# (sasl-password). Made once and kept, so clients' files stay valid across restarts.
kafka_ensure_tls() {
  local dir="$1"
  [[ -s "$dir/ca.crt" && -s "$dir/server.pem" && -s "$dir/sasl-password" ]] && return 0
  command -v openssl >/dev/null || { log "kafka: openssl is needed for the SASL_SSL listener"; return 1; }
  mkdir -p "$dir"; chmod 700 "$dir"
  (
    cd "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -subj "/CN=ripple local Kafka CA" \
      -keyout ca.key -out ca.crt
    openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=127.0.0.1" \
      -keyout server.key -out server.csr
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 \
      -days 3650 -extfile server.ext -out server.crt
    openssl pkcs8 -topk8 -nocrypt -in server.key -out server.pk8
    cat server.pk8 server.crt >server.pem
    rm -f server.csr server.ext server.pk8 ca.srl
    head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' >sasl-password
    chmod 600 ca.key server.key server.pem sasl-password
  ) >/dev/null 2>&1 || { log "kafka: generating the SASL_SSL listener's certificates failed"; return 1; }
}

# kafka_write_config DIR DATA_DIR [TLS_DIR]: write DIR/server.properties for the current ports.
# With TLS_DIR (made by kafka_ensure_tls) the broker also gets a SASL_SSL listener on
# RIPPLE_KAFKA_SASL_PORT (TLS + SASL PLAIN or SCRAM-SHA-512, user RIPPLE_KAFKA_SASL_USER:
# kafka_ensure_scram_user adds its SCRAM credential once the broker is up); the PLAINTEXT
# listener stays the inter-broker and default client listener.
kafka_write_config() {
  local dir="$1" data="$2" tls="${3:-}" tmp
  local listeners="PLAINTEXT://127.0.0.1:$RIPPLE_KAFKA_PORT"
  local advertised="PLAINTEXT://127.0.0.1:$RIPPLE_KAFKA_PORT"
  local protocols="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
  if [[ -n "$tls" ]]; then
    listeners+=",SASL_SSL://127.0.0.1:$RIPPLE_KAFKA_SASL_PORT"
    advertised+=",SASL_SSL://127.0.0.1:$RIPPLE_KAFKA_SASL_PORT"
    protocols+=",SASL_SSL:SASL_SSL"
  fi
  tmp="$dir/server.properties.tmp"
  (umask 077 && : >"$tmp")  # it holds the test user's password
  cat >"$tmp" <<EOF
# Generated by stack/components/kafka.sh on every start; edit that file, not this one.
process.roles=broker,controller
node.id=1
# Static one-voter quorum: the controller's address comes from this file on every start, so
# changing RIPPLE_KAFKA_CONTROLLER_PORT keeps working with existing data.
controller.quorum.voters=1@127.0.0.1:$RIPPLE_KAFKA_CONTROLLER_PORT
listeners=$listeners,CONTROLLER://127.0.0.1:$RIPPLE_KAFKA_CONTROLLER_PORT
advertised.listeners=$advertised
listener.security.protocol.map=$protocols
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$data

# One node: every internal topic has one replica.
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=12
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=12
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=12

# ripple keys events by tenant: enough partitions to spread tenants over translators.
num.partitions=12
auto.create.topics.enable=true
delete.topic.enable=true
# Consumer groups form at once instead of waiting 3 s for more members (tests start/stop often).
group.initial.rebalance.delay.ms=0
# The translators' group may take a session timeout below the 6 s default minimum, for a
# takeover after kill -9 within a few seconds (docs/deploy.md "The translators' consumer group").
group.min.session.timeout.ms=2000

# Message size: a Kubernetes object may be ~1.5 MB (etcd's request limit), Kafka's default is
# 1 MiB. New topics take 2 MiB record batches (compressed; ripple_common.kafka_sizes), and
# replication fetches as much. The watcher also raises ripple.events' own max.message.bytes at
# start (docs/deploy.md "Message size").
message.max.bytes=2097152
replica.fetch.max.bytes=2097152

# 2 cores: fewer threads than the defaults (3 network, 8 io).
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=2
EOF
  if [[ -n "$tls" ]]; then
    cat >>"$tmp" <<EOF

# SASL_SSL listener: TLS with the run dir's own CA; SASL PLAIN (users in the JAAS line) or
# SCRAM-SHA-512 (credentials in the cluster metadata) for one test user.
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$tls/server.pem
listener.name.sasl_ssl.ssl.client.auth=none
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$RIPPLE_KAFKA_SASL_USER="$(cat "$tls/sasl-password")";
EOF
  fi
  mv "$tmp" "$dir/server.properties"
}

# A random cluster id in Kafka's Uuid text form (16 bytes, base64url without padding). Never
# one starting with "-" (1 in 64): kafka-storage's argument parser takes it for an option
# ("--cluster-id: expected one argument") and the stack fails to start; Kafka's own
# Uuid.randomUuid() draws again in that case too.
kafka_new_cluster_id() {
  local id
  while :; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    [[ $id == -* ]] || break
  done
  printf '%s\n' "$id"
}

# Readiness: the broker logged "Kafka Server started" during this start (not an earlier one in
# the same log file) and answers a Kafka ApiVersions request on its client port with no error.
kafka_probe() {
  tail -c "+$(( ${_KAFKA_LOG_OFFSET:-0} + 1 ))" "$(comp_log kafka)" 2>/dev/null \
    | grep -q 'Kafka Server started' || return 1
  kafka_api_versions_ok || return 1
  ! kafka_sasl_enabled || tcp_open "$RIPPLE_KAFKA_SASL_PORT"
}

# kafka_sasl_enabled: the broker's current config has the SASL_SSL listener (a broker started
# before it existed keeps running without one until restarted).
kafka_sasl_enabled() {
  grep -q '^listeners=.*SASL_SSL://' "$(comp_dir kafka)/server.properties" 2>/dev/null
}

# kafka_api_versions_ok: send ApiVersions v0 (api_key 18, correlation id 1, client id "probe")
# and expect the response header to carry correlation id 1 and error_code 0.
kafka_api_versions_ok() {
  local reply
  reply="$(timeout 3 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "\x00\x00\x00\x0f\x00\x12\x00\x00\x00\x00\x00\x01\x00\x05probe" >&3
    head -c 10 <&3 | od -An -tx1
  ' _ "$RIPPLE_KAFKA_PORT" 2>/dev/null)" || return 1
  # bytes 0-3: frame size; 4-7: correlation id; 8-9: error_code.
  reply="$(echo $reply)"  # squeeze od's spacing
  [[ "${reply#?? ?? ?? ?? }" == "00 00 00 01 00 00" ]]
}

kafka_start() {
  local dir data logf cds flags
  dir="$(comp_dir kafka)"; mkdir -p "$dir"
  data="$(comp_data kafka)"
  logf="$(comp_log kafka)"
  kafka_ensure_tls "$(kafka_tls_dir)" || return 1
  kafka_write_config "$dir" "$data" "$(kafka_tls_dir)"
  if [[ ! -f "$data/meta.properties" ]]; then
    log "kafka: formatting storage in $data"
    kafka_run kafka.tools.StorageTool format --ignore-formatted \
      --cluster-id "$(kafka_new_cluster_id)" --config "$dir/server.properties" >>"$logf" 2>&1 \
      || { log "kafka: storage format failed; last log lines:"; tail -n 20 "$logf" >&2; return 1; }
  fi
  mapfile -t flags < <(kafka_jvm_flags)
  if cds="$(kafka_cds_archive)" && [[ -f "$cds" ]]; then flags+=("-XX:SharedArchiveFile=$cds"); fi
  _KAFKA_LOG_OFFSET="$(stat -c %s "$logf" 2>/dev/null || echo 0)"
  # shellcheck disable=SC2086  # RIPPLE_KAFKA_JVM_OPTS is a list of JVM flags
  start_proc kafka "$(kafka_java)" "${flags[@]}" $RIPPLE_KAFKA_JVM_OPTS \
    kafka.Kafka "$dir/server.properties"
  wait_ready kafka 90 kafka_probe || return 1
  kafka_ensure_scram_user "$data" "$(kafka_tls_dir)"
}

# kafka_ensure_scram_user DATA_DIR TLS_DIR: the test user's SCRAM-SHA-512 credential lives in
# the cluster metadata (kept in DATA_DIR), so it is added over the PLAINTEXT listener once per
# data dir and password (a marker file records it; a JVM tool run costs a few CPU seconds).
kafka_ensure_scram_user() {
  local data="$1" tls="$2" marker stamp
  marker="$data/.ripple-scram-user"
  stamp="$({ echo "$RIPPLE_KAFKA_SASL_USER"; cat "$tls/sasl-password"; } | sha256sum | cut -c1-16)"
  [[ -f "$marker" && "$(cat "$marker")" == "$stamp" ]] && return 0
  if ! kafka_run kafka.admin.ConfigCommand --bootstrap-server "127.0.0.1:$RIPPLE_KAFKA_PORT" \
      --alter --entity-type users --entity-name "$RIPPLE_KAFKA_SASL_USER" \
      --add-config "SCRAM-SHA-512=[iterations=8192,password=$(cat "$tls/sasl-password")]" \
      >>"$(comp_log kafka)" 2>&1; then
    log "kafka: adding the SCRAM-SHA-512 user failed; last log lines:"; tail -n 20 "$(comp_log kafka)" >&2
    return 1
  fi
  echo "$stamp" >"$marker"
}

kafka_env() {
  echo "RIPPLE_KAFKA_BOOTSTRAP=127.0.0.1:$RIPPLE_KAFKA_PORT"
  if kafka_sasl_enabled; then
    local tls; tls="$(kafka_tls_dir)"
    echo "RIPPLE_KAFKA_SASL_BOOTSTRAP=127.0.0.1:$RIPPLE_KAFKA_SASL_PORT"
    echo "RIPPLE_KAFKA_SASL_MECHANISMS=SCRAM-SHA-512,PLAIN"
    echo "RIPPLE_KAFKA_SASL_USERNAME=$RIPPLE_KAFKA_SASL_USER"
    echo "RIPPLE_KAFKA_SASL_PASSWORD_FILE=$tls/sasl-password"
    echo "RIPPLE_KAFKA_CA_FILE=$tls/ca.crt"
  fi
}
