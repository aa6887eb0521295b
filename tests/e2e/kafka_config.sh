#!/bin/sh
# kafka_config.sh: the kafka output's rdkafka map: checked by pipit check, bad properties and overrides refused at init, secrets never logged.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
. "$top_srcdir/tests/kafka/broker.sh"
setup_kafka
plan 14

start_broker
ok $? "mock broker started on $BOOTSTRAP"
SECRET=hunter2-XYZZY-out-kafka
export PIPIT_T_SECRET="$SECRET"

# config FILE RDKAFKA-LINES...: an agent config whose kafka output has the
# given lines under rdkafka: (none: no rdkafka key).
config() {
    f=$1; shift
    {
        cat <<YAML
agent:
  state_dir: $T/state
  jitter: 0s
  log_level: debug
  shutdown_timeout: 1s
inputs:
  - plugin: $TESTSRC
    interval: 100ms
outputs:
  - plugin: kafka
    brokers: $BOOTSTRAP
YAML
        [ $# -gt 0 ] && echo "    rdkafka:"
        for l in "$@"; do echo "      $l"; done
    } >"$f"
}

# run_once FILE: start pipitd on FILE, wait until it runs, stop it.
run_once() {
    start_pipitd "$1"
    wait_for 20 log_has "running $1"
    sleep "${2:-0}"
    stop_pipitd
}

config "$T/good.yaml" 'security.protocol: plaintext' 'linger.ms: "10"' \
    'sasl.password: "${PIPIT_T_SECRET}"'
"$PIPIT" check -c "$T/good.yaml" --plugin-dir "$PIPIT_PLUGIN_DIR" >"$T/out" 2>&1
ok $? "pipit check accepts an rdkafka map of scalars" || sed 's/^/#   /' "$T/out"

config "$T/nested.yaml" 'sasl.password: "${PIPIT_T_SECRET}"' 'ssl:' '  ca: /etc/ssl/ca.pem'
"$PIPIT" check -c "$T/nested.yaml" --plugin-dir "$PIPIT_PLUGIN_DIR" >"$T/out" 2>&1
[ $? -eq 1 ] && grep -q "nested.yaml:14: outputs\[0\]\.rdkafka\.ssl: map values must be scalars" "$T/out"
ok $? "pipit check refuses a nested map with its line and key" || sed 's/^/#   /' "$T/out"
grep -q "$SECRET" "$T/out"
[ $? -ne 0 ]
ok $? "and shows no secret value"

config "$T/unknown.yaml" 'no.such.property: "1"'
run_once "$T/unknown.yaml"
grep -q 'level=error instance=kafka .*rdkafka.no.such.property: not a librdkafka property' \
    "$T/pipitd.log" && log_has "init failed"
ok $? "an unknown property is an init error naming the key" || show_log
log_has "outputs 0 running, 1 disabled"
ok $? "the output is disabled, the daemon runs on"

config "$T/idem.yaml" 'enable.idempotence: "false"'
run_once "$T/idem.yaml"
log_has "rdkafka.enable.idempotence cannot be changed: pipit always produces with enable.idempotence=true and acks=all" &&
    log_has "init failed"
ok $? "enable.idempotence=false is refused with the reason" || show_log

config "$T/acks.yaml" 'acks: "1"'
run_once "$T/acks.yaml"
log_has "rdkafka.acks cannot be changed" && log_has "init failed"
ok $? "acks=1 is refused" || show_log

config "$T/same.yaml" 'enable.idempotence: "true"' 'acks: all'
run_once "$T/same.yaml"
log_has "outputs 1 running, 0 disabled"
ok $? "repeating enable.idempotence=true and acks=all is accepted" || show_log

config "$T/badvalue.yaml" 'linger.ms: "${PIPIT_T_SECRET}"'
run_once "$T/badvalue.yaml"
log_has "rdkafka.linger.ms: librdkafka refused the value" && log_has "init failed"
ok $? "a value librdkafka refuses is an init error naming the key" || show_log
grep -q "$SECRET" "$T/pipitd.log"
[ $? -ne 0 ]
ok $? "the refused value is not logged" || show_log

config "$T/codec.yaml"
sed -i 's/^    brokers:.*/&\n    compression: brotli/' "$T/codec.yaml"
run_once "$T/codec.yaml"
log_has "option compression: librdkafka refused the value" && log_has "init failed"
ok $? "a bad compression option is named as the option" || show_log

# With SASL, which the mock cluster does not speak: librdkafka fails to
# authenticate and logs about it, at debug level too.
config "$T/sasl.yaml" 'security.protocol: SASL_PLAINTEXT' 'sasl.mechanisms: PLAIN' \
    'sasl.username: pipit' 'sasl.password: "${PIPIT_T_SECRET}"' 'debug: "conf,security,broker"'
run_once "$T/sasl.yaml" 2
log_has "librdkafka" && log_has "outputs 1 running"
ok $? "the output ran and librdkafka logged through pipitd ($(grep -c librdkafka "$T/pipitd.log") lines)" ||
    show_log
grep -q "$SECRET" "$T/pipitd.log"
[ $? -ne 0 ]
ok $? "sasl.password never appears in the log" || grep "$SECRET" "$T/pipitd.log" | sed 's/^/#   /'
stop_broker
done_testing
