#!/usr/bin/env bash
# The burst figure (issue 18): a fresh embedded `sluice serve` with `stream.roll_interval` 1 s
# takes `sluice simulate --count 1200000 --batch 1000 --connections 8`; records/s from the first
# request to the last row committed (the Parquet footers and `sluice_rows_committed_total` both
# checked against the accepted count), median of BENCH_REPEATS (default 3). Writes
# target/bench/burst.json. BENCH_COUNT changes the burst's size.
set -euo pipefail
cd "$(dirname "$0")/../.."
export BENCH_EMBEDDED=1
export BENCH_COUNT="${BENCH_COUNT:-1200000}"
export BENCH_ROLL_MS="${BENCH_ROLL_MS:-1000}"
export BENCH_BATCH=1000 BENCH_CONNECTIONS=8
export BENCH_OUT="${BENCH_OUT:-$PWD/target/bench/burst.json}"
exec tests/bench/pipeline.sh "$@"
