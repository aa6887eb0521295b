#!/bin/sh
# transport_caught_up.sh: the aggregator closes its open batches once the Kafka consumer has
# caught up (in_kafka close_when_caught_up), instead of holding them for batch.linger_ms.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
. "$top_srcdir/tests/kafka/broker.sh"
. "$top_srcdir/tests/e2e/transport.sh"
setup_transport
plan 7

# aggregator_holding_a_minute [EXTRA]: the aggregator config with a 60 s linger and room for
# every record in one batch; EXTRA ("    key: value") goes into its kafka input.
aggregator_holding_a_minute() {
    write_aggregator_config "$T/aggregator.yaml"
    sed -i 's/^  linger_ms: 100$/  linger_ms: 60000\n  max_records: 100000/' "$T/aggregator.yaml"
    [ -z "${1:-}" ] || sed -i "s|^    group_id: pipit-test|    group_id: pipit-test\n$1|" \
        "$T/aggregator.yaml"
}

start_broker
ok $? "mock broker on $BOOTSTRAP"

# Caught up: the agent's few batches are stored within seconds, far inside the 60 s linger.
AGENT_RUNS=3 AGENT_COUNT=20 write_agent_config "$T/agent.yaml"
aggregator_holding_a_minute
start_daemon aggregator "$T/aggregator.yaml"
start_daemon agent "$T/agent.yaml"
wait_for 30 store_complete && [ "$(stored_records)" = 60 ]
ok $? "the 60 records are stored while the aggregator's 60 s linger has not passed" ||
    diag "stored: $(stored_records) of $(spooled_records)"
stop_daemon agent
ok $DAEMON_STATUS "the agent stopped cleanly"
stop_daemon aggregator
ok $DAEMON_STATUS "the aggregator stopped cleanly"

# close_when_caught_up: false keeps the linger: nothing is stored until the aggregator stops,
# which closes and stores the open batch.
rm -rf "$T/agent" "$T/aggregator" "$T/store.db"* "$T/agent.log" "$T/aggregator.log"
AGENT_RUNS=3 AGENT_COUNT=20 write_agent_config "$T/agent.yaml"
aggregator_holding_a_minute "    close_when_caught_up: false"
sed -i 's/group_id: pipit-test/group_id: pipit-test-held/' "$T/aggregator.yaml"
start_daemon aggregator "$T/aggregator.yaml"
start_daemon agent "$T/agent.yaml"
sleep 8
[ "$(stored_records)" = "0" ] || [ -z "$(stored_records)" ]
ok $? "with close_when_caught_up false, nothing is stored before the linger (8 s)" ||
    diag "stored: $(stored_records)"
stop_daemon agent
stop_daemon aggregator
ok $DAEMON_STATUS "the aggregator stopped cleanly"
[ "$(stored_records)" = 60 ]
ok $? "stopping the aggregator stored the 60 held records" || diag "stored: $(stored_records)"
done_testing
