# Shared by tests/scale/run and tests/bench/instances.sh: several `sluice serve` instances on
# one Kafka, HDFS, Trino and PostgreSQL. Source it from the repository root; it sets `bin`,
# `trino`, `unique` (a fresh topic/group/schema/database name), `work` (removed at exit, the
# instances' logs copied to $logs first), `password` (of the user `loader`, granted the
# seed's three sources), and defines start_instance, stop_instance, kill_instance and
# trino_query.
records_table_sql() { # the union of the seed tables' counts, for trino_query
    local sql=""
    for table in patients admissions lab_results; do
        sql+="${sql:+ UNION ALL }SELECT $1 FROM hive.$unique.$table"
    done
    echo "$sql"
}

bin="${SLUICE_BIN:-target/release/sluice}"
if [ ! -x "$bin" ]; then
    cargo build --release -p sluice
fi
tests/services/kafka.sh start >&2
tests/services/hdfs.sh start >&2
tests/services/trino.sh start >&2
tests/services/postgres.sh start >&2
kafka="127.0.0.1:${SLUICE_KAFKA_PORT:-19092}"
hdfs="hdfs://127.0.0.1:${SLUICE_HDFS_PORT:-19000}"
trino="http://127.0.0.1:${SLUICE_TRINO_PORT:-19080}"
pg_url="$(tests/services/postgres.sh url)"
logs="${logs:-target/scale-logs}"

declare -A pids=() ports=()
running=0
most=0

# new_deployment [ROLL_INTERVAL]: a fresh name, config, database and user.
new_deployment() {
    unique="scale$$x$(date +%s%N | cut -c1-13)"
    work="$(mktemp -d)"
    psql "$pg_url" -qAtc "CREATE DATABASE $unique" >/dev/null
    export SLUICE__AUTH__URL="${pg_url%/*}/$unique"
    cat >"$work/sluice.toml" <<TOML
[log]
kind = "kafka"
partitions = 6

[kafka]
brokers = "$kafka"
topic_prefix = "$unique."
group_prefix = "$unique"
session_timeout = "${session:-6}s"

[warehouse]
url = "$hdfs/scale/$unique"

[stream]
roll_interval = "${1:-2s}"

[catalog]
trino_url = "$trino"
schema = "$unique"
rescan = "5s"
TOML
    password="$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
    printf '%s\n' "$password" | "$bin" --data-dir "$work/admin" users add loader --password-stdin >&2
    for source in patients admissions lab_results; do
        "$bin" --data-dir "$work/admin" grants add loader "$source" >&2
    done
    for n in 1 2 3 4; do
        ports[$n]="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    done
}

end_deployment() {
    for pid in "${pids[@]}"; do
        kill -CONT "$pid" 2>/dev/null || true
        kill -KILL "$pid" 2>/dev/null || true
    done
    pids=()
    running=0
    if [ -n "${work:-}" ] && [ -d "$work" ]; then
        rm -rf "$logs" && mkdir -p "$logs" && cp "$work"/*.log "$work"/*.json "$logs"/ 2>/dev/null || true
        rm -rf "$work"
    fi
}
trap end_deployment EXIT

# start_instance N: starts instance N and waits until it is ready.
start_instance() {
    local n="$1"
    SLUICE__SERVER__LISTEN="127.0.0.1:${ports[$n]}" "$bin" --data-dir "$work/i$n" serve --config "$work/sluice.toml" \
        >"$work/i$n.log" 2>&1 &
    pids[$n]=$!
    for _ in $(seq 1 600); do
        if curl -fsS "http://127.0.0.1:${ports[$n]}/readyz" >/dev/null 2>&1; then
            running=$((running + 1))
            most=$((most > running ? most : running))
            echo "scale: instance $n ready on port ${ports[$n]} (pid ${pids[$n]})" >&2
            return
        fi
        if ! kill -0 "${pids[$n]}" 2>/dev/null; then
            echo "scale: instance $n exited; its log:" >&2
            tail -n 20 "$work/i$n.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "scale: instance $n not ready after 60 s" >&2
    exit 1
}

# stop_instance N [SIGNAL]: stops instance N (SIGTERM: it commits what it holds and leaves).
stop_instance() {
    kill "-${2:-TERM}" "${pids[$1]}"
    wait "${pids[$1]}" 2>/dev/null || true
    unset "pids[$1]"
    running=$((running - 1))
}

# trino_query SQL: the rows, tab-separated.
trino_query() {
    python3 tests/scale/trino.py "$trino" "$1"
}

# urls N...: the --url arguments of `sluice simulate` for instances N...
urls() {
    for n in "$@"; do printf -- '--url\nhttp://127.0.0.1:%s\n' "${ports[$n]}"; done
}
