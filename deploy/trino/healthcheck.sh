#!/usr/bin/env bash
# Healthy means ready: the hive catalog answers a query (Trino's statement protocol: post the
# query, follow nextUri until the last page, fail on an error).
set -euo pipefail
port="${TRINO_PORT:-8080}"
page="$(curl -fsS --max-time 10 -H 'X-Trino-User: healthcheck' \
    --data 'select count(*) from hive.information_schema.schemata' "http://127.0.0.1:$port/v1/statement")"
for _ in $(seq 1 100); do
    if grep -q '"error"' <<<"$page"; then echo "query failed"; exit 1; fi
    next="$(sed -n 's/.*"nextUri":"\([^"]*\)".*/\1/p' <<<"$page")"
    if [ -z "$next" ]; then
        grep -q '"state":"FINISHED"' <<<"$page" && exit 0
        echo "query did not finish"; exit 1
    fi
    page="$(curl -fsS --max-time 10 -H 'X-Trino-User: healthcheck' "$next")"
done
echo "query still running"; exit 1
