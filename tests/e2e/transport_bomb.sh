#!/bin/sh
# transport_bomb.sh: decompression bombs and lying headers over Kafka are dead-lettered at the cap
# with bounded memory and counted in the store; the good batches around them are stored once.
#
# An agent produces signed batches while kcat produces, between them, signed batches made by
# wire_sample --bombs (correct header, CRC and HMAC; only decompression can refuse them) to an
# aggregator (in_kafka, max_batch_bytes = 64 MiB, the default, into SQLite):
#   bomb_small  < 1 KiB, declares 4 KiB, inflates to 768 KiB      -> decompress   (sent 3 times)
#   bomb_huge   < 1 KiB, declares 4 GiB - 1 (a lie)               -> too_large    (sent 2 times)
#   bomb_over   declares 64 MiB + 1 (honest, over the cap)        -> too_large    (sent 1 time)
#   bomb_cap    declares exactly 64 MiB, inflates to 65 MiB       -> decompress   (sent 2 times)
# Pass criteria:
#   - pipit.deadletter holds each bomb with its reason: decompress 5, too_large 3, nothing else;
#   - the aggregator is running after every phase and stops cleanly;
#   - its VmHWM grows by under 8 MiB over the small, huge and over bombs (nothing is allocated
#     for them beyond 4 KiB), and stays under twice the cap (128 MiB) after the cap bombs, which
#     fill one 64 MiB buffer. An AddressSanitizer build keeps freed memory in quarantine and adds
#     shadow memory, so there the growth is held under half the cap over the small bombs and
#     under twice the cap over the cap bombs instead of the absolute bounds;
#   - the store holds the counter kafka.dead_letters with latest value 5 for reason=decompress
#     and 3 for reason=too_large, and no other reason;
#   - every batch the agent spooled is in the store exactly once with all its records.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
. "$top_srcdir/tests/kafka/broker.sh"
. "$top_srcdir/tests/e2e/transport.sh"
setup_transport
plan 17

CAP=$((64 << 20))
KEY="fleet-key-$$-0123456789abcdef"
start_broker
ok $? "mock broker on $BOOTSTRAP"
mkdir -p "$T/bombs"
"$top_builddir/tests/e2e/wire_sample" --bombs "$T/bombs" "$KEY" "$CAP"
ok $? "wire_sample wrote the bombs: $(awk '{ printf "%s %s B; ", $1, $2 }' "$T/bombs/bombs.txt")"
[ "$(awk '$1 == "bomb_small" || $1 == "bomb_huge" { print $2 }' "$T/bombs/bombs.txt" |
     awk '$1 < 1024' | wc -l)" -eq 2 ]
ok $? "bomb_small and bomb_huge are under 1 KiB"

AGENT_INTERVAL=100ms
write_signed_configs "$KEY" "    max_batch_bytes: 64MiB"

start_daemon aggregator "$T/aggregator.yaml"
start_daemon agent "$T/agent.yaml"
has_stored() { [ -s "$SINK_DB" ] && [ "$(stored_records)" -gt 0 ] 2>/dev/null; }
wait_for 60 has_stored
ok $? "the aggregator stores the agent's batches"

