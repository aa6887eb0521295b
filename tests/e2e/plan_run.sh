#!/bin/bash
# plan_run.sh: pipit run end to end with the exec action: variables, results, when, retries, timeout, rollback order, refusals, events, dry run, SIGINT and resume, NUL bytes and megabyte values.
. "$top_srcdir/tests/lib.sh"
tmpdir
plan 38

run() { "$PIPIT" run --state-dir "$T/state" --plugin-dir "$PIPIT_PLUGIN_DIR" "$@"; }
# ev_holds FILE SELECT TEST: some event of FILE matches SELECT, and every one that
# does passes TEST (jq filters).
ev_holds() { jq -se "[.[] | select($2) | $3] | length > 0 and all" "$1" >/dev/null; }

# --- a plan that succeeds: variables, results of earlier steps, when ---------
cat >"$T/ok.yaml" <<YAML
plan: web-rollout
variables:
  dir: $T/www
  version: "1.0"
steps:
  - name: prepare
    action: exec
    command: [mkdir, -p, "{{dir}}"]
  - name: write
    action: exec
    command: [sh, -c, 'echo "{{version}} on {{host}}" > {{dir}}/v; echo written']
  - name: check
    action: exec
    command: [grep, -q, "^{{version}} ", "{{dir}}/v"]
    when: "{{steps.write.stdout}} == written"
  - name: upgrade_only
    action: exec
    command: [touch, "{{dir}}/upgraded"]
    when: "{{version}} != 1.0"
YAML
run "$T/ok.yaml" --events "$T/ev.json" >"$T/out" 2>"$T/err"
ok $? "a plan whose steps succeed exits 0" || cat "$T/out" "$T/err"
grep -q "^1.0 on $(hostname) *$" "$T/www/v"
ok $? "variables and {{host}} are expanded in the step's options"
grep -q '^\[3/4\] check: ok' "$T/out"
ok $? "a when on an earlier step's result that holds runs the step"
grep -q '^\[4/4\] upgrade_only: skipped' "$T/out" && [ ! -e "$T/www/upgraded" ]
ok $? "a when that does not hold skips the step"
tail -n 1 "$T/out" | grep -q '^plan web-rollout: ok$'
ok $? "the outcome is printed last"
[ -f "$T/state/runs/web-rollout.last" ] && [ ! -e "$T/state/runs/web-rollout.journal" ]
ok $? "the finished journal is kept as runs/web-rollout.last"
[ "$(jq -r 'select(.name == "plan.finished") | .status' "$T/ev.json")" = ok ] &&
    [ "$(jq -r 'select(.name == "step.finished") | .labels.step + "=" + .status' "$T/ev.json" | tr '\n' ' ')" = \
      "prepare=ok write=ok check=ok upgrade_only=skipped " ]
ok $? "events: plan.started, step.started/finished per step, plan.finished ok"
run_ids=$(jq -r '.labels.run' "$T/ev.json" | sort -u | wc -l)
ev_holds "$T/ev.json" '.name == "step.finished" and .labels.step == "write"' \
    '.kind == "event" and .instance == "plan" and .labels.plan == "web-rollout" and
     .labels.action == "exec" and .labels.exit_code == "0" and
     (.labels.duration_ms | tonumber) >= 0 and .message == "written\n"' &&
    [ "$run_ids" -eq 1 ]
ok $? "a step's event carries plan, run, step, action, exit code, duration and output"

# --- failure: rollback of completed steps, newest first ----------------------
cat >"$T/fail.yaml" <<YAML
plan: fail-plan
variables:
  log: $T/order
steps:
  - name: one
    action: exec
    command: [sh, -c, "echo do-one >> {{log}}"]
    rollback:
      - action: exec
        command: [sh, -c, "echo undo-one >> {{log}}"]
  - name: two
    action: exec
    command: [sh, -c, "echo do-two >> {{log}}"]
    rollback:
      - action: exec
        command: [sh, -c, "echo undo-two-a >> {{log}}"]
      - action: exec
        command: [sh, -c, "echo undo-two-b >> {{log}}"]
  - name: noop
    action: exec
    command: ["true"]
    when: "{{steps.two.status}} == failed"
    rollback:
      - action: exec
        command: [sh, -c, "echo undo-noop >> {{log}}"]
  - name: three
    action: exec
    command: [sh, -c, "echo do-three >> {{log}}; echo boom >&2; exit 3"]
    rollback:
      - action: exec
        command: [sh, -c, "echo undo-three >> {{log}}"]
  - name: four
    action: exec
    command: [sh, -c, "echo do-four >> {{log}}"]
