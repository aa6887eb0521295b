#!/bin/bash
# tail_checkpoint_damage.sh: pipitd started with its tail checkpoint file cut, bit-flipped, zero-filled, emptied or deleted in about a hundred generated places.
#
# Six files were read to their end and checkpointed; five lines were then
# added to each. The agent restarts with read_from: end. Pass criteria, for
# every case: pipitd starts and exits 0 on SIGTERM (no crash, no hang: each
# run has a timeout); a file whose checkpoint line the damage left intact
# delivers exactly its five new lines; when checkpoint entries were lost,
# every file without a valid one is read from its beginning (all 25 lines:
# duplicates, never loss), as docs/plugins/tail.md says; the warning names
# the checkpoint file and counts exactly the entries the damage touched
# (one when no line is left intact); a deleted file is no checkpoint at all
# (read_from applies, nothing counted). PIPIT_LONG=1 (make check-long) runs
# five times as many cases.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
. "$top_srcdir/tests/e2e/damage.sh"
setup_e2e
plan 7

scale=1
[ -n "$PIPIT_LONG" ] && scale=5
RANDOM=2718                             # fixed: every run damages the same places
mkdir -p "$T/logs"
config() { # config FILE READ_FROM
    cat >"$1" <<YAML
agent:
  state_dir: $T/state
  jitter: 0s
  log_level: debug
batch:
  linger_ms: 20
inputs:
  - plugin: tail
    path: ["$T/logs/*.log"]
    read_from: $2
    stats_interval: 0s
outputs:
  - plugin: file
    path: $T/out.jsonl
YAML
}
config "$T/first.yaml" beginning
config "$T/again.yaml" end
lines_of() { # lines_of K FROM TO
    local i
    for ((i = $2; i <= $3; i++)); do echo "f$1 line $i"; done
}
for k in 1 2 3 4 5 6; do lines_of $k 1 20 >"$T/logs/f$k.log"; done
records() { grep -c '"message":"f' "$T/out.jsonl" 2>/dev/null; }
start_pipitd "$T/first.yaml"
wait_for 20 eval '[ "$(records)" = 120 ]'
stop_pipitd
C="$T/state/plugins/tail/checkpoints"
# Each line of the checkpoint file: its byte range and the file it names.
awk 'BEGIN { start = 0 } { print start, start + length($0) + 1, $NF; start += length($0) + 1 }' \
    "$C" >"$T/ranges"
at_end=0
while read -r off path; do           # "C hash i n dev ino offset fp_len fp path"
    [ "$off" = "$(stat -c %s "$path")" ] && at_end=$((at_end + 1))
done < <(awk '{ print $7, $NF }' "$C")
[ "$PIPITD_STATUS" = 0 ] && [ "$at_end" = 6 ] && [ "$(wc -l <"$C")" = 6 ]
ok $? "six files read and checkpointed at their end" || { show_log; cat "$C"; }
for k in 1 2 3 4 5 6; do lines_of $k 21 25 >>"$T/logs/f$k.log"; done
mv "$T/state" "$T/tmpl"
TC="$T/tmpl/plugins/tail/checkpoints"

