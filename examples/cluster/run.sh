#!/usr/bin/env bash
# examples/cluster/run.sh: a herald cluster behind nginx, in one command.
#
#   examples/cluster/run.sh [HERALD-SERVE-OPTIONS...]
#
# Starts, all on 127.0.0.1 and as children of this script:
#   - redis-server on REDIS_PORT, its data in the work directory;
#   - two herald nodes, node-a on NODE_A_PORT and node-b on NODE_B_PORT, both on
#     `--store redis://127.0.0.1:REDIS_PORT` (extra arguments go to both `herald serve`);
#   - nginx on PORT, balancing every herald path over both nodes round robin and serving
#     the page (index.html, cluster.js, cluster.css) at /, with nginx.conf next to this
#     script;
#   - a generator: a shell loop running `herald pub` through nginx (so publishes alternate
#     between the nodes), one event {"n": N, "time": "..."} every INTERVAL seconds on
#     TOPIC, N counting every attempt from 1.
# A node that exits (try `kill -9`) is started again after RESTART_DELAY seconds. If redis,
# nginx or the generator exits, or a node does not come back, everything is stopped.
#
# Everything goes to a new work directory under ${TMPDIR:-/tmp}: the filled-in nginx config,
# Redis's files, the logs (redis.log, node-a.log, node-b.log, error.log, access.log), the
# generator's record (generator.log: `ok N ID` for each publish answered 200, `failed N
# REASON` for the others) and the pid of each process in NAME.pid (redis, node-a, node-b,
# nginx, generator; a restarted node's file is rewritten). Nothing under /etc or /var is
# read or written. Ctrl-C or SIGTERM stops the generator, nginx, the nodes and Redis, in
# that order, waits for each, removes the work directory and exits 0.
#
# Environment:
#   PORT               nginx's port, the one to open (default 8080)
#   NODE_A_PORT        node-a's port (default 8081)
#   NODE_B_PORT        node-b's port (default 8082)
#   REDIS_PORT         redis-server's port (default 6380, so that a system Redis on 6379
#                      is left alone)
#   REDIS_PERSISTENCE  none (default) | rdb | everysec | always: what a 200 means; see
#                      README.md
#   TOPIC              the generator's topic (default counter)
#   INTERVAL           seconds between two publishes (default 1; 0.2 works)
#   RESTART_DELAY      seconds before a node that exited is started again (default 5), or
#                      never
#   HERALD_BIN         the herald binary (default: build/release/herald in this repository
#                      if it is there, else build/dev/herald, else `herald` on PATH)
#   REDIS_SERVER       the redis-server binary (default: on PATH, else /usr/bin/redis-server)
#   NGINX              the nginx binary (default: on PATH, else /usr/sbin/nginx)
#
# Once all answer it prints the pids, the work directory and then
# "run.sh: ready at http://127.0.0.1:PORT/". Exit status: 0 after Ctrl-C or SIGTERM; 1
# when something is missing, does not come up, or exits by itself.
set -euo pipefail
shopt -u patsub_replacement 2>/dev/null || true

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(cd "$HERE/../.." && pwd -P)
START_TIMEOUT_S=15
STOP_TIMEOUT_S=5
NODES=(node-a node-b)

PORT=${PORT:-8080}
NODE_A_PORT=${NODE_A_PORT:-8081}
NODE_B_PORT=${NODE_B_PORT:-8082}
REDIS_PORT=${REDIS_PORT:-6380}
REDIS_PERSISTENCE=${REDIS_PERSISTENCE:-none}
TOPIC=${TOPIC:-counter}
INTERVAL=${INTERVAL:-1}
RESTART_DELAY=${RESTART_DELAY:-5}
SERVE_ARGS=("$@")

WORKDIR=
REDIS_PID=
NGINX_PID=
GENERATOR_PID=
SLEEP_PID=
SPAWNED=
declare -A NODE_PID=() NODE_PORT=([node-a]=$NODE_A_PORT [node-b]=$NODE_B_PORT) RESTART_AT=()

say() {
    echo "run.sh: $*"
}

die() {
    echo "run.sh: $*" >&2
    exit 1
}

