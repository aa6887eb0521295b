#!/bin/bash
# spool_damage.sh: pipitd started on a spool whose segments (and release state) were cut, bit-flipped, zero-filled, extended or deleted in hundreds of generated places.
#
# Pass criteria, for every case: pipitd starts, logs its spool line and exits
# 0 on SIGTERM (no crash, no sanitizer report, no hang: each run has a
# timeout); the batches it delivers are exactly those of the template whose
# bytes the damage left unchanged, each once; and the damaged batches it
# reports at start are exactly the batches the damage took (the template was
# closed cleanly, so its saved release state tells what each segment held:
# every damaged or cut-off entry counts, and every entry of a deleted
# segment), with the damaged segment named in the log. PIPIT_LONG=1 (make
# check-long) runs five times as many cases.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
. "$top_srcdir/tests/e2e/damage.sh"
setup_e2e
plan 7

SINK="$PIPIT_TEST_LIB/out_testsink.so"
scale=1
[ -n "$PIPIT_LONG" ] && scale=5
RANDOM=4242                             # fixed: every run damages the same places

config() { # config FILE COUNT INTERVAL [REFUSE]
    cat >"$1" <<YAML
agent:
  state_dir: $T/state
  jitter: 0s
  log_level: debug
  shutdown_timeout: 1s
batch:
  linger_ms: 20
wire:
  compression: none
spool:
  segment_bytes: 64KiB
  fsync: false
inputs:
  - plugin: $TESTSRC
    count: $2
    interval: $3
outputs:
  - plugin: $SINK
    path: $T/out.txt
${4:+    refuse_while: $4}
YAML
}

