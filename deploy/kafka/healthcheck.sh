#!/usr/bin/env bash
# Healthy means ready: the broker accepts a produce, acknowledged by every in-sync replica, to a
# topic of its own (made on the first check) that keeps a minute of data.
set -euo pipefail
java=(java -Xmx96m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto
    -Dlog4j2.configurationFile="$(dirname "$0")/log4j2.yaml" -cp "$KAFKA_LIBS/*")
server="${KAFKA_HEALTH_SERVER:-127.0.0.1:9092}"
topic=_sluice_health
marker="${TMPDIR:-/tmp}/.kafka-health-topic"
if [ ! -f "$marker" ]; then
    "${java[@]}" org.apache.kafka.tools.TopicCommand --bootstrap-server "$server" --create --if-not-exists \
        --topic "$topic" --partitions 1 --replication-factor 1 --config retention.ms=60000 >/dev/null
    touch "$marker"
fi
"${java[@]}" org.apache.kafka.tools.VerifiableProducer --bootstrap-server "$server" --topic "$topic" \
    --max-messages 1 --acks -1 2>/dev/null | grep -q '"name":"producer_send_success"'
