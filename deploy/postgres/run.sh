#!/usr/bin/env bash
# Runs PostgreSQL in the foreground for docker-compose.yml. On the first start: a random
# password for the role `sluice`, written to $POSTGRES_SECRETS/postgres-password (the volume
# the sluice replicas mount read-only; sluice reads it with auth.password_file), a cluster
# under $POSTGRES_STATE/data with SCRAM authentication, and the database `sluice`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=deploy/volume.sh
. "$here/../volume.sh"
bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
version="postgresql $(basename "$(dirname "$bin")")"
claim_volume postgres "$POSTGRES_STATE" "$version"
data="$POSTGRES_STATE/data"
secret="$POSTGRES_SECRETS/postgres-password"
if [ ! -f "$data/PG_VERSION" ]; then
    if [ ! -s "$secret" ]; then
        (umask 022 && head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$secret")
    fi
    pwfile="$(mktemp)"
    cp "$secret" "$pwfile"
    # The socket is inside the container only (and off while serving): trusted for this setup.
    "$bin/initdb" -D "$data" -U sluice --pwfile="$pwfile" --auth-host=scram-sha-256 --auth-local=trust \
        --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$pwfile"
    echo "host all all 0.0.0.0/0 scram-sha-256" >>"$data/pg_hba.conf"
    "$bin/pg_ctl" -D "$data" -o "-c listen_addresses='' -c unix_socket_directories=/tmp" -w start >/dev/null
    "$bin/createdb" -h /tmp -U sluice sluice
    "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null
fi
if [ ! -s "$secret" ]; then
    echo "postgres: $secret is missing but the cluster exists: mount the volume that holds it, or remove both (docker compose down --volumes; the users are lost)" >&2
    exit 1
fi
exec "$bin/postgres" -D "$data" -c listen_addresses='*' -c unix_socket_directories=