now_ms() {
    local t
    t=$(date +%s%N)
    echo $((t / 1000000))
}

# A process counts as alive when it exists and is not a zombie.
# (`read`, not `$(<file)`: under `set -e` a failed `$(<file)` ends the whole script, and
# the process may exit between any check and the read.)
alive() {
    local pid=$1 stat=
    [[ -n $pid ]] || return 1
    { read -r stat <"/proc/$pid/stat"; } 2>/dev/null || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != Z ]]
}

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# The status code of `GET PATH` on 127.0.0.1:PORT, or nothing when no answer came within
# a second. Plain bash, so that curl is not needed.
http_status() {
    local port=$1 path=$2
    (
        exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 0
        printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n' \
            "$path" "$port" >&3
        line=
        read -r -t 1 line <&3 || true
        line=${line#HTTP/1.? }
        echo "${line%% *}"
    ) 2>/dev/null || true
}

# Redis's answer to PING on 127.0.0.1:PORT (PONG once it serves), or nothing.
redis_ping() {
    local port=$1
    (
        exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 0
        printf 'PING\r\n' >&3
        line=
        read -r -t 1 line <&3 || true
        line=${line%$'\r'}
        echo "${line#[+-]}"
    ) 2>/dev/null || true
}

# render TEMPLATE OUTPUT KEY=VALUE...: replaces each @@KEY@@ by VALUE.
render() {
    local template=$1 out=$2 text kv key val
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

show_log() {
    local log=$1
    if [[ -s $log ]]; then
        echo "---- $log" >&2
        tail -n 20 "$log" >&2
    fi
}

# Writes PID to WORKDIR/NAME.pid in one step (a reader never sees half a file).
write_pid() {
    local name=$1 pid=$2
    printf '%s\n' "$pid" >"$WORKDIR/$name.pid.new"
    mv -f "$WORKDIR/$name.pid.new" "$WORKDIR/$name.pid"
}

# How a process ended, from the status `wait` gave.
ended() {
    local status=$1
    if ((status > 128)); then
        echo "was killed by SIG$(kill -l $((status - 128)) 2>/dev/null || echo $((status - 128)))"
    else
        echo "exited with status $status"
    fi
}

# wait_ready NAME PID LOG PROBE...: runs the command PROBE... (which prints what it got)
# until it prints 200 or PONG; fails, showing the end of LOG, when PID exits first or
# START_TIMEOUT_S passes.
wait_ready() {
    local name=$1 pid=$2 log=$3 deadline got=
    shift 3
    deadline=$(($(now_ms) + START_TIMEOUT_S * 1000))
    while true; do
        got=$("$@")
        [[ $got == 200 || $got == PONG ]] && return 0
        if ! alive "$pid"; then
            local status=0
            wait "$pid" || status=$?
            show_log "$log"
            die "$name (pid $pid) $(ended "$status") before it was ready"
        fi
        if (($(now_ms) > deadline)); then
            show_log "$log"
            die "$name (pid $pid) was not ready within ${START_TIMEOUT_S} s" \
                "(\`$*\` got: ${got:-nothing})"
        fi
        sleep 0.05
    done
}

# spawn COMMAND...: starts COMMAND in the background, in a process group of its own (job
# control, for that moment only), and sets SPAWNED to its pid. Ctrl-C in a terminal then
# reaches this script alone, and cleanup stops the children in order. Job control stays
# off otherwise: with it on, a foreground command such as `sleep` would get the terminal,
# and with it a Ctrl-C meant for this script.
spawn() {
    set -m
    "$@" &
    SPAWNED=$!
    set +m
}

start_node() {
    local name=$1 port=${NODE_PORT[$1]} pid
    spawn "$HERALD" serve --host 127.0.0.1 --port "$port" \
        --store "redis://127.0.0.1:$REDIS_PORT" --node-name "$name" "${SERVE_ARGS[@]}" \
        </dev/null >>"$WORKDIR/$name.log" 2>&1
    pid=$SPAWNED
    NODE_PID[$name]=$pid
    write_pid "$name" "$pid"
    wait_ready "$name" "$pid" "$WORKDIR/$name.log" http_status "$port" /readyz
    # Out of the job table: a node killed by a signal is this demo's point, and bash would
    # report it with a line of its own ("line N: PID Killed  herald serve ..."). The
    # script still reaps it; the loop below sees it gone.
    disown "$pid"
}

# The generator: one `herald pub` through nginx every INTERVAL seconds. N counts attempts,
# so a number whose publish failed is not used again: an event the generator got a 200
# for appears exactly once, in the order of N, and a failed one at most once.
generate() {
    local n=0 data id err
    while true; do
        n=$((n + 1))
        data=$(printf '{"n":%d,"time":"%s"}' "$n" "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)")
        if id=$("$HERALD" pub --url "http://127.0.0.1:$PORT" "$TOPIC" "$data" \
            </dev/null 2>"$WORKDIR/generator.err"); then
            printf 'ok %d %s\n' "$n" "$id" >>"$WORKDIR/generator.log"
        else
            # One line, whatever herald pub printed (an HTML error page from nginx, say).
            err=$(tr -s '\r\n\t ' ' ' <"$WORKDIR/generator.err")
            printf 'failed %d %s\n' "$n" "$err" >>"$WORKDIR/generator.log"
            echo "run.sh: generator: publish #$n failed: $err" >&2
        fi
        sleep "$INTERVAL"
    done
}

# stop_all NAME=PID...: TERM to each at once, then waits for each; KILL to any still running
# after STOP_TIMEOUT_S.
# shellcheck disable=SC2317 # only called from cleanup, which the EXIT trap calls
stop_all() {
    local kv pid deadline
    for kv in "$@"; do
        pid=${kv#*=}
        alive "$pid" && kill -TERM "$pid" 2>/dev/null
    done
    deadline=$(($(now_ms) + STOP_TIMEOUT_S * 1000))
    for kv in "$@"; do
        pid=${kv#*=}
        [[ -n $pid ]] || continue
        while alive "$pid"; do
            if (($(now_ms) > deadline)); then
                echo "run.sh: ${kv%%=*} (pid $pid) still running after" \
                    "${STOP_TIMEOUT_S} s: KILL" >&2
                kill -KILL "$pid" 2>/dev/null
                break
            fi
            sleep 0.05
        done
        wait "$pid" 2>/dev/null
    done
}

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    trap '' INT TERM
    # Every step runs, whatever fails before it.
    set +e
    [[ -n $SLEEP_PID ]] && kill "$SLEEP_PID" 2>/dev/null
    # The generator first, with what it runs (its own process group: a `sleep` or a
    # `herald pub`), so that no publish is under way while the rest stops.
    if [[ -n $GENERATOR_PID ]]; then
        kill -TERM -- "-$GENERATOR_PID" 2>/dev/null
        wait "$GENERATOR_PID" 2>/dev/null
    fi
    # nginx before the nodes: clients see their connection drop and retry, rather than
    # getting a 502 from an nginx whose nodes are gone. TERM is nginx's fast shutdown.
    stop_all "nginx=$NGINX_PID"
    stop_all "node-a=${NODE_PID[node-a]:-}" "node-b=${NODE_PID[node-b]:-}"
    stop_all "redis-server=$REDIS_PID"
    if [[ -n $WORKDIR ]]; then
        rm -rf "$WORKDIR"
    fi
}

# ---------------------------------------------------------------------------- checks

if [[ -n ${HERALD_BIN:-} ]]; then
    HERALD=$HERALD_BIN
    if [[ $HERALD != */* ]]; then
        HERALD=$(command -v "$HERALD") || die "HERALD_BIN=$HERALD_BIN: not found on PATH"
    fi
    [[ -f $HERALD && -x $HERALD ]] || die "HERALD_BIN=$HERALD_BIN: no such executable file"
elif [[ -x $REPO/build/release/herald ]]; then
    HERALD=$REPO/build/release/herald
elif [[ -x $REPO/build/dev/herald ]]; then
    HERALD=$REPO/build/dev/herald
elif HERALD=$(command -v herald); then
    :
else
    die "no herald binary: none in $REPO/build/release or $REPO/build/dev, none on PATH" \
        "(build it with \`make build\`, or set HERALD_BIN)"
fi

# find_tool VAR DEFAULT-NAME FALLBACK-PATH HINT: the path of a program, or a clear refusal.
find_tool() {
    local var=$1 name=$2 fallback=$3 hint=$4 path
    if [[ -n ${!var:-} ]]; then
        if ! path=$(command -v "${!var}") || ! [[ -x $path ]]; then
            die "$var=${!var}: no such executable file"
        fi
    elif path=$(command -v "$name"); then
        :
    elif [[ -x $fallback ]]; then
        path=$fallback
    else
        die "$name is not installed ($hint), or set $var"
    fi
    echo "$path"
}
NGINX_BIN=$(find_tool NGINX nginx /usr/sbin/nginx "on Debian: apt-get install nginx")
REDIS_BIN=$(find_tool REDIS_SERVER redis-server /usr/bin/redis-server \
    "on Debian: apt-get install redis-server")

for p in PORT NODE_A_PORT NODE_B_PORT REDIS_PORT; do
    v=${!p}
    if ! [[ $v =~ ^[0-9]+$ ]] || ((v < 1 || v > 65535)); then
        die "$p=$v is not a port number"
    fi
done
declare -A port_owner=()
for p in PORT NODE_A_PORT NODE_B_PORT REDIS_PORT; do
    v=${!p}
    [[ -z ${port_owner[$v]:-} ]] || die "${port_owner[$v]} and $p are both $v"
    port_owner[$v]=$p
done
for p in PORT NODE_A_PORT NODE_B_PORT REDIS_PORT; do
    port_in_use "${!p}" && die "127.0.0.1:${!p} ($p) is already in use"
done

# What a 200 from a node means is what Redis does with an append before it answers.
case $REDIS_PERSISTENCE in
    none) REDIS_ARGS=(--save '' --appendonly no) ;;
    rdb) REDIS_ARGS=(--save '3600 1 300 100 60 10000' --appendonly no) ;;
    everysec) REDIS_ARGS=(--save '' --appendonly yes --appendfsync everysec) ;;
    always) REDIS_ARGS=(--save '' --appendonly yes --appendfsync always) ;;
    *) die "REDIS_PERSISTENCE=$REDIS_PERSISTENCE: expected none, rdb, everysec or always" ;;
esac
if ! [[ $INTERVAL =~ ^([0-9]+(\.[0-9]*)?|\.[0-9]+)$ && $INTERVAL =~ [1-9] ]]; then
    die "INTERVAL=$INTERVAL is not a number of seconds above 0"
fi
[[ $RESTART_DELAY =~ ^([0-9]+|never)$ ]] ||
    die "RESTART_DELAY=$RESTART_DELAY: expected a whole number of seconds or never"
[[ -n $TOPIC && $TOPIC != *[[:cntrl:]]* ]] || die "TOPIC must be a non-empty line of text"

# ---------------------------------------------------------------------------- start

trap cleanup EXIT
trap 'exit 0' INT TERM

WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/herald-cluster.XXXXXX")
mkdir "$WORKDIR/tmp" "$WORKDIR/redis"
render "$HERE/nginx.conf" "$WORKDIR/nginx.conf" \
    "LISTEN=127.0.0.1:$PORT" "NODE_A=127.0.0.1:$NODE_A_PORT" "NODE_B=127.0.0.1:$NODE_B_PORT" \
    "PAGE=$HERE" "USER=$(id -un)" "WORKDIR=$WORKDIR"
NGINX_ARGS=(-p "$WORKDIR/" -c "$WORKDIR/nginx.conf" -e "$WORKDIR/error.log")

# A config mistake is reported before anything starts.
if ! out=$("$NGINX_BIN" -t -q "${NGINX_ARGS[@]}" 2>&1); then
    printf '%s\n' "$out" >&2
    die "nginx refused the configuration $HERE/nginx.conf (filled in: $WORKDIR/nginx.conf)"
fi

# No config file: every setting is on the command line, so Debian's /etc/redis is not read.
# (What Redis says before it opens its log file, a bad argument say, goes to the log too.)
# shellcheck disable=SC2094 # both only append
spawn "$REDIS_BIN" --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$WORKDIR/redis" \
    --logfile "$WORKDIR/redis.log" --daemonize no "${REDIS_ARGS[@]}" \
    </dev/null >/dev/null 2>>"$WORKDIR/redis.log"
REDIS_PID=$SPAWNED
write_pid redis "$REDIS_PID"
wait_ready redis-server "$REDIS_PID" "$WORKDIR/redis.log" redis_ping "$REDIS_PORT"
say "redis-server (pid $REDIS_PID, $REDIS_BIN) on 127.0.0.1:$REDIS_PORT," \
    "persistence: $REDIS_PERSISTENCE"

for name in "${NODES[@]}"; do
    start_node "$name"
    say "$name (pid ${NODE_PID[$name]}) on http://127.0.0.1:${NODE_PORT[$name]}"
done

spawn "$NGINX_BIN" "${NGINX_ARGS[@]}" </dev/null >>"$WORKDIR/error.log" 2>&1
NGINX_PID=$SPAWNED
wait_ready nginx "$NGINX_PID" "$WORKDIR/error.log" http_status "$PORT" /healthz
say "nginx (pid $NGINX_PID, $NGINX_BIN) on http://127.0.0.1:$PORT, balancing over" \
    "${NODES[*]}"

: >"$WORKDIR/generator.log"
spawn generate </dev/null >/dev/null
GENERATOR_PID=$SPAWNED
write_pid generator "$GENERATOR_PID"
say "generator (pid $GENERATOR_PID) publishing {\"n\":N,\"time\":\"...\"} to topic $TOPIC" \
    "every $INTERVAL s through nginx"
say "work dir $WORKDIR (pids, logs, config; removed on exit)"

URL="http://127.0.0.1:$PORT"
PAGE_URL="$URL/"
if [[ $TOPIC != counter ]]; then
    PAGE_URL="$URL/?topic=$(printf '%s' "$TOPIC" | od -An -tx1 -v | tr -d ' \n' | sed 's/../%&/g')"
fi
if [[ $RESTART_DELAY == never ]]; then
    restart_note="run.sh does not restart it"
else
    restart_note="run.sh restarts it after $RESTART_DELAY s"
fi
cat <<EOF
run.sh: ready at $URL/

  the page:   $PAGE_URL
  subscribe:  curl -Ni '$URL/events?topic=$TOPIC'     (X-Herald-Node: the node)
  kill one:   kill -9 \$(cat $WORKDIR/node-a.pid)     ($restart_note)
  the nodes:  curl -s $URL/cluster
  logs:       tail -f $WORKDIR/{generator,node-a,node-b}.log

Ctrl-C stops everything.
EOF

# Until a signal comes (the trap exits and cleanup stops everything), or something exits.
while true; do
    if ! alive "$REDIS_PID"; then
        show_log "$WORKDIR/redis.log"
        die "redis-server (pid $REDIS_PID) exited; stopping everything"
    fi
    if ! alive "$NGINX_PID"; then
        show_log "$WORKDIR/error.log"
        die "nginx (pid $NGINX_PID) exited; stopping everything"
    fi
    if ! alive "$GENERATOR_PID"; then
        die "the generator (pid $GENERATOR_PID) exited; stopping everything"
    fi
    for name in "${NODES[@]}"; do
        pid=${NODE_PID[$name]}
        if [[ -n $pid ]] && ! alive "$pid"; then
            NODE_PID[$name]=
            rm -f "$WORKDIR/$name.pid"
            msg="$name (pid $pid) exited; nginx sends its clients to the other node"
            if [[ $RESTART_DELAY == never ]]; then
                say "$msg"
            else
                say "$msg; restarting $name in $RESTART_DELAY s"
                RESTART_AT[$name]=$(($(now_ms) + RESTART_DELAY * 1000))
            fi
        elif [[ -z $pid && -n ${RESTART_AT[$name]:-} ]] &&
            (($(now_ms) >= RESTART_AT[$name])); then
            unset "RESTART_AT[$name]"
            start_node "$name"
            say "$name (pid ${NODE_PID[$name]}) on http://127.0.0.1:${NODE_PORT[$name]} again"
        fi
    done
    sleep 0.2 &
    SLEEP_PID=$!
    wait "$SLEEP_PID" || true
    SLEEP_PID=
done
