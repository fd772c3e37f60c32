#!/usr/bin/env bash
# Benchmark of several sluice instances on one Kafka, HDFS, Trino and PostgreSQL (issue 22),
# on this machine: prints its figures, asserts nothing.
#
#   1. records/s end to end with 1, 2 and 3 instances: `sluice simulate` posts
#      SLUICE_BENCH_RECORDS (default 300000) as fast as it can to all of them; the time runs
#      from the first request until Trino counts every accepted record.
#   2. rebalance pause: two instances under a steady load, one killed with SIGKILL; the time
#      from its death until each of its partitions is assigned to the survivor, recovered and
#      read again (the survivor's "partitions assigned" log line), the slowest source.
#   3. p99 freshness during that rebalance: for the records received from 5 s before the kill
#      to 30 s after, the time from the API's receipt (`ingest_received_at`) to their file's
#      write (`$file_modified_time`, which the rename into place keeps), in Trino.
#
# Usage: tests/bench/instances.sh   (SLUICE_BIN, default target/release/sluice)
set -euo pipefail
cd "$(dirname "$0")/../.."
records="${SLUICE_BENCH_RECORDS:-300000}"
session=6
# shellcheck source=tests/scale/lib.sh
. tests/scale/lib.sh

# wait_counted N: waits until Trino counts N records (or nothing more arrives for 60 s).
wait_counted() {
    local sql counted=0 previous=-1 changed
    sql="SELECT coalesce(sum(n), 0) FROM ($(records_table_sql 'count(*) AS n'))"
    changed=$(date +%s)
    while [ "$counted" -lt "$1" ]; do
        counted="$(trino_query "$sql" 2>/dev/null || echo 0)"
        if [ "$counted" != "$previous" ]; then previous="$counted"; changed=$(date +%s); fi
        if [ $(($(date +%s) - changed)) -ge 60 ]; then
            echo "bench: only $counted of $1 records arrived" >&2
            return 1
        fi
        sleep 0.5
    done
}

accepted_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["accepted"])' "$1"; }

echo "== end to end, $records records per run"
for instances in 1 2 3; do
    new_deployment 1s
    for n in $(seq 1 "$instances"); do start_instance "$n"; done
    mapfile -t targets < <(urls $(seq 1 "$instances"))
    start_ns=$(date +%s%N)
    printf '%s\n' "$password" | "$bin" simulate "${targets[@]}" --user loader --password-stdin --count "$records" \
        --connections 16 --batch 500 --json >"$work/simulate.json" 2>/dev/null
    posted_ns=$(date +%s%N)
    accepted="$(accepted_of "$work/simulate.json")"
    wait_counted "$accepted"
    done_ns=$(date +%s%N)
    awk -v n="$instances" -v a="$accepted" -v s="$start_ns" -v p="$posted_ns" -v d="$done_ns" 'BEGIN {
        printf "instances %d: %d records, API %.0f records/s, end to end %.0f records/s (%.1f s)\n",
            n, a, a / ((p - s) / 1e9), a / ((d - s) / 1e9), (d - s) / 1e9 }'
    end_deployment
done

echo "== rebalance: 2 instances at 3000 records/s, one killed"
new_deployment 1s
start_instance 1
start_instance 2
mapfile -t targets < <(urls 1 2)
printf '%s\n' "$password" | "$bin" simulate "${targets[@]}" --user loader --password-stdin --duration 50s \
    --rate 3000 --connections 8 --batch 100 --retries 20 --json >"$work/simulate.json" 2>/dev/null &
simulator=$!
sleep 15
killed_at="$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)"
stop_instance 1 KILL
wait "$simulator" || true
accepted="$(accepted_of "$work/simulate.json")"
wait_counted "$accepted"
python3 - "$work/i2.log" "$killed_at" <<'PY'
import re, sys
from datetime import datetime
log, killed = sys.argv[1], datetime.fromisoformat(sys.argv[2].replace("Z", "+00:00"))
pauses = {}
for line in open(log, errors="replace"):
    m = re.match(r"(\S+)\s+INFO sluice_stream::worker: partitions assigned source=(\S+)", re.sub(r"\x1b\[[0-9;]*m", "", line))
    if m:
        at = datetime.fromisoformat(m.group(1).replace("Z", "+00:00"))
        if at > killed and m.group(2) not in pauses:
            pauses[m.group(2)] = (at - killed).total_seconds()
if pauses:
    print("rebalance pause (kill to the partitions read again), per source: " +
          ", ".join(f"{s} {p:.1f} s" for s, p in sorted(pauses.items())) + f"; slowest {max(pauses.values()):.1f} s")
else:
    print("rebalance pause: no reassignment seen in the survivor's log")
PY
sql="SELECT approx_percentile(ms, 0.5), approx_percentile(ms, 0.99), max(ms), count(*) FROM ($(records_table_sql \
    "to_milliseconds(\"\$file_modified_time\" - ingest_received_at) AS ms, ingest_received_at AS at")) \
    WHERE at BETWEEN from_iso8601_timestamp('$killed_at') - INTERVAL '5' SECOND AND from_iso8601_timestamp('$killed_at') + INTERVAL '30' SECOND"
read -r p50 p99 max rows <<<"$(trino_query "$sql")"
echo "freshness around the kill ($rows records): p50 ${p50} ms, p99 ${p99} ms, max ${max} ms"
sql="SELECT approx_percentile(ms, 0.5), approx_percentile(ms, 0.99) FROM ($(records_table_sql \
    "to_milliseconds(\"\$file_modified_time\" - ingest_received_at) AS ms, ingest_received_at AS at")) \
    WHERE at < from_iso8601_timestamp('$killed_at') - INTERVAL '5' SECOND"
read -r p50 p99 <<<"$(trino_query "$sql")"
echo "freshness before it (steady): p50 ${p50} ms, p99 ${p99} ms"
end_deployment
