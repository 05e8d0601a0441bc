#!/usr/bin/env bash
# bench/peer.sh: start and stop the SSE servers herald is benchmarked against.
#
#   bench/peer.sh start NAME WORKDIR
#   bench/peer.sh stop  NAME WORKDIR
#
# NAME is `nchan` (nginx + Nchan, bench/peers/nginx-nchan.conf) or `pushpin` (Pushpin with
# the GRIP origin bench/peers/grip-origin.mjs, bench/peers/pushpin/). Everything a run
# creates (config, logs, pid and socket files, temp dirs) goes under WORKDIR; nothing is
# written under /etc, /var or the repository. The servers listen on 127.0.0.1 only.
#
# start  creates WORKDIR, raises the soft NOFILE limit to the hard one, starts the server in
#        the background, waits (at most 15 s) until it answers, and writes WORKDIR/peer.env,
#        bash assignments for the load generator:
#          PEER_NAME, PEER_PIDS (every process of the server, comma-separated: nginx master
#          and workers; the pushpin runner, condure, zurl, pushpin-proxy, pushpin-handler),
#          PEER_HELPER_PIDS (processes that are not the server, e.g. the GRIP origin),
#          PEER_SUB_URL, PEER_PUB_URL, PEER_PUB_BODY, PEER_PUB_CONTENT_TYPE (the --sub-url,
#          --pub-url, --pub-body and --pub-content-type templates), PEER_VERSION,
#          PEER_CONFIG (the repository file to cite) and PEER_CONFIG_FILES (all of them).
#        Exit 1 (after printing the logs and stopping what it started) when the server
#        does not come up; exit 2 on bad usage.
# stop   TERM to every process start recorded in WORKDIR/pids, KILL after 5 s to what is
#        left. Exit 0, also when nothing is running.
#
# Environment:
#   PEER_PORT     base port; default 18081 (nchan), 18091 (pushpin). Pushpin uses PORT
#                 (clients), PORT+1 (publish endpoint) and PORT+2 (GRIP origin).
#   PEER_WORKERS  nginx worker processes; default nproc. (Pushpin has no such knob: condure
#                 runs its own worker threads, the proxy and handler are single processes.)
set -euo pipefail
shopt -u patsub_replacement 2>/dev/null || true

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
PEERS_DIR=$BENCH_DIR/peers
START_TIMEOUT_S=15
STOP_TIMEOUT_S=5

usage() {
    echo "usage: bench/peer.sh start|stop nchan|pushpin WORKDIR" >&2
    exit 2
}

die() {
    echo "bench/peer.sh: $*" >&2
    exit 1
}

[[ $# == 3 ]] || usage
ACTION=$1
NAME=$2
WORKDIR=$3
case $ACTION in start | stop) ;; *) usage ;; esac
case $NAME in nchan | pushpin) ;; *) usage ;; esac
[[ -n $WORKDIR ]] || usage

# ---------------------------------------------------------------------------- helpers

now_ms() {
    local t
    t=$(date +%s%N)
    echo $((t / 1000000))
}

# A process counts as alive when it exists and is not a zombie (a reaped-late child of an
# exited shell must not hold up `stop`).
alive() {
    local pid=$1 stat
    [[ -r /proc/$pid/stat ]] || return 1
    # A plain read: `stat=$(<file)` failing under set -e (the process gone meanwhile) would
    # end the whole script rather than return 1.
    { read -r stat <"/proc/$pid/stat"; } 2>/dev/null || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != Z ]]
}

any_alive() {
    local pid
    for pid in "$@"; do
        if alive "$pid"; then
            return 0
        fi
    done
    return 1
}

comm_of() {
    cat /proc/"$1"/comm 2>/dev/null || true
}

# Records a started process in WORKDIR/pids as "PID COMM ROLE"; ROLE is main (signalled by
# stop), child (stops with its main process; KILLed if it does not) or helper (signalled).
# COMM is the program's name as /proc/PID/comm will show it once it runs: stop leaves alone
# a pid that has since been reused by something else. (Right after `cmd &` the child may
# still be the forking bash, so the name is given, not read.)
record() {
    local pid=$1 comm=$2 role=$3
    echo "$pid $comm $role" >>"$WORKDIR/pids"
}

