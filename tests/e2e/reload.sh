#!/bin/sh
# reload.sh: SIGHUP refuses an invalid config (old one keeps running) and applies a valid one.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
setup_e2e
plan 9

write_config() { # write_config OUTPUT-FILE [EXTRA-INPUT-LINE]
    cat >"$T/p.yaml" <<YAML
agent:
  state_dir: $T/state
  jitter: 0s
batch:
  linger_ms: 20
inputs:
  - plugin: $TESTSRC
    interval: 50ms
$2
outputs:
  - plugin: file
    path: $1
YAML
}
write_config "$T/one.jsonl"
start_pipitd "$T/p.yaml"
wait_for 20 more_lines_than "$T/one.jsonl" 2
ok $? "records flow to the first output"

# An unknown key on line 9 of the file: the reload must be refused.
write_config "$T/two.jsonl" "    intervall: 5s"
kill -HUP "$PIPITD_PID"
wait_for 20 log_has "reload refused"
ok $? "the invalid configuration is refused" || show_log
grep -q "$T/p.yaml:9: inputs\[0\]\.intervall.*unknown" "$T/pipitd.log"
ok $? "the error names file, line and key" || show_log
kill -0 "$PIPITD_PID"
ok $? "pipitd is still running"
n=$(lines "$T/one.jsonl")
wait_for 20 more_lines_than "$T/one.jsonl" "$n"
ok $? "the old configuration keeps delivering"
[ ! -e "$T/two.jsonl" ]
ok $? "the refused configuration's output was never opened"

write_config "$T/two.jsonl"
kill -HUP "$PIPITD_PID"
wait_for 20 more_lines_than "$T/two.jsonl" 2
ok $? "after a valid reload records flow to the new output" || show_log
log_has "configuration reloaded"
ok $? "the reload is logged"
stop_pipitd
ok $PIPITD_STATUS "pipitd exited 0"
done_testing
