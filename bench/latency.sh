#!/bin/bash
# bench/latency.sh: end-to-end latency, record emitted by the agent -> stored by the aggregator, at a steady 10 000 records/s.
. "$top_srcdir/bench/lib.sh"
bench_tmp
RATE=${LATENCY_RATE:-10000}
SECS=${LATENCY_SECONDS:-15}
LINES=$((RATE * SECS))

# A record's latency is the aggregator's SQLite received_at of its batch (set
# when the batch is written to the store) minus the record's time (set by the
# agent's tail input when it emits the line). Both clocks are this machine's.
# The consumer's fetch.wait.max.ms is 10 ms (LATENCY_FETCH_WAIT_MS): the mock
# cluster holds a fetch that found no data for that long even when data
# arrives meanwhile (a real broker answers at once), which would otherwise
# add up to librdkafka's default of 500 ms to every batch.
echo "### latency: tail at $RATE lines/s for $SECS s -> agent -> mock cluster -> aggregator -> SQLite"
echo
echo "| config | run | records stored | p50 ms | p99 ms | max ms | target p99 ms (agent linger_ms + 50) |"
echo "|---|---|---:|---:|---:|---:|---:|"

stored() { sqlite3 "$B/store.db" "SELECT count(*) FROM logs" 2>/dev/null || echo 0; }
all_stored() { [ "$(stored)" -ge "$WANT" ]; }

# run_config NAME AGENT_LINGER AGGREGATOR_LINGER [CLOSE_WHEN_CAUGHT_UP]
run_config() {
    local name=$1 alinger=$2 glinger=$3 caught=${4:-true} run
    for run in $(seq "$RUNS"); do
        start_mock_broker || { echo "mock broker did not start"; exit 1; }
        rm -rf "$B/agent" "$B/aggregator" "$B/store.db"* "$B/app.log"
        : >"$B/app.log"
        cat >"$B/aggregator.yaml" <<YAML
agent:
  state_dir: $B/aggregator
  role: aggregator
http:
  enabled: false
batch:
  max_records: 5000
  linger_ms: $glinger
spool:
  enabled: false
inputs:
  - plugin: kafka
    brokers: $BOOTSTRAP
    group_id: bench-latency
    close_when_caught_up: $caught
    rdkafka:
      fetch.wait.max.ms: "${LATENCY_FETCH_WAIT_MS:-10}"
outputs:
  - plugin: sqlite
    path: $B/store.db
YAML
        cat >"$B/agent.yaml" <<YAML
agent:
  state_dir: $B/agent
  jitter: 0s
batch:
  linger_ms: $alinger
inputs:
  - plugin: tail
    path: [$B/app.log]
    read_from: beginning
outputs:
  - plugin: kafka
    brokers: $BOOTSTRAP
YAML
        "$PIPITD" -c "$B/aggregator.yaml" --plugin-dir "$PLUGINS" >/dev/null 2>"$B/aggregator.log" &
        local gpid=$!
        BENCH_PIDS="$BENCH_PIDS $gpid"
        "$PIPITD" -c "$B/agent.yaml" --plugin-dir "$PLUGINS" >/dev/null 2>"$B/agent.log" &
        local apid=$!
        BENCH_PIDS="$BENCH_PIDS $apid"
        # Warm-up, not measured: 2 s at the rate, until the consumer has joined
        # its group and stored them all (the first batches wait for that).
        WANT=$((2 * RATE))
        "$top_builddir/bench/loggen" "$WANT" "$run" "$RATE" >>"$B/app.log"
        wait_until 60 all_stored
        local from=$(date +%s%N)
        WANT=$((2 * RATE + LINES))
        "$top_builddir/bench/loggen" "$LINES" "$run" "$RATE" >>"$B/app.log"
        if ! wait_until 60 all_stored; then
            echo "| $name | $run | $(stored) of $WANT | | | | |"
        else
            sqlite3 "$B/store.db" "SELECT (b.received_at - l.time) / 1e6 FROM logs l
                JOIN batches b ON b.agent_id = l.agent_id AND b.seq = l.seq
                WHERE l.time >= $from" | sort -g >"$B/lat.txt"
            awk -v name="$name" -v run="$run" -v target=$((alinger + 50)) '
                { v[NR] = $1 }
                END {
                    p50 = v[int(NR * 0.50) > 0 ? int(NR * 0.50) : 1]
                    p99 = v[int(NR * 0.99) > 0 ? int(NR * 0.99) : 1]
                    printf "| %s | %s | %d | %.1f | %.1f | %.1f | %d |\n", name, run, NR, p50, p99, v[NR], target
                }' "$B/lat.txt"
        fi
        kill -TERM "$apid" "$gpid" 2>/dev/null
        wait "$apid" "$gpid" 2>/dev/null
        stop_mock_broker
    done
}

run_config "defaults (agent linger 1000 ms, aggregator 200 ms)" 1000 200
run_config "low latency (agent linger 50 ms, aggregator 20 ms)" 50 20
run_config "low latency, aggregator holding its linger (close_when_caught_up: false)" 50 20 false
echo
