#!/usr/bin/env bash
# HL7 v2 over MLLP end to end: a release `sluice serve` with one [[mllp]] listener, fed by
# `sluice simulate --mllp` (generated ADT^A01 / ORU^R01 with 10-20 OBX / ADT^A03 streams, one
# message per frame, each connection waiting for its ACK). Prints messages/s and ACK latency
# p50/p99 on the embedded log, and with BENCH_KAFKA=1 on Kafka too (tests/services/kafka.sh);
# then the plugin's parse, Wasm vs native (benches/hl7_parse.rs). Writes target/bench/mllp.json.
#
# BENCH_MESSAGES (default 20000), BENCH_CONNECTIONS (default 8), BENCH_REPEATS (default 3:
# medians are quoted from these runs).
set -euo pipefail
cd "$(dirname "$0")/../.."
rustup target add wasm32-wasip2 >/dev/null
cargo build --release -q -p sluice
bin="$PWD/target/release/sluice"
messages=${BENCH_MESSAGES:-20000}
connections=${BENCH_CONNECTIONS:-8}
repeats=${BENCH_REPEATS:-3}
mkdir -p target/bench
results=()

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# run_one LABEL EXTRA_CONFIG: one fresh server, one simulator run; prints and records the JSON.
run_one() {
    local label=$1 extra=$2 dir port http server
    dir=$(mktemp -d)
    port=$(free_port)
    http=$(free_port)
    printf '[[mllp]]\nlisten = "127.0.0.1:%s"\nsource = "hl7v2"\nuser = "bench"\n%b' "$port" "$extra" > "$dir/sluice.toml"
    echo bench-password | "$bin" --data-dir "$dir/data" users add bench --password-stdin >/dev/null
    "$bin" --data-dir "$dir/data" grants add bench hl7v2 >/dev/null
    "$bin" --data-dir "$dir/data" serve --listen "127.0.0.1:$http" --config "$dir/sluice.toml" > "$dir/serve.log" 2>&1 &
    server=$!
    for _ in $(seq 1 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
        sleep 0.05
    done
    "$bin" simulate --mllp "127.0.0.1:$port" --count "$messages" --connections "$connections" --seed 1 --json > "$dir/report.json"
    kill -TERM "$server"
    wait "$server" || true
    python3 - "$label" "$dir/report.json" <<'PY'
import json, sys
label, path = sys.argv[1], sys.argv[2]
r = json.load(open(path))
print(f"{label:<10} {r['records_per_s']:>10.0f} msg/s  ACK p50 {r['latency_ms']['p50']:.2f} ms  p99 {r['latency_ms']['p99']:.2f} ms  accepted {r['accepted']} errors {r['errors']}")
PY
    results+=("$(python3 -c 'import json,sys; r=json.load(open(sys.argv[2])); print(json.dumps({"log": sys.argv[1], "messages_per_s": round(r["records_per_s"]), "p50_ms": r["latency_ms"]["p50"], "p99_ms": r["latency_ms"]["p99"], "accepted": r["accepted"], "errors": r["errors"]}))' "$label" "$dir/report.json")")
    rm -rf "$dir"
}

echo "MLLP end to end: $messages messages, $connections connections, $repeats runs per log"
for _ in $(seq 1 "$repeats"); do
    run_one embedded ""
done
if [ -n "${BENCH_KAFKA:-}" ]; then
    tests/services/kafka.sh start >/dev/null
    kafka="127.0.0.1:${SLUICE_KAFKA_PORT:-19092}"
    for run in $(seq 1 "$repeats"); do
        unique="mllpbench$$x$run"
        run_one kafka "[log]\nkind = \"kafka\"\n[kafka]\nbrokers = \"$kafka\"\ntopic_prefix = \"$unique.\"\ntransactional_id = \"$unique\"\ngroup_prefix = \"$unique\"\n"
    done
fi
printf '%s\n' "${results[@]}" | python3 -c 'import json,sys; json.dump([json.loads(l) for l in sys.stdin], open("target/bench/mllp.json", "w"), indent=2)'
echo "written to target/bench/mllp.json"
cargo bench -q -p sluice-runtime --bench hl7_parse
