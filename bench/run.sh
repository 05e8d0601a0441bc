#!/usr/bin/env bash
# bench/run.sh: the `make bench` comparison. For each scenario, starts herald, then
# nginx+Nchan, then Pushpin (bench/peer.sh), each fresh, drives it with `herald bench`,
# and appends one JSON line per run to build/bench/results.jsonl; then bench/report.mjs
# writes docs/benchmarks.md, docs/benchmarks.svg and the table in README.md.
#
#   QUICK=1          the short version (1.5 s of publishing, 2 s of drain at most, no store
#                    scenarios): under 2 minutes
#   SERVERS="..."    a subset of: herald nchan pushpin          (default: all three)
#   SCENARIOS="..."  a subset of the scenarios below, in the order given
#   HERALD_BIN=...   the herald binary (default build/release/herald)
#   REDIS_SERVER=... the redis-server of the cluster scenarios (default: redis-server)
#   REPORT=0         leave docs/ and README.md alone (results stay in build/bench/)
#
# Scenarios (every server unless marked herald only):
#   idle-1k, idle-10k, idle-max  memory per idle subscriber at 1,000, 10,000 and 19,900
#                                subscribers (the most a 20,000-file cap allows)
#   fanout      1,000 subscribers on one topic, 64 publishers as fast as possible
#   fanout-p4   the same with 4 publishers: a closed loop of 4 publishes in flight measures
#               round trips more than fan-out (not in QUICK)
#   fanout-paced    1,000 subscribers on one topic, 300 publishes/s (a rate this machine
#               sustains, so that latency is the server's, not the load generator's)
#   fanout-stalled  as fanout-paced, but 10 of the 1,000 subscribers never read a byte:
#               the 990 others' latency and the publish rate, against fanout-paced
#   paced       10,000 subscribers on one topic, 100 publishes/s
#   topics      10,000 subscribers each on its own topic, 5,000 publishes/s spread over them
#   publish     publish only, no subscribers, 64 publishers as fast as possible
#   churn       1,000 subscribers and 100 publishes/s, while 500 more connect and
#               disconnect each second (each held 100 ms after its response head)
#   publish-STORE-pN (herald only)  publish only with --store memory, sqlite (sync normal)
#               or sqlite (sync full), N = 1 or 64 publishers: publish-memory-p1,
#               publish-sqlite-normal-p1, publish-sqlite-normal-p64, publish-sqlite-full-p1,
#               publish-sqlite-full-p64 (memory-p64 is `publish`)
#   fanout-p8 (herald only)  1,000 subscribers on one topic, 8 publishers as fast as possible:
#               as many publishes in flight as the hub's hold on publishes (while a topic's
#               subscribers are behind) still paces on this machine, so nothing is lost; with
#               64 the load generator falls behind and the slowest subscribers are cut. The
#               baseline of cluster-fanout.
#   cluster-fanout (herald only)  fanout-p8 on a cluster: a redis-server of its own (own port
#               and folder, --save "" --appendonly no) and two herald nodes on it (--store
#               redis://..., --node-name a and b, --threads 1 each); the 1,000 subscribers and
#               8 publishers are dealt round-robin over the two nodes, and Redis's CPU is
#               measured beside herald's (--aux-pid redis=PID). Against `fanout-p8`.
#   cluster-publish (herald only)  publish on the same cluster: 64 publishers through both
#               nodes, no subscribers. Against `publish` and `publish-memory-p1`.
#   (not in QUICK: the cluster scenarios need the Redis store in the binary.)
#
# Exit status: 0 when every run was clean (nothing lost, duplicated or refused) and every
# server started; 1 otherwise. A peer that fails to start is recorded and reported.
set -uo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=bench/lib.sh
source bench/lib.sh
HERALD=${HERALD_BIN:-build/release/herald}
REDIS_SERVER=${REDIS_SERVER:-redis-server}
QUICK=${QUICK:-0}
SERVERS=${SERVERS:-herald nchan pushpin}
REPORT=${REPORT:-1}
if [[ $QUICK == 1 ]]; then
    DEFAULT_SCENARIOS="idle-1k idle-10k idle-max fanout fanout-paced fanout-stalled paced topics
        publish churn"
    DURATION=1.5
    SETTLE=0.3
    DRAIN=2
