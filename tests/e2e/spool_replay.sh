#!/bin/sh
# spool_replay.sh: batches in the spool when pipitd is killed are delivered after the restart, once.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
setup_e2e
plan 7

SINK="$PIPIT_TEST_LIB/out_testsink.so"
cat >"$T/p.yaml" <<YAML
agent:
  state_dir: $T/state
  jitter: 0s
  log_level: debug
batch:
  linger_ms: 20
inputs:
  - plugin: $TESTSRC
    count: 3
    interval: 50ms
outputs:
  - plugin: $SINK
    path: $T/out.txt
    refuse_while: $T/refuse
YAML
spooled() { grep -c 'msg="spooled batch' "$T/pipitd.log" 2>/dev/null || true; }
spooled_at_least() { [ "$(spooled)" -ge "$1" ]; }

touch "$T/refuse"                       # the output refuses everything
start_pipitd "$T/p.yaml"
wait_for 20 spooled_at_least 5
ok $? "batches are spooled while the output refuses them"
kill -KILL "$PIPITD_PID"; wait "$PIPITD_PID" 2>/dev/null; PIPITD_PID=
cp "$T/pipitd.log" "$T/first.log"
grep 'msg="spooled batch' "$T/first.log" | sed 's/.*seq=\([0-9]*\) .*/\1/' | sort -n >"$T/spooled.seqs"
[ ! -s "$T/out.txt" ]
ok $? "nothing was delivered before the kill"

rm "$T/refuse"                          # the output works again
start_pipitd "$T/p.yaml"
n=$(wc -l <"$T/spooled.seqs")
log_has "spool: [0-9]* batches"
wait_for 20 log_has "from an earlier run are delivered again"
ok $? "the restart finds the spooled batches" || show_log
has_all() { while read -r s; do grep -q "^#batch seq=$s " "$T/out.txt" || return 1; done <"$T/spooled.seqs"; }
wait_for 20 has_all
ok $? "every batch spooled before the kill ($n) is delivered after it"
stop_pipitd
ok $PIPITD_STATUS "pipitd exited 0"
dups=$(grep '^#batch' "$T/out.txt" | sort | uniq -d | wc -l)
[ "$dups" -eq 0 ]
ok $? "no batch was delivered twice"
# Sequence numbers never repeat across the crash.
seqs=$(grep '^#batch' "$T/out.txt" | sed 's/#batch seq=\([0-9]*\).*/\1/' | sort -n | uniq -d | wc -l)
[ "$seqs" -eq 0 ]
ok $? "no sequence number was used twice"
done_testing
