#!/usr/bin/env bash
# A real single-node Apache Kafka (KRaft: broker + controller in one process) for integration
# tests, assembled from Maven Central jars (cached under ~/.cache/sluice) — no Docker, no tarball —
# and run by deploy/kafka/run.sh with deploy/kafka/server.properties, as the compose image runs it.
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
deploy="$here/../../deploy/kafka"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$deploy/pom.xml")"
libs="$cache/kafka-$version/libs"
pidfile="$run/kafka.pid"

start() {
    already_up "kafka:" "$pidfile" "$port" && return
    fetch_jars kafka "$deploy/pom.xml" "$libs"
    mkdir -p "$run"
    # A test and bench broker: every run makes topics of its own, so keep a quarter of an hour of
    # data, not the deployment's week (a pipeline bench run writes ~2 GB; an hour of back-to-back
    # runs once filled the disk).
    echo "log.retention.ms=900000" >"$run/overrides.properties"
    # The broker the compose image runs, with its settings (deploy/kafka/server.properties), on
    # loopback addresses.
    spawn "$pidfile" "$run/kafka.log" env KAFKA_LIBS="$libs" KAFKA_STATE="$run" \
        KAFKA_LISTENERS="PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port" \
        KAFKA_ADVERTISED_LISTENERS="PLAINTEXT://127.0.0.1:$port" KAFKA_CONTROLLER="127.0.0.1:$controller_port" \
        KAFKA_OVERRIDES="$run/overrides.properties" SLUICE_ADOPT_UNMARKED=1 "$deploy/run.sh"
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
