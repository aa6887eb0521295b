#!/bin/sh
# transport_e2e.sh: agent -> Kafka -> aggregator -> SQLite: every spooled batch stored once, same content.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
. "$top_srcdir/tests/kafka/broker.sh"
. "$top_srcdir/tests/e2e/transport.sh"
setup_transport
plan 8

start_broker
ok $? "mock broker on $BOOTSTRAP"
run_agent_copying 3
ok $DAEMON_STATUS "the agent stopped cleanly after delivering"
n=$(spooled_records)
diag "the agent spooled $(spooled_batches | wc -l) batches, $n records"
[ "$n" -gt 100 ]
ok $? "the agent produced records"

wait_for 60 store_complete
ok $? "every spooled batch is in the store with all its records" || diff_batches
[ "$(stored_records)" = "$n" ]
ok $? "the store holds exactly the $n records the agent spooled"

# Content: the agent's own copy (file output) and the store agree record for record.
# (times quoted first: jq before 1.7 rounds integers above 2^53)
sed 's/"time":\([0-9]*\)/"time":"\1"/' "$T/agent-records.jsonl" |
    jq -r '[.time, .instance, .name, (.value|floor), (.labels|tojson)] | @tsv' |
    sort >"$T/sent.tsv"
sql "SELECT s.time, r.instance, r.name, CAST(s.value AS INTEGER), r.labels
     FROM samples s JOIN series r ON r.id = s.series_id
     WHERE s.agent_id = '$(the_agent_id)'" | tr '|' '\t' | sort >"$T/stored.tsv"
cmp -s "$T/sent.tsv" "$T/stored.tsv"
ok $? "stored content equals what the agent emitted (digest $(sha256sum <"$T/stored.tsv" | cut -c1-16))" ||
    diff "$T/sent.tsv" "$T/stored.tsv" | head -5 | sed 's/^/#   /'
[ "$(sql "SELECT host FROM agents WHERE agent_id = '$(the_agent_id)'")" = "$(hostname)" ] &&
    [ "$(sql "SELECT gaps FROM agents WHERE agent_id = '$(the_agent_id)'")" = 0 ]
ok $? "the agents table knows the agent, with no sequence gap"
stop_daemon aggregator
ok $DAEMON_STATUS "the aggregator stopped cleanly"
done_testing
