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
# Catalog `hive`: deploy/trino/catalog/hive.properties (shared with docker-compose.yml), with its
# file metastore under the run directory.
# Environment: SLUICE_TRINO_PORT (default 19080), SLUICE_SERVICES_DIR (default ~/.cache/sluice/run).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=tests/services/lib.sh
. "$here/lib.sh"
version=476
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

configure() {
    mkdir -p "$run/etc/catalog" "$run/data" "$run/metastore"
    # Loopback only: node.bind-ip is the address Trino's HTTP server (its only listener) binds,
    # all interfaces when unset; node.internal-address is the one it announces to discovery.
    cat >"$run/etc/config.properties" <<PROPS
coordinator=true
node-scheduler.include-coordinator=true
http-server.http.port=$port
node.bind-ip=127.0.0.1
node.internal-address=127.0.0.1
discovery.uri=http://127.0.0.1:$port
node.environment=sluice_test
node.id=sluice-test-$port
plugin.dir=$home/plugin
catalog.config-dir=$run/etc/catalog
query.max-memory=1GB
query.max-memory-per-node=512MB
PROPS
    # The same catalog file the docker compose deployment uses.
    cp "$here/../../deploy/trino/catalog/hive.properties" "$run/etc/catalog/hive.properties"
}

start() {
    already_up "trino:" "$pidfile" "$port" && return
    if [ ! -x "$java_home/bin/java" ]; then
        echo "trino: needs Java 24 or newer; none under /usr/lib/jvm/temurin-25* (set SLUICE_TRINO_JAVA_HOME)" >&2
        exit 1
    fi
    fetch
    configure
    # From the run directory: Trino writes var/log/http-request.log relative to where it starts.
    cd "$run"
    spawn "$pidfile" "$run/trino.out" env SLUICE_METASTORE_DIR="file://$run/metastore" \
        "$java_home/bin/java" -Xmx2G -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError -XX:ReservedCodeCacheSize=256M \
        -Djdk.attach.allowAttachSelf=true -XX:+EnableDynamicAgentLoading -Dfile.encoding=UTF-8 \
        --enable-native-access=ALL-UNNAMED -Dnode.data-dir="$run/data" -Dlog.output-file="$run/trino.log" \
        -Dconfig="$run/etc/config.properties" -cp "$home/lib/*" io.trino.server.TrinoServer
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
