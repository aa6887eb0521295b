#!/bin/sh
# transport_costs.sh: cost records of the cost input, agent -> Kafka -> aggregator -> SQLite, stored to the micro.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
. "$top_srcdir/tests/kafka/broker.sh"
. "$top_srcdir/tests/e2e/transport.sh"
setup_transport
command -v jq >/dev/null 2>&1 || { echo "1..0 # SKIP jq is not installed"; exit 0; }
plan 6

start_broker
ok $? "mock broker on $BOOTSTRAP"
# 36 an hour is 0.01 a second: every interval costs whole micros and more
AGENT_INPUTS="  - plugin: cost
    interval: 200ms
    prices: {instance_hour: \"36\", egress_gb: \"0.09\"}
    metric_prices: {cpu_core_seconds: \"0.0000125\"}
    labels: {team: web, environment: test}" run_agent_copying 3
ok $DAEMON_STATUS "the agent stopped cleanly after delivering"

# The agent's own copy of its cost records (times quoted: jq before 1.7
# rounds integers above 2^53).
sed 's/"time":\([0-9]*\)/"time":"\1"/' "$T/agent-records.jsonl" |
    jq -r 'select(.kind == "cost") | [.time, .resource, .amount_micros, .currency,
           .labels.team, .labels.meter] | @tsv' | sort >"$T/sent.tsv"
n=$(wc -l <"$T/sent.tsv")
diag "the agent sent $n cost records"
[ "$n" -gt 0 ] && awk -F'\t' '$2 == "instance" && $3 > 0 { found = 1 } END { exit !found }' "$T/sent.tsv"
ok $? "the agent charged its instance time"

stored_costs() { sql "SELECT count(*) FROM costs WHERE agent_id = '$(the_agent_id)'"; }
costs_complete() { [ -s "$SINK_DB" ] && [ "$(stored_costs)" = "$n" ]; }
wait_for 60 costs_complete
ok $? "the store holds the $n cost records"

sql "SELECT time, resource, amount_micros, currency, json_extract(labels, '$.team'),
            json_extract(labels, '$.meter')
     FROM costs WHERE agent_id = '$(the_agent_id)'" | tr '|' '\t' | sort >"$T/stored.tsv"
cmp -s "$T/sent.tsv" "$T/stored.tsv"
ok $? "each stored amount_micros is the agent's, to the micro" ||
    diff "$T/sent.tsv" "$T/stored.tsv" | head -5 | sed 's/^/#   /'
stop_daemon aggregator
ok $DAEMON_STATUS "the aggregator stopped cleanly"
done_testing
