#!/bin/bash
# bench/startup.sh: start-up to the first collection, and pipit check on the default configuration.
. "$top_srcdir/bench/lib.sh"
bench_tmp
N=${CHECK_RUNS:-50}

echo "### start-up and check"
echo
echo "| run | exec to first collection ms | pipit check ms (mean of $N) |"
echo "|---|---:|---:|"
sed "s#/var/lib/pipit#$B/state#" "$top_srcdir/conf/pipit.yaml" >"$B/default.yaml"
firsts=(); checks=()
for run in $(seq "$RUNS"); do
    rm -rf "$B/state" "$B/out.jsonl"
    cat >"$B/p.yaml" <<YAML
agent:
  state_dir: $B/state
  jitter: 0s
batch:
  max_records: 1
  linger_ms: 0
inputs:
  - plugin: uptime
outputs:
  - plugin: file
    path: $B/out.jsonl
YAML
    t0=$(date +%s%N)
    start_daemon "$B/p.yaml"
    wait_until 10 test -s "$B/out.jsonl"
    stop_daemon
    # The record's own time is when the collection ran.
    t1=$(head -n 1 "$B/out.jsonl" | sed 's/.*"time":\([0-9]*\).*/\1/')
    first=$(calc "($t1 - $t0) / 1e6")
    s0=$(now_s)
    for _ in $(seq "$N"); do
        "$PIPIT" check -q -c "$B/default.yaml" --plugin-dir "$PLUGINS" >/dev/null 2>&1
    done
    check=$(calc "($(now_s) - $s0) / $N * 1000")
    firsts+=("$first"); checks+=("$check")
    printf '| %s | %s | %s |\n' "$run" "$first" "$check"
done
printf '| median | %s | %s |\n\n' "$(median "${firsts[@]}")" "$(median "${checks[@]}")"
