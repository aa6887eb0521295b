#!/bin/sh
# kafka_produce.sh: pipitd sends every batch to the mock Kafka cluster once, keyed by agent id, with the format headers.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
. "$top_srcdir/tests/kafka/broker.sh"
setup_kafka
plan 13

start_broker
ok $? "mock broker started on $BOOTSTRAP"

cat >"$T/p.yaml" <<YAML
agent:
  state_dir: $T/state
  jitter: 0s
batch:
  linger_ms: 50
  max_records: 7
inputs:
  - plugin: $TESTSRC
    count: 20
    interval: 50ms
outputs:
  - plugin: kafka
    brokers: $BOOTSTRAP
    client_id: pipit-e2e
YAML
start_pipitd "$T/p.yaml"
wait_for 20 log_has "running $T/p.yaml"
ok $? "pipitd started with the kafka output" || show_log
has_messages() { [ "$(count_messages pipit.metrics)" -ge 20 ]; }
wait_for 20 has_messages
ok $? "batches arrive in pipit.metrics while pipitd runs"
sleep 2
stop_pipitd
ok $PIPITD_STATUS "pipitd exited 0 on SIGTERM (drained)" || show_log

batches=$(log_value batches "output totals")
records=$(log_value records "output totals")
emitted=$(log_value records "input totals")
diag "delivered $batches batches, $records records; emitted $emitted records"
[ -n "$batches" ] && [ "$batches" -gt 0 ] && [ "$(log_value failed_batches "output totals")" = 0 ] &&
    log_has "lost=0"
ok $? "every batch acknowledged, none failed or lost" || show_log
[ "$records" = "$emitted" ]
ok $? "records delivered = records emitted ($emitted)"

consume pipit.metrics '%k|%h|%S\n' >"$T/msgs"
n=$(lines "$T/msgs")
[ "$n" -eq "$batches" ]
ok $? "pipit.metrics holds one message per delivered batch ($n = $batches)"
id=$(agent_id)
[ -n "$id" ] && [ "$(grep -c "^$id|" "$T/msgs")" -eq "$n" ]
ok $? "every message is keyed by the agent id $id"
[ "$(grep -c '|pipit-format=1,pipit-kind=metric|' "$T/msgs")" -eq "$n" ]
ok $? "every message has the headers pipit-format=1 and pipit-kind=metric"
for t in pipit.logs pipit.costs pipit.events; do
    [ "$(count_messages $t)" -eq 0 ] || break
done
ok $? "no message in the topics of other kinds"

# The raw messages, back to back, are what `pipit decode` reads.
consume pipit.metrics '%s' >"$T/raw"
if "$PIPIT" decode <"$T/raw" >"$T/decoded" 2>"$T/decode.err"; then
    [ "$(lines "$T/decoded")" -eq "$emitted" ]
    ok $? "pipit decode reads back every record ($(lines "$T/decoded") lines)"
else
    skip "pipit decode is not available in this build: $(head -n 1 "$T/decode.err")"
fi

stop_broker
ok $? "mock broker stopped cleanly"
grep -q 'level=error' "$T/pipitd.log"
[ $? -ne 0 ]
ok $? "no error logged" || show_log
done_testing
