#!/usr/bin/env bash
# Healthy means ready: a NameNode out of safe mode with a live DataNode; a DataNode connected to
# its NameNode. Read from the daemons' JMX servlets.
#
#   healthcheck.sh namenode | datanode
set -euo pipefail
jmx() { curl -fsS --max-time 5 "http://127.0.0.1:$1/jmx?qry=$2"; }
case "${1:-}" in
    namenode)
        info="$(jmx "${HDFS_NAMENODE_HTTP_PORT:-9870}" Hadoop:service=NameNode,name=NameNodeInfo)"
        grep -q '"Safemode" : ""' <<<"$info" || { echo "in safe mode"; exit 1; }
        state="$(jmx "${HDFS_NAMENODE_HTTP_PORT:-9870}" Hadoop:service=NameNode,name=FSNamesystemState)"
        grep -Eq '"NumLiveDataNodes" : [1-9]' <<<"$state" || { echo "no live DataNode"; exit 1; }
        ;;
    datanode)
        info="$(jmx "${HDFS_DATANODE_HTTP_PORT:-9864}" Hadoop:service=DataNode,name=DataNodeInfo)"
        grep -q '"NamenodeAddresses" : "{\\"[^}]' <<<"$info" || { echo "not connected to a NameNode"; exit 1; }
        ;;
    *) echo "usage: $0 namenode|datanode" >&2; exit 2 ;;
esac
