#!/bin/sh
# endpoints_kafka.sh: /readyz turns 503 while every Kafka broker is down and 200 again after; /metrics counts the retries.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
. "$top_srcdir/tests/e2e/endpoints_lib.sh"
. "$top_srcdir/tests/kafka/broker.sh"
setup_kafka
plan 9

start_broker
ok $? "mock broker started on $BOOTSTRAP"
cat >"$T/p.yaml" <<YAML
agent:
  state_dir: $T/state
  jitter: 0s
  shutdown_timeout: 30s
batch:
  linger_ms: 50
http:
  enabled: true
  listen: 127.0.0.1:0
  ready_grace: 1s
inputs:
  - plugin: $TESTSRC
    count: 5
    interval: 100ms
outputs:
  - plugin: kafka
    name: bus
    brokers: $BOOTSTRAP
    message_timeout: 2s
    rdkafka:
      reconnect.backoff.max.ms: "500"
YAML
start_pipitd "$T/p.yaml"
wait_for 20 serving
ok $? "pipitd serves the endpoints" || show_log
wait_for 20 ready_is 200
ok $? "/readyz: 200 while the broker takes the batches" || cat "$T/body"
wait_for 20 value_above 'pipit_output_records_total{output="bus",plugin="kafka"}' 0
ok $? "/metrics counts records delivered to Kafka"

broker_cmd down all
ok $? "every broker down"
wait_for 60 ready_is 503
ok $? "/readyz: 503 while no broker is reachable" || cat "$T/body"
grep -q '"name":"bus","plugin":"kafka","state":"running","ready":false' "$T/body" &&
    value_above 'pipit_output_retries_total{output="bus",plugin="kafka"}' 0
ok $? "the kafka output is named as not ready, its retries counted" || cat "$T/body"

broker_cmd up all
wait_for 90 ready_is 200
ok $? "/readyz: 200 again once the brokers are back" || { cat "$T/body"; show_log; }
stop_pipitd
stop_broker
ok $PIPITD_STATUS "pipitd stops cleanly after the outage"
done_testing
