#!/bin/bash
# deploy.sh: pipit deploy to ten agents through the mock Kafka cluster: a rolling deploy stops at the failing wave and rolls back its good hosts, a failed canary or gate stops before the rest, refusals are reported, and a deploy where all succeed runs every host's plan once.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
. "$top_srcdir/tests/kafka/broker.sh"
setup_kafka
plan 30

AGENT_PIDS=()
cleanup_agents() {
    for pid in "${AGENT_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
    cleanup_kafka
}
trap cleanup_agents EXIT

start_broker
ok $? "mock broker started on $BOOTSTRAP"
"$PIPIT" keygen --out "$T/deploy" >/dev/null 2>&1
ok $? "a deployment key pair"
printf 'events-hmac-key-0123456789abcdef\n' >"$T/events.key"

HOSTS=$(printf 'web-%02d ' $(seq 1 10))
: >"$T/inventory"
for h in $HOSTS; do
    mkdir -p "$T/$h"
    zone=z$(( 10#${h#web-} % 2 ))
    cat >"$T/$h/pipit.yaml" <<YAML
agent:
  state_dir: $T/$h/state
  hostname: $h
  jitter: 0s
batch:
  linger_ms: 50
wire:
  signing_key: events-hmac-key-0123456789abcdef
commands:
  brokers: $BOOTSTRAP
  trusted_keys: [$T/deploy.pub]
  allowed_actions: [exec]
  labels: {role: web, zone: $zone}
outputs:
  - plugin: kafka
    brokers: $BOOTSTRAP
YAML
    echo "$h role=web zone=$zone  # one of the fleet" >>"$T/inventory"
    "$PIPITD" -c "$T/$h/pipit.yaml" --plugin-dir "$PIPIT_PLUGIN_DIR" \
        >"$T/$h/out" 2>"$T/$h/log" &
    AGENT_PIDS+=($!)
done
echo "db-01 role=db" >>"$T/inventory"
agents_ready() {
    for h in $HOSTS; do grep -q "reading signed commands from pipit.commands" "$T/$h/log" || return 1; done
}
wait_for 30 agents_ready
ok $? "ten agents read the command topic" || for h in $HOSTS; do sed "s/^/#   $h: /" "$T/$h/log" | tail -3; done

# The plan: each host appends the run id to its own file; it fails on the
# host whose directory has a file named broken, after its first step (which
# is rolled back by the agent itself).
cat >"$T/plan.yaml" <<YAML
plan: web-rollout
variables:
  root: $T
  version: "1.0"
steps:
  - name: install
    action: exec
    command: [sh, -c, 'echo "{{run}} {{version}}" >> {{root}}/{{host}}/ran']
    rollback:
      - action: exec
        command: [sh, -c, 'echo "{{run}}" >> {{root}}/{{host}}/undone']
  - name: check
    action: exec
    command: [sh, -c, 'if [ -e {{root}}/{{host}}/broken ]; then echo "{{host}} is broken" >&2; exit 3; fi']
YAML
cat >"$T/undo.yaml" <<YAML
plan: web-undo
variables:
  root: $T
steps:
  - name: undo
    action: exec
    command: [sh, -c, 'echo "{{run}}" >> {{root}}/{{host}}/reverted']
YAML
touch "$T/web-05/broken"

deploy() {
    "$PIPIT" deploy "$T/plan.yaml" --inventory "$T/inventory" --brokers "$BOOTSTRAP" \
        --key "$T/deploy.key" --signing-key-file "$T/events.key" --wave-timeout 60s "$@"
}
# ran_by ID: the hosts whose plan ran with run id ID, sorted, on one line.
ran_by() { grep -l "^$1 " "$T"/web-*/ran 2>/dev/null | sed 's#.*/\(web-[0-9]*\)/ran#\1#' | sort | tr '\n' ' '; }
hosts_with() { grep -lx "$2" "$T"/web-*/"$1" 2>/dev/null | sed "s#.*/\(web-[0-9]*\)/$1#\1#" | sort | tr '\n' ' '; }

# --- dry run --------------------------------------------------------------------
deploy --target role=web --batch 3 --dry-run --id dry-1 >"$T/dry.out" 2>&1
[ $? -eq 0 ] && grep -q '^wave 4/4: web-10$' "$T/dry.out" &&
    grep -q '^  web-04: target role=web,host=web-04$' "$T/dry.out" && [ -z "$(ran_by dry-1)" ]
ok $? "--dry-run prints the waves and each host's target and sends nothing" || cat "$T/dry.out"
"$PIPIT" deploy "$T/plan.yaml" --target role=web --dry-run >"$T/noinv.out" 2>&1
[ $? -eq 2 ] && grep -q -- "--inventory FILE is required" "$T/noinv.out"
ok $? "no inventory: refused with exit 2"
printf 'web-01 role\n' >"$T/bad.inv"
"$PIPIT" deploy "$T/plan.yaml" --target role=web --inventory "$T/bad.inv" --dry-run >"$T/badinv.out" 2>&1
[ $? -eq 2 ] && grep -q "^$T/bad.inv:1: web-01: \"role\": a label is key=value" "$T/badinv.out"
ok $? "a bad inventory line: exit 2, naming file and line" || cat "$T/badinv.out"
deploy --target role=web --var nope=1 >"$T/badvar.out" 2>&1
[ $? -eq 2 ] && grep -q "nope" "$T/badvar.out"
ok $? "a --var the plan does not declare: exit 2 before anything is sent"

# --- rolling, batches of 3, max failures 0: stops at the failing wave -----------
deploy --target role=web --batch 3 --id roll-1 --rollback-plan "$T/undo.yaml" --var version=2.0 \
    >"$T/roll.out" 2>"$T/roll.err"
st=$?
[ $st -eq 1 ]
ok $? "a rolling deploy with a failing host exits 1 (got $st)" || sed 's/^/#   /' "$T/roll.out" "$T/roll.err"
grep -q '^deployment roll-1: stopped after wave 2/4: 1 failure, over --max-failures 0$' "$T/roll.out"
ok $? "it stops after wave 2 of 4 and says why" || sed 's/^/#   /' "$T/roll.out"
[ "$(ran_by roll-1)" = "web-01 web-02 web-03 web-04 web-05 web-06 " ]
ok $? "waves 1 and 2 ran, waves 3 and 4 were never sent ($(ran_by roll-1))"
grep -q '^\[wave 2/4\] web-05: step check failed (.*): exited with status 3$' "$T/roll.out" &&
    grep -q '^\[wave 2/4\] web-05: plan rolled_back' "$T/roll.out" &&
    grep -q '^\[wave 1/4\] web-02: step install ok (' "$T/roll.out" &&
    grep -q '^\[wave 1/4\] web-02: plan ok$' "$T/roll.out"
ok $? "progress: a line per step and per plan outcome, prefixed by the wave" || sed 's/^/#   /' "$T/roll.out"
grep -q '^roll-1 2.0$' "$T/web-01/ran"
ok $? "the --var reached the agents"
[ "$(hosts_with undone roll-1)" = "web-05 " ]
ok $? "the failing host's own runner rolled back its first step"
[ "$(hosts_with reverted roll-1-rollback)" = "web-04 web-06 " ] &&
    grep -q '^\[rollback\] web-04: plan ok$' "$T/roll.out"
ok $? "the rollback plan went to the failed wave's good hosts, as roll-1-rollback" || sed 's/^/#   /' "$T/roll.out"
grep -q '^  ok (3): web-01 web-02 web-03$' "$T/roll.out" &&
    grep -q '^  failed (1): web-05 (rolled_back)$' "$T/roll.out" &&
    grep -q '^  rolled_back (2): web-04 web-06$' "$T/roll.out" &&
    grep -q '^  not_sent (4): web-07 web-08 web-09 web-10$' "$T/roll.out"
ok $? "the summary says which host is in which state" || sed 's/^/#   /' "$T/roll.out"
n=$(consume pipit.commands '%k\n' | wc -l)
[ "$n" -eq 8 ]
ok $? "one command per host sent: 6 and 2 for the rollback ($n)"
consume pipit.commands '%s\n' | jq -r '.envelope | fromjson | .id + " " + .target' | sort >"$T/targets"
grep -qx 'roll-1 role=web,host=web-04' "$T/targets" && grep -qx 'roll-1-rollback role=web,host=web-06' "$T/targets" &&
    [ "$(consume pipit.commands '%s\n' | jq -r '.envelope | fromjson | .nonce' | sort -u | wc -l)" -eq 8 ]
ok $? "each command: the deployment id, the selector and the host as target, a nonce of its own"

# --- canary: the canary fails, nothing else is sent ------------------------------
deploy --target role=web --strategy canary --canary host=web-05 --batch 5 --id can-1 \
    >"$T/can.out" 2>&1
st=$?
[ $st -eq 1 ] && grep -q '^deployment can-1: stopped: the canary wave failed$' "$T/can.out"
ok $? "a failed canary stops the deployment (exit $st)" || sed 's/^/#   /' "$T/can.out"
[ "$(ran_by can-1)" = "web-05 " ] && grep -q '^  not_sent (9):' "$T/can.out"
ok $? "no host but the canary got the plan"

# --- canary: the gate fails ------------------------------------------------------
deploy --target role=web --strategy canary --canary 2 --gate-command 'echo "gate for $PIPIT_DEPLOY_HOSTS"; exit 7' \
    --id gate-1 >"$T/gate.out" 2>&1
st=$?
[ $st -eq 1 ] && grep -q '^gate: failed: exit status 7$' "$T/gate.out" &&
    grep -q '^gate for web-01 web-02$' "$T/gate.out" &&
    grep -q '^deployment gate-1: stopped: the gate command failed after the canary wave$' "$T/gate.out"
ok $? "a failed gate stops after the canary wave" || sed 's/^/#   /' "$T/gate.out"
[ "$(ran_by gate-1)" = "web-01 web-02 " ]
ok $? "only the canary hosts ran it"

# --- refusals and the event signatures --------------------------------------------
cat >"$T/fetch.yaml" <<YAML
plan: fetch-plan
steps:
  - name: get
    action: fetch
    url: file:///etc/hostname
    sha256: "0000000000000000000000000000000000000000000000000000000000000000"
    dest: $T/x
YAML
"$PIPIT" deploy "$T/fetch.yaml" --inventory "$T/inventory" --brokers "$BOOTSTRAP" \
    --key "$T/deploy.key" --target 'host=web-0[12]' --batch 2 --max-failures 5 --id ref-1 \
    --wave-timeout 60s >"$T/ref.out" 2>&1
st=$?
[ $st -eq 1 ] && grep -q '^\[wave 1/1\] web-02: refused: action_not_allowed' "$T/ref.out" &&
    grep -q '^  refused (2): web-01 web-02$' "$T/ref.out"
ok $? "an agent's refusal is that host's outcome, with its reason" || sed 's/^/#   /' "$T/ref.out"
printf 'wrong\n' >"$T/wrong.key"
deploy --target host=web-01 --id sig-1 --signing-key-file "$T/wrong.key" --wave-timeout 3s \
    >"$T/sig.out" 2>"$T/sig.err"
st=$?
[ $st -eq 1 ] && grep -q 'web-01: timed out' "$T/sig.out" && grep -q 'ignored: bad_signature' "$T/sig.err"
ok $? "event batches that do not verify with --signing-key-file are ignored: timed out" ||
    sed 's/^/#   /' "$T/sig.out" "$T/sig.err"

# --- every host succeeds -----------------------------------------------------------
rm -f "$T/web-05/broken"
deploy --target 'role=web,zone=z*' --batch 40% --id all-1 >"$T/all.out" 2>&1
st=$?
[ $st -eq 0 ]
ok $? "a deploy where every host succeeds exits 0 (got $st)" || sed 's/^/#   /' "$T/all.out"
grep -q '^deployment all-1: plan web-rollout to 10 hosts in 3 waves (rolling)$' "$T/all.out" &&
    grep -q '^wave 3/3: web-09 web-10$' "$T/all.out"
ok $? "40% of 10 hosts: waves of 4, 4 and 2"
[ "$(ran_by all-1)" = "$(echo $HOSTS | tr ' ' '\n' | sort | tr '\n' ' ')" ]
ok $? "every host's plan ran"
once=0
for h in $HOSTS; do [ "$(grep -c "^all-1 " "$T/$h/ran")" -eq 1 ] && once=$((once + 1)); done
[ "$once" -eq 10 ]
ok $? "each exactly once ($once of 10)"
grep -q '^summary: 10 ok, 0 failed, 0 refused, 0 timed out, 0 not delivered, 0 rolled back, 0 rollback failed, 0 not sent, 0 unknown$' "$T/all.out"
ok $? "the final summary counts 10 ok" || tail -n 3 "$T/all.out"
grep -q '^deployment all-1: ' "$T/all.out" && [ "$(grep -c 'db-01' "$T/all.out")" -eq 0 ]
ok $? "a host of the inventory the selector does not address is left alone"

# --- Kafka down -------------------------------------------------------------------
"$PIPIT" deploy "$T/plan.yaml" --inventory "$T/inventory" --brokers 127.0.0.1:1 \
    --key "$T/deploy.key" --target role=web >"$T/down.out" 2>&1
[ $? -eq 4 ]
ok $? "no Kafka: exit 4" || cat "$T/down.out"
for pid in "${AGENT_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
for pid in "${AGENT_PIDS[@]}"; do wait "$pid"; done
AGENT_PIDS=()
stop_broker
done_testing
