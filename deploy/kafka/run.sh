#!/usr/bin/env bash
# Runs one Kafka broker (KRaft: broker and controller in one process) in the foreground, logging
# to stdout: the command of the compose image and what tests/services/kafka.sh starts.
#
# Settings: server.properties beside this script, then what differs per deployment, from the
# environment:
#   KAFKA_LIBS                 the jars (fetched with pom.xml beside this script)
#   KAFKA_STATE                a writable directory: data/ (formatted on first start),
#                              server.properties (written here at each start), the volume marker
#   KAFKA_LISTENERS            e.g. PLAINTEXT://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093
#   KAFKA_ADVERTISED_LISTENERS e.g. PLAINTEXT://kafka:9092
#   KAFKA_CONTROLLER           the controller's address, e.g. kafka:9093
#   KAFKA_OVERRIDES            optional: a properties file appended last
#   KAFKA_HEAP                 optional: -Xmx (default 512m)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=deploy/volume.sh
. "$here/../volume.sh"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")"
mkdir -p "$KAFKA_STATE/data"
claim_volume kafka "$KAFKA_STATE" "kafka $version"

props="$KAFKA_STATE/server.properties"
{
    cat "$here/server.properties"
    echo "listeners=$KAFKA_LISTENERS"
    echo "advertised.listeners=$KAFKA_ADVERTISED_LISTENERS"
    echo "controller.quorum.bootstrap.servers=$KAFKA_CONTROLLER"
    echo "log.dirs=$KAFKA_STATE/data"
    if [ -n "${KAFKA_OVERRIDES:-}" ]; then cat "$KAFKA_OVERRIDES"; fi
} >"$props"

# The garbage collector settings of Kafka's own start script (kafka-run-class.sh): G1 aiming at
# 20 ms pauses. With the JVM's default 200 ms goal, young collections under the API bench took
# ~25 ms each (jstat), stalling every append meanwhile; with these, ~14 ms.
java=(java -Xms256m "-Xmx${KAFKA_HEAP:-512m}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent
    -Dlog4j2.configurationFile="$here/log4j2.yaml" -cp "$KAFKA_LIBS/*")
if [ ! -f "$KAFKA_STATE/data/meta.properties" ]; then
    cluster_id="$("${java[@]}" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)"
    "${java[@]}" kafka.tools.StorageTool format --standalone -t "$cluster_id" -c "$props" >/dev/null
fi
exec "${java[@]}" kafka.Kafka "$props"
