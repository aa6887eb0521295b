#!/bin/sh
# watchdog.sh: in-process collectors that hang, spin or emit too much are caught by the watchdog; the others, the spool and the outputs carry on.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
. "$top_srcdir/tests/e2e/endpoints_lib.sh"
setup_e2e
plan 21

# Five collectors that never return: more than libuv's default pool of 4
# worker threads, which pipitd sizes to the number of inputs plus 2.
cat >"$T/p.yaml" <<YAML
agent:
  state_dir: $T/state
  jitter: 0s
  shutdown_timeout: 20s
batch:
  linger_ms: 20
http:
  enabled: true
  listen: 127.0.0.1:0
inputs:
  - { plugin: $TESTSRC, name: hung, mode: hang, interval: 100ms, collect_timeout: 1s }
  - { plugin: $TESTSRC, name: hung2, mode: hang, interval: 100ms, collect_timeout: 1s }
  - { plugin: $TESTSRC, name: hung3, mode: hang, interval: 100ms, collect_timeout: 1s }
  - { plugin: $TESTSRC, name: hung4, mode: hang, interval: 100ms, collect_timeout: 1s }
  - { plugin: $TESTSRC, name: spin, mode: spin, interval: 100ms, collect_timeout: 1s }
  - { plugin: $TESTSRC, name: late, block_until: $T/release, count: 3, interval: 100ms,
      collect_timeout: 1s }
  - { plugin: $TESTSRC, name: flood, mode: flood, count: 20, max_emit_bytes: 4KiB,
      interval: 100ms }
  - { plugin: $TESTSRC, name: flood_off, mode: flood, count: 20, max_emit_bytes: 4KiB,
      on_emit_limit: disable, interval: 100ms }
  - { plugin: $TESTSRC, name: fast, interval: 50ms }
outputs:
  - plugin: file
    path: $T/out.jsonl
YAML
all_stalled() {
    scrape || return 1
    for i in hung hung2 hung3 hung4 spin late; do
        [ "$(testsrc_value pipit_plugin_stalls_total $i)" = 1 ] || return 1
    done
}

start=$(date +%s)
start_pipitd "$T/p.yaml"
wait_for 20 serving || show_log
# pass: every instance past its 1 s deadline is counted within 20 s (generous for ASan)
wait_for 20 all_stalled
ok $? "hung, spinning and blocked collectors are each counted once in pipit_plugin_stalls_total" || show_log
log_has 'instance=hung plugin=testsrc module=watchdog msg="collect() has run for longer than collect_timeout (1000 ms)'
ok $? "the stall is logged with the instance and the deadline" || show_log
log_has 'instance=spin plugin=testsrc module=watchdog msg="collect() has run for longer than collect_timeout'
ok $? "a spinning collector is caught the same way"
[ "$(testsrc_state hung stalled)" = 1 ] && [ "$(testsrc_state spin stalled)" = 1 ] && [ "$(testsrc_state hung running)" = 0 ]
ok $? "pipit_plugin_state says stalled, not running"
[ "$(auth /readyz)" = 200 ] && grep -q '"name":"hung","plugin":"testsrc","state":"stalled","stalls":1' "$T/body"
ok $? "/readyz lists the stalled input and stays ready (the outputs deliver)" || diag "$(cat "$T/body")"

# pass: no new tick reaches a stalled instance (its overruns stop growing)
o1=$(testsrc_value pipit_collector_overruns_total hung)
f1=$(records_of fast)
sleep 1.5
scrape
o2=$(testsrc_value pipit_collector_overruns_total hung)
[ -n "$o1" ] && [ "$o1" = "$o2" ]
ok $? "the watchdog stops scheduling the stalled instance (overruns $o1 then $o2)"
f2=$(records_of fast)
[ "$f2" -gt "$f1" ]
ok $? "with 5 calls stuck on worker threads, the fast collector keeps delivering ($f1 then $f2)"

