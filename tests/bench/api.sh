#!/usr/bin/env bash
# API load benchmark: single-record and batched posts with Basic auth over loopback.
# Prints requests/s, records/s and latency percentiles; writes target/bench/api.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
rustup target add wasm32-wasip2 >/dev/null
exec cargo bench -p sluice-api --bench api_load "$@"
