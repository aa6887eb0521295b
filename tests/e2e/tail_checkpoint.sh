#!/bin/sh
# tail_checkpoint.sh: the tail input writes its checkpoint at most every checkpoint_interval, and at stop.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
setup_e2e
plan 5
mkdir -p "$T/logs"
# checkpoint_interval 5s: positions acknowledged within 5 s of the last write
# wait for a later wakeup; a stop writes the last one at once.
cat >"$T/p.yaml" <<YAML
agent:
  state_dir: $T/state
  jitter: 0s
batch:
  linger_ms: 20
inputs:
  - plugin: tail
    name: app
    path: ["$T/logs/app.log"]
    read_from: beginning
    checkpoint_interval: 5s
    stats_interval: 0s
outputs:
  - plugin: file
    path: $T/out.jsonl
YAML
CKPT=$T/state/plugins/app/checkpoints
got() { grep -c '"message":"line ' "$T/out.jsonl" 2>/dev/null || echo 0; }
# ckpt_off: the offset the checkpoint holds for app.log, or 0 (the seventh
# field: "C hash i n device inode offset ...", docs/plugins/tail.md).
ckpt_off() { awk '{ print $7 }' "$CKPT" 2>/dev/null | head -n 1 | grep . || echo 0; }
size() { stat -c %s "$T/logs/app.log"; }
ckpt_at() { [ "$(ckpt_off)" = "$1" ]; }
ckpt_at_end() { [ "$(ckpt_off)" = "$(size)" ]; }
got_at_least() { [ "$(got)" -ge "$1" ]; }

printf 'line 1\nline 2\n' >"$T/logs/app.log"
first=$(size)
start_pipitd "$T/p.yaml"
wait_for 10 ckpt_at "$first"
ok $? "the first acknowledged position is written at once ($(ckpt_off) of $first bytes)" || show_log

printf 'line 3\nline 4\n' >>"$T/logs/app.log"
wait_for 10 got_at_least 4
sleep 0.5
[ "$(got)" -ge 4 ] && [ "$(ckpt_off)" = "$first" ]
ok $? "lines delivered within the interval do not rewrite the checkpoint yet (still $(ckpt_off))"

wait_for 10 ckpt_at_end
ok $? "after the interval, a later wakeup writes the new position ($(ckpt_off) of $(size))"

printf 'line 5\n' >>"$T/logs/app.log"
wait_for 10 got_at_least 5
stop_pipitd
ok $PIPITD_STATUS "pipitd stopped cleanly"
[ "$(ckpt_off)" = "$(size)" ]
ok $? "a stop writes the last acknowledged position although the interval has not passed"
done_testing
