#!/bin/bash
# disk_full.sh: the state directory on a 2 MiB tmpfs, the brokers down, a log file tailed until the spool fills the disk: nothing unpersisted is accepted, the episode is logged once and counted, and every line arrives once space returns, also across a SIGKILL on the full disk.
#
# Pass criteria: while the disk is full pipitd keeps running; the spool's
# failed writes are logged once per episode (with the spool's path, the
# errno text and the policy) and counted in pipit_spool_write_errors_total;
# the entries in the segment files are exactly pipit_spool_appended_total
# and their bytes exactly pipit_spool_bytes (no half-written entry, nothing
# counted as accepted that is not on disk); after the brokers come back
# every line written arrives in Kafka (distinct line numbers) and the end of
# the episode is logged; a SIGKILL on a full disk, then a restart on it,
# loses no line either (the tail checkpoint never got ahead of the spool).
# Skipped when a tmpfs cannot be mounted (not root).
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
. "$top_srcdir/tests/kafka/broker.sh"
. "$top_srcdir/tests/e2e/endpoints_lib.sh"
. "$top_srcdir/tests/e2e/damage.sh"
need_kcat
setup_e2e
S="$T/state"
mkdir -p "$S" "$T/logs"
if ! mount -t tmpfs -o size=2m,mode=0700 tmpfs "$S" 2>"$T/mount.err"; then
    echo "1..0 # SKIP cannot mount a tmpfs for the state directory: $(cat "$T/mount.err")"
    exit 0
fi
cleanup_disk() {
    [ -n "$PIPITD_PID" ] && kill -KILL "$PIPITD_PID" 2>/dev/null && wait "$PIPITD_PID"
    [ -n "$KC_PID" ] && kill -TERM "$KC_PID" 2>/dev/null
    [ -n "$MB_PID" ] && kill -TERM "$MB_PID" 2>/dev/null
    umount "$S" 2>/dev/null || umount -l "$S"
    rm -rf "$T"
}
trap cleanup_disk EXIT
plan 14

start_broker --no-default-topics --topic pipit.logs:1 --topic pipit.events:1 \
    --topic pipit.metrics:1
ok $? "mock broker on $BOOTSTRAP"
broker_cmd down all
cat >"$T/p.yaml" <<YAML
agent:
  state_dir: $S
  jitter: 0s
  log_level: debug
  shutdown_timeout: 20s
batch:
  linger_ms: 50
  max_records: 200
wire:
  compression: none
pipeline:
  max_pending_bytes: 4MiB
spool:
  segment_bytes: 64KiB
http:
  enabled: true
  listen: 127.0.0.1:0
inputs:
  - plugin: tail
    path: ["$T/logs/app.log"]
    read_from: beginning
    stats_interval: 0s
outputs:
  - plugin: kafka
    brokers: $BOOTSTRAP
    queue_max_messages: 4
    rdkafka:
      reconnect.backoff.max.ms: "500"