touch "$T/release"
late_done() { scrape && [ "$(testsrc_value pipit_input_records_dropped_total late ',reason="stalled"')" = 3 ]; }
wait_for 20 late_done
ok $? "the late call's 3 records are dropped and counted with reason stalled" || show_log
[ "$(testsrc_state late disabled)" = 1 ] && [ "$(records_of late)" = 0 ]
ok $? "the instance whose call returned late stays disabled; none of its records went out"
log_has 'instance=late plugin=testsrc module=watchdog msg="the stalled collect() returned after'
ok $? "its return is logged"

capped=$(testsrc_value pipit_input_records_dropped_total flood ',reason="max_emit_bytes"')
[ -n "$capped" ] && [ "$capped" -gt 20 ] && [ "$(testsrc_state flood running)" = 1 ] && [ "$(records_of flood)" -gt 0 ]
ok $? "a collector emitting past max_emit_bytes is capped, counted ($capped) and keeps running"
log_has 'instance=flood plugin=testsrc msg="one collection emitted more than 4096 bytes of records (max_emit_bytes)'
ok $? "the cap is logged with its size"
[ "$(testsrc_state flood_off disabled)" = 1 ] && [ "$(testsrc_value pipit_collector_runs_total flood_off)" = 1 ]
ok $? "with on_emit_limit: disable it is disabled after its first collection"
log_has 'instance=flood_off plugin=testsrc module=watchdog msg="a collection emitted more than max_emit_bytes'
ok $? "and says so"

stop_pipitd
[ "$PIPITD_STATUS" = 0 ]
ok $? "pipitd stops with exit status 0 though 5 calls never returned ($PIPITD_STATUS)" || show_log
log_has 'exiting with 5 stalled collect() calls still running'
ok $? "it says how many calls it leaves behind"
f3=$(records_of fast)
emitted=$(accepted_of fast)
[ -n "$emitted" ] && [ "$f3" = "$emitted" ]
ok $? "every record the fast collector emitted reached the output ($f3 of $emitted)"
diag "took $(( $(date +%s) - start )) s"

# A reload while a call is stalled: the old instance is kept until its call
# returns, then finished and freed; the new generation runs meanwhile.
cat >"$T/r.yaml" <<YAML
agent:
  state_dir: $T/state-r
  jitter: 0s
batch:
  linger_ms: 20
inputs:
  - { plugin: $TESTSRC, name: late, block_until: $T/release-r, interval: 100ms,
      collect_timeout: 500ms }
  - { plugin: $TESTSRC, name: fast, interval: 50ms }
outputs:
  - plugin: file
    path: $T/r.jsonl
YAML
mv "$T/pipitd.log" "$T/first.log"
start_pipitd "$T/r.yaml"
wait_for 20 log_has 'instance=late plugin=testsrc module=watchdog msg="collect() has run for longer'
kill -HUP "$PIPITD_PID"
# pass: the reload completes though the old generation's call is still stuck
wait_for 20 log_has "configuration reloaded"
ok $? "a reload does not wait for a stalled call" || show_log
wait_for 20 eval '[ "$(grep -c "collect() has run for longer" "$T/pipitd.log")" -ge 2 ]'
touch "$T/release-r"
wait_for 20 eval '[ "$(grep -c "the stalled collect() returned" "$T/pipitd.log")" -ge 2 ]'
ok $? "the old generation's call and the new one's return late and are logged" || show_log
stop_pipitd
[ "$PIPITD_STATUS" = 0 ] && ! log_has "exiting with"
ok $? "then pipitd stops normally, nothing left behind ($PIPITD_STATUS)" || show_log

cat >"$T/bad.yaml" <<YAML
agent:
  state_dir: $T/state
inputs:
  - plugin: $TESTSRC
    on_emit_limit: throttle
YAML
"$PIPITD" -t -c "$T/bad.yaml" --plugin-dir "$PIPIT_PLUGIN_DIR" >"$T/check.out" 2>&1
[ $? = 1 ] && grep -q "bad.yaml:5: inputs\[0\].on_emit_limit: unknown policy \"throttle\"" "$T/check.out"
ok $? "an unknown on_emit_limit is refused naming file, line and key" || diag "$(cat "$T/check.out")"
done_testing
