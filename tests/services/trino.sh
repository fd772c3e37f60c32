#!/usr/bin/env bash
# A real Trino server (coordinator and worker in one process) with a Hive catalog over the HDFS of
# tests/services/hdfs.sh, for integration tests. The server tarball comes from Maven Central
# (io.trino:trino-server, cached under ~/.cache/sluice); only the Hive plugin is kept. Trino needs
# Java 24+: the Temurin 25 JDK under /usr/lib/jvm (or SLUICE_TRINO_JAVA_HOME).
#
#   tests/services/trino.sh start    # download once, configure, start, wait until it serves queries
#   tests/services/trino.sh stop
#   tests/services/trino.sh status
#
# Run by deploy/trino/run.sh with deploy/trino/config.properties and the catalog `hive` of
# deploy/trino/catalog/, as the compose image runs it, with the file metastore under the run
# directory.
# Environment: SLUICE_TRINO_PORT (default 19080), SLUICE_SERVICES_DIR (default ~/.cache/sluice/run).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=tests/services/lib.sh
. "$here/lib.sh"
deploy="$here/../../deploy/trino"
version="$(sed -n 's/^ARG TRINO_VERSION=//p' "$deploy/Dockerfile")"
port="${SLUICE_TRINO_PORT:-19080}"
run="${SLUICE_SERVICES_DIR:-$cache/run}/trino-$port"
home="$cache/trino-$version/trino-server-$version"
pidfile="$run/trino.pid"
java_home="${SLUICE_TRINO_JAVA_HOME:-$(ls -d /usr/lib/jvm/temurin-25* 2>/dev/null | head -n 1)}"

fetch() {
    if [ -f "$home/.complete" ]; then
        return
    fi
    local dir="$cache/trino-$version"
    mkdir -p "$dir"
    echo "trino: fetching io.trino:trino-server:$version from Maven Central into $dir" >&2
    mvn -q dependency:copy -Dartifact="io.trino:trino-server:$version:tar.gz" -DoutputDirectory="$dir"
    rm -rf "$home"
    tar -xzf "$dir/trino-server-$version.tar.gz" -C "$dir"
    rm -f "$dir/trino-server-$version.tar.gz"
    # Only the Hive connector is used; loading ~60 plugins would cost a minute at every start.
    find "$home/plugin" -mindepth 1 -maxdepth 1 ! -name hive -exec rm -rf {} +
    touch "$home/.complete"
}

start() {
    already_up "trino:" "$pidfile" "$port" && return
    if [ ! -x "$java_home/bin/java" ]; then
        echo "trino: needs Java 24 or newer; none under /usr/lib/jvm/temurin-25* (set SLUICE_TRINO_JAVA_HOME)" >&2
        exit 1
    fi
    fetch
    mkdir -p "$run"
    # The server the compose image runs, with its settings (deploy/trino/config.properties and
    # catalog/), on loopback.
    spawn "$pidfile" "$run/trino.out" env TRINO_HOME="$home" TRINO_STATE="$run" TRINO_PORT="$port" \
        TRINO_BIND_IP=127.0.0.1 TRINO_NODE_ID="sluice-test-$port" TRINO_LOG_FILE="$run/trino.log" \
        JAVA_HOME="$java_home" SLUICE_ADOPT_UNMARKED=1 "$deploy/run.sh"
    wait_listening trino "$pidfile" "$port" "$run/trino.log"
    # Listening is not serving: wait until the coordinator has finished starting.
    for _ in $(seq 1 180); do
        if curl -sf "http://127.0.0.1:$port/v1/info" | grep -q '"starting":false'; then
            check_daemon trino: "$pidfile" "$port"
            echo "trino: serving on http://127.0.0.1:$port (pid $(cat "$pidfile"), logs $run/trino.log)"
            return
        fi
        pid_running "$pidfile" || { echo "trino: exited; see $run/trino.log" >&2; tail -n 20 "$run/trino.log" >&2; exit 1; }
        sleep 1
    done
    echo "trino: not serving after 180 s; see $run/trino.log" >&2
    exit 1
}

stop() {
    stop_pid trino: "$pidfile"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) if pid_running "$pidfile"; then echo "trino: running on 127.0.0.1:$port"; else echo "trino: not running"; exit 1; fi ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
