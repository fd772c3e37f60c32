#!/usr/bin/env bash
# Runs Trino (coordinator and worker in one process) in the foreground: the command of the
# compose image and what tests/services/trino.sh starts.
#
# Settings: config.properties and catalog/ beside this script, which read from the environment:
#   TRINO_HOME     the unpacked trino-server (only its hive plugin is needed)
#   TRINO_STATE    a writable directory: data/, metastore/ (the Hive file metastore), the marker
#   TRINO_PORT     HTTP port (default 8080)
#   TRINO_BIND_IP  the address the HTTP server binds (default 0.0.0.0)
#   TRINO_NODE_ID  (default sluice-1)
#   TRINO_HEAP     -Xmx (default 2G)
#   TRINO_LOG_FILE optional: log to this file instead of stdout
# Needs Java 24 or newer (java on PATH, or JAVA_HOME).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=deploy/volume.sh
. "$here/../volume.sh"
version="$(sed -n 's/^ARG TRINO_VERSION=//p' "$here/Dockerfile")"
export TRINO_PORT="${TRINO_PORT:-8080}" TRINO_BIND_IP="${TRINO_BIND_IP:-0.0.0.0}"
export TRINO_NODE_ID="${TRINO_NODE_ID:-sluice-1}" TRINO_CATALOGS="$here/catalog"
export SLUICE_METASTORE_DIR="file://$TRINO_STATE/metastore"
mkdir -p "$TRINO_STATE/data" "$TRINO_STATE/metastore"
claim_volume trino "$TRINO_STATE" "trino $version"
java="${JAVA_HOME:+$JAVA_HOME/bin/}java"
log=()
if [ -n "${TRINO_LOG_FILE:-}" ]; then log=("-Dlog.output-file=$TRINO_LOG_FILE"); fi
cd "$TRINO_STATE"
exec "$java" "-Xmx${TRINO_HEAP:-2G}" -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError -XX:ReservedCodeCacheSize=256M \
    -Djdk.attach.allowAttachSelf=true -XX:+EnableDynamicAgentLoading -Dfile.encoding=UTF-8 \
    --enable-native-access=ALL-UNNAMED -Dnode.data-dir="$TRINO_STATE/data" "${log[@]}" \
    -Dconfig="$here/config.properties" -cp "$TRINO_HOME/lib/*" io.trino.server.TrinoServer
