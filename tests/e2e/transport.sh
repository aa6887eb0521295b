# tests/e2e/transport.sh: an agent and an aggregator around the mock Kafka cluster (source after
# tests/kafka/broker.sh). The agent spools what tests/e2e/in_testsrc emits and produces it; the
# aggregator consumes into SQLite. "Spooled" batches (logged at debug) are the ground truth: each
# must reach the store exactly once.

SINK_DB=

# write_agent_config FILE [EXTRA-YAML]: agent of testsrc records into Kafka; EXTRA-YAML adds
# outputs, $AGENT_INPUTS inputs.
write_agent_config() {
    cat >"$1" <<YAML
agent:
  state_dir: $T/agent
  jitter: 0s
  log_level: debug
  shutdown_timeout: ${AGENT_SHUTDOWN:-5s}
batch:
  linger_ms: 50
  max_records: 50
inputs:
  - plugin: $TESTSRC
    count: ${AGENT_COUNT:-20}
    interval: ${AGENT_INTERVAL:-50ms}
    runs: ${AGENT_RUNS:-0}
${AGENT_INPUTS:-}
outputs:
  - plugin: kafka
    brokers: $BOOTSTRAP
    rdkafka:                  # reconnect quickly after an outage
      reconnect.backoff.max.ms: "500"
$2
YAML
}

# write_aggregator_config FILE [OUTPUT-YAML]: Kafka into SQLite (or the given output).
write_aggregator_config() {
    SINK_DB=$T/store.db
    out=${2:-"  - plugin: sqlite
    path: $SINK_DB"}
    cat >"$1" <<YAML
agent:
  state_dir: $T/aggregator
  log_level: info
batch:
  linger_ms: 100
spool:
  enabled: false
inputs:
  - plugin: kafka
    brokers: $BOOTSTRAP
    group_id: pipit-test
    rdkafka:                  # a killed member leaves the group in seconds
      session.timeout.ms: "6000"
      heartbeat.interval.ms: "500"
      reconnect.backoff.max.ms: "500"
outputs:
$out
YAML
}

# write_signed_configs KEY [INPUT-LINE]: $T/agent.yaml signing its batches with KEY and
# $T/aggregator.yaml requiring that signature; INPUT-LINE ("    key: value") is added to
# the aggregator's kafka input.
write_signed_configs() {
    local key=$1 extra=${2:+"$2\n"}
    write_agent_config "$T/agent.yaml"
    cat >>"$T/agent.yaml" <<YAML
wire:
  signing_key: "$key"
YAML
    write_aggregator_config "$T/aggregator.yaml"
    sed -i "s|^    group_id: pipit-test|    group_id: pipit-test\n    require_signature: true\n$extra    keys:\n      \"*\": \"$key\"|" \
        "$T/aggregator.yaml"
}

# run_agent_copying SECONDS: the aggregator, then an agent that also keeps its own copy of what
# it sends in $T/agent-records.jsonl, for SECONDS; the agent is stopped, the aggregator runs on.
run_agent_copying() {
    write_agent_config "$T/agent.yaml" "  - plugin: file
    path: $T/agent-records.jsonl"
    write_aggregator_config "$T/aggregator.yaml"
    start_daemon aggregator "$T/aggregator.yaml"
    start_daemon agent "$T/agent.yaml"
    sleep "$1"
    stop_daemon agent
}

# start_daemon NAME CONFIG: pipitd in the background; NAME_PID set; log appended to $T/NAME.log.
# With NAME_NETNS set it runs in that network namespace (tests/e2e/network_faults.sh).
start_daemon() {
    eval "netns=\${$1_NETNS:-}"
    ${netns:+ip netns exec "$netns"} "$PIPITD" -c "$2" --plugin-dir "$PIPIT_PLUGIN_DIR" \
        >>"$T/$1.out" 2>>"$T/$1.log" &
    eval "$1_PID=$!"
}

# stop_daemon NAME [SIGNAL]: signal (TERM) and wait; sets DAEMON_STATUS.
stop_daemon() {
    eval "pid=\$$1_PID"
    [ -n "$pid" ] || return 0
    kill "-${2:-TERM}" "$pid" 2>/dev/null
    wait "$pid"; DAEMON_STATUS=$?
    eval "$1_PID="
}

daemon_log_has() { grep -q -- "$2" "$T/$1.log" 2>/dev/null; }

# The agent's id (from its state directory).
the_agent_id() { cat "$T/agent/agent_id" 2>/dev/null; }

# spooled_batches: "seq records" of every batch the agent's spool held: written
# by it, or found in it at a start (an entry written just before a SIGKILL
# whose append never returned is found and delivered then).
spooled_batches() {
    sed -n 's/.*msg="spooled batch seq=\([0-9]*\) kind=metric records=\([0-9]*\) .*/\1 \2/p' \
        "$T/agent.log" | sort -n -u
}

sql() { sqlite3 -batch -noheader "$SINK_DB" "$1" 2>/dev/null; }

# stored_batches: "seq records" of every batch of the agent in the store's ledger.
stored_batches() {
    sql "SELECT seq, count FROM batches WHERE agent_id = '$(the_agent_id)' ORDER BY seq"
}

stored_records() { sql "SELECT count(*) FROM samples WHERE agent_id = '$(the_agent_id)'"; }

spooled_records() { spooled_batches | awk '{ s += $2 } END { print s + 0 }'; }

# store_complete: every spooled batch is in the store with all its records.
store_complete() {
    [ -s "$SINK_DB" ] || return 1
    spooled_batches >"$T/want"
    stored_batches | tr '|' ' ' >"$T/have"
    [ -s "$T/want" ] && cmp -s "$T/want" "$T/have"
}

# diff_batches: the batches spooled but missing or short in the store, and the reverse.
diff_batches() {
    spooled_batches >"$T/want"
    stored_batches | tr '|' ' ' >"$T/have"
    diff "$T/want" "$T/have" | sed -n 's/^\([<>]\)/#   \1/p' | head -20
}

cleanup_transport() {
    for n in agent aggregator; do
        eval "pid=\$${n}_PID"
        [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    done
    cleanup_kafka
}

setup_transport() {
    setup_kafka
    command -v sqlite3 >/dev/null 2>&1 || {
        echo "1..0 # SKIP the sqlite3 command is not installed (contrib/install-deps.sh --test)"
        exit 0
    }
    trap cleanup_transport EXIT
}
