#!/usr/bin/env bash
# Start-up benchmark: `sluice serve` (embedded default) until it listens and until /readyz says
# 200, with an empty and with a warm compile cache. Writes target/bench/startup.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
rustup target add wasm32-wasip2 >/dev/null
exec cargo bench -p sluice --bench startup "$@"
