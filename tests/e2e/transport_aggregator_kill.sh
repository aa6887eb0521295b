#!/bin/sh
# transport_aggregator_kill.sh: the aggregator SIGKILLed mid-stream and restarted: each record stored once.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
. "$top_srcdir/tests/kafka/broker.sh"
. "$top_srcdir/tests/e2e/transport.sh"
setup_transport
plan 7

start_broker
ok $? "mock broker on $BOOTSTRAP"
write_agent_config "$T/agent.yaml"
write_aggregator_config "$T/aggregator.yaml"
start_daemon agent "$T/agent.yaml"
# Each aggregator is killed once it has stored something more, and a moment
# later, so that every kill lands mid-stream whatever the machine's speed.
stored_more_than() { [ "$(stored_records)" -gt "$1" ] 2>/dev/null; }
for pause in 0.4 0.1 0.7; do
    before=$(stored_records); before=${before:-0}
    start_daemon aggregator "$T/aggregator.yaml"
    wait_for 30 stored_more_than "$before"
    sleep "$pause"
    stop_daemon aggregator KILL
done
ok 0 "the aggregator was killed 3 times while consuming"
stored_before=$(stored_records)
[ "${stored_before:-0}" -gt 0 ]
ok $? "the killed aggregators had stored $stored_before records: the kills were mid-stream"
start_daemon aggregator "$T/aggregator.yaml"
sleep 2
stop_daemon agent
ok $DAEMON_STATUS "the agent stopped cleanly"
wait_for 60 store_complete
ok $? "every spooled batch is in the store with all its records" || diff_batches
[ "$(stored_records)" = "$(spooled_records)" ]
ok $? "the store holds exactly the $(spooled_records) records spooled, none twice"
stop_daemon aggregator
ok $DAEMON_STATUS "the last aggregator stopped cleanly"
done_testing
