#!/bin/bash
# bench/pg_sink.sh: out_postgres of two builds side by side, runs alternated, min and median records/s per batch shape.
# Usage: top_srcdir=SRC top_builddir=NEW bench/pg_sink.sh OLD_PLUGIN_DIR [RUNS]
# Both plugins are driven by NEW's tests/plugins/test_out_sqlite --bench on one
# PostgreSQL server (tests/pg/pg_start.sh), so that only the plugin differs.
. "$top_srcdir/bench/lib.sh"
OLD=${1:?usage: pg_sink.sh OLD_PLUGIN_DIR [RUNS]}
N=${2:-3}
bench_tmp
chmod 0711 "$B"                        # the server runs as postgres when we are root
if ! sh "$top_srcdir/tests/pg/pg_start.sh" "$B/pg" >"$B/pg.log" 2>&1; then
    echo "PostgreSQL did not start (tests/pg/pg_start.sh: $(tail -n 1 "$B/pg.log")); skipped"
    exit 0
fi
trap 'sh "$top_srcdir/tests/pg/pg_stop.sh" "$B/pg" >/dev/null 2>&1; rm -rf "$B"' EXIT

# One run of the bench with plugin dir $2, figures as "ROUND|SHAPE|stored|again" lines in $1.
one() {
    PIPIT_PLUGIN_DIR="$2" "$top_builddir/tests/plugins/test_out_sqlite" --bench \
        --conninfo "$(cat "$B/pg/conninfo")" 2>&1 | tee "$1.log" | awk '
        /^# default options/ { round = "default" }
        /^# synchronous_commit=off/ { round = "synchronous_commit=off" }
        /records\/s stored/ { shape = $9 " " $4; sub(/:/, "", shape)
                              split($0, a, ": "); split(a[3], s, " "); stored = s[1] }
        /the same again/ { split($0, a, ": "); split(a[2], d, " ")
                           print round "|" shape "|" stored "|" d[1] }' >"$1"
}

for run in $(seq "$N"); do
    one "$B/old.$run" "$OLD"
    one "$B/new.$run" "$PLUGINS"
done

# min and median of field $2 over the runs of build $1, for key $3
stat() {
    cat "$B/$1".? | awk -F'|' -v k="$3" -v f="$2" '$1 "|" $2 == k { print $f }' | sort -n |
        awk '{ v[NR] = $1 } END { printf "%d / %d", v[1], v[int((NR + 1) / 2)] }'
}

echo "| round | batch | before stored (min / median) | after stored | before, same again | after, same again |"
echo "|---|---|---:|---:|---:|---:|"
cut -d'|' -f1,2 "$B/new.1" | while read -r key; do
    echo "| ${key%%|*} | ${key#*|} | $(stat old 3 "$key") | $(stat new 3 "$key") |" \
         "$(stat old 4 "$key") | $(stat new 4 "$key") |"
done
echo
echo "time per stage, last run of each (records/s of each stage alone):"
for b in old new; do
    echo "$b:"
    grep -A7 'stored, time per stage' "$B/$b.$N.log" | sed 's/^# //'
done
