#!/bin/sh
# slow_collector.sh: a collector blocked in collect() does not delay the others.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
setup_e2e
plan 6

cat >"$T/p.yaml" <<YAML
agent:
  state_dir: $T/state
  jitter: 0s
batch:
  linger_ms: 20
inputs:
  - plugin: $TESTSRC
    name: slow
    block_until: $T/release
    interval: 50ms
  - plugin: $TESTSRC
    name: fast
    interval: 50ms
outputs:
  - plugin: file
    path: $T/out.jsonl
YAML
count_of() { n=$(grep -c "\"instance\":\"$1\"" "$T/out.jsonl" 2>/dev/null); echo "${n:-0}"; }
fast_count() { count_of fast; }
fast_at_least() { [ "$(fast_count)" -ge "$1" ]; }
slow_count() { count_of slow; }

start_pipitd "$T/p.yaml"
wait_for 30 fast_at_least 20
ok $? "the fast collector ran 20 times while the slow one was blocked"
[ "$(slow_count)" -eq 0 ]
ok $? "the slow collector was still blocked (emitted nothing)"
touch "$T/release"
wait_for 20 eval '[ "$(slow_count)" -ge 1 ]'
ok $? "the slow collector's records arrive once it is released"
stop_pipitd
ok $PIPITD_STATUS "pipitd exited 0"
overruns=$(sed -n 's/.*instance=slow.*overruns=\([0-9]*\).*/\1/p' "$T/pipitd.log")
[ -n "$overruns" ] && [ "$overruns" -gt 0 ]
ok $? "ticks during the blocked collect were counted as overruns ($overruns)"
log_has 'instance=slow plugin=testsrc msg="collect() takes longer than the interval'
ok $? "the overrun was logged once with the instance" || show_log
done_testing
