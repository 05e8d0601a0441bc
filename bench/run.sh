#!/usr/bin/env bash
# bench/run.sh: the `make bench` scenarios. Each starts a fresh release herald, drives it
# with herald_load, prints the results and appends them to build/bench/results.md.
#
#   QUICK=1            shorter runs (3 s of publishing instead of 10)
#   HERALD_BIN=...     the server binary        (default build/release/herald)
#   HERALD_LOAD=...    the harness binary       (default build/release/bench/herald_load)
#   SCENARIOS="..."    a subset of the scenarios below, run in the order given
#   SUB_THREADS=N      harness subscriber threads (default: nproc / 4, at least 1)
#
# Scenarios (the default list is all of them, in this order):
#   idle-1000, idle-10000     memory per idle subscriber
#   paced-1000                latency well below saturation
#   fanout-1000               fan-out to 1,000 subscribers, 4 publishers as fast as possible
#   fanout-1000-p64           the same with 64 publishers
#   publish-STORE-pN          publish throughput of a store: no subscribers, 256-byte
#                             events as fast as possible from N (1 or 64) publishers, each
#                             waiting for its 200 before the next POST. STORE is
#                               memory          --store memory
#                               sqlite-normal   --store sqlite:build/bench/bench-NAME.db,
#                                               HERALD_STORE_SYNC=normal
#                               sqlite-full     the same with HERALD_STORE_SYNC=full
#                             (publish-memory-p1, publish-memory-p64, publish-sqlite-normal-p1,
#                             ..., publish-sqlite-full-p64). Each sqlite run starts on a new
#                             database file. After them comes a table of publishes/s per
#                             store and the ratio sqlite-full-p64 / memory-p64 (goal: >= 0.5).
#
# Exit status: 0 when every scenario connected everyone, lost nothing and got a 200 for
# every publish (and herald started), 1 otherwise.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
HERALD=${HERALD_BIN:-build/release/herald}
LOAD=${HERALD_LOAD:-build/release/bench/herald_load}
QUICK=${QUICK:-0}
SCENARIOS=${SCENARIOS:-idle-1000 idle-10000 paced-1000 fanout-1000 fanout-1000-p64
    publish-memory-p1 publish-memory-p64 publish-sqlite-normal-p1 publish-sqlite-normal-p64
    publish-sqlite-full-p1 publish-sqlite-full-p64}
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

# Extra `herald serve` arguments and VAR=value environment for the next start_herald;
# run_scenario empties both after each scenario.
SERVE_ARGS=()
SERVE_ENV=()
HERALD_CMD=""

# Starts herald on a port the kernel picks (--port 0), read back from its log. Returns 1
# (after showing the log) when herald exits or prints no port within 10 s.
start_herald() {
    local name=$1
    HERALD_LOG=$OUT_DIR/herald-$name.log
    local cmd=("$HERALD" serve --host 127.0.0.1 --port 0 --threads "$THREADS" "${SERVE_ARGS[@]}")
    HERALD_CMD="${SERVE_ENV[*]}${SERVE_ENV[*]:+ }${cmd[*]}"
    # env execs herald, so $! is herald's own pid.
    env "${SERVE_ENV[@]}" "${cmd[@]}" >"$HERALD_LOG" 2>&1 &
    HERALD_PID=$!
    HERALD_PORT=""
    for _ in $(seq 100); do
        HERALD_PORT=$(grep -o 'listening on http://127\.0\.0\.1:[0-9]*' "$HERALD_LOG" |
            head -n 1 | sed 's/.*://' || true)
        [[ -n $HERALD_PORT ]] && return 0
        kill -0 "$HERALD_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "bench/run.sh: herald did not start ($HERALD_CMD); its log ($HERALD_LOG):" >&2
    cat "$HERALD_LOG" >&2
    kill -TERM "$HERALD_PID" 2>/dev/null || true
    wait "$HERALD_PID" 2>/dev/null || true
    HERALD_PID=""
    return 1
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
# run_scenario NAME TITLE HARNESS-ARGS...   (SERVE_ARGS and SERVE_ENV: see start_herald)
run_scenario() {
    local name=$1 title=$2
    shift 2
    echo
    echo "== $title"
    rm -f "$OUT_DIR/$name.out"
    if ! start_herald "$name"; then
        echo "bench/run.sh: scenario $name failed: herald did not start" >&2
        FAILED=1
        REPORT+=$'\n'"### $title"$'\n\n'"\`\`\`"$'\n'"\$ $HERALD_CMD"
        REPORT+=$'\n'"herald did not start; log: $HERALD_LOG"$'\n'"\`\`\`"$'\n'
        SERVE_ARGS=()
        SERVE_ENV=()
        return 0
    fi
    local cmd=("$LOAD" --url "http://127.0.0.1:$HERALD_PORT" --pid "$HERALD_PID"
        --sub-threads "$SUB_THREADS" "$@" --json)
    echo "\$ $HERALD_CMD"
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
    REPORT+=$'\n'"### $title"$'\n\n'"\`\`\`"$'\n'"\$ $HERALD_CMD"
    REPORT+=$'\n'"\$ ${cmd[*]}"$'\n'"$out"$'\n'"\`\`\`"$'\n'
    SERVE_ARGS=()
    SERVE_ENV=()
}

# A numeric field of the harness's JSON line (its last line starting with "{") in
# $OUT_DIR/NAME.out; empty when there is none.
json_field() {
    local name=$1 field=$2
    { grep '^{' "$OUT_DIR/$name.out" 2>/dev/null || true; } | tail -n 1 |
        sed -n "s/.*\"$field\":\(-\{0,1\}[0-9][0-9.]*\).*/\1/p"
}

# run_publish NAME STORE PUBLISHERS: publish throughput with no subscribers, STORE one of
# memory, sqlite-normal, sqlite-full.
PUBLISH_RAN=""
run_publish() {
    local name=$1 store=$2 pubs=$3 what
    case $store in
    memory)
        SERVE_ARGS=(--store memory)
        what="memory store" ;;
    sqlite-normal | sqlite-full)
        local db=$ROOT/$OUT_DIR/bench-$name.db sync=${store#sqlite-}
        rm -f "$db" "$db-wal" "$db-shm"
        SERVE_ARGS=(--store "sqlite:$db")
        SERVE_ENV=("HERALD_STORE_SYNC=$sync")
        what="sqlite store, sync = $sync" ;;
    esac
    run_scenario "$name" \
        "Publish only, $what, $pubs publisher(s) as fast as possible, no subscribers" \
        --subscribers 0 --topic bench --publishers "$pubs" --rate 0 \
        --duration "$DURATION" --payload 256 --settle 0 --drain 0
    # The harness already exits 1 on any failed publish; also insist on its figures.
    local ok errors
    ok=$(json_field "$name" publishes)
    errors=$(json_field "$name" publish_errors)
    if [[ -f $OUT_DIR/$name.out ]] && [[ -z $ok || -z $errors || $ok == 0 || $errors != 0 ]]; then
        echo "bench/run.sh: scenario $name failed: ${ok:-no} publishes acknowledged," \
            "${errors:-unknown} publish errors" >&2
        FAILED=1
    fi
    PUBLISH_RAN+=" $name"
}

