#!/usr/bin/env bash
# Runs every benchmark in turn (plugin, API on the spool and on Kafka, start-up, end to end on
# Kafka+HDFS+Trino and embedded) and leaves their JSON under target/bench/. About 25 minutes.
set -euo pipefail
cd "$(dirname "$0")"
./plugin.sh
./api.sh
BENCH_KAFKA=1 ./api.sh
./startup.sh
./pipeline.sh
BENCH_EMBEDDED=1 BENCH_OUT="$(cd ../.. && pwd)/target/bench/pipeline-embedded.json" ./pipeline.sh