YAML
run "$T/fail.yaml" --events "$T/fev.json" >"$T/out" 2>"$T/err"
st=$?
[ $st -eq 1 ]
ok $? "a failing step makes the run exit 1 ($st)"
[ "$(tr '\n' ' ' <"$T/order")" = "do-one do-two do-three undo-three undo-two-a undo-two-b undo-one " ]
ok $? "the failed step and the completed ones are rolled back newest first, skipped ones are not, later ones never run ($(tr '\n' ' ' <"$T/order"))"
tail -n 1 "$T/out" | grep -q '^plan fail-plan: rolled_back: step three failed: exited with status 3'
ok $? "the outcome names the failed step and why" || tail -n 3 "$T/out"
[ "$(jq -r 'select(.name == "plan.finished") | .status' "$T/fev.json")" = rolled_back ] &&
    [ "$(jq -s '[.[] | select(.name == "rollback.finished" and .status == "ok")] | length' "$T/fev.json")" -eq 4 ]
ok $? "events: rollback.finished per rollback step, plan.finished rolled_back"
ev_holds "$T/fev.json" '.name == "step.finished" and .labels.step == "three"' \
    '.status == "failed" and .labels.exit_code == "3" and (.message | test("status 3"))'
ok $? "the failed step's event carries its exit code and reason"

# --- a failing rollback step ---------------------------------------------------
cat >"$T/rbfail.yaml" <<YAML
plan: rbfail
steps:
  - name: one
    action: exec
    command: ["true"]
    rollback:
      - action: exec
        command: ["false"]
  - name: two
    action: exec
    command: ["false"]
YAML
run "$T/rbfail.yaml" >"$T/out" 2>"$T/err"
st=$?
[ $st -eq 1 ] && tail -n 1 "$T/out" | grep -q '^plan rbfail: rollback_failed'
ok $? "a rollback step that fails too makes the outcome rollback_failed ($st)"

# --- retries with backoff, ignore_failure, timeout ------------------------------
cat >"$T/retry.yaml" <<YAML
plan: retry-plan
variables:
  n: $T/count
steps:
  - name: flaky
    action: exec
    command: [sh, -c, 'c=\$(cat {{n}} 2>/dev/null || echo 0); c=\$((c+1)); echo \$c > {{n}}; [ \$c -ge 3 ]']
    retries: 3
    backoff: 200ms
  - name: optional
    action: exec
    command: ["false"]
    ignore_failure: true
  - name: after
    action: exec
    command: ["true"]
    when: "{{steps.optional.status}} == failed and {{steps.flaky.exit_code}} == 0"
YAML
t0=$(date +%s%N)
run "$T/retry.yaml" >"$T/out" 2>"$T/err"
st=$?
t1=$(date +%s%N)
[ $st -eq 0 ] && [ "$(cat "$T/count")" = 3 ]
ok $? "a step is retried until it succeeds (3 attempts)" || cat "$T/out"
[ $(((t1 - t0) / 1000000)) -ge 600 ]
ok $? "the backoff doubles between attempts (200 + 400 ms at least, took $(((t1 - t0) / 1000000)) ms)"
grep -q '^\[1/3\] flaky: attempt 2 failed, retrying' "$T/out" && grep -q '^\[2/3\] optional: failed' "$T/out" &&
    grep -q '^\[3/3\] after: ok' "$T/out"
ok $? "ignore_failure lets the plan go on, and later steps can test the failure"

cat >"$T/timeout.yaml" <<YAML
plan: slow
steps:
  - name: sleepy
    action: exec
    command: [sleep, "30"]
    timeout: 500ms
YAML
t0=$(date +%s%N)
run "$T/timeout.yaml" >"$T/out" 2>"$T/err"
st=$?
ms=$((($(date +%s%N) - t0) / 1000000))
[ $st -eq 1 ] && [ $ms -lt 5000 ] && grep -q 'sleepy: failed: killed after the timeout' "$T/out"
ok $? "a step past its timeout is killed and fails ($ms ms)" || cat "$T/out"

# --- refusals: invalid plans exit 2 with file, line and key ----------------------
cat >"$T/bad.yaml" <<YAML
plan: bad
variables:
  a: x
steps:
  - name: one
    action: exec
    command: [echo, "{{nope}}"]
  - name: two
    action: exec
    command: [echo, "{{steps.three.stdout}}"]
    retries: lots
  - name: three
    action: exec
    command: [echo]
    timeout: soon
  - name: three
    action: exec
    command: [echo]
