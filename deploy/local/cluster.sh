#!/usr/bin/env bash
# cluster.sh -- a local cluster for trying sandboxd at scale and for the tests: N replicas and
# the HAProxy router on 127.0.0.1, with the routing config of Kubernetes (the same template,
# deploy/router/haproxy.cfg.in, rendered for local ports).
#
#   AUTH_TOKEN=... deploy/local/cluster.sh up N   start node-1..node-N and the router; prints
#                                                 ROUTER=http://127.0.0.1:PORT, then one
#                                                 NODE_I=node-I http://127.0.0.1:PORT each
#   deploy/local/cluster.sh kill I                SIGKILL replica I (1-based); the rest go on
#   deploy/local/cluster.sh stop I                SIGTERM replica I: it drains (no new sessions,
#                                                 open ones go on until they end or
#                                                 SHUTDOWN_GRACE_MS) and exits; waits for that
#   deploy/local/cluster.sh start I               start replica I again (same node, same port)
#   deploy/local/cluster.sh status                each replica: running or not, and GET /ready
#   deploy/local/cluster.sh down                  stop everything; no process, no directory left
#
# State lives in CLUSTER_DIR (default ${XDG_RUNTIME_DIR:-/tmp}/sandboxd-cluster-$UID): each
# replica's DATA_DIR, log (node-I/sandboxd.log) and pid, the router's config and log. The
# replicas get every setting from the environment as usual (e.g. BROWSER_MAX_SESSIONS=2), plus
# NODE_ID=node-I, HOST=127.0.0.1, their own PORT and DATA_DIR, CLUSTER_URL=the router, and
# SHUTDOWN_GRACE_MS (default here 30000). SANDBOXD_BIN picks the binary (default build/sandboxd
# of this checkout), HAPROXY_BIN the router (default haproxy, from Debian's haproxy package),
# ROUTER_PORT the router's port (default: a free one); CLUSTER_SAVE_LOGS=DIR makes `down`
# copy the logs there first.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dir=${CLUSTER_DIR:-${XDG_RUNTIME_DIR:-/tmp}/sandboxd-cluster-$(id -u)}
bin=${SANDBOXD_BIN:-$root/build/sandboxd}
haproxy=${HAPROXY_BIN:-haproxy}

die() { echo "cluster.sh: $*" >&2 && exit 1; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# http_status URL: the status of a GET (000 when nothing answers), within 2 s.
http_status() {
    python3 - "$1" <<'PY'
import sys, urllib.request, urllib.error
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=2).status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print("000")
PY
}

