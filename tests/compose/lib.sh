# shellcheck shell=bash
# Sourced by tests/compose/{up,down,compose,test}: the engine, the base images and the compose
# command the test stack uses. Not run by itself.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=tests/services/lib.sh
. "$repo/tests/services/lib.sh"

# The docker client of Debian's docker.io package talks to its engine and runs the builds that
# docker-compose v1 asks for; a newer client earlier in PATH (/usr/local/bin/docker, without the
# compose and buildx plugins) must not be picked up instead.
export PATH="/usr/bin:/usr/sbin:/bin:/sbin:$PATH"
# The test stack: a project of its own, ports apart from a user's 8080/8081 (and the README
# test's), the sluice image made from the binary the tests compiled (Dockerfile target
# `prebuilt`), and short roll and rescan intervals so that rows reach Trino in seconds.
export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-sluicetest}"
export SLUICE_HTTP_PORT="${SLUICE_HTTP_PORT:-18080}" TRINO_HTTP_PORT="${TRINO_HTTP_PORT:-18081}"
export SLUICE_BUILD_TARGET="${SLUICE_BUILD_TARGET:-prebuilt}"
export SLUICE_ROLL_INTERVAL="${SLUICE_ROLL_INTERVAL:-3s}" SLUICE_CATALOG_RESCAN="${SLUICE_CATALOG_RESCAN:-2s}"
# The engine's own builder: it builds the stages a target needs from images already present, and
# never asks a registry (there is none here).
export DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0

# compose ARGS...: docker-compose (v1, what Debian packages) or `docker compose` (v2).
compose() {
    if command -v docker-compose >/dev/null; then
        docker-compose -f "$repo/docker-compose.yml" "$@"
    elif docker compose version >/dev/null 2>&1; then
        docker compose -f "$repo/docker-compose.yml" "$@"
    else
        echo "tests/compose: no compose command: apt-get install docker-compose" >&2
        exit 1
    fi
}

# ensure_engine: the docker engine answers, started here (as root, in the background, logging to
# ~/.cache/sluice/run/dockerd.log) when it does not.
ensure_engine() {
    if ! command -v docker >/dev/null || ! command -v dockerd >/dev/null; then
        echo "tests/compose: no container engine: apt-get install docker.io docker-compose" >&2
        exit 1
    fi
    docker info >/dev/null 2>&1 && return
    if [ "$(id -u)" != 0 ]; then
        echo "tests/compose: the docker engine is not running: start it (sudo dockerd, or sudo systemctl start docker)" >&2
        exit 1
    fi
    mkdir -p "$cache/run"
    echo "tests/compose: starting dockerd (log $cache/run/dockerd.log)" >&2
    spawn "$cache/run/dockerd.pid" "$cache/run/dockerd.log" dockerd
    for _ in $(seq 1 120); do
        docker info >/dev/null 2>&1 && return
        pid_running "$cache/run/dockerd.pid" || break
        sleep 0.5
    done
    echo "tests/compose: dockerd did not start; last lines of $cache/run/dockerd.log:" >&2
    tail -n 5 "$cache/run/dockerd.log" >&2
    exit 1
}

