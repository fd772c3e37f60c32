#!/usr/bin/env bash
# A real single-node Apache Kafka (KRaft: broker + controller in one process) for integration
# tests, assembled from Maven Central jars (cached under ~/.cache/sluice) — no Docker, no tarball.
#
#   tests/services/kafka.sh start    # download once, format, start, wait until it accepts connections
#   tests/services/kafka.sh stop     # stop it (SIGTERM, then SIGKILL after 20 s)
#   tests/services/kafka.sh status
#
# Environment: SLUICE_KAFKA_PORT (default 19092; the controller uses PORT+1),
# SLUICE_SERVICES_DIR (state and logs, default ~/.cache/sluice/run).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=tests/services/lib.sh
. "$here/lib.sh"
port="${SLUICE_KAFKA_PORT:-19092}"
controller_port=$((port + 1))
run="${SLUICE_SERVICES_DIR:-$cache/run}/kafka-$port"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/kafka/pom.xml")"
libs="$cache/kafka-$version/libs"
pidfile="$run/kafka.pid"

start() {
    already_up "kafka:" "$pidfile" "$port" && return
    fetch_jars kafka "$here/kafka/pom.xml" "$libs"
    mkdir -p "$run/data"
    cat > "$run/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$run/data
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
# A test and bench broker: every run makes topics of its own, so keep a quarter of an hour of
# data, not Kafka's week (a pipeline bench run writes ~2 GB; an hour of back-to-back runs once
# filled the disk).
log.retention.ms=900000
log.segment.bytes=67108864
log.retention.check.interval.ms=60000
PROPS
    # The garbage collector settings of Kafka's own start script (kafka-run-class.sh): G1 aiming
    # at 20 ms pauses. With the JVM's default 200 ms goal, young collections under the API bench
    # took ~25 ms each (jstat), stalling every append meanwhile; now ~14 ms.
    local java=(java -Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
        -XX:+ExplicitGCInvokesConcurrent -Dlog4j2.configurationFile="$here/kafka/log4j2.yaml" -cp "$libs/*")
    if [ ! -f "$run/data/meta.properties" ]; then
        local cluster_id
        cluster_id="$("${java[@]}" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)"
        "${java[@]}" kafka.tools.StorageTool format --standalone -t "$cluster_id" -c "$run/server.properties" >"$run/format.log" 2>&1
    fi
    spawn "$pidfile" "$run/kafka.log" "${java[@]}" kafka.Kafka "$run/server.properties"
    wait_listening kafka "$pidfile" "$port" "$run/kafka.log"
    check_daemon kafka: "$pidfile" "$port"
    echo "kafka: listening on 127.0.0.1:$port (pid $(cat "$pidfile"), logs $run/kafka.log)"
}

stop() {
    stop_pid kafka: "$pidfile"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) if pid_running "$pidfile"; then echo "kafka: running on 127.0.0.1:$port"; else echo "kafka: not running"; exit 1; fi ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
