#!/bin/sh
# out_file_rotate.sh: the file output follows rename-and-create rotation without losing records.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
setup_e2e
plan 5

cat >"$T/p.yaml" <<YAML
agent:
  state_dir: $T/state
  jitter: 0s
batch:
  linger_ms: 20
inputs:
  - plugin: $TESTSRC
    interval: 50ms
outputs:
  - plugin: file
    path: $T/out.jsonl
YAML
start_pipitd "$T/p.yaml"
wait_for 20 more_lines_than "$T/out.jsonl" 3
ok $? "records arrive in the file"
mv "$T/out.jsonl" "$T/out.jsonl.1"      # what logrotate's create mode does
wait_for 20 more_lines_than "$T/out.jsonl" 3
ok $? "after the rename, a new file is created and written"
stop_pipitd
ok $PIPITD_STATUS "pipitd exited 0"
[ "$(stat -c %a "$T/out.jsonl")" = 640 ]
ok $? "the new file has the configured mode (0640)"
total=$(cat "$T/out.jsonl.1" "$T/out.jsonl" | wc -l)
emitted=$(sed -n 's/.*output totals: batches=[0-9]* records=\([0-9]*\).*/\1/p' "$T/pipitd.log")
[ "$total" = "$emitted" ]
ok $? "both files together hold every delivered record ($total of $emitted)" || show_log
done_testing
