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

# A checkpoint before each run, so that no run pays for the previous one's
# WAL; the order of the two builds alternates from run to run.
checkpoint() {
    "$(cat "$B/pg/bindir")/psql" -q -X -d "$(cat "$B/pg/conninfo")" -c CHECKPOINT >/dev/null
}
for run in $(seq "$N"); do
    if [ $((run % 2)) -eq 1 ]; then
        checkpoint; one "$B/old.$run" "$OLD"
        checkpoint; one "$B/new.$run" "$PLUGINS"
    else
        checkpoint; one "$B/new.$run" "$PLUGINS"
        checkpoint; one "$B/old.$run" "$OLD"
    fi
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
# Per stage, the median over the runs of the seconds per 100 000 records
# (the "stored" pass of the default round), from the plugin's time per stage.
for f in "$B"/old.?.log "$B"/new.?.log; do
    b=$(basename "$f"); b=${b%%.*}
    awk -v b="$b" '
        /^# default options/ { round = 1 }
        /^# synchronous_commit=off/ { round = 0 }
        /records\/s stored/ { shape = $9 " " $4; sub(/:/, "", shape) }
        /time per stage/ { stored = ($2 == "stored,") }
        /^#     / && round && stored { name = ""
            for (i = 2; i < NF - 2; i++) name = name (name ? " " : "") $i
            print b "|" shape "|" name "|" $(NF - 2) }' "$f"
done >"$B/stages"
echo "| batch, stage (s per 100 000 records, median) | before | after |"
echo "|---|---:|---:|"
for shape in "1000 metric" "10000 metric" "1000 log" "100 metric"; do
    awk -F'|' -v s="$shape" '$2 == s { print $2 "|" $3 }' "$B/stages" | awk '!seen[$0]++'
done | while IFS='|' read -r shape name; do
    med() {
        awk -F'|' -v b="$1" -v s="$shape" -v n="$name" '$1 == b && $2 == s && $3 == n { print $4 }' \
            "$B/stages" | sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "—" }'
    }
    echo "| $shape: $name | $(med old) | $(med new) |"
done
