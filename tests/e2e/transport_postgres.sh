#!/bin/sh
# transport_postgres.sh: agent -> Kafka -> aggregator -> PostgreSQL (a real server in a temp dir):
# every spooled batch stored once, through a restart of the aggregator.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
. "$top_srcdir/tests/kafka/broker.sh"
. "$top_srcdir/tests/e2e/transport.sh"
if [ ! -f "$PIPIT_PLUGIN_DIR/out_postgres.so" ]; then
    echo "1..0 # SKIP out_postgres not built (configure found no libpq, or --without-postgresql)"
    exit 0
fi
setup_transport
chmod 711 "$T"                          # the server's user must reach $T/pg
"$top_srcdir/tests/pg/pg_start.sh" "$T/pg" >"$T/pg.out" 2>&1
case $? in
0) ;;
2) echo "1..0 # SKIP $(tail -n 1 "$T/pg.out")"; exit 0 ;;
*) echo "Bail out! PostgreSQL did not start: $(tail -n 5 "$T/pg.out" | tr '\n' ' ')"; exit 1 ;;
esac
pg_cleanup() { "$top_srcdir/tests/pg/pg_stop.sh" "$T/pg" >/dev/null 2>&1; cleanup_transport; }
trap pg_cleanup EXIT
CONNINFO=$(cat "$T/pg/conninfo")
# Queries of transport.sh, answered by PostgreSQL instead of SQLite.
sql() { psql "$CONNINFO" -X -A -t -q -c "$1" 2>/dev/null; }
store_complete() {
    spooled_batches >"$T/want"
    stored_batches | tr '|' ' ' >"$T/have"
    [ -s "$T/want" ] && cmp -s "$T/want" "$T/have"
}
plan 7

start_broker
ok $? "mock broker on $BOOTSTRAP, PostgreSQL on $(sed 's/.*host=\([^ ]*\).*/\1/' "$T/pg/conninfo")"
write_agent_config "$T/agent.yaml"
write_aggregator_config "$T/aggregator.yaml" "  - plugin: postgres
    conninfo: \${PG_CONNINFO}"
export PG_CONNINFO="$CONNINFO"
start_daemon agent "$T/agent.yaml"
start_daemon aggregator "$T/aggregator.yaml"
sleep 2
stop_daemon aggregator KILL
ok 0 "the aggregator was killed mid-stream"
start_daemon aggregator "$T/aggregator.yaml"
sleep 1.5
stop_daemon agent
ok $DAEMON_STATUS "the agent stopped cleanly"
wait_for 60 store_complete
ok $? "every spooled batch is in PostgreSQL with all its records" || diff_batches
[ "$(stored_records)" = "$(spooled_records)" ]
ok $? "PostgreSQL holds exactly the $(spooled_records) records spooled, none twice"
stop_daemon aggregator
ok $DAEMON_STATUS "the aggregator stopped cleanly"
! grep -q "$CONNINFO" "$T/aggregator.log"
ok $? "the connection string never appears in the log"
done_testing