YAML
# write_lines FROM TO: numbered lines of about 150 bytes.
write_lines() {
    awk -v a="$1" -v b="$2" 'BEGIN { for (i = a; i <= b; i++)
        printf "line %d %0130d\n", i, i }' >>"$T/logs/app.log"
}
episodes() { grep -c 'level=error.*module=spool.*No space left on device' "$T/pipitd.log"; }
# disk_entries: "entries bytes" of the segment files, read header by header.
disk_entries() {
    local n bytes
    n=$(spool_walk "$S/spool" | wc -l)
    bytes=$(cat "$S"/spool/*.seg 2>/dev/null | wc -c)
    echo "$n $bytes"
}
# The mock cluster keeps only the last 5 MiB of a partition (it drops the
# oldest messages beyond that): a consumer runs while the brokers are up,
# into a file per phase, each from where the last one ended (the topic has
# one partition), and each phase sends less than 5 MiB. A record here is
# about 314 bytes: phase 1 sends its 12000 lines once; phase 2 sends the
# spooled batches (about 6200 records, 2 MiB of disk) again after the
# SIGKILL plus its 8000 lines, re-read because the tail checkpoint could not
# be written on the full disk: about 4.5 MB. An offset the cluster no
# longer holds is an error, never a silent jump to the end.
# consumer_start N OFFSET / consumer_stop / next_offset
consumer_start() {
    kcat -C -u -q -b "$BOOTSTRAP" -t pipit.logs -o "$2" -f '%s' \
        -X auto.offset.reset=error >"$T/topic$1.bin" \
        2>>"$T/kcat.err" &
    KC_PID=$!
}
consumer_stop() { kill -TERM "$KC_PID"; wait "$KC_PID"; KC_PID=; }
next_offset() {
    local last
    last=$(kcat -C -q -b "$BOOTSTRAP" -t pipit.logs -o -1 -e -f '%o\n' 2>>"$T/kcat.err" | tail -n 1)
    echo $((last + 1))
}
# delivered: distinct line numbers the consumers saw.
delivered() {
    for f in "$T"/topic*.bin; do "$PIPIT" decode "$f" 2>>"$T/decode.err"; done |
        sed -n 's/.*"message":"line \([0-9]*\) .*/\1/p' | sort -u | wc -l
}
all_delivered() { [ "$(delivered)" -ge "$1" ]; }

write_lines 1 12000                     # 3.7 MB as records, more than the disk holds
start_pipitd "$T/p.yaml"
wait_for 30 eval '[ "$(episodes)" -ge 1 ]'
ok $? "the spool fills the disk: ENOSPC is logged" || show_log
sleep 4                                 # retried every second meanwhile
kill -0 "$PIPITD_PID"
ok $? "pipitd keeps running on the full disk"
line=$(grep 'level=error.*module=spool.*No space left on device' "$T/pipitd.log")
[ "$(episodes)" = 1 ] && case $line in *"$S/spool"*"policy block"*) true ;; *) false ;; esac
ok $? "logged once for the episode, with the path and the policy: ${line#*msg=}"
wait_for 10 serving
scrape
errors=$(value pipit_spool_write_errors_total) appended=$(value pipit_spool_appended_total)
bytes=$(value pipit_spool_bytes)
[ -n "$errors" ] && [ "$errors" -ge 3 ]
ok $? "every failed write is counted in /metrics ($errors)"
set -- $(disk_entries)
diag "$appended batches accepted, $1 entries and $2 bytes on disk, /metrics says $bytes bytes"
[ "$1" = "$appended" ] && [ "$2" = "$bytes" ] && [ "$appended" -gt 10 ]
ok $? "the entries on disk are exactly the batches accepted, with no partial entry"

broker_cmd up all
consumer_start 1 beginning
wait_for 60 all_delivered 12000
ok $? "brokers up: delivery resumes and every line arrives ($(delivered) of 12000)" || show_log
wait_for 10 log_has "writes succeed again and there is room"
ok $? "the end of the episode is logged"

# Again, but SIGKILL on the full disk and a restart on it.
consumer_stop
from=$(next_offset)
broker_cmd down all
write_lines 12001 20000                 # 2.5 MB as records: the disk fills again
wait_for 30 eval '[ "$(episodes)" -ge 2 ]'
ok $? "a second episode is logged once more ($(episodes) in all)"
sleep 2
kill -KILL "$PIPITD_PID"; wait "$PIPITD_PID" 2>/dev/null; PIPITD_PID=
mv "$T/pipitd.log" "$T/first.log"
df -k "$S" | sed 's/^/# /'
start_pipitd "$T/p.yaml"
wait_for 20 log_has 'msg="running '
ok $? "pipitd starts again on the full disk" || show_log
sleep 2
kill -0 "$PIPITD_PID"
ok $? "and keeps running"
broker_cmd up all
consumer_start 2 "$from"
wait_for 60 all_delivered 20000
ok $? "after the SIGKILL and restart every line arrives ($(delivered) of 20000)" || {
    show_log
    diag "consumer 2 started at offset $from, the next is $(next_offset); kcat: $(tail -3 "$T/kcat.err")"
}
stop_pipitd
ok $PIPITD_STATUS "pipitd exited 0"
lost=$(log_value lost "pipeline totals")
[ "${lost:-0}" = 0 ]
ok $? "nothing counted lost (lost=${lost:-?})"
done_testing
