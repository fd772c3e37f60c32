#!/usr/bin/env bash
# Connection abuse benchmark: 2,000 idle and 200 slowloris connections from one address
# (127.0.0.2) against `sluice serve` (release build, embedded defaults) started under the usual
# open-file limit of 1,024, while a good client on 127.0.0.1 posts records; prints the good
# client's latency percentiles and how the attacker's connections ended (tests/bench/abuse.py).
#
# Usage: tests/bench/abuse.sh [--idle N] [--slowloris N] [--seconds S]
set -euo pipefail
cd "$(dirname "$0")/../.."
rustup target add wasm32-wasip2 >/dev/null
cargo build --release -p sluice >/dev/null
sluice="$PWD/target/release/sluice"
data="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null && wait "$server" 2>/dev/null; rm -rf "$data"' EXIT
export SLUICE_PASSWORD='abuse-bench-password'
printf '%s\n' "$SLUICE_PASSWORD" | "$sluice" --data-dir "$data" users add bench --password-stdin >/dev/null
"$sluice" --data-dir "$data" grants add bench patients >/dev/null
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# The usual limit of a login shell or a systemd service without LimitNOFILE.
(ulimit -Sn 1024 && ulimit -Hn 1024 && exec "$sluice" --data-dir "$data" serve --listen "127.0.0.1:$port" >"$data/serve.out" 2>"$data/serve.err") &
server=$!
until curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do sleep 0.2; done
# The attacker's own limit must not be what stops it.
ulimit -n "$(ulimit -Hn)"
python3 tests/bench/abuse.py "http://127.0.0.1:$port" bench "$SLUICE_PASSWORD" "$@"