# render TEMPLATE OUTPUT KEY=VALUE...: replaces each @@KEY@@ by VALUE.
render() {
    local template=$1 out=$2 text key val
    shift 2
    text=$(<"$template")
    for kv in "$@"; do
        key=${kv%%=*}
        val=${kv#*=}
        text=${text//"@@$key@@"/"$val"}
    done
    if [[ $text =~ @@[A-Z_]+@@ ]]; then
        die "$template: no value for ${BASH_REMATCH[0]}"
    fi
    printf '%s\n' "$text" >"$out"
}

# The upstream version of an installed Debian package: 1:1.3.6+dfsg-2 -> 1.3.6.
pkg_version() {
    local v
    v=$(dpkg-query -W -f='${Version}' "$1" 2>/dev/null) || {
        echo unknown
        return
    }
    v=${v#*:}
    v=${v%-*}
    v=${v%%+*}
    v=${v%%~*}
    echo "$v"
}

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

check_port() {
    local port=$1
    if ! [[ $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
        die "bad port '$port'"
    fi
    if port_in_use "$port"; then
        die "127.0.0.1:$port is already in use (another peer? set PEER_PORT)"
    fi
}

http_code() {
    # curl prints 000 when nothing answered; a timeout after the head still prints the code.
    curl -s -o /dev/null -w '%{http_code}' "$@" 2>/dev/null || true
}

# Single-quoted for bash.
quote() {
    local s=$1
    printf "'%s'" "${s//\'/\'\\\'\'}"
}

FAILED_LOGS=()
WAITING_FOR=
fail_start() {
    # Stop first: the logs are still there afterwards, and a reader that goes away while
    # they print must not leave the server running.
    stop_peer >/dev/null 2>&1 || true
    echo "bench/peer.sh: $NAME did not start: $*" >&2
    local log
    for log in "${FAILED_LOGS[@]}"; do
        if [[ -s $log ]]; then
            echo "---- $log" >&2
            tail -n 40 "$log" >&2
        fi
    done
    exit 1
}

# wait_ready DESCRIPTION CHECK-FUNCTION: polls CHECK-FUNCTION until it succeeds; fails the
# start when a recorded main or helper process dies or START_TIMEOUT_S passes.
wait_ready() {
    local what=$1 check=$2 deadline pid comm role
    deadline=$(($(now_ms) + START_TIMEOUT_S * 1000))
    while true; do
        if "$check"; then
            return 0
        fi
        while read -r pid comm role; do
            if [[ $role != child ]] && ! alive "$pid"; then
                fail_start "$comm (pid $pid) exited while waiting for $what"
            fi
        done <"$WORKDIR/pids"
        if (($(now_ms) > deadline)); then
            fail_start "no answer from $what within ${START_TIMEOUT_S} s (last: $WAITING_FOR)"
        fi
        sleep 0.05
    done
}

# ---------------------------------------------------------------------------- stop

stop_peer() {
    local pidfile=$WORKDIR/pids pid comm role deadline
    [[ -f $pidfile ]] || return 0
    local -a mine=() parents=() left=()
    local orphans_termed=0
    while read -r pid comm role; do
        [[ $pid =~ ^[0-9]+$ ]] || continue
        # Only a live process with the recorded name is ours (the pid may have been reused).
        if alive "$pid" && [[ $(comm_of "$pid") == "$comm" ]]; then
            mine+=("$pid")
            if [[ $role != child ]]; then
                parents+=("$pid")
                kill -TERM "$pid" 2>/dev/null || true
            fi
        fi
    done <"$pidfile"
    deadline=$(($(now_ms) + STOP_TIMEOUT_S * 1000))
    while true; do
        left=()
        for pid in "${mine[@]}"; do
            if alive "$pid"; then
                left+=("$pid")
            fi
        done
        ((${#left[@]} > 0)) || break
        if (($(now_ms) > deadline)); then
            echo "bench/peer.sh: $NAME: still running after ${STOP_TIMEOUT_S} s," \
                "KILL: ${left[*]}" >&2
            kill -KILL "${left[@]}" 2>/dev/null || true
            sleep 0.2
            break
        fi
        # Children left once their main process is gone (it died without stopping them)
        # get their own TERM.
        if [[ $orphans_termed == 0 ]] && ! any_alive "${parents[@]}"; then
            kill -TERM "${left[@]}" 2>/dev/null || true
            orphans_termed=1
        fi
        sleep 0.05
    done
    mv -f "$pidfile" "$pidfile.stopped"
}

# ---------------------------------------------------------------------------- nchan

nchan_ready() {
    local code workers
    workers=$(pgrep -P "$MASTER" -c 2>/dev/null || true)
    WAITING_FOR="$workers of $WORKERS workers"
    [[ $workers == "$WORKERS" ]] || return 1
    # Nchan's publisher location answers a GET on a channel nobody created with 404. (A
    # short timeout: a connection made while the workers start can sit unanswered.)
    code=$(http_code --max-time 0.25 "http://127.0.0.1:$PORT/pub/__peer_ready")
    WAITING_FOR="GET /pub/__peer_ready answered $code, not 404"
    [[ $code == 404 ]]
}

start_nchan() {
    PORT=${PEER_PORT:-18081}
    check_port "$PORT"
    local module=/usr/lib/nginx/modules/ngx_nchan_module.so
    [[ -f $module ]] || die "$module is missing (apt-get install libnginx-mod-nchan)"
    command -v nginx >/dev/null || die "nginx is not installed"
    mkdir -p "$WORKDIR/tmp"
    rm -f "$WORKDIR/error.log" "$WORKDIR/nginx.out"
    render "$PEERS_DIR/nginx-nchan.conf" "$WORKDIR/nginx.conf" \
        "PORT=$PORT" "WORKERS=$WORKERS" "NOFILE=$NOFILE" "USER=$(id -un)" "WORKDIR=$WORKDIR"
    FAILED_LOGS=("$WORKDIR/error.log" "$WORKDIR/nginx.out")
    # daemon off: $! is the master. -e: the error log before the config is read.
    nginx -p "$WORKDIR/" -c "$WORKDIR/nginx.conf" -e "$WORKDIR/error.log" \
        </dev/null >>"$WORKDIR/nginx.out" 2>&1 &
    MASTER=$!
    record "$MASTER" nginx main
    wait_ready "nginx on 127.0.0.1:$PORT" nchan_ready
    local pids=$MASTER pid
    for pid in $(pgrep -P "$MASTER"); do
        record "$pid" "$(comm_of "$pid")" child
        pids+=",$pid"
    done
    ENV_PIDS=$pids
    ENV_HELPERS=
    ENV_SUB_URL="http://127.0.0.1:$PORT/sub/{topic}"
    ENV_PUB_URL="http://127.0.0.1:$PORT/pub/{topic}"
    ENV_PUB_BODY='{data}'
    ENV_PUB_CONTENT_TYPE='text/plain'
    ENV_VERSION="nginx $(pkg_version nginx), nchan $(pkg_version libnginx-mod-nchan)"
    ENV_CONFIG='bench/peers/nginx-nchan.conf'
    ENV_CONFIG_FILES='bench/peers/nginx-nchan.conf'
}

# ---------------------------------------------------------------------------- pushpin

PUSHPIN_SERVICES=(condure zurl pushpin-proxy pushpin-handler)

pushpin_ready() {
    local code n
    code=$(http_code --max-time 1 "http://127.0.0.1:$ORIGIN_PORT/health")
    WAITING_FOR="origin GET /health answered $code"
    [[ $code == 200 ]] || return 1
    code=$(http_code --max-time 1 -X POST -H 'Content-Type: application/json' \
        --data-binary '{"items":[]}' "http://127.0.0.1:$PUBLISH_PORT/publish/")
    WAITING_FOR="POST /publish/ answered $code"
    [[ $code == 200 ]] || return 1
    # The whole subscribe path: condure -> proxy -> zurl -> origin -> handler holds it.
    code=$(http_code -N --max-time 0.3 "http://127.0.0.1:$PORT/stream/__peer_ready")
    WAITING_FOR="GET /stream/__peer_ready answered $code"
    [[ $code == 200 ]] || return 1
    n=$(pgrep -P "$RUNNER" -c 2>/dev/null || true)
    WAITING_FOR="$n of ${#PUSHPIN_SERVICES[@]} runner children"
    [[ $n == "${#PUSHPIN_SERVICES[@]}" ]]
}

start_pushpin() {
    PORT=${PEER_PORT:-18091}
    PUBLISH_PORT=$((PORT + 1))
    ORIGIN_PORT=$((PORT + 2))
    local p
    for p in "$PORT" "$PUBLISH_PORT" "$ORIGIN_PORT"; do
        check_port "$p"
    done
    for p in pushpin condure zurl pushpin-proxy pushpin-handler node; do
        command -v "$p" >/dev/null || die "$p is not installed"
    done
    # ZeroMQ ipc endpoints are unix sockets: their path must fit sun_path (107 bytes).
    local longest="$WORKDIR/run/pp-condure-out-stream"
    ((${#longest} <= 100)) || die "WORKDIR is too long for pushpin's ipc sockets: $WORKDIR"
    mkdir -p "$WORKDIR/run" "$WORKDIR/log"
    rm -f "$WORKDIR"/log/*.log "$WORKDIR/log/pushpin.out"
    # condure's cap at twice the file limit: see client_maxconn in the template.
    render "$PEERS_DIR/pushpin/pushpin.conf" "$WORKDIR/pushpin.conf" \
        "PORT=$PORT" "PUBLISH_PORT=$PUBLISH_PORT" "MAXCONN=$((NOFILE * 2))" "WORKDIR=$WORKDIR"
    render "$PEERS_DIR/pushpin/routes" "$WORKDIR/routes" "ORIGIN_PORT=$ORIGIN_PORT"
    FAILED_LOGS=("$WORKDIR/log/origin.log" "$WORKDIR/log/pushpin.out")
    for p in "${PUSHPIN_SERVICES[@]}"; do
        FAILED_LOGS+=("$WORKDIR/log/$p.log")
    done

    node "$PEERS_DIR/grip-origin.mjs" "$ORIGIN_PORT" \
        </dev/null >>"$WORKDIR/log/origin.log" 2>&1 &
    local origin=$!
    record "$origin" node helper
    pushpin --config "$WORKDIR/pushpin.conf" </dev/null >>"$WORKDIR/log/pushpin.out" 2>&1 &
    RUNNER=$!
    record "$RUNNER" pushpin main
    wait_ready "pushpin on 127.0.0.1:$PORT" pushpin_ready

    local pids=$RUNNER pid
    for pid in $(pgrep -P "$RUNNER"); do
        record "$pid" "$(comm_of "$pid")" child
        pids+=",$pid"
    done
    ENV_PIDS=$pids
    ENV_HELPERS=$origin
    ENV_SUB_URL="http://127.0.0.1:$PORT/stream/{topic}"
    ENV_PUB_URL="http://127.0.0.1:$PUBLISH_PORT/publish/"
    # One item per publish; "content" is written to every stream as is. The \n are JSON
    # escapes: the harness fills in {topic} and {data:json} and sends the rest verbatim.
    ENV_PUB_BODY='{"items":[{"channel":"{topic}","formats":{"http-stream":'
    ENV_PUB_BODY+='{"content":"event: message\ndata: {data:json}\n\n"}}}]}'
    ENV_PUB_CONTENT_TYPE='application/json'
    ENV_VERSION="pushpin $(pkg_version pushpin)"
    ENV_VERSION+=" (condure $(pkg_version condure), zurl $(pkg_version zurl))"
    ENV_CONFIG='bench/peers/pushpin/pushpin.conf'
    ENV_CONFIG_FILES='bench/peers/pushpin/pushpin.conf bench/peers/pushpin/routes'
    ENV_CONFIG_FILES+=' bench/peers/grip-origin.mjs'
}

# ---------------------------------------------------------------------------- main

if [[ $ACTION == stop ]]; then
    if [[ -d $WORKDIR ]]; then
        WORKDIR=$(cd "$WORKDIR" && pwd -P)
        stop_peer
    fi
    exit 0
fi

mkdir -p "$WORKDIR"
WORKDIR=$(cd "$WORKDIR" && pwd -P)
if [[ -f $WORKDIR/pids ]]; then
    while read -r pid comm _; do
        if alive "$pid" && [[ $(comm_of "$pid") == "$comm" ]]; then
            die "a peer recorded in $WORKDIR/pids is still running (pid $pid); stop it first"
        fi
    done <"$WORKDIR/pids"
    mv -f "$WORKDIR/pids" "$WORKDIR/pids.stopped"
fi
rm -f "$WORKDIR/peer.env"
: >"$WORKDIR/pids"

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
[[ $NOFILE =~ ^[0-9]+$ ]] || NOFILE=1048576 # "unlimited"
WORKERS=${PEER_WORKERS:-$(nproc)}
[[ $WORKERS =~ ^[1-9][0-9]*$ ]] || die "PEER_WORKERS must be a positive number, not '$WORKERS'"

T0=$(now_ms)
"start_$NAME"
ELAPSED_MS=$(($(now_ms) - T0))

{
    echo "PEER_NAME=$NAME"
    echo "PEER_PIDS=$ENV_PIDS"
    echo "PEER_HELPER_PIDS=$ENV_HELPERS"
    echo "PEER_SUB_URL=$(quote "$ENV_SUB_URL")"
    echo "PEER_PUB_URL=$(quote "$ENV_PUB_URL")"
    echo "PEER_PUB_BODY=$(quote "$ENV_PUB_BODY")"
    echo "PEER_PUB_CONTENT_TYPE=$(quote "$ENV_PUB_CONTENT_TYPE")"
    echo "PEER_VERSION=$(quote "$ENV_VERSION")"
    echo "PEER_CONFIG=$(quote "$ENV_CONFIG")"
    echo "PEER_CONFIG_FILES=$(quote "$ENV_CONFIG_FILES")"
} >"$WORKDIR/peer.env.tmp"
mv -f "$WORKDIR/peer.env.tmp" "$WORKDIR/peer.env"

printf 'bench/peer.sh: %s (%s) ready in %d.%03d s; pids %s%s; env in %s\n' \
    "$NAME" "$ENV_VERSION" $((ELAPSED_MS / 1000)) $((ELAPSED_MS % 1000)) \
    "$ENV_PIDS" "${ENV_HELPERS:+, helper $ENV_HELPERS}" "$WORKDIR/peer.env"
