#!/usr/bin/env bash
# The docker compose stack's figures (docs/deployment.md): image sizes, time from `up` to healthy,
# records/s accepted through the stack with `sluice simulate` from the host, compared with the
# same run against `sluice serve` on the services of tests/services/ (same releases, same
# settings, no containers), and each container's memory at rest and under that load.
#
#   tests/bench/compose.sh    # BENCH_SECONDS (default 30) per run, BENCH_REPEATS (default 3)
#
# Leaves the stack up (tests/compose/down --volumes removes it).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${BENCH_SECONDS:-30}"
repeats="${BENCH_REPEATS:-3}"
password="bench-password-1"
out="target/bench/compose.json"
mkdir -p target/bench
cargo build --release -p sluice
sluice=target/release/sluice
export PATH="/usr/bin:$PATH"

started=$(date +%s)
urls="$(tests/compose/up)"
up_s=$(($(date +%s) - started))
api="$(sed -n 's/^sluice: //p' <<<"$urls")"
echo "$password" | tests/compose/compose exec -T sluice sluice users add bench --password-stdin >/dev/null 2>&1 || true
for source in patients admissions lab_results; do
    tests/compose/compose exec -T sluice sluice grants add bench "$source" >/dev/null
done

# stats: one `docker stats` sample of the stack, as "name memory" lines.
stats() {
    # shellcheck disable=SC2046 # one argument per container id
    docker stats --no-stream --format '{{.Name}} {{.MemUsage}}' $(tests/compose/compose ps -q) | awk '{ print $1, $2 }'
}
rest="$(stats)"

# run URL: records/s accepted by one simulate run (printed as one number), while sampling memory.
run() {
    local report
    report="$(SLUICE_PASSWORD="$password" "$sluice" --data-dir target/bench/compose-client simulate --url "$1" \
        --user bench --duration "${seconds}s" --batch 500 --connections 4 --seed 7 --json)"
    python3 -c 'import json,sys; r=json.load(sys.stdin); print(round(r["accepted"]/r["elapsed_s"]))' <<<"$report"
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

compose_rates=()
load=""
for _ in $(seq 1 "$repeats"); do
    ( sleep $((seconds / 2)); stats >target/bench/compose-load.txt ) &
    compose_rates+=("$(run "$api")")
    wait
done
load="$(cat target/bench/compose-load.txt)"

# The same run on tests/services (loopback Kafka, HDFS and Trino), one sluice serve.
tests/services/kafka.sh start >/dev/null
tests/services/hdfs.sh start >/dev/null
tests/services/trino.sh start >/dev/null
dir="$(mktemp -d)"
unique="bench$$x$(date +%s)"
cat >"$dir/sluice.toml" <<TOML
[log]
kind = "kafka"
[kafka]
brokers = "127.0.0.1:${SLUICE_KAFKA_PORT:-19092}"
topic_prefix = "$unique."
transactional_id = "$unique"
group_prefix = "$unique"
[warehouse]
url = "hdfs://127.0.0.1:${SLUICE_HDFS_PORT:-19000}/bench/$unique"
[catalog]
trino_url = "http://127.0.0.1:${SLUICE_TRINO_PORT:-19080}"
schema = "$unique"
TOML
echo "$password" | SLUICE_CONFIG="$dir/sluice.toml" "$sluice" --data-dir "$dir/data" users add bench --password-stdin >/dev/null
for source in patients admissions lab_results; do
    SLUICE_CONFIG="$dir/sluice.toml" "$sluice" --data-dir "$dir/data" grants add bench "$source" >/dev/null
done
SLUICE_CONFIG="$dir/sluice.toml" setsid "$sluice" --data-dir "$dir/data" serve --listen 127.0.0.1:18090 >"$dir/serve.log" 2>&1 </dev/null &
serve=$!
trap 'kill $serve 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 1 120); do curl -fs http://127.0.0.1:18090/readyz >/dev/null 2>&1 && break; sleep 0.5; done
native_rates=()
for _ in $(seq 1 "$repeats"); do
    native_rates+=("$(run http://127.0.0.1:18090)")
done

compose_median="$(printf '%s\n' "${compose_rates[@]}" | median)"
native_median="$(printf '%s\n' "${native_rates[@]}" | median)"
images="$(docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^sluice' | sort)"
echo "up to healthy: ${up_s} s (images already built: see tests/compose/up's own line for the build)"
echo "images:"; sed 's/^/  /' <<<"$images"
echo "records/s accepted, ${seconds} s runs, median of $repeats: compose ${compose_median} (${compose_rates[*]}), tests/services ${native_median} (${native_rates[*]}), ratio $(python3 -c "print(round($compose_median/$native_median, 2))")"
echo "memory at rest:"; sed 's/^/  /' <<<"$rest"
echo "memory under load:"; sed 's/^/  /' <<<"$load"
python3 - "$out" <<PY
import json, sys
json.dump({"up_to_healthy_s": $up_s, "compose_records_per_s": [${compose_rates[*]/%/,}], "services_records_per_s": [${native_rates[*]/%/,}],
           "images": """$images""".splitlines(), "memory_at_rest": """$rest""".splitlines(), "memory_under_load": """$load""".splitlines()},
          open(sys.argv[1], "w"), indent=2)
PY
echo "wrote $out"
