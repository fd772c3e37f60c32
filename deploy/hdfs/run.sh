#!/usr/bin/env bash
# Runs an HDFS NameNode or DataNode in the foreground, logging to stdout: the command of the
# compose images and what tests/services/hdfs.sh starts.
#
#   run.sh namenode | datanode
#
# Settings: core-site.xml and hdfs-site.xml beside this script, which read from the environment:
#   HDFS_LIBS              the jars (fetched with pom.xml beside this script)
#   HDFS_STATE             a writable directory: name/ (formatted on a NameNode's first start) or
#                          data/, conf/ (written at each start), the volume marker
#   HDFS_DEFAULT_FS        e.g. hdfs://namenode:9000
#   HDFS_NAMENODE_ADDRESS  e.g. namenode:9000
#   HDFS_BIND_HOST         the address every daemon port binds (default 0.0.0.0)
#   HDFS_NAMENODE_HTTP_PORT, HDFS_DATANODE_PORT, HDFS_DATANODE_HTTP_PORT, HDFS_DATANODE_IPC_PORT
#                          (default Hadoop's: 9870, 9866, 9864, 9867)
#   HDFS_HEAP              optional: -Xmx (default 512m)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=deploy/volume.sh
. "$here/../volume.sh"
role="${1:-}"
case "$role" in
    namenode) class=org.apache.hadoop.hdfs.server.namenode.NameNode; dir=name ;;
    datanode) class=org.apache.hadoop.hdfs.server.datanode.DataNode; dir=data ;;
    *) echo "usage: $0 namenode|datanode" >&2; exit 2 ;;
esac
export HDFS_BIND_HOST="${HDFS_BIND_HOST:-0.0.0.0}" HDFS_NAMENODE_HTTP_PORT="${HDFS_NAMENODE_HTTP_PORT:-9870}"
export HDFS_DATANODE_PORT="${HDFS_DATANODE_PORT:-9866}" HDFS_DATANODE_HTTP_PORT="${HDFS_DATANODE_HTTP_PORT:-9864}"
export HDFS_DATANODE_IPC_PORT="${HDFS_DATANODE_IPC_PORT:-9867}"
version="$(sed -n 's:.*<hadoop.version>\(.*\)</hadoop.version>.*:\1:p' "$here/pom.xml")"
mkdir -p "$HDFS_STATE/$dir"
claim_volume "hdfs $role" "$HDFS_STATE" "hadoop $version"

# The configuration directory leads the classpath. The web servers need their webapps folders to
# exist; the JMX servlet (the healthchecks) needs nothing in them.
conf="$HDFS_STATE/conf"
mkdir -p "$conf/webapps/hdfs" "$conf/webapps/datanode" "$conf/webapps/static"
cp "$here/core-site.xml" "$here/hdfs-site.xml" "$here/log4j.properties" "$conf/"
java=(java -Xms128m "-Xmx${HDFS_HEAP:-512m}" -cp "$conf:$HDFS_LIBS/*")
if [ "$role" = namenode ] && [ ! -f "$HDFS_STATE/name/current/VERSION" ]; then
    "${java[@]}" "$class" -format -force -nonInteractive >/dev/null 2>&1 \
        || { echo "hdfs namenode: formatting $HDFS_STATE/name failed" >&2; exit 1; }
fi
exec "${java[@]}" "$class"
