#!/usr/bin/env bash
# A real HDFS for integration tests: a NameNode and a DataNode as separate processes, assembled
# from Maven Central jars (cached under ~/.cache/sluice) — no Docker, no tarball.
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
version="$(sed -n 's:.*<hadoop.version>\(.*\)</hadoop.version>.*:\1:p' "$here/hdfs/pom.xml")"
libs="$cache/hadoop-$version/libs"
conf="$run/conf"

fetch() {
    fetch_jars hdfs "$here/hdfs/pom.xml" "$libs"
}

configure() {
    mkdir -p "$conf/webapps/hdfs" "$conf/webapps/datanode" "$conf/webapps/static" "$run/name" "$run/data"
    cp "$here/hdfs/log4j.properties" "$conf/"
    cat >"$conf/core-site.xml" <<XML
<configuration>
  <property><name>fs.defaultFS</name><value>hdfs://127.0.0.1:$port</value></property>
  <property><name>hadoop.tmp.dir</name><value>$run/tmp</value></property>
</configuration>
XML
    cat >"$conf/hdfs-site.xml" <<XML
<configuration>
  <property><name>dfs.replication</name><value>1</value></property>
  <property><name>dfs.namenode.name.dir</name><value>$run/name</value></property>
  <property><name>dfs.datanode.data.dir</name><value>$run/data</value></property>
  <property><name>dfs.namenode.rpc-address</name><value>127.0.0.1:$port</value></property>
  <property><name>dfs.namenode.http-address</name><value>127.0.0.1:19870</value></property>
  <property><name>dfs.datanode.address</name><value>127.0.0.1:19866</value></property>
  <property><name>dfs.datanode.http.address</name><value>127.0.0.1:19864</value></property>
  <property><name>dfs.datanode.ipc.address</name><value>127.0.0.1:19867</value></property>
  <property><name>dfs.permissions.enabled</name><value>false</value></property>
  <property><name>dfs.namenode.safemode.extension</name><value>0</value></property>
  <property><name>dfs.client.block.write.replace-datanode-on-failure.enable</name><value>false</value></property>
</configuration>
XML
}

java_cmd() {
    echo java -Xms128m -Xmx512m -cp "$conf:$libs/*"
}

running() {
    pid_running "$run/$1.pid"
}

start_daemon() {
    local name="$1" class="$2" wait_on="$3"
    already_up "hdfs: $name" "$run/$name.pid" "$wait_on" && return
    fetch
    configure
    # shellcheck disable=SC2046
    spawn "$run/$name.pid" "$run/$name.log" $(java_cmd) "$class"
    wait_listening "hdfs: $name" "$run/$name.pid" "$wait_on" "$run/$name.log"
    check_daemon "hdfs: $name" "$run/$name.pid" "$wait_on"
    echo "hdfs: $name up (pid $(cat "$run/$name.pid"), logs $run/$name.log)"
}

stop_daemon() {
    stop_pid "hdfs: $1" "$run/$1.pid"
}

start_namenode() {
    fetch
    configure
    if [ ! -f "$run/name/current/VERSION" ]; then
        # shellcheck disable=SC2046
        $(java_cmd) org.apache.hadoop.hdfs.server.namenode.NameNode -format -force -nonInteractive >"$run/format.log" 2>&1
    fi
    start_daemon namenode org.apache.hadoop.hdfs.server.namenode.NameNode "$port"
}

start_datanode() {
    start_daemon datanode org.apache.hadoop.hdfs.server.datanode.DataNode 19866
}

# Waits until the NameNode has left safe mode and a DataNode accepts a block.
wait_writable() {
    for _ in $(seq 1 120); do
        # shellcheck disable=SC2046
        if echo ok | $(java_cmd) org.apache.hadoop.fs.FsShell -fs "hdfs://127.0.0.1:$port" -put -f - /.sluice-ready >/dev/null 2>&1; then
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