YAML
run "$T/bad.yaml" >"$T/out" 2>"$T/err"
[ $? -eq 2 ]
ok $? "an invalid plan exits 2"
grep -q "bad.yaml:7: command: {{nope}}: no such variable" "$T/err" &&
    grep -q "bad.yaml:10: command: {{steps.three.stdout}}: no step three runs before this one" "$T/err" &&
    grep -q "bad.yaml:11: retries: expected 0 to 100" "$T/err" &&
    grep -q "bad.yaml:15: timeout: expected a duration" "$T/err" &&
    grep -q "bad.yaml:16: name: a step named three comes earlier" "$T/err"
ok $? "each error names file, line and key" || cat "$T/err"
run "$T/ok.yaml" --var nosuch=1 >"$T/out" 2>"$T/err"
[ $? -eq 2 ] && grep -q "nosuch=1: the plan declares no variable nosuch" "$T/err"
ok $? "--var of an undeclared variable is refused" || cat "$T/err"
cat >"$T/badopt.yaml" <<YAML
plan: badopt
steps:
  - name: one
    action: exec
    command: [echo]
    max_output: huge
  - name: two
    action: teleport
YAML
run --dry-run "$T/badopt.yaml" >"$T/out" 2>"$T/err"
[ $? -eq 2 ] && grep -q "badopt.yaml:6: steps.one.max_output:" "$T/err" &&
    grep -q "steps.two.action: .*act_teleport.so" "$T/err"
ok $? "--dry-run checks each step's options against its plugin and that the plugin exists" ||
    cat "$T/out" "$T/err"
run --dry-run "$T/ok.yaml" --var version=2.0 >"$T/out" 2>"$T/err"
[ $? -eq 0 ] && grep -q '^  2. write (exec)' "$T/out" && grep -q 'variable version = 2.0' "$T/out" &&
    grep -q "^$T/ok.yaml: valid" "$T/out" && [ ! -e "$T/state/runs/web-rollout.journal" ]
ok $? "--dry-run prints the steps with variables applied and runs nothing" || cat "$T/out" "$T/err"
run "$T/nonexistent.yaml" >"$T/out" 2>"$T/err"
[ $? -eq 2 ] && grep -q "nonexistent.yaml" "$T/err"
ok $? "a missing plan file is named"
run >"$T/out" 2>"$T/err"
[ $? -eq 2 ]
ok $? "no plan is a usage error"

# --- SIGINT: interrupted, resumed by running it again ----------------------------
cat >"$T/int.yaml" <<YAML
plan: int-plan
variables:
  log: $T/int.log
steps:
  - name: first
    action: exec
    command: [sh, -c, "echo first >> {{log}}"]
  - name: long
    action: exec
    command: [sh, -c, "echo long-start >> {{log}}; sleep \$(cat $T/sleep); echo long-end >> {{log}}"]
  - name: last
    action: exec
    command: [sh, -c, "echo last >> {{log}}"]
YAML
echo 30 >"$T/sleep"
"$PIPIT" run --state-dir "$T/state" --plugin-dir "$PIPIT_PLUGIN_DIR" "$T/int.yaml" \
    --events "$T/iev.json" >"$T/out" 2>"$T/err" &
pid=$!
for _ in $(seq 100); do grep -q long-start "$T/int.log" 2>/dev/null && break; sleep 0.1; done
kill -INT $pid
wait $pid
st=$?
[ $st -eq 3 ] && tail -n 1 "$T/out" | grep -q '^plan int-plan: interrupted'
ok $? "SIGINT stops the running step, exit 3 ($st)" || cat "$T/out"
[ -f "$T/state/runs/int-plan.journal" ] && ! grep -q long-end "$T/int.log" &&
    [ "$(jq -r 'select(.name == "plan.finished") | .status' "$T/iev.json")" = interrupted ]
ok $? "the journal is kept and the step did not finish"
echo 0 >"$T/sleep"
run "$T/int.yaml" --events "$T/iev.json" >"$T/out" 2>"$T/err"
[ $? -eq 0 ] && grep -q '^plan int-plan: resumed run' "$T/out"
ok $? "running it again resumes the run" || cat "$T/out"
[ "$(tr '\n' ' ' <"$T/int.log")" = "first long-start long-start long-end last " ]
ok $? "the interrupted step ran again, the completed one did not ($(tr '\n' ' ' <"$T/int.log"))"
[ "$(jq -r '.labels.run' "$T/iev.json" | sort -u | wc -l)" -eq 1 ] &&
    ev_holds "$T/iev.json" '.name == "plan.resumed"' '.status == "resumed"'
ok $? "the resumed run keeps its run id and says it resumed"

