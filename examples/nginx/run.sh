#!/usr/bin/env bash
# examples/nginx/run.sh: herald behind nginx, in one command.
#
#   examples/nginx/run.sh [HERALD-SERVE-OPTIONS...]
#
# Starts `herald serve` on 127.0.0.1:HERALD_PORT and nginx in front of it on
# 127.0.0.1:PORT, with the configuration nginx.conf next to this script. Everything nginx
# writes (the filled-in config, pid file, logs, temp files) goes to a new work directory
# under ${TMPDIR:-/tmp}; nothing under /etc or /var is read or written. Ctrl-C or SIGTERM
# stops nginx, then herald, and removes the work directory. Extra arguments go to
# `herald serve`, e.g. `--store sqlite:/tmp/herald.db`.
#
# Environment:
#   PORT         nginx's port (default 8080)
#   HERALD_PORT  herald's port (default 8081)
#   HERALD_BIN   the herald binary (default: build/release/herald in this repository if
#                it is there, else build/dev/herald, else `herald` on PATH)
#   NGINX        the nginx binary (default: `nginx` on PATH, else /usr/sbin/nginx)
#   NGINX_CONF   the configuration template (default: nginx.conf next to this script)
#   HERALD_SERVER_TRUSTED_PROXIES
#                the peers whose X-Forwarded-For herald believes (default 127.0.0.1:
#                nginx, which connects to herald from there; set it empty to trust none)
#
# Once both answer it prints "run.sh: ready at http://127.0.0.1:PORT/". Exit status: 0
# after a stop by Ctrl-C or SIGTERM; 1 when something is missing, does not come up, or
# exits by itself (the other one is then stopped too).
set -euo pipefail
shopt -u patsub_replacement 2>/dev/null || true

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(cd "$HERE/../.." && pwd -P)
START_TIMEOUT_S=10
STOP_TIMEOUT_S=5

PORT=${PORT:-8080}
HERALD_PORT=${HERALD_PORT:-8081}
NGINX_CONF=${NGINX_CONF:-$HERE/nginx.conf}

WORKDIR=
HERALD_PID=
NGINX_PID=
SLEEP_PID=

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

# wait_ready NAME PID PORT: polls GET /healthz on PORT until it answers 200; fails when
# PID exits first or START_TIMEOUT_S passes.
wait_ready() {
    local name=$1 pid=$2 port=$3 deadline code=
    deadline=$(($(now_ms) + START_TIMEOUT_S * 1000))
    while true; do
        code=$(http_status "$port" /healthz)
        [[ $code == 200 ]] && return 0
        if ! alive "$pid"; then
            local status=0
            wait "$pid" || status=$?
            if [[ $name == nginx ]]; then
                show_log "$WORKDIR/nginx.out"
                show_log "$WORKDIR/error.log"
            fi
            die "$name exited (status $status) before it answered on 127.0.0.1:$port"
        fi
        if (($(now_ms) > deadline)); then
            [[ $name == nginx ]] && show_log "$WORKDIR/error.log"
            die "$name did not answer GET /healthz on 127.0.0.1:$port with 200 within" \
                "${START_TIMEOUT_S} s (last answer: ${code:-none})"
        fi
        sleep 0.05
    done
}

# stop NAME PID: TERM, then KILL after STOP_TIMEOUT_S.
# shellcheck disable=SC2317 # only called from cleanup, which the EXIT trap calls
stop() {
    local name=$1 pid=$2 deadline
    alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$(($(now_ms) + STOP_TIMEOUT_S * 1000))
    while alive "$pid"; do
        if (($(now_ms) > deadline)); then
            echo "run.sh: $name (pid $pid) still running after ${STOP_TIMEOUT_S} s: KILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.05
    done
    wait "$pid" 2>/dev/null || true
}

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    trap '' INT TERM
    # Every step runs, whatever fails before it.
    set +e
    if [[ -n $SLEEP_PID ]]; then
        kill "$SLEEP_PID" 2>/dev/null || true
    fi
    # nginx first: clients then see the connection drop and retry, instead of getting a
    # 502 from an nginx whose herald is gone (a browser's EventSource gives up on a 502).
    # nginx's TERM is its fast shutdown, which closes open streams at once (QUIT would
    # wait for them to end).
    stop nginx "$NGINX_PID"
    stop herald "$HERALD_PID"
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

