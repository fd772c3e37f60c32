#!/usr/bin/env bash
# A real PostgreSQL server for integration tests (issue 22: the auth store shared by several
# sluice instances), from Debian's postgresql package: its own cluster under the run directory,
# listening on 127.0.0.1 only, password (SCRAM) authentication for a `sluice` role whose random
# password is made at the first start and kept, mode 0600, in the run directory. As root, the
# cluster itself lives in /var/tmp/sluice-postgres-PORT, which the server's user can reach.
#
#   tests/services/postgres.sh start    # initdb once, start, wait until it accepts a login
#   tests/services/postgres.sh stop
#   tests/services/postgres.sh status
#   tests/services/postgres.sh url      # postgres://sluice:PASSWORD@127.0.0.1:PORT/sluice
#   tests/services/postgres.sh ca       # with SLUICE_POSTGRES_TLS=1: the certificate authority's PEM
#
# Environment: SLUICE_POSTGRES_PORT (default 19432), SLUICE_SERVICES_DIR (state and logs,
# default ~/.cache/sluice/run), SLUICE_POSTGRES_TLS=1 (the server also speaks TLS, with a
# certificate for 127.0.0.1 and localhost from a certificate authority made at the first start,
# as a hospital's own would be; `ca` prints where its certificate is). PostgreSQL refuses to run as root: as root, the server runs as
# the `postgres` user the package made.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=tests/services/lib.sh
. "$here/lib.sh"
port="${SLUICE_POSTGRES_PORT:-19432}"
run="${SLUICE_SERVICES_DIR:-$cache/run}/postgres-$port"
home="$run"
if [ "$(id -u)" = 0 ]; then
    # The server's user cannot reach root's home: its cluster lives where it can.
    home="/var/tmp/sluice-postgres-$port"
fi
data="$home/data"
pidfile="$run/postgres.pid"
bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"

# as_owner COMMAND...: COMMAND as the user that owns the cluster.
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        setpriv --reuid=postgres --regid=postgres --init-groups "$@"
    else
        "$@"
    fi
}

password() {
    cat "$run/password"
}

start() {
    already_up "postgres:" "$pidfile" "$port" && return
    if [ ! -x "$bin/postgres" ]; then
        echo "postgres: no server under /usr/lib/postgresql (apt-get install postgresql)" >&2
        exit 1
    fi
    mkdir -p "$run"
    if [ ! -f "$data/PG_VERSION" ]; then
        (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$run/password")
        rm -rf "$data"
        mkdir -p "$home"
        chmod 0700 "$home"
        if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$home"; fi
        # initdb reads the password from a file the server's user can read, removed right after.
        local pwfile="$home/initdb-password"
        cp "$run/password" "$pwfile"
        if [ "$(id -u)" = 0 ]; then chown postgres "$pwfile"; fi
        if ! as_owner "$bin/initdb" -D "$data" -U sluice --pwfile="$pwfile" --auth=scram-sha-256 \
            --encoding=UTF8 --locale=C.UTF-8 >"$run/initdb.log" 2>&1; then
            rm -f "$pwfile"
            echo "postgres: initdb failed; last lines of $run/initdb.log:" >&2
            tail -n 5 "$run/initdb.log" >&2
            exit 1
        fi
        rm -f "$pwfile"
    fi
    # The pid file holds the server's own pid: setpriv execs the server in place.
    local server=("$bin/postgres" -D "$data" -c listen_addresses=127.0.0.1 -c port="$port"
        -c unix_socket_directories="$data" -c logging_collector=off)
    if [ "${SLUICE_POSTGRES_TLS:-}" = 1 ]; then
        make_certificates
        server+=(-c ssl=on -c ssl_cert_file="$home/server.pem" -c ssl_key_file="$home/server-key.pem")
    fi
    if [ "$(id -u)" = 0 ]; then
        spawn "$pidfile" "$run/postgres.log" setpriv --reuid=postgres --regid=postgres --init-groups "${server[@]}"
    else
        spawn "$pidfile" "$run/postgres.log" "${server[@]}"
    fi
    wait_listening postgres "$pidfile" "$port" "$run/postgres.log"
    for _ in $(seq 1 60); do
        if PGPASSWORD="$(password)" psql -h 127.0.0.1 -p "$port" -U sluice -d postgres -qAtc 'select 1' >/dev/null 2>&1; then
            break
        fi
        sleep 0.5
    done
    if ! PGPASSWORD="$(password)" psql -h 127.0.0.1 -p "$port" -U sluice -d postgres -qAtc \
        "select 1 from pg_database where datname = 'sluice'" | grep -q 1; then
        PGPASSWORD="$(password)" createdb -h 127.0.0.1 -p "$port" -U sluice sluice
    fi
    check_daemon postgres: "$pidfile" "$port"
    echo "postgres: accepting logins on 127.0.0.1:$port (pid $(cat "$pidfile"), logs $run/postgres.log)"
}

# make_certificates: once, a certificate authority (its certificate in the run directory) and
# the server's certificate for 127.0.0.1 and localhost signed by it (key readable by the server
# only).
make_certificates() {
    [ -f "$home/server.pem" ] && [ -f "$run/ca.pem" ] && return
    local work
    work="$(mktemp -d)"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=sluice test CA" \
        -keyout "$work/ca-key.pem" -out "$work/ca.pem" -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$work/server-key.pem" \
        -out "$work/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$work/ext"
    openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca-key.pem" \
        -CAcreateserial -days 3650 -extfile "$work/ext" -out "$work/server.pem" 2>/dev/null
    install -m 0600 "$work/server-key.pem" "$home/server-key.pem"
    install -m 0644 "$work/server.pem" "$home/server.pem"
    if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$home/server-key.pem" "$home/server.pem"; fi
    cp "$work/ca.pem" "$run/ca.pem"
    rm -rf "$work"
}

stop() {
    stop_pid postgres: "$pidfile"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) if pid_running "$pidfile"; then echo "postgres: running on 127.0.0.1:$port"; else echo "postgres: not running"; exit 1; fi ;;
    url) echo "postgres://sluice:$(password)@127.0.0.1:$port/sluice" ;;
    ca) echo "$run/ca.pem" ;;
    *) echo "usage: $0 start|stop|status|url|ca" >&2; exit 2 ;;
esac
