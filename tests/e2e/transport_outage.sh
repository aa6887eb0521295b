#!/bin/sh
# transport_outage.sh: every broker down for 60 s while the agent collects: afterwards each record is stored once.
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
start_daemon aggregator "$T/aggregator.yaml"
start_daemon agent "$T/agent.yaml"
sleep 2
broker_cmd down all
ok $? "all brokers down"
before=$(spooled_records)
sleep 60
during=$(spooled_records)
[ "$during" -gt "$before" ]
ok $? "the agent kept collecting and spooling during the outage ($before -> $during records)"
broker_cmd up all
ok $? "brokers up again"
sleep 3
stop_daemon agent
ok $DAEMON_STATUS "the agent stopped cleanly after delivering the backlog" ||
    tail -20 "$T/agent.log" | sed 's/^/#   /'
wait_for 90 store_complete
ok $? "every spooled batch is in the store with all its records" || diff_batches
[ "$(stored_records)" = "$(spooled_records)" ]
ok $? "the store holds exactly the $(spooled_records) records spooled, none twice"
stop_daemon aggregator
done_testing
