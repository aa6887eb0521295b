#!/bin/sh
# isolation.sh: inputs with isolation: process: a segfaulting or hanging plugin does not take pipitd down; it is killed, restarted and counted while the rest carries on.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
. "$top_srcdir/tests/e2e/endpoints_lib.sh"
setup_e2e
plan 16

cat >"$T/p.yaml" <<YAML
agent:
  state_dir: $T/state
  jitter: 0s
batch:
  linger_ms: 20
http:
  enabled: true
  listen: 127.0.0.1:0
inputs:
  - { plugin: $TESTSRC, name: crash, isolation: process, mode: segfault, after: 3,
      count: 2, interval: 200ms }
  - { plugin: $TESTSRC, name: hang, isolation: process, mode: hang, interval: 200ms,
      collect_timeout: 1s }
  - { plugin: $TESTSRC, name: hang_off, isolation: process, mode: hang, interval: 200ms,
      collect_timeout: 1s, on_stall: disable }
  - { plugin: $TESTSRC, name: flood, isolation: process, mode: flood, count: 20,
      max_emit_bytes: 4KiB, interval: 200ms }
  - { plugin: $TESTSRC, name: fast, interval: 50ms }
outputs:
  - plugin: file
    path: $T/out.jsonl
YAML

start_pipitd "$T/p.yaml"
wait_for 20 serving || show_log
# pass: the third collect() segfaults its process; pipitd counts a restart within 30 s
restarted() { scrape && [ -n "$(testsrc_value pipit_plugin_restarts_total crash)" ] &&
              [ "$(testsrc_value pipit_plugin_restarts_total crash)" -ge 1 ]; }
wait_for 30 restarted
ok $? "a host process that crashes in its 3rd collect() is restarted and counted" || show_log
kill -0 "$PIPITD_PID"
ok $? "pipitd is still running"
grep -q 'instance=crash plugin=testsrc module=isolation msg="its process (pid [0-9]*) was killed by signal [0-9]* ([A-Za-z ]*); starting it again in 1000 ms (restart 1)"' "$T/pipitd.log"
ok $? "the crash is logged with the pid, the signal and the restart delay" || show_log
[ "$(grep '"instance":"crash"' "$T/out.jsonl" | grep -c '"run":"[12]"')" -ge 4 ] &&
    ! grep '"instance":"crash"' "$T/out.jsonl" | grep -q '"run":"3"'
ok $? "the records of the two calls before the crash were delivered, none of the crashed call"
# pass: after the restart the new process collects again (2 more calls, 4 more records)
wait_for 30 eval '[ "$(records_of crash)" -ge 8 ]'
ok $? "the restarted process collects again ($(records_of crash) records)"

hang_killed() { scrape && [ -n "$(testsrc_value pipit_plugin_restarts_total hang)" ] &&
                [ "$(testsrc_value pipit_plugin_restarts_total hang)" -ge 1 ] &&
                [ "$(testsrc_value pipit_plugin_stalls_total hang)" -ge 1 ]; }
wait_for 30 hang_killed
ok $? "a hanging host process is killed at collect_timeout and restarted (stalls and restarts counted)" || show_log
log_has 'instance=hang plugin=testsrc module=watchdog msg="collect() has run for longer than collect_timeout (1000 ms): killing its process"'
ok $? "the kill is logged with the instance and the deadline"
hang_off_done() { scrape && [ "$(testsrc_state hang_off disabled)" = 1 ]; }
wait_for 30 hang_off_done
ok $? "with on_stall: disable the killed instance is disabled" || show_log
[ "$(testsrc_value pipit_plugin_restarts_total hang_off)" = 0 ] &&
    log_has 'instance=hang_off plugin=testsrc module=isolation msg="its process (pid [0-9]*) was killed by signal 9 (Killed); on_stall is disable: the instance is disabled"'
ok $? "and not restarted, saying why"

f1=$(records_of fast)
sleep 1
f2=$(records_of fast)
[ "$f2" -gt "$f1" ] && [ "$(testsrc_state fast running)" = 1 ]
ok $? "the in-process collector keeps delivering meanwhile ($f1 then $f2)"

capped=$(testsrc_value pipit_input_records_dropped_total flood ',reason="max_emit_bytes"')
[ -n "$capped" ] && [ "$capped" -gt 0 ] && [ "$(records_of flood)" -gt 0 ] &&
    [ "$(testsrc_state flood running)" = 1 ]
ok $? "an isolated collector past max_emit_bytes is capped in its process and counted in pipitd ($capped)"

pids=$(sed -n 's/.*running in its own process (pid \([0-9]*\)).*/\1/p' "$T/pipitd.log")
stop_pipitd
ok $PIPITD_STATUS "pipitd stops with exit status 0 ($PIPITD_STATUS)" || show_log
left=
for p in $pids; do kill -0 "$p" 2>/dev/null && left="$left $p"; done
[ -z "$left" ]
ok $? "no host process outlives pipitd (left:${left:- none})"
emitted=$(accepted_of fast)
[ -n "$emitted" ] && [ "$(records_of fast)" = "$emitted" ]
ok $? "every record the fast collector emitted reached the output ($(records_of fast) of $emitted)"

# The loader's checks refuse a plugin the same way in either mode.
cp "$PIPIT_TEST_LIB/in_testsrc.so" "$T/in_unsafe.so"
chmod 0666 "$T/in_unsafe.so"
for mode in in_process process; do
    cat >"$T/$mode.yaml" <<YAML
agent:
  state_dir: $T/state
inputs:
  - plugin: $T/in_unsafe.so
    isolation: $mode
YAML
    "$PIPITD" -t -c "$T/$mode.yaml" --plugin-dir "$PIPIT_PLUGIN_DIR" 2>&1 |
        sed "s|$mode.yaml|X.yaml|" >"$T/$mode.check"
done
grep -q "X.yaml:4: inputs\[0\].plugin: .*in_unsafe.so" "$T/process.check" &&
    cmp -s "$T/in_process.check" "$T/process.check"
ok $? "a world-writable plugin is refused with isolation: process exactly as in process" ||
    diag "$(cat "$T/process.check")"

cat >"$T/bad.yaml" <<YAML
agent:
  state_dir: $T/state
inputs:
  - plugin: $TESTSRC
    on_stall: restart
    memory_limit: 64MiB
YAML
"$PIPITD" -t -c "$T/bad.yaml" --plugin-dir "$PIPIT_PLUGIN_DIR" >"$T/bad.out" 2>&1
[ $? = 1 ] && grep -q "bad.yaml:5: inputs\[0\].on_stall: restart needs isolation: process" "$T/bad.out" &&
    grep -q "bad.yaml:6: inputs\[0\].memory_limit: needs isolation: process" "$T/bad.out"
ok $? "on_stall: restart and memory_limit are refused in process, naming file, line and key" ||
    diag "$(cat "$T/bad.out")"
done_testing
