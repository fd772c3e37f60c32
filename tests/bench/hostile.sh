#!/usr/bin/env bash
# Hostile plugin benchmark: clients hammer a hostile test plugin's source through the API of the
# release binary while a good client posts to lab_results; prints the good client's answers and
# latency (quiet first, then under attack), the attackers' answers, and the server's peak RSS.
#
# Usage: tests/bench/hostile.sh [memory-bomb|endless-loop] [ATTACKERS] [SECONDS]
#   memory-bomb (default 16 attackers): every request allocates without bound in `split`
#   endless-loop (default 6 attackers): every request spins in `split` until the call timeout
set -euo pipefail
cd "$(dirname "$0")/../.."
plugin="${1:-memory-bomb}"
case "$plugin" in
    memory-bomb) body='"bomb-in-split"'; attackers="${2:-16}" ;;
    endless-loop) body='"spin"'; attackers="${2:-6}" ;;
    *) echo "usage: $0 [memory-bomb|endless-loop] [ATTACKERS] [SECONDS]" >&2; exit 2 ;;
esac
seconds="${3:-25}"
rustup target add wasm32-wasip2 >/dev/null
cargo build --release -p sluice >/dev/null
cargo build -p sluice-test-plugins >/dev/null   # builds the test plugins for wasm32-wasip2
wasm="$(find target/plugin-build -path '*wasm32-wasip2*' -name "test_${plugin//-/_}.wasm" | head -n 1)"
sluice="$PWD/target/release/sluice"
data="$(mktemp -d)"
mkdir -p "$data/plugins"
cp "$wasm" "$data/plugins/$plugin.wasm"
trap 'kill "$server" 2>/dev/null && wait "$server" 2>/dev/null; rm -rf "$data"' EXIT
export SLUICE_PASSWORD='hostile-bench-password'
printf '%s\n' "$SLUICE_PASSWORD" | "$sluice" --data-dir "$data" users add bench --password-stdin >/dev/null
"$sluice" --data-dir "$data" grants add bench "$plugin" >/dev/null
"$sluice" --data-dir "$data" grants add bench lab_results >/dev/null
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$sluice" --data-dir "$data" serve --listen "127.0.0.1:$port" >"$data/serve.out" 2>"$data/serve.err" &
server=$!
until curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do sleep 0.2; done
url="http://127.0.0.1:$port/v1/sources"

good() {
    local end=$((SECONDS + seconds))
    while [ $SECONDS -lt $end ]; do
        curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -u "bench:$SLUICE_PASSWORD" \
            -H 'content-type: application/json' --data-binary '{"PatientID":"p1","LabName":"x"}' "$url/lab_results/records"
        sleep 0.05
    done
}
summary() {
    sort -k2 -n "$1" | awk '{ n++; t[n] = $2; s[$1]++ } END {
        printf "answers:"; for (k in s) printf " %s x%d", k, s[k];
        printf "; latency median %.1f ms, p99 %.1f ms, max %.1f ms\n", t[int(n/2)+1]*1000, t[int(n*0.99)+1]*1000, t[n]*1000 }'
}
good >"$data/quiet.log"
echo "good client, quiet:        $(summary "$data/quiet.log")"
for i in $(seq "$attackers"); do
    (
        end=$((SECONDS + seconds))
        while [ $SECONDS -lt $end ]; do
            curl -s -o /dev/null -w '%{http_code}\n' -u "bench:$SLUICE_PASSWORD" \
                -H 'content-type: application/json' --data-binary "$body" "$url/$plugin/records"
        done
    ) >"$data/attacker-$i.log" &
done
good >"$data/attack.log"
wait $(jobs -p | grep -v "^$server$") 2>/dev/null || true
echo "good client, under attack: $(summary "$data/attack.log")"
echo "$attackers attackers on $plugin: $(cat "$data"/attacker-*.log | sort | uniq -c | awk '{ printf "%s x%d  ", $2, $1 }')"
echo "server peak RSS: $(awk '/VmHWM/ { printf "%.0f MB", $2 / 1024 }' "/proc/$server/status")"
