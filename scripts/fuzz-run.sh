#!/usr/bin/env bash
# One fuzz target's run, as CTest (label `fuzz`) starts it: the committed corpus and the
# work corpus are replayed first (every input must pass), then libFuzzer mutates them for
# $FUZZ_SECONDS seconds (15 unless set). New inputs that reach new code go to the work
# corpus, WORK/corpus/NAME, never to the committed one; a crash leaves its input in
# WORK/artifacts/NAME/. The figures (executions, exec/s, coverage) are printed and kept in
# WORK/stats/NAME.txt.
#   fuzz-run.sh BINARY NAME MAX_LEN CORPUS WORK [DICT]
set -euo pipefail

bin=$1 name=$2 max_len=$3 corpus=$4 work=$5 dict=${6:-}
seconds=${FUZZ_SECONDS:-15}

mkdir -p "$work/corpus/$name" "$work/artifacts/$name" "$work/stats" "$work/logs"
log="$work/logs/$name.log"
args=(-max_total_time="$seconds" -print_final_stats=1 -max_len="$max_len" -timeout=10
    -rss_limit_mb=2048 -artifact_prefix="$work/artifacts/$name/")
[[ -n $dict ]] && args+=(-dict="$dict")

start=$(date +%s)
rc=0
"$bin" "${args[@]}" "$work/corpus/$name" "$corpus" >"$log" 2>&1 || rc=$?
elapsed=$(($(date +%s) - start))

stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -n 1; }
# The last status line, "#N DONE cov: C ft: F corp: N/SIZE ...".
status=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1 || true)
field() { sed -n "s/.* $1: \([^ ]*\).*/\1/p" <<<"$status"; }
summary=$(printf '%-12s %11s execs %7s exec/s  cov %5s  ft %6s  corpus %-12s %4ss' "$name" \
    "$(stat number_of_executed_units)" "$(stat average_exec_per_sec)" "$(field cov)" \
    "$(field ft)" "$(field corp)" "$elapsed")
echo "$summary" | tee "$work/stats/$name.txt"

if ((rc != 0)); then
    echo "fuzz-run: $name failed (exit $rc); the end of $log:" >&2
    tail -n 60 "$log" >&2
    echo "fuzz-run: the input is in $work/artifacts/$name/; reproduce with: $bin INPUT" >&2
    exit "$rc"
fi