if [[ -n ${NGINX:-} ]]; then
    if ! NGINX_BIN=$(command -v "$NGINX") || ! [[ -x $NGINX_BIN ]]; then
        die "NGINX=$NGINX: no such executable file"
    fi
elif NGINX_BIN=$(command -v nginx); then
    :
elif [[ -x /usr/sbin/nginx ]]; then
    NGINX_BIN=/usr/sbin/nginx
else
    die "nginx is not installed (on Debian: apt-get install nginx), or set NGINX"
fi

[[ -r $NGINX_CONF ]] || die "NGINX_CONF=$NGINX_CONF: no such file"

for p in PORT HERALD_PORT; do
    v=${!p}
    if ! [[ $v =~ ^[0-9]+$ ]] || ((v < 1 || v > 65535)); then
        die "$p=$v is not a port number"
    fi
done
[[ $PORT != "$HERALD_PORT" ]] || die "PORT and HERALD_PORT are both $PORT"
port_in_use "$PORT" && die "127.0.0.1:$PORT (PORT, for nginx) is already in use"
port_in_use "$HERALD_PORT" && die "127.0.0.1:$HERALD_PORT (HERALD_PORT, for herald) is already in use"

# ---------------------------------------------------------------------------- start

trap cleanup EXIT
trap 'exit 0' INT TERM

WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/herald-nginx.XXXXXX")
mkdir "$WORKDIR/tmp"
render "$NGINX_CONF" "$WORKDIR/nginx.conf" \
    "LISTEN=127.0.0.1:$PORT" "HERALD=127.0.0.1:$HERALD_PORT" \
    "USER=$(id -un)" "WORKDIR=$WORKDIR"
NGINX_ARGS=(-p "$WORKDIR/" -c "$WORKDIR/nginx.conf" -e "$WORKDIR/error.log")

# A config mistake is reported before anything starts.
if ! out=$("$NGINX_BIN" -t -q "${NGINX_ARGS[@]}" 2>&1); then
    printf '%s\n' "$out" >&2
    die "nginx refused the configuration $NGINX_CONF (filled in: $WORKDIR/nginx.conf)"
fi

# herald listens on loopback only, and nginx reaches it from 127.0.0.1: trusting that
# address lets herald take each client's address from the X-Forwarded-For nginx sets.
HERALD_SERVER_TRUSTED_PROXIES=${HERALD_SERVER_TRUSTED_PROXIES-127.0.0.1} \
    "$HERALD" serve --host 127.0.0.1 --port "$HERALD_PORT" "$@" </dev/null &
HERALD_PID=$!
wait_ready herald "$HERALD_PID" "$HERALD_PORT"
say "herald (pid $HERALD_PID, $HERALD) on http://127.0.0.1:$HERALD_PORT"

"$NGINX_BIN" "${NGINX_ARGS[@]}" </dev/null >>"$WORKDIR/nginx.out" 2>&1 &
NGINX_PID=$!
wait_ready nginx "$NGINX_PID" "$PORT"
say "nginx (pid $NGINX_PID, $NGINX_BIN) on http://127.0.0.1:$PORT, proxying to herald"
say "work dir $WORKDIR (config, logs; removed on exit)"
URL="http://127.0.0.1:$PORT"
cat <<EOF
run.sh: ready at $URL/

  subscribe:  curl -N '$URL/events?topic=demo'
  publish:    curl -d topic=demo -d data=hello $URL/events
  dashboard:  $URL/dashboard/

Ctrl-C stops both.
EOF

# Until a signal comes (the trap exits, and cleanup stops both) or one of them exits.
while alive "$HERALD_PID" && alive "$NGINX_PID"; do
    sleep 0.5 &
    SLEEP_PID=$!
    wait "$SLEEP_PID" || true
done
if ! alive "$NGINX_PID"; then
    show_log "$WORKDIR/error.log"
    die "nginx (pid $NGINX_PID) exited; stopping herald"
fi
die "herald (pid $HERALD_PID) exited; stopping nginx"
