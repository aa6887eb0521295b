#!/bin/sh
# transport_deadletter.sh: damaged, truncated, unsigned and wrongly signed messages go to the
# dead-letter topic with their reason; the good batches around them are stored.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
. "$top_srcdir/tests/kafka/broker.sh"
. "$top_srcdir/tests/e2e/transport.sh"
setup_transport
plan 12

KEY="fleet-key-$$-0123456789abcdef"
start_broker
ok $? "mock broker on $BOOTSTRAP"
write_signed_configs "$KEY"

start_daemon agent "$T/agent.yaml"
sleep 1.5
# Bad messages, made with kcat, between the agent's good ones.
consume pipit.metrics '%s' >/dev/null        # the topic exists and has data
kcat -C -q -b "$BOOTSTRAP" -t pipit.metrics -o beginning -c 1 -f '%s' >"$T/good.bin"
[ -s "$T/good.bin" ]
ok $? "a good signed batch was taken from the topic ($(wc -c <"$T/good.bin") bytes)"
head -c 40 "$T/good.bin" >"$T/truncated.bin"
cp "$T/good.bin" "$T/flipped.bin"
printf 'Z' | dd of="$T/flipped.bin" bs=1 seek=80 conv=notrunc 2>/dev/null
cmp -s "$T/good.bin" "$T/flipped.bin" &&
    printf 'Y' | dd of="$T/flipped.bin" bs=1 seek=80 conv=notrunc 2>/dev/null
printf 'not a pipit batch\n' >"$T/garbage.bin"
mkdir -p "$T/samples"                               # unsigned, and signed with another key
"$top_builddir/tests/e2e/wire_sample" "$T/samples"
produced=0
for f in "$T/truncated.bin" "$T/flipped.bin" "$T/garbage.bin" \
         "$T/samples/unsigned.bin" "$T/samples/signed.bin" "$T/good.bin"; do
    kcat -P -b "$BOOTSTRAP" -t pipit.metrics -k bad "$f" 2>>"$T/kcat.err" &&
        produced=$((produced + 1))
done
[ "$produced" -eq 6 ]
ok $? "five bad messages and a second copy of a good one produced with kcat" || sed 's/^/#   /' "$T/kcat.err"
sleep 1.5
stop_daemon agent
ok $DAEMON_STATUS "the agent stopped cleanly"

start_daemon aggregator "$T/aggregator.yaml"
wait_for 60 store_complete
ok $? "every good batch of the agent is stored with all its records" || diff_batches
[ "$(stored_records)" = "$(spooled_records)" ]
ok $? "exactly the $(spooled_records) records spooled are stored"
has_dead_letters() { [ "$(count_messages pipit.deadletter)" -ge 5 ]; }
wait_for 30 has_dead_letters
ok $? "five messages reached pipit.deadletter"
consume pipit.deadletter '%h\n' | sed 's/.*pipit-reason=\([a-z_]*\).*/\1/' | sort >"$T/reasons"
printf 'bad_magic\nbad_signature\nchecksum\ntruncated\nunsigned\n' >"$T/want"
cmp -s "$T/want" "$T/reasons"
ok $? "each with its reason: $(tr '\n' ' ' <"$T/reasons")" || sed 's/^/#   /' "$T/reasons"
consume pipit.deadletter '%h\n' | grep -q 'pipit-source=pipit.metrics/'
ok $? "and the topic/partition/offset it came from"
stop_daemon aggregator
ok $DAEMON_STATUS "the aggregator stopped cleanly"
grep -q "deadletters=5" "$T/aggregator.log"
ok $? "the aggregator counted five dead letters" || grep totals "$T/aggregator.log" | sed 's/^/#   /'
grep -q "duplicates=1 " "$T/aggregator.log"
ok $? "and one duplicate batch, skipped (the store above holds it once)"
done_testing
