#!/usr/bin/env bash
# A real HDFS for integration tests: a NameNode and a DataNode as separate processes, assembled
# from Maven Central jars (cached under ~/.cache/sluice) — no Docker, no tarball — and run by
# deploy/hdfs/run.sh with deploy/hdfs/*.xml, as the compose images run them.
#
#   tests/services/hdfs.sh start               # both, waits until a file can be written
#   tests/services/hdfs.sh stop                # both
#   tests/services/hdfs.sh start-namenode | stop-namenode | start-datanode | stop-datanode
#   tests/services/hdfs.sh status
#
# Environment: SLUICE_HDFS_PORT (NameNode RPC, default 19000; the DataNode uses 19866/19864/19867,
# the NameNode web UI 19870), SLUICE_SERVICES_DIR (state and logs, default ~/.cache/sluice/run).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=tests/services/lib.sh
. "$here/lib.sh"
port="${SLUICE_HDFS_PORT:-19000}"
run="${SLUICE_SERVICES_DIR:-$cache/run}/hdfs-$port"
deploy="$here/../../deploy/hdfs"
version="$(sed -n 's:.*<hadoop.version>\(.*\)</hadoop.version>.*:\1:p' "$deploy/pom.xml")"
libs="$cache/hadoop-$version/libs"

fetch() {
    fetch_jars hdfs "$deploy/pom.xml" "$libs"
}

# The environment of deploy/hdfs/run.sh (the compose images' command, with their settings) for
# a NameNode and a DataNode on loopback, sharing the run directory.
daemon_env() {
    echo env HDFS_LIBS="$libs" HDFS_STATE="$run" HDFS_DEFAULT_FS="hdfs://127.0.0.1:$port" \
        HDFS_NAMENODE_ADDRESS="127.0.0.1:$port" HDFS_BIND_HOST=127.0.0.1 HDFS_NAMENODE_HTTP_PORT=19870 \
        HDFS_DATANODE_PORT=19866 HDFS_DATANODE_HTTP_PORT=19864 HDFS_DATANODE_IPC_PORT=19867 SLUICE_ADOPT_UNMARKED=1
}

running() {
    pid_running "$run/$1.pid"
}

start_daemon() {
    local name="$1" wait_on="$2"
    already_up "hdfs: $name" "$run/$name.pid" "$wait_on" && return
    fetch
    mkdir -p "$run"
    # shellcheck disable=SC2046
    spawn "$run/$name.pid" "$run/$name.log" $(daemon_env) "$deploy/run.sh" "$name"
    wait_listening "hdfs: $name" "$run/$name.pid" "$wait_on" "$run/$name.log"
    check_daemon "hdfs: $name" "$run/$name.pid" "$wait_on"
    echo "hdfs: $name up (pid $(cat "$run/$name.pid"), logs $run/$name.log)"
}

stop_daemon() {
    stop_pid "hdfs: $1" "$run/$1.pid"
}

start_namenode() {
    start_daemon namenode "$port"
}

start_datanode() {
    start_daemon datanode 19866
}

# Waits until the NameNode has left safe mode and a DataNode accepts a block.
wait_writable() {
    for _ in $(seq 1 120); do
        # shellcheck disable=SC2046
        if echo ok | $(daemon_env) java -cp "$run/conf:$libs/*" org.apache.hadoop.fs.FsShell -fs "hdfs://127.0.0.1:$port" -put -f - /.sluice-ready >/dev/null 2>&1; then
            echo "hdfs: writable at hdfs://127.0.0.1:$port"
            return
        fi
        sleep 1
    done
    echo "hdfs: not writable after 120 s; see $run/*.log" >&2
    exit 1
}

case "${1:-}" in
    start) start_namenode; start_datanode; wait_writable ;;
    stop) stop_daemon datanode; stop_daemon namenode ;;
    start-namenode) start_namenode ;;
    stop-namenode) stop_daemon namenode ;;
    start-datanode) start_datanode ;;
    stop-datanode) stop_daemon datanode ;;
    status)
        ok=0
        for name in namenode datanode; do
            if running "$name"; then echo "hdfs: $name running"; else echo "hdfs: $name not running"; ok=1; fi
        done
        exit $ok
        ;;
    *) echo "usage: $0 start|stop|start-namenode|stop-namenode|start-datanode|stop-datanode|status" >&2; exit 2 ;;
esac