# another version of the plan while a run is unfinished
echo 30 >"$T/sleep"
"$PIPIT" run --state-dir "$T/state" --plugin-dir "$PIPIT_PLUGIN_DIR" "$T/int.yaml" \
    >"$T/out" 2>"$T/err" &
pid=$!
for _ in $(seq 100); do [ "$(grep -c long-start "$T/int.log")" -ge 3 ] && break; sleep 0.1; done
kill -INT $pid
wait $pid
sed 's/echo last/echo LAST/' "$T/int.yaml" >"$T/int2.yaml"
echo 0 >"$T/sleep"
run "$T/int2.yaml" >"$T/out" 2>"$T/err"
[ $? -eq 4 ] && grep -q "unfinished run of another version" "$T/out"
ok $? "another version of the plan is refused while a run is unfinished" || cat "$T/out" "$T/err"
run "$T/int2.yaml" --resume >"$T/out" 2>"$T/err"
[ $? -eq 0 ] && [ "$(tail -n 1 "$T/int.log")" = last ]
ok $? "--resume finishes the journaled version" || cat "$T/out" "$T/err"
run "$T/int2.yaml" >"$T/out" 2>"$T/err"
[ $? -eq 0 ] && [ "$(tail -n 1 "$T/int.log")" = LAST ]
ok $? "then the new version runs"

# --- the runner's journal is private ------------------------------------------------
[ "$(stat -c %a "$T/state/runs")" = 700 ] && [ "$(stat -c %a "$T/state/runs/int-plan.last")" = 600 ]
ok $? "runs/ is 0700 and journals 0600"

# --- a torn last journal line is ignored -------------------------------------------
cat >"$T/torn.yaml" <<YAML
plan: torn
steps:
  - name: a
    action: exec
    command: [sh, -c, "echo a >> $T/torn.log"]
  - name: b
    action: exec
    command: [sh, -c, "echo b >> $T/torn.log"]
YAML
PIPIT_FAULT_KILL_AFTER_JOURNAL_WRITES=3 run "$T/torn.yaml" >/dev/null 2>&1
printf '{"t":"step","i":1,"sta' >>"$T/state/runs/torn.journal"
run "$T/torn.yaml" >"$T/out" 2>"$T/err"
[ $? -eq 0 ] && grep -q "last line was cut by a crash" "$T/err" && [ "$(tr '\n' ' ' <"$T/torn.log")" = "a b " ]
ok $? "a journal whose last line was cut is resumed without it" || cat "$T/out" "$T/err"
printf 'garbage\n{"t":"end"}\n' >"$T/state/runs/torn.journal"
run "$T/torn.yaml" >"$T/out" 2>"$T/err"
[ $? -eq 4 ] && grep -q "torn.journal:1: not a journal line" "$T/out"
ok $? "a damaged journal is refused, named, never guessed at" || cat "$T/out" "$T/err"
rm -f "$T/state/runs/torn.journal"
# --- odd parameters: NUL bytes and megabyte values are refused, never cut --------
# Pass: a YAML "\0" in a variable fails the load naming file, line and key,
# and nothing runs; a value that expands past 1 MiB fails its step naming
# the key, the command never runs and the plan rolls back cleanly.
cat >"$T/nul.yaml" <<YAML
plan: nul
variables:
  dest: "$T/nul-a\0b"
steps:
  - name: touch
    action: exec
    command: [touch, "{{dest}}"]
YAML
run "$T/nul.yaml" >"$T/out" 2>"$T/err"
[ $? -eq 2 ] && grep -q "nul.yaml:3: variables.dest: value contains a NUL character" "$T/err" &&
    [ -z "$(ls "$T" | grep nul-a)" ]
ok $? "a NUL byte in a variable is refused with file, line and key" || cat "$T/out" "$T/err"
big=$(head -c 400000 /dev/zero | tr '\0' x)
cat >"$T/big.yaml" <<YAML
plan: big
variables:
  v: "$big"
steps:
  - name: touch
    action: exec
    command: [touch, "$T/big-ran", "{{v}}{{v}}{{v}}"]
YAML
run "$T/big.yaml" >"$T/out" 2>"$T/err"
[ $? -ne 0 ] && grep -q "touch: failed: command\[2\]: longer than 1024 KiB once its {{...}} are expanded" "$T/out" &&
    [ ! -e "$T/big-ran" ] && [ "$(wc -c <"$T/out")" -lt 4096 ]
ok $? "a value expanding past 1 MiB fails its step, naming the key" || head -c 2000 "$T/out" "$T/err"
done_testing
