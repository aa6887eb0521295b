#!/bin/sh
# kafka_fatal.sh: a fatal idempotent-producer error re-creates the producer; batches in flight are retried, none lost.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
. "$top_srcdir/tests/kafka/broker.sh"
setup_kafka
plan 9

start_broker
ok $? "mock broker started on $BOOTSTRAP"

cat >"$T/p.yaml" <<YAML
agent:
  state_dir: $T/state
  jitter: 0s
  shutdown_timeout: 20s
batch:
  linger_ms: 50
inputs:
  - plugin: $TESTSRC
    count: 20
    interval: 50ms
outputs:
  - plugin: kafka
    brokers: $BOOTSTRAP
YAML
start_pipitd "$T/p.yaml"
wait_for 20 log_has "running $T/p.yaml"
ok $? "pipitd started" || show_log
has_messages() { [ "$(count_messages pipit.metrics)" -ge 5 ]; }
wait_for 20 has_messages
ok $? "batches arrive"

# The broker says the head-of-line sequence is out of order: the idempotent
# producer cannot recover without risking loss or duplicates, a fatal error.
broker_cmd error Produce OUT_OF_ORDER_SEQUENCE_NUMBER 1
ok $? "Produce error pushed"
fatal_logged() { log_has "fatal producer error OUT_OF_ORDER_SEQUENCE_NUMBER"; }
wait_for 15 fatal_logged
ok $? "the fatal error is logged" || show_log
recreated() { log_has "producer re-created after a fatal error"; }
wait_for 15 recreated
ok $? "the producer is re-created" || show_log
sleep 2
stop_pipitd
ok $PIPITD_STATUS "pipitd exited 0 on SIGTERM (drained)" || show_log

batches=$(log_value batches "output totals")
records=$(log_value records "output totals")
emitted=$(log_value records "input totals")
diag "delivered $batches batches, $records records; emitted $emitted"
[ -n "$batches" ] && [ "$(log_value failed_batches "output totals")" = 0 ] && log_has "lost=0" &&
    [ "$records" = "$emitted" ]
ok $? "every record emitted was delivered ($emitted), none failed or lost" || show_log
# Batches in flight at the fatal error may have been written before it, so
# Kafka may hold some twice (the aggregator deduplicates on agent and seq);
# none may be missing.
topic_seqs pipit.metrics >"$T/seqs"
n=$(wc -l <"$T/seqs")
distinct=$(sort -u "$T/seqs" | wc -l)
diag "pipit.metrics holds $n messages, $distinct distinct sequence numbers"
[ "$n" -ge "$batches" ] && [ "$distinct" -eq "$batches" ]
ok $? "pipit.metrics holds every delivered batch ($distinct distinct of $n, $batches delivered)"
stop_broker
done_testing
