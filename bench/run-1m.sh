#!/usr/bin/env bash
# bench/run-1m.sh: `make bench-1m`, one million concurrent subscribers on one herald.
# For a machine without a low cap on open files; docs/one-million.md lists the kernel and
# limit settings it needs and what it measures.
#
#   N=1000000        subscribers (a smaller N tries the script on a small machine)
#   PROCESSES=...    load-generator processes (default: half the cores, at least 2)
#   RATE=1           publishes/s during the paced part, each delivered to all N
#   DURATION=30      seconds of the paced part
#   HERALD_BIN=...   default build/release/herald
#
# Appends two lines (idle-1m and paced-1m) to build/bench/results.jsonl and, when a
# `make bench` run left build/bench/meta.json, regenerates docs/benchmarks.md with them.
set -uo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh
HERALD=${HERALD_BIN:-build/release/herald}
N=${N:-1000000}
CORES=$(nproc)
PROCESSES=${PROCESSES:-$((CORES / 2 > 2 ? CORES / 2 : 2))}
RATE=${RATE:-1}
DURATION=${DURATION:-30}
OUT_DIR=build/bench
RESULTS=$OUT_DIR/results.jsonl
mkdir -p "$OUT_DIR"

fail() {
    echo "bench/run-1m.sh: $*" >&2
    echo "See docs/one-million.md for the settings this needs." >&2
    exit 2
}

[[ -x $HERALD ]] || fail "$HERALD is missing; run 'make build'"

# herald holds N sockets; each load process N / PROCESSES.
ulimit -n "$(ulimit -Hn)" 2>/dev/null
NOFILE=$(ulimit -n)
((NOFILE >= N + 1000)) ||
    fail "a process may open $NOFILE files here; herald needs $((N + 1000)) (raise fs.nr_open and ulimit -Hn)"

# Source addresses: one per ~(local port range) connections to the one server port.
read -r LOW HIGH </proc/sys/net/ipv4/ip_local_port_range
PORTS=$((HIGH - LOW + 1))
SOURCE_IPS=$(((N + PORTS - 1) / PORTS + 1))
((SOURCE_IPS <= 254)) || fail "the local port range $LOW-$HIGH is too narrow for $N connections"

if [[ -r /proc/sys/net/netfilter/nf_conntrack_max ]]; then
    CT=$(cat /proc/sys/net/netfilter/nf_conntrack_max)
    ((CT >= 2 * N)) || echo "bench/run-1m.sh: warning: nf_conntrack_max is $CT; loopback connections" \
        "may be dropped (see docs/one-million.md)" >&2
fi

LOG=$OUT_DIR/herald-1m.log
"$HERALD" serve --host 127.0.0.1 --port 0 --threads "$CORES" >"$LOG" 2>&1 &
HERALD_PID=$!
trap 'kill -TERM $HERALD_PID 2>/dev/null; wait $HERALD_PID 2>/dev/null' EXIT
PORT=$(herald_port "$LOG" "$HERALD_PID") || fail "herald did not start: $(cat "$LOG")"

COMMON=(--url "http://127.0.0.1:$PORT" --pid "$HERALD_PID" --subscribers "$N"
    --processes "$PROCESSES" --source-ips "$SOURCE_IPS" --connect-window 4096
    --connect-timeout 900 --payload 256 --json)

record() { # scenario, command, output file
    append_result "$RESULTS" "$1" herald "$2" "herald serve --host 127.0.0.1 --threads $CORES" \
        "$(grep '^{' "$3" | tail -n 1)" "herald bench gave no result"
}

echo "== idle-1m: $N idle subscribers, $PROCESSES load processes, $SOURCE_IPS source addresses"
"$HERALD" bench "${COMMON[@]}" --idle --settle 5 --label idle-1m | tee "$OUT_DIR/idle-1m.out"
record idle-1m "herald bench ${COMMON[*]} --idle --settle 5" "$OUT_DIR/idle-1m.out"

echo "== paced-1m: $RATE publish(es)/s to all $N for $DURATION s"
"$HERALD" bench "${COMMON[@]}" --publishers 1 --rate "$RATE" --duration "$DURATION" \
    --drain 30 --label paced-1m | tee "$OUT_DIR/paced-1m.out"
RC=${PIPESTATUS[0]}
record paced-1m "herald bench ${COMMON[*]} --publishers 1 --rate $RATE --duration $DURATION --drain 30" \
    "$OUT_DIR/paced-1m.out"

if [[ -f $OUT_DIR/meta.json ]]; then
    node bench/report.mjs --results "$RESULTS" --meta "$OUT_DIR/meta.json"
fi
exit "$RC"
