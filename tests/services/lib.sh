# Shared by the service scripts (sourced, not run): fetching jars from Maven Central, starting a
# daemon detached from the caller, managing it through a pid file, and checking that it listens
# on loopback only and holds nothing of its caller.

cache="${XDG_CACHE_HOME:-$HOME/.cache}/sluice"

# fetch NAME POM LIBS: copies the POM's dependencies into LIBS once.
fetch_jars() {
    local name="$1" pom="$2" libs="$3"
    if [ ! -f "$libs/.complete" ]; then
        echo "$name: fetching jars from Maven Central into $libs" >&2
        mkdir -p "$libs"
        mvn -q -f "$pom" dependency:copy-dependencies -DoutputDirectory="$libs"
        touch "$libs/.complete"
    fi
}

# port_taken PORT: whether something listens on 127.0.0.1:PORT.
port_taken() {
    (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# pid_running PIDFILE
pid_running() {
    [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

# already_up LABEL PIDFILE PORT: true (and says so) when the daemon of PIDFILE runs; exits when
# another process holds PORT. Every start begins with `already_up ... && return`.
already_up() {
    local label="$1" pidfile="$2" port="$3"
    if pid_running "$pidfile"; then
        echo "$label already running on 127.0.0.1:$port (pid $(cat "$pidfile"))"
        return 0
    fi
    if port_taken "$port"; then
        echo "$label port $port is taken by another process; stop it first" >&2
        exit 1
    fi
    return 1
}

# stop_pid LABEL PIDFILE: SIGTERM, then SIGKILL after 20 s.
stop_pid() {
    local label="$1" pidfile="$2"
    if ! pid_running "$pidfile"; then
        echo "$label not running"
        return
    fi
    local pid
    pid="$(cat "$pidfile")"
    kill "$pid"
    for _ in $(seq 1 40); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; echo "$label stopped"; return; }
        sleep 0.5
    done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$pidfile"
    echo "$label killed after 20 s"
}

# spawn PIDFILE LOG COMMAND...: starts COMMAND in the background as a daemon of its own and
# writes its pid to PIDFILE. The service outlives the script (tests/run leaves it running), so it
# must hold nothing of the caller: in a subshell every inherited file descriptor above 2 is closed
# (a `flock` of a CI wrapper, the pipe of a `$(...)` or of a runner waiting for EOF would
# otherwise stay held until the service stops), stdin comes from /dev/null and stdout and stderr
# go to LOG; setsid gives it a session without a controlling terminal (what nohup was for). The
# subshell is no process group leader, so setsid execs without forking and $! is the daemon's
# own pid.
spawn() {
    local pidfile="$1" log="$2"
    shift 2
    (
        for fd in /proc/self/fd/*; do
            fd="${fd##*/}"
            if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
        done
        exec setsid "$@" </dev/null >"$log" 2>&1
    ) &
    echo $! >"$pidfile"
}

# listening_sockets PID: the TCP and UDP sockets PID listens on, one `ss` line each.
listening_sockets() {
    ss -Hlntup | grep -F "pid=$1," || true
}

# The checks' LABELs are as stop_pid's: "kafka:", "hdfs: namenode", "trino:".

# check_loopback LABEL PID [PORT]: fails, listing them, when PID listens anywhere but on the
# loopback address (0.0.0.0, *, [::] or a host address). With PORT, also fails when `ss` does not
# show PID listening on it, so that a check that cannot see the sockets does not pass.
check_loopback() {
    local label="$1" pid="$2" port="${3:-}" sockets bad
    if ! command -v ss >/dev/null; then
        echo "$label cannot check its sockets: no ss (apt-get install iproute2)" >&2
        return 1
    fi
    sockets="$(listening_sockets "$pid")"
    if [ -z "$sockets" ] || { [ -n "$port" ] && ! awk -v p=":$port" 'substr($5, length($5) - length(p) + 1) == p { f = 1 } END { exit !f }' <<<"$sockets"; }; then
        echo "$label cannot check its sockets: ss -lntup shows none of pid $pid${port:+ on port $port}" >&2
        return 1
    fi
    bad="$(awk '$5 !~ /^(127\.[0-9.]+|\[::1\]|\[::ffff:127\.[0-9.]+\]):[0-9]+$/' <<<"$sockets")"
    if [ -n "$bad" ]; then
        echo "$label listens beyond loopback (a test service must bind 127.0.0.1 only):" >&2
        echo "$bad" >&2
        return 1
    fi
    echo "$label listens on loopback only: $(awk '{ printf "%s%s/%s", sep, $5, $1; sep = " " }' <<<"$sockets")"
}

# check_fds LABEL PID: fails when PID's stdin is not /dev/null, its stdout or stderr is not a
# file (its log), or it holds anything the calling shell holds (a lock, a pipe, a terminal): what
# spawn closes. Run from a shell holding a lock or a pipe, this checks that the daemon did not
# inherit it.
check_fds() {
    local label="$1" pid="$2" fd target ours held=""
    if [ "$(readlink "/proc/$pid/fd/0")" != /dev/null ]; then
        echo "$label pid $pid has stdin $(readlink "/proc/$pid/fd/0"), not /dev/null" >&2
        return 1
    fi
    for fd in 1 2; do
        target="$(readlink "/proc/$pid/fd/$fd")"
        if [ ! -f "$target" ]; then
            echo "$label pid $pid has fd $fd on $target, not on its log file" >&2
            return 1
        fi
    done
    ours="$(for fd in /proc/$$/fd/*; do readlink "$fd" || true; done | grep -vx /dev/null | sort -u || true)"
    for fd in /proc/"$pid"/fd/*; do
        target="$(readlink "$fd")" || continue
        if grep -qxF -- "$target" <<<"$ours"; then
            held="$held ${fd##*/}->$target"
        fi
    done
    if [ -n "$held" ]; then
        echo "$label pid $pid holds file descriptors of its caller:$held" >&2
        return 1
    fi
    echo "$label holds none of its caller's file descriptors (fds 3+ closed, stdin /dev/null, output to $(readlink "/proc/$pid/fd/1"))"
}

# check_daemon LABEL PIDFILE PORT: both checks on a just started daemon; when one fails, stops
# the daemon (an exposed or fd-holding service is not left running) and exits.
check_daemon() {
    local label="$1" pidfile="$2" port="$3" pid
    pid="$(cat "$pidfile")"
    if ! check_loopback "$label" "$pid" "$port" || ! check_fds "$label" "$pid"; then
        stop_pid "$label" "$pidfile"
        exit 1
    fi
}

# wait_listening LABEL PIDFILE PORT LOG: until PORT accepts connections while the process lives.
wait_listening() {
    local label="$1" pidfile="$2" port="$3" log="$4"
    for _ in $(seq 1 120); do
        if ! pid_running "$pidfile"; then
            echo "$label exited during start-up; last log lines:" >&2
            tail -n 20 "$log" >&2
            exit 1
        fi
        if port_taken "$port"; then
            sleep 1 # a daemon that lost a port race exits right after another one bound
            pid_running "$pidfile" && return
        fi
        sleep 0.5
    done
    echo "$label not listening on $port after 60 s; see $log" >&2
    exit 1
}
