#!/usr/bin/env bash
# End-to-end benchmark: clients -> API -> log -> stream -> committed Parquet. Starts Kafka and HDFS
# (tests/services) and runs against them; BENCH_EMBEDDED=1 uses the embedded spool and a local
# warehouse instead. Prints records/s end to end, API latency percentiles and peak RSS.
set -euo pipefail
cd "$(dirname "$0")/../.."
rustup target add wasm32-wasip2 >/dev/null
if [ -z "${BENCH_EMBEDDED:-}" ]; then
    tests/services/kafka.sh start
    tests/services/hdfs.sh start
    export SLUICE_TEST_KAFKA="127.0.0.1:${SLUICE_KAFKA_PORT:-19092}"
    export SLUICE_TEST_HDFS="hdfs://127.0.0.1:${SLUICE_HDFS_PORT:-19000}"
fi
exec cargo bench -p sluice --bench pipeline "$@"
