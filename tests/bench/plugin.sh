#!/usr/bin/env bash
# Plugin transform benchmark: Wasm vs the same code native, per bundled plugin.
# Prints records/s and the ratio; writes target/bench/plugin.json. See the bench's header for
# the BENCH_* variables.
set -euo pipefail
cd "$(dirname "$0")/../.."
rustup target add wasm32-wasip2 >/dev/null
exec cargo bench -p sluice-runtime --bench plugin_transform "$@"
