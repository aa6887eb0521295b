#!/bin/sh
# transport_agent_kill.sh: the agent SIGKILLed again and again: nothing spooled is lost, nothing doubled.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
. "$top_srcdir/tests/kafka/broker.sh"
. "$top_srcdir/tests/e2e/transport.sh"
setup_transport
plan 6

start_broker
ok $? "mock broker on $BOOTSTRAP"
AGENT_INTERVAL=20ms
write_agent_config "$T/agent.yaml"
write_aggregator_config "$T/aggregator.yaml"
start_daemon aggregator "$T/aggregator.yaml"
kills=0
for pause in 1.3 0.7 2.1 0.4 1.7 0.9; do
    start_daemon agent "$T/agent.yaml"
    sleep "$pause"
    stop_daemon agent KILL
    kills=$((kills + 1))
done
ok 0 "the agent was killed $kills times while producing"
start_daemon agent "$T/agent.yaml"
sleep 2
stop_daemon agent
ok $DAEMON_STATUS "a last run delivers the rest and stops cleanly"
replays=$(grep -c 'from an earlier run are delivered again' "$T/agent.log")
diag "restarts that found batches in the spool: $replays"
wait_for 60 store_complete
ok $? "every batch ever spooled is in the store with all its records" || diff_batches
[ "$(stored_records)" = "$(spooled_records)" ]
ok $? "the store holds exactly the $(spooled_records) records spooled, none twice"
seqs_twice=$(spooled_batches | awk '{ print $1 }' | uniq -d | wc -l)
[ "$seqs_twice" -eq 0 ]
ok $? "no sequence number was used for two batches across the crashes"
stop_daemon aggregator
done_testing
