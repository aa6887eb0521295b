#!/bin/sh
# init_fail.sh: an instance whose init fails is disabled and reported; the rest runs.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
setup_e2e
plan 5

cat >"$T/p.yaml" <<YAML
agent:
  state_dir: $T/state
  jitter: 0s
batch:
  linger_ms: 50
inputs:
  - plugin: $TESTSRC
    name: broken
    fail_init: true
    interval: 50ms
  - plugin: $TESTSRC
    name: good
    interval: 50ms
outputs:
  - plugin: file
    path: $T/out.jsonl
YAML
start_pipitd "$T/p.yaml"
wait_for 20 more_lines_than "$T/out.jsonl" 4
ok $? "records of the good instance arrive"
grep -q 'level=error instance=broken plugin=testsrc .*init failed' "$T/pipitd.log"
ok $? "the failed init is logged with the instance name" || show_log
log_has "inputs 1 running, 1 disabled"
ok $? "startup reports one input disabled"
grep -q '"instance":"broken"' "$T/out.jsonl"
[ $? -ne 0 ]
ok $? "the disabled instance emitted nothing"
stop_pipitd
ok $PIPITD_STATUS "pipitd exited 0"
done_testing
