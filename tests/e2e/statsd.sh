#!/bin/sh
# statsd.sh: pipitd with the statsd input on a free UDP port and the file output; datagrams sent through bash's /dev/udp.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
if [ -z "$BASH_VERSION" ]; then
    command -v bash >/dev/null 2>&1 || { echo "1..0 # SKIP bash is needed for /dev/udp"; exit 0; }
    exec bash "$0" "$@"
fi
setup_e2e
plan 9

cat >"$T/p.yaml" <<YAML
agent:
  state_dir: $T/state
  jitter: 0s
batch:
  linger_ms: 20
inputs:
  - plugin: statsd
    listen: 127.0.0.1:0
    flush_interval: 200ms
    percentiles: [50, 100]
outputs:
  - plugin: file
    path: $T/out.jsonl
YAML
start_pipitd "$T/p.yaml"
port_of() { sed -n 's/.*listening on udp 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/pipitd.log" | head -1; }
wait_for 20 eval '[ -n "$(port_of)" ]'
ok $? "the bound port is logged" || show_log
PORT=$(port_of)
has() { grep -q -- "$1" "$T/out.jsonl" 2>/dev/null; }

printf 'e2e.hits:3|c\ne2e.hits:1|c|@0.5\ne2e.lat:5|ms|#env:test\ne2e.lat:15|ms|#env:test\nnot a line\n' \
    >/dev/udp/127.0.0.1/"$PORT"
printf 'e2e.temp:20|g\ne2e.temp:+2.5|g' >/dev/udp/127.0.0.1/"$PORT"
wait_for 20 has '"name":"e2e.hits","type":"counter","value":5,'
ok $? "counter: 3 + 1/0.5 in one flush" || show_log
has '"name":"e2e.lat.p100","type":"gauge","value":15,"labels":{"env":"test"}'
ok $? "timer percentile with its tag as a label"
has '"name":"e2e.lat.mean","type":"gauge","value":10,'
ok $? "timer mean"
has '"name":"e2e.temp","type":"gauge","value":22.5,'
ok $? "gauge set then raised"
has '"name":"statsd.bad_lines","type":"counter","value":1,'
ok $? "the bad line was counted"
stop_pipitd
ok $PIPITD_STATUS "pipitd exited 0"

# The interval in progress at a stop is emitted and delivered, not lost.
sed -i 's/flush_interval: 200ms/flush_interval: 1h/' "$T/p.yaml"
: >"$T/pipitd.log"
start_pipitd "$T/p.yaml"
wait_for 20 eval '[ -n "$(port_of)" ]'
printf 'e2e.last:7|c' >/dev/udp/127.0.0.1/"$(port_of)"
sleep 0.5
stop_pipitd
ok $PIPITD_STATUS "pipitd stopped with an interval in progress"
has '"name":"e2e.last","type":"counter","value":7,'
ok $? "the counter of the unfinished interval was flushed at the stop" || show_log
done_testing