hwm() { sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$aggregator_PID/status" 2>/dev/null; }
alive() { [ -n "$aggregator_PID" ] && kill -0 "$aggregator_PID" 2>/dev/null; }
dead_letters() { count_messages pipit.deadletter; }
# produce FILE...: each file as one message, the agent's batches keep coming in between.
produce() {
    for f in "$@"; do
        kcat -P -b "$BOOTSTRAP" -t pipit.metrics -k bomb "$T/bombs/$f.bin" 2>>"$T/kcat.err" ||
            return 1
        sleep 0.2
    done
}
has_dead_letters() { [ "$(dead_letters)" -ge "$1" ]; }

hwm0=$(hwm)
produce bomb_small bomb_huge bomb_small bomb_over bomb_huge bomb_small
ok $? "six small, huge and over bombs produced with kcat between the agent's batches" ||
    sed 's/^/#   /' "$T/kcat.err"
wait_for 60 has_dead_letters 6
ok $? "six messages reached pipit.deadletter ($(dead_letters))"
hwm1=$(hwm)
alive
ok $? "the aggregator is running"
if grep -qa __asan_init "$PIPITD"; then
    [ -n "$hwm0" ] && [ -n "$hwm1" ] && [ $((hwm1 - hwm0)) -lt $((CAP >> 11)) ]
    ok $? "AddressSanitizer build (freed memory is held in quarantine): VmHWM grew by under half the cap over them ($hwm0 kB -> $hwm1 kB)"
else
    [ -n "$hwm0" ] && [ -n "$hwm1" ] && [ $((hwm1 - hwm0)) -lt 8192 ]
    ok $? "its VmHWM grew by under 8 MiB over them ($hwm0 kB -> $hwm1 kB)"
fi

produce bomb_cap bomb_cap
ok $? "two cap bombs produced" || sed 's/^/#   /' "$T/kcat.err"
wait_for 60 has_dead_letters 8
ok $? "eight messages reached pipit.deadletter ($(dead_letters))"
hwm2=$(hwm)
alive
ok $? "the aggregator is running"
diag "VmHWM: $hwm0 kB before the bombs, $hwm1 kB after the small ones, $hwm2 kB after the cap bombs (cap $((CAP >> 10)) kB)"
if grep -qa __asan_init "$PIPITD"; then
    [ -n "$hwm2" ] && [ $((hwm2 - hwm1)) -lt $((2 * CAP >> 10)) ]
    ok $? "AddressSanitizer build (shadow memory): VmHWM grew by under twice the cap over the cap bombs ($((hwm2 - hwm1)) kB)"
else
    [ -n "$hwm2" ] && [ "$hwm2" -lt $((2 * CAP >> 10)) ]
    ok $? "its VmHWM stayed under twice the cap ($hwm2 kB < $((2 * CAP >> 10)) kB)"
fi

consume pipit.deadletter '%h\n' | sed 's/.*pipit-reason=\([a-z_]*\).*/\1/' | sort | uniq -c |
    awk '{ print $2, $1 }' >"$T/reasons"
printf 'decompress 5\ntoo_large 3\n' >"$T/want-reasons"
cmp -s "$T/want-reasons" "$T/reasons"
ok $? "dead letters per reason: $(tr '\n' ' ' <"$T/reasons")" || sed 's/^/#   /' "$T/reasons"

stop_daemon agent
[ "$DAEMON_STATUS" -eq 0 ] && wait_for 60 store_complete
ok $? "the agent stopped cleanly and every batch it spooled is stored with all its records" ||
    diff_batches
[ "$(stored_records)" = "$(spooled_records)" ] &&
    [ "$(sql "SELECT count(*) FROM batches WHERE agent_id = '$(the_agent_id)'")" = \
      "$(spooled_batches | wc -l)" ]
ok $? "exactly once: $(spooled_records) records of $(spooled_batches | wc -l) batches spooled and stored"

counters() {
    # cumulative: the largest sample of a series is its latest
    sql "SELECT json_extract(s.labels, '\$.reason'), max(p.value) FROM series s
           JOIN samples p ON p.series_id = s.id WHERE s.name = 'kafka.dead_letters'
         GROUP BY s.id ORDER BY 1" | awk -F'|' '{ printf "%s %d\n", $1, $2 }' >"$T/counters"
    cmp -s "$T/want-reasons" "$T/counters"
}
wait_for 30 counters
ok $? "the store holds kafka.dead_letters per reason: $(tr '\n' ' ' <"$T/counters")" ||
    sed 's/^/#   /' "$T/counters"
stop_daemon aggregator
[ "$DAEMON_STATUS" -eq 0 ] && grep -q "deadletters=8 " "$T/aggregator.log"
ok $? "the aggregator stopped cleanly and counted eight dead letters" ||
    grep totals "$T/aggregator.log" | sed 's/^/#   /'
done_testing
