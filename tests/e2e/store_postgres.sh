#!/bin/sh
# store_postgres.sh: out_postgres against a private PostgreSQL server, with the checks of test_out_sqlite.
# Skipped (TAP "1..0 # SKIP") when the plugin was not built or no server can be run here.
. "$top_srcdir/tests/lib.sh"
tmpdir

if [ ! -f "$PIPIT_PLUGIN_DIR/out_postgres.so" ]; then
    echo "1..0 # SKIP out_postgres not built (configure found no libpq, or --without-postgresql)"
    exit 0
fi
chmod 711 "$T"                          # the server's user must reach $T/pg
pg="$T/pg"
"$top_srcdir/tests/pg/pg_start.sh" "$pg" >"$T/start.out" 2>&1
status=$?
if [ $status -eq 2 ]; then
    echo "1..0 # SKIP $(tail -n 1 "$T/start.out")"
    exit 0
fi
trap '"$top_srcdir/tests/pg/pg_stop.sh" "$pg"; rm -rf "$T"' EXIT
if [ $status -ne 0 ]; then
    echo "Bail out! PostgreSQL did not start: $(tail -n 5 "$T/start.out" | tr '\n' ' ')"
    exit 1
fi
"$top_builddir/tests/plugins/test_out_sqlite" --conninfo "$(cat "$pg/conninfo")"
