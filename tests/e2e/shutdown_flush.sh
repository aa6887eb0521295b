#!/bin/sh
# shutdown_flush.sh: SIGTERM flushes every record still in an open batch to the outputs.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
setup_e2e
plan 6

cat >"$T/p.yaml" <<YAML
agent:
  state_dir: $T/state
  jitter: 0s
batch:
  linger_ms: 3600000        # batches never close by time during the test
  max_records: 1000000
inputs:
  - plugin: $TESTSRC
    count: 7
    interval: 50ms
outputs:
  - plugin: file
    path: $T/out.jsonl
YAML
start_pipitd "$T/p.yaml"
wait_for 20 log_has "running $T/p.yaml"
ok $? "pipitd started"
sleep 1
[ "$(lines "$T/out.jsonl")" -eq 0 ]
ok $? "nothing delivered before the stop (records wait in the open batch)"
stop_pipitd
ok $PIPITD_STATUS "pipitd exited 0 on SIGTERM"
emitted=$(sed -n 's/.*instance=testsrc.*input totals: runs=[0-9]* records=\([0-9]*\).*/\1/p' "$T/pipitd.log")
diag "emitted $emitted records, file has $(lines "$T/out.jsonl") lines"
[ -n "$emitted" ] && [ "$emitted" -ge 7 ]
ok $? "the collector emitted records"
[ "$(lines "$T/out.jsonl")" = "$emitted" ]
ok $? "every emitted record is in the output after the stop"
log_has "lost=0"
ok $? "pipeline reports nothing lost" || show_log
done_testing
