#!/usr/bin/env bash
# Checks the running test services (every live pid file of kafka.sh, hdfs.sh and trino.sh under
# the run directory), or the given pids: each must listen on the loopback address only (its
# `ss -lntup` sockets are printed) and hold none of its caller's file descriptors (stdin
# /dev/null, output to its log, and nothing this script's caller holds open). Each start runs the
# same checks on the daemon it started; this script repeats them at any time. To see that no
# lock leaks into a service:
#
#   exec 9>/tmp/sluice.lock && flock 9 && tests/services/kafka.sh start && tests/services/check-loopback.sh
#
#   tests/services/check-loopback.sh [PID...]
#
# Environment: SLUICE_SERVICES_DIR (default ~/.cache/sluice/run), as for the service scripts.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=tests/services/lib.sh
. "$here/lib.sh"
run="${SLUICE_SERVICES_DIR:-$cache/run}"

labels=()
pids=()
if [ $# -gt 0 ]; then
    for pid in "$@"; do
        labels+=("$(cat "/proc/$pid/comm" 2>/dev/null || echo process):")
        pids+=("$pid")
    done
else
    for pidfile in "$run"/*/*.pid; do
        pid_running "$pidfile" || continue
        dir="${pidfile%/*}"
        labels+=("${dir##*/} $(basename "$pidfile" .pid):")
        pids+=("$(cat "$pidfile")")
    done
fi
if [ ${#pids[@]} -eq 0 ]; then
    echo "check-loopback: no running service under $run" >&2
    exit 1
fi

failed=0
for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
        echo "${labels[$i]} pid ${pids[$i]} is not running" >&2
        failed=1
        continue
    fi
    listening_sockets "${pids[$i]}" | sed 's/^/  /'
    check_loopback "${labels[$i]}" "${pids[$i]}" || failed=1
    check_fds "${labels[$i]}" "${pids[$i]}" || failed=1
done
exit $failed