# The template: about 40 batches of 6.6 KB in five or more segments, none
# delivered (the output refuses them), closed cleanly.
config "$T/fill.yaml" 40 30ms "$T/refuse"
config "$T/drain.yaml" 0 1h
touch "$T/refuse"
start_pipitd "$T/fill.yaml"
spooled() { [ "$(grep -c 'msg="spooled batch' "$T/pipitd.log")" -ge 40 ]; }
wait_for 20 spooled
stop_pipitd
mv "$T/state" "$T/tmpl"
S="$T/tmpl/spool"
# The entries: file, offset, size, id, seq; one line each, in id order.
spool_walk "$S" >"$T/entries"
segs=( $(cd "$S" && ls *.seg) )
nent=$(wc -l <"$T/entries")
[ "$PIPITD_STATUS" = 0 ] && [ "$nent" -ge 30 ] && [ "${#segs[@]}" -ge 4 ] && [ -f "$S/released" ]
ok $? "a template spool of $nent undelivered batches in ${#segs[@]} segments" || show_log

cases=0 crashed= wrong_set= wrong_count= unnamed=
# run_case DESCRIPTION FILE: the work copy (in $T/state) has FILE damaged or
# deleted; work out what must come back, start pipitd, compare.
run_case() {
    local what=$1 file=$2 len=-1 st n
    cases=$((cases + 1))
    [ -f "$T/state/spool/$file" ] && len=$(stat -c %s "$T/state/spool/$file")
    # The offsets whose bytes changed (within the shorter of the two).
    if [ "$len" -ge 0 ]; then
        cmp -l "$S/$file" "$T/state/spool/$file" 2>/dev/null | awk '{ print $1 - 1 }'
    fi >"$T/changed"
    # Expected: the seqs of the untouched entries, and the damaged ones counted.
    awk -v f="$file" -v len="$len" '
        FILENAME == ARGV[1] { ch[n++] = $1; next }
        $1 != f || f == "released" { print "seq", $5; next }
        len < 0 { lost++; next }                  # deleted: all its entries
        {
            off = $2; end = $2 + $3; hit = end > len
            for (i = 0; i < n && !hit; i++) hit = ch[i] >= off && ch[i] < end
            if (hit) lost++; else print "seq", $5
        }
        END { print "lost", lost + 0 }' "$T/changed" "$T/entries" >"$T/expect"
    sed -n 's/^seq //p' "$T/expect" | sort -n >"$T/want"
    local want_lost=$(sed -n 's/^lost //p' "$T/expect")

    rm -f "$T/out.txt" "$T/pipitd.log"     # a log of the last run is not this one's
    "$PIPITD" -c "$T/drain.yaml" --plugin-dir "$PIPIT_PLUGIN_DIR" >"$T/pipitd.out" \
        2>"$T/pipitd.log" &
    PIPITD_PID=$!
    unsent() { sed -n 's/.*msg="spool .*: \([0-9]*\) batches unsent.*/\1/p' "$T/pipitd.log"; }
    soon grep -qs 'msg="running ' "$T/pipitd.log"    # started, signals handled
    n=$(unsent)
    delivered() { [ "$(grep -c '^#batch' "$T/out.txt" 2>/dev/null)" = "$n" ]; }
    [ -n "$n" ] && soon delivered
    stop_pipitd
    st=$PIPITD_STATUS
    if [ "$st" != 0 ] || [ -z "$n" ]; then
        crashed="$crashed [$what: exit $st]"
        [ "${#crashed}" -lt 400 ] && { diag "$what:"; sed 's/^/#   /' "$T/pipitd.log" | tail -5; }
    fi
    sed -n 's/^#batch seq=\([0-9]*\) .*/\1/p' "$T/out.txt" 2>/dev/null | sort -n >"$T/got"
    cmp -s "$T/want" "$T/got" ||
        wrong_set="$wrong_set [$what: $(wc -l <"$T/got") of $(wc -l <"$T/want")]"
    local got_lost=$(sed -n 's/.*batches unsent, [0-9]* bytes, \([0-9]*\) damaged.*/\1/p' \
                     "$T/pipitd.log")
    [ "$got_lost" = "$want_lost" ] ||
        wrong_count="$wrong_count [$what: counted ${got_lost:-?}, want $want_lost]"
    if [ "$want_lost" -gt 0 ] && ! grep -q "spool/$file: skipped $want_lost damaged" \
                                      "$T/pipitd.log"; then
        unnamed="$unnamed [$what]"
    fi
}
restore() { restore_copy "$T/tmpl" "$T/state"; }
W="$T/state/spool"

# Truncation: at, around and inside every header of a middle and of the
# newest segment, and at random offsets of any.
mid=${segs[1]} new=${segs[${#segs[@]} - 1]}
for f in "$mid" "$new"; do
    while read -r file off size id seq; do
        [ "$file" = "$f" ] || continue
        for t in $off $((off + 1)) $((off + 20)) $((off + 39)) $((off + 40)) \
                 $((off + 41 + RANDOM % (size - 41))); do
            [ $((RANDOM % 2)) = 0 ] || [ "$scale" -gt 1 ] || [ "$t" -eq "$off" ] || continue
            restore; truncate -s "$t" "$W/$f"; run_case "$f cut at $t" "$f"
        done
    done <"$T/entries"
done
for ((c = 0; c < 15 * scale; c++)); do
    f=${segs[RANDOM % ${#segs[@]}]}; t=$(( (RANDOM * 32768 + RANDOM) % $(stat -c %s "$S/$f") ))
    restore; truncate -s "$t" "$W/$f"; run_case "$f cut at $t" "$f"
done
# Single bit flips: in headers (magic, CRCs, lengths, ids) and in data.
for ((c = 0; c < 90 * scale; c++)); do
    f=${segs[RANDOM % ${#segs[@]}]}; size=$(stat -c %s "$S/$f")
    if [ $((c % 2)) = 0 ]; then         # inside some entry's header
        line=$(awk -v f="$f" '$1 == f' "$T/entries" | shuf -n 1 --random-source=<(yes $c))
        set -- $line
        off=$(( $2 + RANDOM % 40 ))
    else
        off=$(( (RANDOM * 32768 + RANDOM) % size ))
    fi
    bit=$((RANDOM % 8))
    restore; flip "$W/$f" "$off" "$bit"; run_case "$f bit $bit of byte $off" "$f"
done
# Zero-filled ranges: a few bytes to several entries.
for ((c = 0; c < 45 * scale; c++)); do
    f=${segs[RANDOM % ${#segs[@]}]}; size=$(stat -c %s "$S/$f")
    off=$(( (RANDOM * 32768 + RANDOM) % size ))
    n=$(( 1 + RANDOM % (c % 3 == 0 ? 20000 : 64) ))
    restore
    dd if=/dev/zero of="$W/$f" bs=1 seek="$off" count="$n" conv=notrunc status=none
    truncate -s "$size" "$W/$f"        # a range past the end does not grow the file
    run_case "$f $n bytes zeroed at $off" "$f"
done
# Bytes after the last entry: a copy of another part of the file (sometimes
# a whole header), as a torn or misplaced write leaves.
for ((c = 0; c < 10 * scale; c++)); do
    f=${segs[RANDOM % ${#segs[@]}]}
    line=$(awk -v f="$f" '$1 == f' "$T/entries" | shuf -n 1 --random-source=<(yes $c))
    set -- $line
    n=$(( 1 + RANDOM % 200 ))
    restore; dd if="$S/$f" bs=1 skip="$2" count="$n" status=none >>"$W/$f"
    run_case "$f + $n bytes from offset $2" "$f"
done
# Deleted segment files, each one.
for f in "${segs[@]}"; do
    restore; rm "$W/$f"; run_case "$f deleted" "$f"
done
# The release state: damaged, cut, emptied, deleted (nothing was released:
# every batch still comes back, nothing counted).
rsize=$(stat -c %s "$S/released")
for ((c = 0; c < 8 * scale; c++)); do
    off=$((RANDOM % rsize)); bit=$((RANDOM % 8))
    restore; flip "$W/released" "$off" "$bit"; run_case "released bit $bit of byte $off" released
done
restore; truncate -s 10 "$W/released"; run_case "released cut at 10" released
restore; : >"$W/released"; run_case "released emptied" released
restore; rm "$W/released"; run_case "released deleted" released

diag "$cases damaged spools tried"
[ "$cases" -ge $((160 * scale)) ]
ok $? "hundreds of damaged spools were tried ($cases)"
[ -z "$crashed" ]
ok $? "pipitd started, delivered and exited 0 every time${crashed:+:$crashed}"
[ -z "$wrong_set" ]
ok $? "every batch the damage left intact was delivered, once, and no damaged one${wrong_set:+:$wrong_set}"
[ -z "$wrong_count" ]
ok $? "the damaged batches counted at start are exactly those the damage took${wrong_count:+:$wrong_count}"
[ -z "$unnamed" ]
ok $? "each damaged segment is named in the log with its count${unnamed:+:$unnamed}"
# The undamaged template, last: everything, nothing counted.
restore; run_case "none" none.seg
[ -z "$crashed$wrong_set$wrong_count" ] && [ "$(wc -l <"$T/got")" = "$nent" ]
ok $? "the undamaged template delivers all $nent batches"
done_testing