cases=0 crashed= wrong_set= wrong_count= unnamed=
# run_case DESCRIPTION: $C is damaged (or deleted); work out what must
# come back, start pipitd, compare.
run_case() {
    local what=$1 len=-1 want_lost n st
    cases=$((cases + 1))
    [ -f "$C" ] && len=$(stat -c %s "$C")
    if [ "$len" -ge 0 ]; then cmp -l "$TC" "$C" 2>/dev/null | awk '{ print $1 - 1 }'; fi \
        >"$T/changed"
    # A line is touched when a byte of it changed, its text runs past the
    # new end (a last line without its newline is whole), or the newline
    # before it changed (the two lines then run together).
    awk -v len="$len" '
        FILENAME == ARGV[1] { ch[$1] = 1; next }
        {
            a = $1; b = $2; hit = len >= 0 && (b - 1 > len || (a - 1) in ch)
            for (o = a; o < b && !hit; o++) hit = o in ch
            print (len < 0 ? "none" : hit ? "lost" : "kept"), $3
        }' "$T/changed" "$T/ranges" >"$T/status"
    local touched=$(grep -c '^lost' "$T/status") kept=$(grep -c '^kept' "$T/status")
    if [ "$len" -lt 0 ]; then want_lost=0
    elif [ "$kept" -gt 0 ]; then want_lost=$touched
    else want_lost=1
    fi
    for k in 1 2 3 4 5 6; do
        case $(grep " $T/logs/f$k.log\$" "$T/status" | cut -d' ' -f1) in
            kept) lines_of $k 21 25 ;;
            lost) lines_of $k 1 25 ;;
        esac
    done | sort >"$T/want"
    n=$(wc -l <"$T/want")

    rm -f "$T/out.jsonl" "$T/pipitd.log"
    "$PIPITD" -c "$T/again.yaml" --plugin-dir "$PIPIT_PLUGIN_DIR" >"$T/pipitd.out" \
        2>"$T/pipitd.log" &
    PIPITD_PID=$!
    soon grep -qs 'msg="running ' "$T/pipitd.log"
    soon eval '[ "$(records)" -ge '"$n"' ]'
    sleep 0.2                           # time for anything extra to show
    stop_pipitd
    st=$PIPITD_STATUS
    if [ "$st" != 0 ]; then
        crashed="$crashed [$what: exit $st]"
        [ "${#crashed}" -lt 400 ] && { diag "$what:"; tail -5 "$T/pipitd.log" | sed 's/^/#   /'; }
    fi
    sed -n 's/.*"message":"\(f[0-9] line [0-9]*\)".*/\1/p' "$T/out.jsonl" 2>/dev/null |
        sort >"$T/got"
    cmp -s "$T/want" "$T/got" ||
        wrong_set="$wrong_set [$what: $(wc -l <"$T/got") lines of $n]"
    local got_lost=$(sed -n 's/.*is damaged: \([0-9]*\) checkpoint entries lost.*/\1/p' \
                     "$T/pipitd.log")
    [ "${got_lost:-0}" = "$want_lost" ] ||
        wrong_count="$wrong_count [$what: counted ${got_lost:-0}, want $want_lost]"
    if [ "$want_lost" -gt 0 ] && ! grep -q "$C is damaged" "$T/pipitd.log"; then
        unnamed="$unnamed [$what]"
    fi
}
restore() { restore_copy "$T/tmpl" "$T/state"; }
size=$(stat -c %s "$TC")

# Cuts: at every line boundary, just after it, and inside each line.
while read -r a b path; do
    for t in $a $((a + 1)) $((a + 1 + RANDOM % (b - a - 1))) $((b - 1)); do
        [ "$t" -lt "$size" ] || continue
        restore; truncate -s "$t" "$C"; run_case "cut at $t"
    done
done <"$T/ranges"
for ((c = 0; c < 5 * (scale - 1); c++)); do
    t=$((RANDOM % size)); restore; truncate -s "$t" "$C"; run_case "cut at $t"
done
# Single bit flips, anywhere (hash, counts, numbers, path, newlines).
for ((c = 0; c < 50 * scale; c++)); do
    off=$((RANDOM % size)) bit=$((RANDOM % 8))
    restore; flip "$C" "$off" "$bit"; run_case "bit $bit of byte $off"
done
# Zero-filled ranges, within a line or across several.
for ((c = 0; c < 20 * scale; c++)); do
    off=$((RANDOM % size)) n=$((1 + RANDOM % (c % 4 == 0 ? 300 : 16)))
    restore
    dd if=/dev/zero of="$C" bs=1 seek="$off" count="$n" conv=notrunc status=none
    truncate -s "$size" "$C"
    run_case "$n bytes zeroed at $off"
done
restore; : >"$C"; run_case "emptied"
restore; rm "$C"; run_case "deleted"

diag "$cases damaged checkpoint files tried"
[ "$cases" -ge $((75 * scale)) ]
ok $? "$cases damaged checkpoint files were tried (at least $((75 * scale)))"
[ -z "$crashed" ]
ok $? "pipitd started and exited 0 every time${crashed:+:$crashed}"
[ -z "$wrong_set" ]
ok $? "files with an intact checkpoint resume at it, the others are read from the beginning, nothing more${wrong_set:+:$wrong_set}"
[ -z "$wrong_count" ]
ok $? "the checkpoint entries lost are counted exactly${wrong_count:+:$wrong_count}"
[ -z "$unnamed" ]
ok $? "the warning names the checkpoint file${unnamed:+:$unnamed}"
restore; run_case "none"
[ -z "$crashed$wrong_set$wrong_count" ] && [ "$(wc -l <"$T/got")" = 30 ]
ok $? "the undamaged checkpoint resumes every file at its end (30 new lines)"
done_testing
