#!/bin/bash
# plan_journal_damage.sh: pipit run on a plan journal cut, bit-flipped and zero-filled in hundreds of places: it never crashes or hangs; it resumes, or refuses naming the journal.
. "$top_srcdir/tests/lib.sh"
tmpdir
plan 5

run() { timeout 20 "$PIPIT" run --state-dir "$T/state" --plugin-dir "$PIPIT_PLUGIN_DIR" "$@"; }
cat >"$T/p.yaml" <<YAML
plan: damaged
variables:
  d: $T/host
steps:
  - name: one
    action: exec
    command: [touch, "{{d}}/one"]
    rollback:
      - action: exec
        command: [rm, -f, "{{d}}/one"]
  - name: two
    action: exec
    command: [sh, -c, "touch {{d}}/two; exit 1"]
    rollback:
      - action: exec
        command: [rm, -f, "{{d}}/two"]
YAML
mkdir -p "$T/host"
PIPIT_FAULT_KILL_AFTER_JOURNAL_WRITES=6 run "$T/p.yaml" >/dev/null 2>&1
J="$T/state/runs/damaged.journal"
[ -s "$J" ] && cp "$J" "$T/orig"
ok $? "a journal cut short in the middle of a rollback ($(wc -c <"$T/orig") bytes)"

size=$(wc -c <"$T/orig")
cases=0 crashed=0 unnamed=0 bad_status=
try() { # try DESCRIPTION: run on the damaged journal now in place
    cases=$((cases + 1))
    rm -rf "$T/host"; mkdir -p "$T/host"
    run "$T/p.yaml" >"$T/out" 2>&1
    local st=$?
    if [ $st -ge 124 ]; then crashed=$((crashed + 1)); bad_status="$bad_status [$1: $st]"; fi
    if [ $st -eq 4 ] && ! grep -q "damaged.journal" "$T/out"; then unnamed=$((unnamed + 1)); fi
    case $st in 0|1|4) ;; *) bad_status="$bad_status [$1: exit $st]" ;; esac
    rm -f "$J" "$T/state/runs/damaged.last"
}
step=$(( size / 150 + 1 ))
for ((off = 0; off < size; off += step)); do          # cut at every offset
    head -c "$off" "$T/orig" >"$J"; try "cut at $off"
done
for ((off = 0; off < size; off += step)); do          # one bit flipped
    cp "$T/orig" "$J"
    b=$(od -An -tu1 -j "$off" -N1 "$J" | tr -d ' ')
    printf "$(printf '\\%03o' $(( b ^ (1 << (off % 8)) )))" |
        dd of="$J" bs=1 seek="$off" conv=notrunc status=none
    try "bit flip at $off"
done
for ((off = 0; off < size; off += step * 4)); do      # 64 bytes zeroed
    cp "$T/orig" "$J"
    dd if=/dev/zero of="$J" bs=1 seek="$off" count=64 conv=notrunc status=none
    try "zeros at $off"
done
printf '' >"$J"; try "empty"
diag "$cases damaged journals tried"
[ "$cases" -ge 250 ]
ok $? "hundreds of damaged journals were tried ($cases)"
[ "$crashed" -eq 0 ]
ok $? "none crashed or hung${bad_status:+:$bad_status}"
[ -z "$bad_status" ]
ok $? "each ended ok (0), failed (1) or refused (4)"
[ "$unnamed" -eq 0 ]
ok $? "every refusal names the journal"
done_testing
