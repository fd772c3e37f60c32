# Shared by the service scripts (sourced, not run): fetching jars from Maven Central and managing
# a daemon through a pid file.

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
