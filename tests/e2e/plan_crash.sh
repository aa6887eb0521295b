#!/bin/bash
# plan_crash.sh: pipit run killed with SIGKILL after each of its journal writes, then run again: the host always ends fully deployed or fully rolled back, never in between.
. "$top_srcdir/tests/lib.sh"
tmpdir
plan 9

run() { "$PIPIT" run --state-dir "$T/state" --plugin-dir "$PIPIT_PLUGIN_DIR" "$@"; }

# write_plan FILE FAIL_AT: four steps, each making a file and logging it, each
# with a rollback that removes it; step FAIL_AT (0: none) fails after its
# work. The second step retries once after a first failed attempt.
write_plan() {
    {
        echo "plan: crash-plan"
        echo "variables:"
        echo "  d: $T/host"
        echo "steps:"
        for i in 1 2 3 4; do
            cmd="touch {{d}}/f$i; echo do-$i >> {{d}}.log"
            [ "$i" = 2 ] && cmd="[ -e {{d}}.retried ] || { touch {{d}}.retried; exit 1; }; $cmd"
            [ "$i" = "$2" ] && cmd="$cmd; exit 7"
            echo "  - name: s$i"
            echo "    action: exec"
            echo "    command: [sh, -c, \"$cmd\"]"
            [ "$i" = 2 ] && { echo "    retries: 1"; echo "    backoff: 10ms"; }
            echo "    rollback:"
            echo "      - action: exec"
            echo "        command: [sh, -c, \"rm -f {{d}}/f$i; echo undo-$i >> {{d}}.log\"]"
        done
    } >"$1"
}

# crash_every PLAN WANT_STATUS WANT_FILES: for N = 1, 2, ... kill the run after
# its N-th journal write, run it again without the fault, and check the
# outcome and what is left on the host. Stops at the first N that the run
# outlives. Sets KILLS and BAD (a description of each wrong end state).
crash_every() {
    KILLS=0 BAD=
    for n in $(seq 1 60); do
        rm -rf "$T/state" "$T/host" "$T/host.log" "$T/host.retried"
        mkdir -p "$T/host"
        PIPIT_FAULT_KILL_AFTER_JOURNAL_WRITES=$n run "$1" >"$T/out" 2>&1
        st=$?
        if [ $st -ne 137 ]; then        # outlived the fault: every write was tried
            [ $st -eq "$2" ] || BAD="$BAD [n=$n: uninterrupted run exited $st]"
            break
        fi
        KILLS=$((KILLS + 1))
        [ -f "$T/state/runs/crash-plan.journal" ] || BAD="$BAD [n=$n: no journal left]"
        run "$1" >"$T/out" 2>&1
        st=$?
        files=$(cd "$T/host" && ls | tr '\n' ' ')
        [ $st -eq "$2" ] || BAD="$BAD [n=$n: resumed run exited $st]"
        [ "$files" = "$3" ] || BAD="$BAD [n=$n: files '$files']"
        [ -e "$T/state/runs/crash-plan.journal" ] && BAD="$BAD [n=$n: journal still open]"
        # no step's work happened more than twice (once more after the kill)
        over=$(sort "$T/host.log" | uniq -c | awk '$1 > 2' | wc -l)
        [ "$over" -eq 0 ] || BAD="$BAD [n=$n: a step ran 3 times]"
        cp "$T/host.log" "$T/log.$n"
    done
}

write_plan "$T/ok.yaml" 0
crash_every "$T/ok.yaml" 0 "f1 f2 f3 f4 "
diag "succeeding plan: killed at $KILLS journal writes"
[ "$KILLS" -ge 12 ]
ok $? "the succeeding plan was killed at each of its $KILLS journal writes"
[ -z "$BAD" ]
ok $? "after each kill, running it again finished the deployment: all four files, exit 0${BAD:+:$BAD}"
# Killed after a step's 'started' line: that step ran again; after its 'ok'
# line it did not.
grep -c . "$T/log.3" >/dev/null && [ "$(grep -c do-1 "$T/log.3")" -eq 1 ]
ok $? "a step whose ok is in the journal is not run again"

write_plan "$T/fail.yaml" 3
crash_every "$T/fail.yaml" 1 ""
diag "failing plan: killed at $KILLS journal writes"
[ "$KILLS" -ge 14 ]
ok $? "the failing plan was killed at each of its $KILLS journal writes, rollback included"
[ -z "$BAD" ]
ok $? "after each kill, running it again finished the rollback: no files left, exit 1${BAD:+:$BAD}"
last=$(ls "$T"/log.* | sort -t. -k2 -n | tail -n 1)
undo=$(grep undo "$last" | uniq | tr '\n' ' ')
[ "$undo" = "undo-3 undo-2 undo-1 " ] || [ "$undo" = "undo-2 undo-1 " ]
ok $? "rollbacks ran newest first ($undo)"

# A real SIGKILL from outside, in the middle of a step's command.
rm -rf "$T/state" "$T/host" "$T/host.log"
mkdir -p "$T/host"
cat >"$T/kill.yaml" <<YAML
plan: kill-plan
steps:
  - name: one
    action: exec
    command: [sh, -c, "touch $T/host/one"]
  - name: two
    action: exec
    command: [sh, -c, "[ -e $T/host/killed ] || { touch $T/host/killed; kill -KILL \$PPID; sleep 5; }; touch $T/host/two"]
  - name: three
    action: exec
    command: [sh, -c, "touch $T/host/three"]
    on_interrupt: rollback
YAML
run "$T/kill.yaml" >"$T/out" 2>&1
st=$?
[ $st -eq 137 ] && [ -f "$T/state/runs/kill-plan.journal" ] && [ ! -e "$T/host/two" ]
ok $? "SIGKILL in the middle of a step leaves the journal with the step started ($st)"
run "$T/kill.yaml" >"$T/out" 2>&1
[ $? -eq 0 ] && [ "$(cd "$T/host" && ls | tr '\n' ' ')" = "killed one three two " ]
ok $? "running it again re-runs the interrupted step and finishes" || cat "$T/out"

# on_interrupt: rollback: a step that must not run twice is rolled back instead.
rm -rf "$T/state" "$T/host"
mkdir -p "$T/host"
cat >"$T/once.yaml" <<YAML
plan: once-plan
steps:
  - name: one
    action: exec
    command: [sh, -c, "touch $T/host/one"]
    rollback:
      - action: exec
        command: [rm, -f, "$T/host/one"]
  - name: migrate
    action: exec
    command: [sh, -c, "touch $T/host/migrating; kill -KILL \$PPID; sleep 5"]
    on_interrupt: rollback
    rollback:
      - action: exec
        command: [rm, -f, "$T/host/migrating"]
YAML
run "$T/once.yaml" >/dev/null 2>&1
run "$T/once.yaml" >"$T/out" 2>&1
[ $? -eq 1 ] && [ -z "$(ls "$T/host")" ] && grep -q "rolled_back: step migrate was interrupted" "$T/out"
ok $? "on_interrupt: rollback rolls back the interrupted step and those before it" || cat "$T/out"
done_testing
