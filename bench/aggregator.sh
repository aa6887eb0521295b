#!/bin/bash
# bench/aggregator.sh: the aggregator's stages apart: decode + verify + parse + re-encode, then the SQLite and PostgreSQL sinks.
. "$top_srcdir/bench/lib.sh"
bench_tmp
RECORDS=${DECODE_RECORDS:-1000000}

for codec in zlib zstd; do
    echo "### aggregator decode, $codec (bench/decodebench $RECORDS 1000 $codec)"
    echo
    for run in $(seq "$RUNS"); do
        echo "run $run:"
        echo
        "$top_builddir/bench/decodebench" "$RECORDS" 1000 "$codec" | tail -n +3
        echo
    done
done

echo "### sinks (tests/plugins/test_out_sqlite --bench: 100 000 records, 100 series)"
echo
for run in $(seq "$RUNS"); do
    echo "run $run, SQLite:"
    PIPIT_PLUGIN_DIR="$PLUGINS" "$top_builddir/tests/plugins/test_out_sqlite" --bench 2>&1 |
        grep -v '^ok\|^1\.\.' | sed 's/^# //'
    echo
done
chmod 0711 "$B"                        # the server runs as postgres when we are root
if sh "$top_srcdir/tests/pg/pg_start.sh" "$B/pg" >"$B/pg.log" 2>&1; then
    for run in $(seq "$RUNS"); do
        echo "run $run, PostgreSQL:"
        PIPIT_PLUGIN_DIR="$PLUGINS" "$top_builddir/tests/plugins/test_out_sqlite" --bench \
            --conninfo "$(cat "$B/pg/conninfo")" 2>&1 | grep -v '^ok\|^1\.\.' | sed 's/^# //'
        echo
    done
    sh "$top_srcdir/tests/pg/pg_stop.sh" "$B/pg" >/dev/null 2>&1 || true
else
    echo "PostgreSQL did not start (tests/pg/pg_start.sh: $(tail -n 1 "$B/pg.log")); skipped"
fi
