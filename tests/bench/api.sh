#!/usr/bin/env bash
# API load benchmark: single-record and batched posts with Basic auth over loopback, at fixed
# offered rates and at saturation. Prints requests/s, records/s and latency percentiles; writes
# target/bench/api.json (SQLite spool) or, with BENCH_KAFKA=1, target/bench/api-kafka.json
# (appends to a Kafka broker started by tests/services/kafka.sh). See the bench's header for the
# other BENCH_* variables.
set -euo pipefail
cd "$(dirname "$0")/../.."
rustup target add wasm32-wasip2 >/dev/null
if [ -n "${BENCH_KAFKA:-}" ]; then
    tests/services/kafka.sh start
    export SLUICE_TEST_KAFKA="127.0.0.1:${SLUICE_KAFKA_PORT:-19092}"
else
    unset SLUICE_TEST_KAFKA
fi
exec cargo bench -p sluice-api --bench api_load "$@"
