#!/usr/bin/env bash
# bench/run.sh: the `make bench` scenarios. Each starts a fresh release herald, drives it
# with herald_load, prints the results and appends them to build/bench/results.md.
#
#   QUICK=1            shorter runs (3 s of publishing instead of 10)
#   HERALD_BIN=...     the server binary        (default build/release/herald)
#   HERALD_LOAD=...    the harness binary       (default build/release/bench/herald_load)
#   SCENARIOS="idle-1000 idle-10000 paced-1000 fanout-1000 fanout-1000-p64"   a subset, in this order
#   SUB_THREADS=N      harness subscriber threads (default: nproc / 4, at least 1)
#
# Exit status: 0 when every scenario connected everyone and lost nothing, 1 otherwise.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
HERALD=${HERALD_BIN:-build/release/herald}
LOAD=${HERALD_LOAD:-build/release/bench/herald_load}
QUICK=${QUICK:-0}
SCENARIOS=${SCENARIOS:-idle-1000 idle-10000 paced-1000 fanout-1000 fanout-1000-p64}
SUB_THREADS=${SUB_THREADS:-$(($(nproc) / 4 > 1 ? $(nproc) / 4 : 1))}
DURATION=10
if [[ $QUICK == 1 ]]; then
    DURATION=3
fi
THREADS=$(nproc)
OUT_DIR=build/bench
RESULTS=$OUT_DIR/results.md

for bin in "$HERALD" "$LOAD"; do
    if [[ ! -x $bin ]]; then
        echo "bench/run.sh: $bin is missing; build it with" \
            "'cmake --build --preset release --target herald herald_load'" >&2
        exit 2
    fi
done
mkdir -p "$OUT_DIR"

# Both herald and the harness need one descriptor per subscriber.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)

HERALD_PID=""
HERALD_PORT=""
HERALD_LOG=""
LOAD_PID=""
# Everything this script started is stopped on the way out, by pid.
cleanup() {
    if [[ -n $LOAD_PID ]] && kill -0 "$LOAD_PID" 2>/dev/null; then
        kill -TERM "$LOAD_PID" 2>/dev/null || true
        wait "$LOAD_PID" 2>/dev/null || true
    fi
    if [[ -n $HERALD_PID ]] && kill -0 "$HERALD_PID" 2>/dev/null; then
        kill -TERM "$HERALD_PID" 2>/dev/null || true
        wait "$HERALD_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Starts herald on a port the kernel picks (--port 0), read back from its log.
start_herald() {
    local name=$1
    HERALD_LOG=$OUT_DIR/herald-$name.log
    "$HERALD" serve --host 127.0.0.1 --port 0 --threads "$THREADS" >"$HERALD_LOG" 2>&1 &
    HERALD_PID=$!
    HERALD_PORT=""
    for _ in $(seq 100); do
        HERALD_PORT=$(grep -o 'listening on http://127\.0\.0\.1:[0-9]*' "$HERALD_LOG" |
            head -n 1 | sed 's/.*://' || true)
        [[ -n $HERALD_PORT ]] && return 0
        kill -0 "$HERALD_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "bench/run.sh: herald did not start; its log ($HERALD_LOG):" >&2
    cat "$HERALD_LOG" >&2
    exit 1
}

# Stops herald; complains if it did not exit 0 or logged errors.
stop_herald() {
    local rc=0
    kill -TERM "$HERALD_PID" 2>/dev/null || true
    wait "$HERALD_PID" || rc=$?
    HERALD_PID=""
    if [[ $rc != 0 ]]; then
        echo "bench/run.sh: herald exited with status $rc (log: $HERALD_LOG)" >&2
        FAILED=1
    fi
    if grep -qiE '\b(error|critical|fatal)\b' "$HERALD_LOG"; then
        echo "bench/run.sh: herald logged errors (log: $HERALD_LOG):" >&2
        grep -iE '\b(error|critical|fatal)\b' "$HERALD_LOG" | head -n 5 >&2
    fi
}

FAILED=0
REPORT=""
# run_scenario NAME TITLE HARNESS-ARGS...
run_scenario() {
    local name=$1 title=$2
    shift 2
    start_herald "$name"
    local cmd=("$LOAD" --url "http://127.0.0.1:$HERALD_PORT" --pid "$HERALD_PID"
        --sub-threads "$SUB_THREADS" "$@" --json)
    echo
    echo "== $title"
    echo "\$ ${cmd[*]}"
    local out rc=0
    # In the background and waited for, so that a signal interrupts the wait at once.
    "${cmd[@]}" >"$OUT_DIR/$name.out" 2>&1 &
    LOAD_PID=$!
    wait "$LOAD_PID" || rc=$?
    LOAD_PID=""
    out=$(cat "$OUT_DIR/$name.out")
    echo "$out"
    stop_herald
    if [[ $rc != 0 ]]; then
        echo "bench/run.sh: scenario $name reported failures (harness exit $rc)" >&2
        FAILED=1
    fi
    REPORT+=$'\n'"### $title"$'\n\n'"\`\`\`"$'\n'"\$ $HERALD serve --host 127.0.0.1 --port 0 --threads $THREADS"
    REPORT+=$'\n'"\$ ${cmd[*]}"$'\n'"$out"$'\n'"\`\`\`"$'\n'
}

START=$(date +%s)
LOAD_AT_START=$(cut -d ' ' -f 1-3 /proc/loadavg)
for scenario in $SCENARIOS; do
    case $scenario in
    idle-1000)
        run_scenario idle-1000 "Idle memory, 1,000 subscribers" --subscribers 1000 --idle ;;
    idle-10000)
        run_scenario idle-10000 "Idle memory, 10,000 subscribers" --subscribers 10000 --idle ;;
    paced-1000)
        # Latency well below saturation: 50 events/s, 50,000 deliveries/s.
        run_scenario paced-1000 \
            "Paced, 1,000 subscribers on one topic, 4 publishers at 50 events/s in all" \
            --subscribers 1000 --topic bench --publishers 4 --rate 50 \
            --duration "$DURATION" --payload 256 ;;
    fanout-1000)
        run_scenario fanout-1000 \
            "Fan-out, 1,000 subscribers on one topic, 4 publishers as fast as possible" \
            --subscribers 1000 --topic bench --publishers 4 --rate 0 \
            --duration "$DURATION" --payload 256 ;;
    fanout-1000-p64)
        # Publishers wait for each 200 before the next POST, so 4 of them measure a
        # closed loop (publish round trip), not what herald can fan out; 64 saturate it.
        run_scenario fanout-1000-p64 \
            "Fan-out, 1,000 subscribers on one topic, 64 publishers as fast as possible" \
            --subscribers 1000 --topic bench --publishers 64 --rate 0 \
            --duration "$DURATION" --payload 256 ;;
    *)
        echo "bench/run.sh: unknown scenario '$scenario'" >&2
        exit 2 ;;
    esac
done

{
    echo
    echo "## $(date -u '+%Y-%m-%d %H:%M:%S UTC')$([[ $QUICK == 1 ]] && echo ' (QUICK=1)')"
    echo
    echo "- commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(
        git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "- nproc: $THREADS; memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "- cpu: $(grep -m 1 'model name' /proc/cpuinfo | sed 's/.*: //')"
    echo "- kernel: $(uname -r); open files: $NOFILE; load average at start: $LOAD_AT_START"
    echo "- herald: --threads $THREADS; harness: --sub-threads $SUB_THREADS (same machine)"
    echo "- wall time: $(($(date +%s) - START)) s"
    echo "$REPORT"
} >>"$RESULTS"
echo
echo "results appended to $RESULTS"
exit "$FAILED"