# running PID: the process exists and is not a zombie (an orphan's reaper may be slow).
running() {
    local st
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    st=${st##*) }
    [[ ${st:0:1} != Z ]]
}

alive() { [[ -f $1 ]] && running "$(cat "$1")"; }

# wait_health URL SECONDS [PIDFILE]: until GET URL answers 200, or fail (at once when the
# process of PIDFILE is gone).
wait_health() {
    local url=$1 until=$((SECONDS + $2)) pf=${3:-}
    while ((SECONDS < until)); do
        [[ $(http_status "$url") == 200 ]] && return 0
        [[ -n $pf ]] && ! alive "$pf" && return 1
        sleep 0.2
    done
    return 1
}

replicas() { cat "$dir/replicas" 2>/dev/null || echo 0; }

check_index() {
    [[ $1 =~ ^[0-9]+$ ]] && (($1 >= 1 && $1 <= $(replicas))) ||
        die "replica '$1' is not one of 1..$(replicas) (is the cluster up?)"
}

start_replica() {
    local i=$1 node="node-$1" port
    port=$(cat "$dir/$node/port")
    mkdir -p "$dir/$node/data"
    alive "$dir/$node/pid" && die "replica $i ($node) is already running"
    echo "${SHUTDOWN_GRACE_MS:-30000}" >"$dir/$node/grace_ms"
    NODE_ID=$node HOST=127.0.0.1 PORT=$port DATA_DIR="$dir/$node/data" \
        CLUSTER_URL="http://127.0.0.1:$(cat "$dir/router.port")" \
        SHUTDOWN_GRACE_MS=${SHUTDOWN_GRACE_MS:-30000} \
        setsid "$bin" >>"$dir/$node/sandboxd.log" 2>&1 </dev/null &
    echo $! >"$dir/$node/pid"
    wait_health "http://127.0.0.1:$port/health" 30 "$dir/$node/pid" ||
        die "replica $i ($node) exited or did not answer GET /health in 30 s (its log: $dir/$node/sandboxd.log)"
}

# The Chromiums and runs of a replica that was SIGKILLed outlive it; their DATA_DIR's .owner
# records ("pid starttime", common/sweep.h) say which process groups are provably its own.
sweep_replica() {
    local owner pid start stat
    for owner in "$dir/$1"/data/{browser,runs}/*/.owner; do
        [[ -f $owner ]] || continue
        read -r pid start <"$owner" || continue
        [[ $pid =~ ^[0-9]+$ ]] && ((pid > 1)) || continue
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        stat=${stat##*) }
        read -ra f <<<"$stat"
        [[ ${f[19]:-} == "$start" ]] && kill -KILL -- "-$pid" 2>/dev/null || true
    done
}

# stop_pid PIDFILE SECONDS: SIGTERM, a second SIGTERM after `drain` seconds (it ends a
# replica's drain), SIGKILL past SECONDS.
stop_pid() {
    local pf=$1 limit=$((SECONDS + $2)) drain=${3:-0} again=0 pid
    alive "$pf" || return 0
    pid=$(cat "$pf")
    kill -TERM "$pid" 2>/dev/null || true
    while running "$pid"; do
        if ((!again && SECONDS >= limit - $2 + drain)); then
            kill -TERM "$pid" 2>/dev/null || true
            again=1
        fi
        if ((SECONDS >= limit)); then
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
    wait "$pid" 2>/dev/null || true
}

cmd_up() {
    local n=${1:-}
    [[ $n =~ ^[0-9]+$ ]] && ((n >= 1 && n <= 16)) || die "up N: N must be 1 to 16"
    [[ -n ${AUTH_TOKEN:-} ]] || die "set AUTH_TOKEN in the environment (the replicas' master token)"
    [[ -x $bin ]] || die "no sandboxd binary at $bin (build it, or set SANDBOXD_BIN)"
    command -v "$haproxy" >/dev/null || die "no haproxy (apt-get install haproxy, or set HAPROXY_BIN)"
    [[ -e $dir/replicas ]] && die "a cluster is already up in $dir (cluster.sh down first)"
    # a start that fails half-way shows the logs' ends, stops what it started and leaves no
    # directory
    up_done=0
    trap 'if ((!up_done)); then tail -n 5 "$dir"/node-*/sandboxd.log "$dir/haproxy.log" >&2 2>/dev/null || true; cmd_down >/dev/null 2>&1 || true; fi' EXIT
    mkdir -p "$dir"
    chmod 700 "$dir"
    echo "$n" >"$dir/replicas"
    echo "${ROUTER_PORT:-$(free_port)}" >"$dir/router.port"
    local nodes=() i
    for ((i = 1; i <= n; i++)); do
        mkdir -p "$dir/node-$i"
        free_port >"$dir/node-$i/port"
        nodes+=("node-$i=127.0.0.1:$(cat "$dir/node-$i/port")")
    done
    "$root/deploy/router/render.sh" --bind "127.0.0.1:$(cat "$dir/router.port")" "${nodes[@]}" \
        >"$dir/haproxy.cfg"
    for ((i = 1; i <= n; i++)); do
        start_replica "$i"
    done
    setsid "$haproxy" -db -f "$dir/haproxy.cfg" >>"$dir/haproxy.log" 2>&1 </dev/null &
    echo $! >"$dir/haproxy.pid"
    local router="http://127.0.0.1:$(cat "$dir/router.port")"
    wait_health "$router/ready" 15 ||
        die "the router did not pass GET /ready to a replica in 15 s; see $dir/haproxy.log"
    echo "ROUTER=$router"
    for ((i = 1; i <= n; i++)); do
        echo "NODE_$i=node-$i http://127.0.0.1:$(cat "$dir/node-$i/port")"
    done
    up_done=1
}

cmd_kill() {
    check_index "${1:-}"
    local pf="$dir/node-$1/pid"
    alive "$pf" || die "replica $1 is not running"
    kill -KILL "$(cat "$pf")"
    wait "$(cat "$pf")" 2>/dev/null || true
    while running "$(cat "$pf")"; do sleep 0.05; done
    echo "killed node-$1"
}

cmd_stop() {
    check_index "${1:-}"
    local grace=$(($(cat "$dir/node-$1/grace_ms") / 1000))
    alive "$dir/node-$1/pid" || die "replica $1 is not running"
    stop_pid "$dir/node-$1/pid" $((grace + 15)) $((grace + 5))
    echo "stopped node-$1"
}

cmd_start() {
    check_index "${1:-}"
    sweep_replica "node-$1"
    start_replica "$1"
    echo "started node-$1 http://127.0.0.1:$(cat "$dir/node-$1/port")"
}

cmd_status() {
    local n i
    n=$(replicas)
    ((n)) || die "no cluster is up in $dir"
    echo "ROUTER=http://127.0.0.1:$(cat "$dir/router.port") $(alive "$dir/haproxy.pid" && echo running || echo stopped)"
    for ((i = 1; i <= n; i++)); do
        local port
        port=$(cat "$dir/node-$i/port")
        if alive "$dir/node-$i/pid"; then
            echo "node-$i http://127.0.0.1:$port running ready=$(http_status "http://127.0.0.1:$port/ready")"
        else
            echo "node-$i http://127.0.0.1:$port stopped"
        fi
    done
}

cmd_down() {
    [[ -d $dir ]] || return 0
    local n i
    n=$(replicas)
    stop_pid "$dir/haproxy.pid" 5
    # a second SIGTERM ends a replica's drain: down does not wait for sessions to end
    for ((i = 1; i <= n; i++)); do
        alive "$dir/node-$i/pid" && kill -TERM "$(cat "$dir/node-$i/pid")" 2>/dev/null || true
    done
    sleep 0.3
    for ((i = 1; i <= n; i++)); do
        stop_pid "$dir/node-$i/pid" 20 0
        sweep_replica "node-$i"
    done
    if [[ -n ${CLUSTER_SAVE_LOGS:-} ]]; then
        mkdir -p "$CLUSTER_SAVE_LOGS"
        for ((i = 1; i <= n; i++)); do
            cp "$dir/node-$i/sandboxd.log" "$CLUSTER_SAVE_LOGS/node-$i.log" 2>/dev/null || true
        done
        cp "$dir/haproxy.log" "$CLUSTER_SAVE_LOGS/haproxy.log" 2>/dev/null || true
    fi
    rm -rf "$dir"
    echo "down"
}

case ${1:-} in
up | kill | stop | start | status | down)
    c=$1
    shift
    "cmd_$c" "$@"
    ;;
*) sed -n '2,25p' "$0" && exit 2 ;;
esac
