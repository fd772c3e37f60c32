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
port="${SLUICE_HDFS_PORT:-19000}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/sluice"
run="${SLUICE_SERVICES_DIR:-$cache/run}/hdfs-$port"
version="$(sed -n 's:.*<hadoop.version>\(.*\)</hadoop.version>.*:\1:p' "$here/hdfs/pom.xml")"
libs="$cache/hadoop-$version/libs"
conf="$run/conf"

fetch() {
    if [ ! -f "$libs/.complete" ]; then
        echo "hdfs: fetching Hadoop $version jars from Maven Central into $libs" >&2
        mkdir -p "$libs"
        mvn -q -f "$here/hdfs/pom.xml" dependency:copy-dependencies -DoutputDirectory="$libs"
        touch "$libs/.complete"
    fi
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
    local pidfile="$run/$1.pid"
    [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

wait_port() {
    local name="$1" port="$2"
    for _ in $(seq 1 120); do
        if ! running "$name"; then
            echo "hdfs: $name exited during start-up; last log lines:" >&2
            tail -n 20 "$run/$name.log" >&2
            exit 1
        fi
        if (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            sleep 1 # a daemon that lost a port race exits right after another one bound
            running "$name" && return
        fi
        sleep 0.5
    done
    echo "hdfs: $name not listening on $port after 60 s; see $run/$name.log" >&2
    exit 1
}

start_daemon() {
    local name="$1" class="$2" wait_on="$3"
    if running "$name"; then
        echo "hdfs: $name already running (pid $(cat "$run/$name.pid"))"
        return
    fi
    if (echo >"/dev/tcp/127.0.0.1/$wait_on") 2>/dev/null; then
        echo "hdfs: port $wait_on is taken by another process; stop it first" >&2
        exit 1
    fi
    fetch
    configure
    # shellcheck disable=SC2046
    nohup $(java_cmd) "$class" >"$run/$name.log" 2>&1 &
    echo $! >"$run/$name.pid"
    wait_port "$name" "$wait_on"
    echo "hdfs: $name up (pid $(cat "$run/$name.pid"), logs $run/$name.log)"
}

stop_daemon() {
    local name="$1"
    if ! running "$name"; then
        echo "hdfs: $name not running"
        return
    fi
    local pid
    pid="$(cat "$run/$name.pid")"
    kill "$pid"
    for _ in $(seq 1 40); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$run/$name.pid"; echo "hdfs: $name stopped"; return; }
        sleep 0.5
    done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$run/$name.pid"
    echo "hdfs: $name killed after 20 s"
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
