#!/usr/bin/env bash
# The clock example in one command: herald serves this folder at / and publishes each line
# of a ticker, `clock <ISO-8601 UTC time>` once a second, read from its standard input.
#
#   examples/clock/run.sh [extra herald serve arguments...]
#
# PORT (default 8080) picks the port. HERALD_BIN picks the binary (default: build/release/herald,
# else build/dev/herald, else `herald` on PATH; a relative path is taken from the repository
# root). Ctrl-C or SIGTERM stops herald and the ticker, and the script exits with herald's
# status (0 after a clean stop).
set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
root=$(cd -- "$here/../.." && pwd)
port=${PORT:-8080}

find_herald() {
    if [[ -n ${HERALD_BIN:-} ]]; then
        case $HERALD_BIN in
            /*) printf '%s\n' "$HERALD_BIN" ;;
            */*) printf '%s\n' "$root/$HERALD_BIN" ;;
            *) command -v -- "$HERALD_BIN" || printf '%s\n' "$HERALD_BIN" ;;
        esac
    elif [[ -x $root/build/release/herald ]]; then
        printf '%s\n' "$root/build/release/herald"
    elif [[ -x $root/build/dev/herald ]]; then
        printf '%s\n' "$root/build/dev/herald"
    else
        command -v herald || true
    fi
}

herald=$(find_herald)
if [[ -z $herald || ! -x $herald || -d $herald ]]; then
    echo "run.sh: no herald binary found${herald:+ at $herald}." >&2
    echo "run.sh: build one (make build), put herald on PATH, or set HERALD_BIN=/path/to/herald." >&2
    exit 127
fi

# The ticker writes into a FIFO that herald reads as its standard input: both are then
# children of this script, with pids it can stop and wait for. The script holds the FIFO
# open itself (fd 3), so that herald's input does not end while it shuts down.
work=$(mktemp -d "${TMPDIR:-/tmp}/herald-clock.XXXXXX")
mkfifo "$work/ticks"
exec 3<>"$work/ticks"

# Job control puts herald and the ticker in process groups of their own: Ctrl-C reaches
# this script alone, and each of them gets exactly one signal, from the cleanup below.
set -m

herald_pid=
ticker_pid=

# The ticker stops first, so that no line is still arriving while herald shuts down.
# shellcheck disable=SC2317 # called from the traps below
cleanup() {
    trap - INT TERM HUP EXIT
    local status=0
    if [[ -n $ticker_pid ]]; then
        kill -TERM "$ticker_pid" 2>/dev/null || true
        wait "$ticker_pid" 2>/dev/null || true
    fi
    if [[ -n $herald_pid ]]; then
        kill -TERM "$herald_pid" 2>/dev/null || true
        wait "$herald_pid" 2>/dev/null || status=$?
    fi
    exec 3>&-
    rm -rf -- "$work"
    return "$status"
}

# shellcheck disable=SC2317 # called from the traps below
on_signal() {
    local status=0
    cleanup || status=$?
    exit "$status"
}

trap on_signal INT TERM HUP
trap cleanup EXIT

# One line a second. `sleep` runs in the background and is waited for, so that a signal
# ends the wait at once and the trap takes the sleep down too: nothing is left behind (a
# subshell does not inherit the script's traps). A second signal must not cut that wait
# short: from the first on, they are ignored.
tick() {
    local nap=
    trap 'trap "" INT TERM HUP; [[ -n $nap ]] && kill "$nap" 2>/dev/null; wait; exit 0' INT TERM HUP
    while :; do
        printf 'clock %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
        sleep 1 &
        nap=$!
        wait "$nap" || true
        nap=
    done
}

tick >"$work/ticks" 3>&- &
ticker_pid=$!

"$herald" serve --stdin --static "$here" --port "$port" "$@" <"$work/ticks" 3>&- &
herald_pid=$!

status=0
wait "$herald_pid" || status=$?
herald_pid=
exit "$status"
