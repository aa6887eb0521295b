#!/bin/sh
# transport_spool_limit.sh: with the brokers down and a small spool, the spool never exceeds its
# bound, and the drop counter equals exactly the records that never reached the store.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
. "$top_srcdir/tests/kafka/broker.sh"
. "$top_srcdir/tests/e2e/transport.sh"
setup_transport
plan 8

BOUND=1048576
start_broker
ok $? "mock broker on $BOOTSTRAP"
broker_cmd down all
ok $? "all brokers down before the agent starts"
# Kafka's own queue kept small (as in production): the backlog is the spool's.
# Batches stay compressed so the backlog fits the mock cluster's retention
# (it keeps a few MiB per partition and evicts the oldest).
AGENT_COUNT=400 AGENT_INTERVAL=20ms AGENT_SHUTDOWN=60s
write_agent_config "$T/agent.yaml" "    message_timeout: 3s
    queue_max_messages: 50"
cat >>"$T/agent.yaml" <<YAML
spool:
  max_bytes: $BOUND
  segment_bytes: 64KiB
  policy: drop_oldest
YAML
write_aggregator_config "$T/aggregator.yaml"
start_daemon agent "$T/agent.yaml"
spool_bytes() { find "$T/agent/spool" -type f -name '*.seg' -printf '%s\n' 2>/dev/null |
                awk '{ s += $1 } END { print s + 0 }'; }
max=0
for i in $(seq 1 60); do                # 12 s of samples
    b=$(spool_bytes)
    [ "$b" -gt "$max" ] && max=$b
    sleep 0.2
done
[ "$max" -le "$BOUND" ] && [ "$max" -gt $((BOUND / 2)) ]
ok $? "the spool filled up but never exceeded $BOUND bytes (largest seen: $max)"
grep -q 'records dropped: spool full (spool.policy drop_oldest)' "$T/agent.log"
ok $? "the drops are logged"
broker_cmd up all
ok $? "brokers up again"
sleep 2
stop_daemon agent                       # drains: waits until Kafka has every batch
ok $DAEMON_STATUS "the agent stopped cleanly" || tail -5 "$T/agent.log" | sed 's/^/#   /'
emitted=$(sed -n 's/.*input totals: runs=[0-9]* records=\([0-9]*\).*/\1/p' "$T/agent.log" | tail -n 1)
dropped=$(sed -n 's/.*pipeline totals:.* spool_dropped=\([0-9]*\).*/\1/p' "$T/agent.log" | tail -n 1)
lost=$(sed -n 's/.*pipeline totals:.* lost=\([0-9]*\).*/\1/p' "$T/agent.log" | tail -n 1)
diag "emitted $emitted, dropped by the spool $dropped, lost $lost"
[ "${dropped:-0}" -gt 0 ]
ok $? "records were dropped (counted: $dropped)"
start_daemon aggregator "$T/aggregator.yaml"
want=$((emitted - dropped - lost))
have_all() { [ "$(stored_records)" = "$want" ]; }
wait_for 60 have_all
ok $? "stored ($(stored_records)) = emitted ($emitted) - dropped ($dropped) - lost ($lost)"
stop_daemon aggregator
done_testing