else
    DEFAULT_SCENARIOS="idle-1k idle-10k idle-max fanout fanout-paced fanout-stalled fanout-p4
        paced topics publish churn
        publish-memory-p1 publish-sqlite-normal-p1 publish-sqlite-normal-p64
        publish-sqlite-full-p1 publish-sqlite-full-p64 fanout-p8 cluster-fanout cluster-publish"
    DURATION=10
    SETTLE=1
    DRAIN=5
fi
SCENARIOS=${SCENARIOS:-$DEFAULT_SCENARIOS}
THREADS=$(nproc)
OUT_DIR=$ROOT/build/bench
RESULTS=$OUT_DIR/results.jsonl

if [[ ! -x $HERALD ]]; then
    echo "bench/run.sh: $HERALD is missing; build it with 'make build'" >&2
    exit 2
fi
HERALD=$(cd "$(dirname "$HERALD")" && pwd)/$(basename "$HERALD")
mkdir -p "$OUT_DIR"
: >"$RESULTS"

# Both the servers and the load generator need one descriptor per subscriber.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)

SERVER_PIDS=""    # comma-separated, for --pid
SERVER_CMD=""     # how the server was started, for the report
SERVER_STOP=""    # the command that stops it
HERALD_PIDS=()    # every herald node running
REDIS_PID=""      # the cluster scenarios' redis-server
REDIS_PORT=""
NODE_PORT=""      # the port of the herald node started last
AUX=()            # --aux-pid NAME=PID for processes measured beside the server
BENCH_PID=""
cleanup() {
    [[ -n $BENCH_PID ]] && kill -TERM "$BENCH_PID" 2>/dev/null
    stop_server
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Sub/pub URL options of the server now running.
TARGET=()

# start_node LOG-NAME THREADS [serve args...]: one herald, its pid added to HERALD_PIDS and
# its port in NODE_PORT; its command line added to SERVER_CMD.
start_node() {
    local name=$1 threads=$2
    shift 2
    local log=$OUT_DIR/herald-$name.log
    local cmd=("$HERALD" serve --host 127.0.0.1 --port 0 --threads "$threads" "$@")
    SERVER_CMD+="${SERVER_CMD:+; }${SERVE_ENV[*]}${SERVE_ENV[*]:+ }herald serve --host 127.0.0.1 --port 0 --threads $threads $*"
    env "${SERVE_ENV[@]}" "${cmd[@]}" >"$log" 2>&1 &
    local pid=$!
    HERALD_PIDS+=("$pid")
    if ! NODE_PORT=$(herald_port "$log" "$pid"); then
        echo "bench/run.sh: herald did not start; its log ($log):" >&2
        cat "$log" >&2
        return 1
    fi
}

start_herald() {
    local name=$1
    shift
    SERVER_CMD=""
    start_node "$name" "$THREADS" "$@" || return 1
    SERVER_PIDS=${HERALD_PIDS[0]}
    TARGET=(--url "http://127.0.0.1:$NODE_PORT")
}

# start_redis NAME: a redis-server of the scenario's own, on a free port, in a folder of its
# own, with no persistence; REDIS_PID and REDIS_PORT.
start_redis() {
    local dir=$OUT_DIR/redis-$1
    rm -rf "$dir"
    mkdir -p "$dir"
    if ! command -v "$REDIS_SERVER" >/dev/null; then
        echo "bench/run.sh: $REDIS_SERVER not found (scripts/install-deps.sh installs it)" >&2
        return 1
    fi
    REDIS_PORT=$(free_port) || return 1
    local args=(--port "$REDIS_PORT" --bind 127.0.0.1 --dir "$dir" --save "" --appendonly no)
    "$REDIS_SERVER" "${args[@]}" >"$dir/redis.log" 2>&1 &
    REDIS_PID=$!
    SERVER_CMD="redis-server --port $REDIS_PORT --bind 127.0.0.1 --dir DIR --save \"\" --appendonly no"
    for _ in $(seq 100); do
        redis_ping "$REDIS_PORT" && return 0
        kill -0 "$REDIS_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "bench/run.sh: redis-server did not start; its log ($dir/redis.log):" >&2
    cat "$dir/redis.log" >&2
    return 1
}

# start_cluster NAME: Redis, then herald nodes a and b on it, one thread each (this machine
# has two cores); the bench targets both and measures Redis apart.
start_cluster() {
    local name=$1 node
    start_redis "$name" || return 1
    TARGET=()
    for node in a b; do
        start_node "$name-$node" 1 --store "redis://127.0.0.1:$REDIS_PORT" --node-name "$node" ||
            return 1
        TARGET+=(--url "http://127.0.0.1:$NODE_PORT")
    done
    SERVER_PIDS=$(
        IFS=,
        echo "${HERALD_PIDS[*]}"
    )
    AUX=(--aux-pid "redis=$REDIS_PID")
}

start_peer() {
    local peer=$1 dir=$OUT_DIR/$1
    if ! bash bench/peer.sh start "$peer" "$dir" >"$OUT_DIR/$peer-start.log" 2>&1; then
        echo "bench/run.sh: $peer did not start:" >&2
        tail -n 20 "$OUT_DIR/$peer-start.log" >&2
        bash bench/peer.sh stop "$peer" "$dir" >/dev/null 2>&1
        return 1
    fi
    # shellcheck disable=SC1091
    source "$dir/peer.env"
    SERVER_PIDS=$PEER_PIDS
    SERVER_CMD="bench/peer.sh start $peer DIR (config: $PEER_CONFIG; $PEER_VERSION)"
    SERVER_STOP="bash bench/peer.sh stop $peer $dir"
    TARGET=(--sub-url "$PEER_SUB_URL" --pub-url "$PEER_PUB_URL" --pub-body "$PEER_PUB_BODY"
        --pub-content-type "$PEER_PUB_CONTENT_TYPE")
    # Pushpin answers bursts of new connections with 502s and early closes (about a
    # quarter of 10,000 at 512 opening at once, none at 16): its subscribers connect 16
    # at a time. Connect rates are reported, not compared.
    if [[ $peer == pushpin ]]; then
        TARGET+=(--connect-window 16)
    fi
}

stop_server() {
    local pid
    for pid in "${HERALD_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${HERALD_PIDS[@]}"; do
        wait "$pid" 2>/dev/null
    done
    HERALD_PIDS=()
    if [[ -n $REDIS_PID ]]; then # after the nodes, so that none sees it go
        kill -TERM "$REDIS_PID" 2>/dev/null
        wait "$REDIS_PID" 2>/dev/null
        REDIS_PID=""
    fi
    if [[ -n $SERVER_STOP ]]; then
        $SERVER_STOP >/dev/null 2>&1
        SERVER_STOP=""
    fi
    SERVER_PIDS=""
    AUX=()
}

record() { # scenario server command json error
    append_result "$RESULTS" "$1" "$2" "$3" "$SERVER_CMD" "$4" "$5"
}

FAILED=0
SERVE_ENV=()
CLUSTER=0 # 1: run() starts herald as a cluster (start_cluster), for one call
# run SCENARIO SERVER [herald serve args...] -- BENCH-ARGS...
run() {
    local scenario=$1 server=$2
    shift 2
    local serve_args=()
    while [[ $# -gt 0 && $1 != -- ]]; do
        serve_args+=("$1")
        shift
    done
    shift
    echo
    echo "== $scenario: $server"
    local started=0
    if [[ $server == herald && $CLUSTER == 1 ]]; then
        start_cluster "$scenario" && started=1
    elif [[ $server == herald ]]; then
        start_herald "$scenario" "${serve_args[@]}" && started=1
    else
        start_peer "$server" && started=1
    fi
    if [[ $started == 0 ]]; then
        stop_server
        record "$scenario" "$server" "" "" "$server did not start (see build/bench/*.log)"
        FAILED=1
        SERVE_ENV=()
        CLUSTER=0
        return
    fi
    local cmd=("$HERALD" bench "${TARGET[@]}" --pid "$SERVER_PIDS" "${AUX[@]}" --settle "$SETTLE" --drain "$DRAIN" --label "$scenario/$server" "$@" --json)
    local shown="herald bench ${cmd[*]:2}"
    echo "\$ $SERVER_CMD"
    echo "\$ $shown"
    local out=$OUT_DIR/$scenario-$server.out rc=0
    "${cmd[@]}" >"$out" 2>&1 &
    BENCH_PID=$!
    wait "$BENCH_PID" || rc=$?
    BENCH_PID=""
    grep -v '^{' "$out"
    stop_server
    local json
    json=$(grep '^{' "$out" | tail -n 1)
    if [[ $rc != 0 ]]; then
        echo "bench/run.sh: $scenario on $server was not clean (exit $rc)" >&2
        [[ $server == herald ]] && FAILED=1
    fi
    record "$scenario" "$server" "$shown" "$json" "herald bench exited $rc with no result"
    SERVE_ENV=()
    CLUSTER=0
}

# Each scenario against each server, one after another.
each() {
    local scenario=$1
    shift
    for server in $SERVERS; do
        run "$scenario" "$server" -- "$@"
    done
}

# publish-STORE-pN, herald only.
store_run() {
    local scenario=$1 store=${1#publish-}
    local pubs=${store##*-p}
    store=${store%-p*}
    local args=(--store memory)
    if [[ $store == sqlite-* ]]; then
        local db=$OUT_DIR/$scenario.db
        rm -f "$db" "$db-wal" "$db-shm"
        args=(--store "sqlite:$db")
        SERVE_ENV=("HERALD_STORE_SYNC=${store#sqlite-}")
    fi
    run "$scenario" herald "${args[@]}" -- --subscribers 0 --publishers "$pubs" \
        --duration "$DURATION" --payload 256 --settle 0 --drain 0
}

# cluster-*, herald only: two nodes on a Redis of their own.
cluster_run() {
    local scenario=$1
    shift
    CLUSTER=1
    run "$scenario" herald -- "$@"
}

START=$(date +%s)
for scenario in $SCENARIOS; do
    case $scenario in
    idle-1k) each idle-1k --subscribers 1000 --idle ;;
    idle-10k) each idle-10k --subscribers 10000 --idle ;;
    idle-max)
        # Two load processes: each may open only 20,000 files on the development machines.
        each idle-max --subscribers 19900 --processes 2 --idle ;;
    fanout)
        # Each publisher waits for its answer before the next POST: 64 of them keep the
        # server busy; 4 leave it idle between round trips (fanout-p4).
        each fanout --subscribers 1000 --publishers 64 --duration "$DURATION" --payload 256 ;;
    fanout-paced)
        each fanout-paced --subscribers 1000 --publishers 4 --rate 300 --duration "$DURATION" \
            --payload 256 ;;
    fanout-stalled)
        # Stalled subscribers ask like the others, then never read (a 4 KiB receive buffer).
        each fanout-stalled --subscribers 990 --stalled 10 --publishers 4 --rate 300 \
            --duration "$DURATION" --payload 256 ;;
    fanout-p4)
        each fanout-p4 --subscribers 1000 --publishers 4 --duration "$DURATION" --payload 256 ;;
    paced)
        each paced --subscribers 10000 --publishers 4 --rate 100 --duration "$DURATION" \
            --payload 256 ;;
    topics)
        each topics --subscribers 10000 --topics 10000 --publishers 16 --rate 5000 \
            --duration "$DURATION" --payload 256 ;;
    publish)
        each publish --subscribers 0 --publishers 64 --duration "$DURATION" --payload 256 \
            --settle 0 --drain 0 ;;
    churn)
        each churn --subscribers 1000 --publishers 4 --rate 100 --churn 500 --churn-hold 100 \
            --duration "$DURATION" --payload 256 ;;
    publish-memory-p1 | publish-sqlite-normal-p1 | publish-sqlite-normal-p64 | \
        publish-sqlite-full-p1 | publish-sqlite-full-p64)
        [[ " $SERVERS " == *" herald "* ]] && store_run "$scenario" ;;
    fanout-p8)
        [[ " $SERVERS " == *" herald "* ]] &&
            run fanout-p8 herald -- --subscribers 1000 --publishers 8 --duration "$DURATION" \
                --payload 256 ;;
    cluster-fanout)
        [[ " $SERVERS " == *" herald "* ]] &&
            cluster_run cluster-fanout --subscribers 1000 --publishers 8 --duration "$DURATION" \
                --payload 256 ;;
    cluster-publish)
        [[ " $SERVERS " == *" herald "* ]] &&
            cluster_run cluster-publish --subscribers 0 --publishers 64 --duration "$DURATION" \
                --payload 256 --settle 0 --drain 0 ;;
    *)
        echo "bench/run.sh: unknown scenario '$scenario'" >&2
        exit 2 ;;
    esac
