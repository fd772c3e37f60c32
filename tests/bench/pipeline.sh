#!/usr/bin/env bash
# End-to-end benchmark: `sluice simulate` -> API -> Kafka -> plugins -> Parquet on HDFS -> Trino,
# for BENCH_SECONDS (default 60) per run, median of BENCH_REPEATS (default 3). Starts Kafka, HDFS
# and Trino (tests/services); BENCH_EMBEDDED=1 uses the embedded spool and a local warehouse
# instead. Prints records/s accepted and end to end, API latency, acceptance -> visible in Trino,
# sluice's peak RSS and the CPU split; writes target/bench/pipeline.json. BENCH_TRINO=0 leaves
# Trino and its visibility probes out (Kafka and HDFS only, as docs/design.md's throughput target
# reads) and writes target/bench/pipeline-no-trino.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
rustup target add wasm32-wasip2 >/dev/null
if [ -z "${BENCH_EMBEDDED:-}" ]; then
    tests/services/kafka.sh start
    tests/services/hdfs.sh start
    export SLUICE_TEST_KAFKA="127.0.0.1:${SLUICE_KAFKA_PORT:-19092}"
    export SLUICE_TEST_HDFS="hdfs://127.0.0.1:${SLUICE_HDFS_PORT:-19000}"
    if [ "${BENCH_TRINO:-1}" = 0 ]; then
        unset SLUICE_TEST_TRINO
        export BENCH_OUT="${BENCH_OUT:-$PWD/target/bench/pipeline-no-trino.json}"
    else
        tests/services/trino.sh start
        export SLUICE_TEST_TRINO="http://127.0.0.1:${SLUICE_TRINO_PORT:-19080}"
    fi
else
    unset SLUICE_TEST_KAFKA SLUICE_TEST_HDFS SLUICE_TEST_TRINO
fi
exec cargo bench -p sluice --bench pipeline "$@"