# ensure_base_images: debian:bookworm-slim and debian:trixie-slim, the bases the Dockerfiles name,
# made here without a registry: debootstrap (minbase) from the Debian mirror apt uses, imported
# into the engine. The root file systems are cached under ~/.cache/sluice/images.
ensure_base_images() {
    local mirror suite tar tmp
    mirror="$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)"
    mirror="${mirror:-http://deb.debian.org/debian}"
    for suite in bookworm trixie; do
        docker image inspect "debian:$suite-slim" >/dev/null 2>&1 && continue
        tar="$cache/images/debian-$suite-minbase.tar"
        if [ ! -f "$tar" ]; then
            command -v debootstrap >/dev/null || { echo "tests/compose: needs debootstrap: apt-get install debootstrap" >&2; exit 1; }
            mkdir -p "$cache/images"
            tmp="$(mktemp -d)"
            echo "tests/compose: debootstrap $suite from $mirror" >&2
            if ! debootstrap --variant=minbase "$suite" "$tmp/root" "$mirror" >"$tmp/log" 2>&1; then
                tail -n 5 "$tmp/log" >&2
                rm -rf "$tmp"
                echo "tests/compose: debootstrap $suite failed" >&2
                exit 1
            fi
            rm -rf "$tmp/root/var/lib/apt/lists/"* "$tmp/root/var/cache/apt/"*.bin "$tmp/root/var/cache/apt/archives/"*.deb
            tar -C "$tmp/root" -cf "$tar.part" .
            mv "$tar.part" "$tar"
            rm -rf "$tmp"
        fi
        docker import --change 'CMD ["bash"]' "$tar" "sluice-debootstrap:$suite" >/dev/null
        trust_local_authorities "sluice-debootstrap:$suite" "debian:$suite-slim"
        echo "tests/compose: made debian:$suite-slim" >&2
    done
}

# trust_local_authorities FROM TAG: TAG is FROM with the certificate authorities this machine adds
# to Debian's (/usr/local/share/ca-certificates, and certificates put straight into
# /etc/ssl/certs: authorities only), so that builds reach the package registries through the same TLS-inspecting
# proxy the host does. The images install ca-certificates, which picks them up. None: a new tag.
trust_local_authorities() {
    local from="$1" tag="$2" ctx f
    ctx="$(mktemp -d)"
    for f in /usr/local/share/ca-certificates/*.crt /etc/ssl/certs/*.pem; do
        if [ -f "$f" ] && [ ! -L "$f" ] && openssl x509 -in "$f" -noout -ext basicConstraints 2>/dev/null | grep -q CA:TRUE; then
            cp "$f" "$ctx/$(basename "${f%.*}").crt"
        fi
    done
    if compgen -G "$ctx/*.crt" >/dev/null; then
        printf 'FROM %s\nCOPY *.crt /usr/local/share/ca-certificates/\n' "$from" >"$ctx/Dockerfile"
        docker build -q -t "$tag" "$ctx" >/dev/null
    else
        docker tag "$from" "$tag"
    fi
    rm -rf "$ctx"
}

# port_free PORT VARIABLE: fails with what to do when 127.0.0.1:PORT is taken.
port_free() {
    if port_taken "$1"; then
        local who
        who="$(ss -Hltnp "sport = :$1" 2>/dev/null | sed -n 's/.*users:((\("[^"]*"\),pid=\([0-9]*\).*/\1 pid \2/p' | head -n 1)"
        echo "tests/compose: 127.0.0.1:$1 is taken${who:+ by $who}: stop it, or set $2 to a free port" >&2
        exit 1
    fi
}

# wait_healthy LIMIT_SECONDS: until every service of the stack is healthy; fails at once, with the
# last lines a service printed, when one exits or restarts.
wait_healthy() {
    local limit="$1" start ids id name state health restarts pending
    start=$(date +%s)
    while :; do
        pending=""
        ids="$(compose ps -q)"
        [ -n "$ids" ] || { echo "tests/compose: the stack is not running" >&2; exit 1; }
        for id in $ids; do
            read -r name state health restarts <<<"$(docker inspect -f '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{.RestartCount}}' "$id")"
            name="${name#/}"
            if [ "$state" = exited ] || [ "$state" = dead ] || [ "$state" = restarting ] || [ "$restarts" -gt "${SLUICE_COMPOSE_RESTARTS_OK:-0}" ]; then
                echo "tests/compose: $name stopped ($state, restarted $restarts times); its last lines:" >&2
                docker logs --tail 3 "$id" 2>&1 | sed 's/^/  /' >&2
                exit 1
            fi
            if [ "$health" != healthy ]; then pending="$pending $name($health)"; fi
        done
        [ -z "$pending" ] && return
        if [ $(($(date +%s) - start)) -ge "$limit" ]; then
            echo "tests/compose: not healthy after $limit s:$pending (see: tests/compose/compose logs)" >&2
            exit 1
        fi
        sleep 2
    done
}