done
ELAPSED=$(($(date +%s) - START))

version_of() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "not installed"; }
META=$OUT_DIR/meta.json
DATE=$(date -u '+%Y-%m-%dT%H:%M:%SZ') COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown) \
    DIRTY=$(git diff --quiet HEAD -- . ':!docs/benchmarks.md' ':!docs/benchmarks.svg' ':!README.md' \
        2>/dev/null && echo 0 || echo 1) QUICK=$QUICK \
    NOFILE_HARD=$(ulimit -Hn) ELAPSED=$ELAPSED THREADS=$THREADS \
    HERALD_VERSION=$("$HERALD" --version 2>/dev/null) \
    NCHAN_VERSION="nginx $(version_of nginx), libnginx-mod-nchan $(version_of libnginx-mod-nchan)" \
    PUSHPIN_VERSION="pushpin $(version_of pushpin), condure $(version_of condure)" \
    REDIS_VERSION=$("$REDIS_SERVER" --version 2>/dev/null || echo "not installed") \
    node -e '
    const fs = require("fs"), os = require("os"), e = process.env;
    const cpu = (fs.readFileSync("/proc/cpuinfo", "utf8").match(/model name\s*:\s*(.*)/) || [])[1] || "unknown";
    const mem = Number((fs.readFileSync("/proc/meminfo", "utf8").match(/MemTotal:\s*(\d+)/) || [])[1] || 0);
    const meta = {
        date: e.DATE, commit: e.COMMIT + (e.DIRTY === "1" ? " (with uncommitted changes)" : ""),
        quick: e.QUICK === "1", nproc: os.cpus().length, mem_total_kib: mem, kernel: os.release(), cpu,
        nofile_hard: Number(e.NOFILE_HARD) || e.NOFILE_HARD,
        versions: { herald: e.HERALD_VERSION, nchan: e.NCHAN_VERSION, pushpin: e.PUSHPIN_VERSION,
                    redis: e.REDIS_VERSION },
        configs: { herald: `herald serve --host 127.0.0.1 --threads ${e.THREADS} (memory store, defaults)`,
                   nchan: "bench/peers/nginx-nchan.conf", pushpin: "bench/peers/pushpin/",
                   redis: "cluster-*: two herald nodes (--threads 1 --store redis://... --node-name a|b) on a redis-server with --save \"\" --appendonly no" },
        make_command: e.QUICK === "1" ? "make bench QUICK=1" : "make bench",
        elapsed_s: Number(e.ELAPSED),
    };
    console.log(JSON.stringify(meta, null, 2));' >"$META"

echo
echo "results: $RESULTS ($ELAPSED s)"
if [[ $REPORT == 1 ]]; then
    node bench/report.mjs --results "$RESULTS" --meta "$META" || FAILED=1
fi
exit "$FAILED"