# The publish throughput table (markdown), for the publish-* scenarios that ran.
publish_summary() {
    local store p name rate errors row ratio mem full
    echo "### Publish throughput (publishes/s, 256-byte events, no subscribers)"
    echo
    echo "| store | 1 publisher | 64 publishers | errors (p1 / p64) |"
    echo "| --- | ---: | ---: | ---: |"
    for store in memory sqlite-normal sqlite-full; do
        row="| $store"
        local errs=()
        for p in 1 64; do
            name=publish-$store-p$p
            rate=-
            errors=-
            if [[ " $PUBLISH_RAN " == *" $name "* ]]; then
                rate=$(json_field "$name" publishes_per_s)
                errors=$(json_field "$name" publish_errors)
                if [[ -n $rate ]]; then
                    rate=$(printf '%.0f' "$rate")
                else
                    rate="no result"
                    errors=${errors:-?}
                fi
            fi
            row+=" | $rate"
            errs+=("$errors")
        done
        echo "$row | ${errs[0]} / ${errs[1]} |"
    done
    echo
    mem=$(json_field publish-memory-p64 publishes_per_s)
    full=$(json_field publish-sqlite-full-p64 publishes_per_s)
    if [[ " $PUBLISH_RAN " == *" publish-memory-p64 "* &&
        " $PUBLISH_RAN " == *" publish-sqlite-full-p64 "* && -n $mem && -n $full ]] &&
        awk -v m="$mem" 'BEGIN { exit !(m > 0) }'; then
        ratio=$(awk -v f="$full" -v m="$mem" 'BEGIN { printf "%.3f", f / m }')
        echo "sqlite-full-p64 / memory-p64: $ratio (goal: at least 0.5)"
    else
        echo "sqlite-full-p64 / memory-p64: not measured (it needs results from both)"
    fi
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
    publish-memory-p1 | publish-memory-p64 | publish-sqlite-normal-p1 | \
        publish-sqlite-normal-p64 | publish-sqlite-full-p1 | publish-sqlite-full-p64)
        store=${scenario#publish-}
        run_publish "$scenario" "${store%-p*}" "${scenario##*-p}" ;;
    *)
        echo "bench/run.sh: unknown scenario '$scenario'" >&2
        exit 2 ;;
    esac
done

SUMMARY=""
if [[ -n $PUBLISH_RAN ]]; then
    SUMMARY=$(publish_summary)
    echo
    echo "$SUMMARY"
fi

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
    if [[ -n $SUMMARY ]]; then
        echo "$SUMMARY"
        echo
    fi
} >>"$RESULTS"
echo
echo "results appended to $RESULTS"
exit "$FAILED"
