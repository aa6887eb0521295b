#!/bin/bash
# commands.sh: pipitd reads signed commands from Kafka, runs those addressed to it and refuses the rest (unsigned, badly signed, untrusted, expired, not yet valid, replayed, wrongly targeted, disallowed action, bad plan), each refusal an event with its reason.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
. "$top_srcdir/tests/kafka/broker.sh"
setup_kafka
plan 24

SIGN="$top_builddir/tests/e2e/command_sign"
start_broker
ok $? "mock broker started on $BOOTSTRAP"
"$PIPIT" keygen --out "$T/deploy" >/dev/null && "$PIPIT" keygen --out "$T/other" >/dev/null
ok $? "two key pairs: one trusted, one not"

cat >"$T/p.yaml" <<YAML
agent:
  state_dir: $T/state
  hostname: web-01
  jitter: 0s
batch:
  linger_ms: 50
commands:
  brokers: $BOOTSTRAP
  trusted_keys: [$T/deploy.pub]
  allowed_actions: [exec]
  labels: {role: web, env: prod}
outputs:
  - plugin: kafka
    brokers: $BOOTSTRAP
YAML
cat >"$T/plan.yaml" <<YAML
plan: touch-plan
variables:
  file: $T/never
steps:
  - name: touch
    action: exec
    command: [sh, -c, 'echo "{{run}}" >> {{file}}']
YAML
cat >"$T/fetchplan.yaml" <<YAML
plan: fetch-plan
steps:
  - name: get
    action: fetch
    url: file:///etc/hostname
    sha256: "0000000000000000000000000000000000000000000000000000000000000000"
    dest: $T/x
YAML
printf 'plan: broken\nsteps: 3\n' >"$T/badplan.yaml"

"$PIPIT" check -q --plugin-dir "$PIPIT_PLUGIN_DIR" "$T/p.yaml"
ok $? "pipit check accepts the commands: section"
printf 'commands:\n  brokers: b:9092\n' >"$T/nokeys.yaml"
"$PIPIT" check "$T/nokeys.yaml" >"$T/check.out" 2>&1
[ $? -eq 1 ] && grep -q "nokeys.yaml:2: commands.trusted_keys: the command channel needs at least one trusted public key" "$T/check.out"
ok $? "a command channel without trusted keys is refused, with file, line and key" || cat "$T/check.out"

start_pipitd "$T/p.yaml"
wait_for 20 log_has "reading signed commands from pipit.commands"
ok $? "pipitd reads the command topic" || show_log

# send NAME ARGS...: sign a command (tests/e2e/command_sign) into $T/NAME.msg and publish it
send() {
    local name=$1; shift
    "$SIGN" "$@" >"$T/$name.msg" && kcat -P -b "$BOOTSTRAP" -t pipit.commands -k web-01 "$T/$name.msg" 2>>"$T/kcat.err"
}
publish() { kcat -P -b "$BOOTSTRAP" -t pipit.commands -k web-01 "$T/$1.msg" 2>>"$T/kcat.err"; }
events() { consume pipit.events '%s' | "$PIPIT" decode 2>/dev/null; }
event_count() { events | jq -s "[.[] | select($1)] | length"; }
wait_event() { local sel=$1; ev_ok() { [ "$(event_count "$sel")" -ge 1 ]; }; wait_for 20 ev_ok; }

send good "$T/deploy.key" "$T/plan.yaml" dep-good "role=web" 0 3600 - "file=$T/ran"
ok $? "a signed command was published"
wait_event '.name == "plan.finished" and .labels.run == "dep-good"'
ok $? "the agent ran it: plan.finished with the command's id as run id" || show_log
[ "$(cat "$T/ran" 2>/dev/null)" = dep-good ]
ok $? "its plan ran once, with the command's variables and {{run}} = the deployment id"
[ "$(events | jq -r 'select(.name == "plan.finished" and .labels.run == "dep-good") | .status + " " + .host')" = "ok web-01" ]
ok $? "plan.finished ok, from host web-01"

# refusals
"$SIGN" "$T/deploy.key" "$T/plan.yaml" dep-unsigned "role=web" >"$T/u.msg" &&
    jq -c 'del(.signature)' "$T/u.msg" | tr -d '\n' >"$T/unsigned.msg" && publish unsigned
"$SIGN" "$T/deploy.key" "$T/plan.yaml" dep-badsig "role=web" 0 3600 - "file=$T/badsig" >"$T/b.msg" &&
    jq -c '.envelope |= sub("badsig"; "badsiG")' "$T/b.msg" | tr -d '\n' >"$T/badsig.msg" && publish badsig
send untrusted "$T/other.key" "$T/plan.yaml" dep-untrusted "role=web" 0 3600 - "file=$T/untrusted"
send expired "$T/deploy.key" "$T/plan.yaml" dep-expired "role=web" -7200 3600 - "file=$T/expired"
send future "$T/deploy.key" "$T/plan.yaml" dep-future "role=web" 7200 3600 - "file=$T/future"
publish good                            # the same message again: a replay
send otherhost "$T/deploy.key" "$T/plan.yaml" dep-otherhost "host=web-02" 0 3600 - "file=$T/otherhost"
send dev "$T/deploy.key" "$T/plan.yaml" dep-dev "role=web,env!=prod" 0 3600 - "file=$T/dev"
send fetch "$T/deploy.key" "$T/fetchplan.yaml" dep-fetch "*"
send badplan "$T/deploy.key" "$T/badplan.yaml" dep-badplan "*"
send good2 "$T/deploy.key" "$T/plan.yaml" dep-good2 "host=web-0*,env=prod" 0 3600 - "file=$T/ran2"
wait_event '.name == "plan.finished" and .labels.run == "dep-good2"'
ok $? "a command after the refused ones still runs: the channel keeps going" || show_log
sleep 1
reason_of() { events | jq -r "select(.name == \"command.refused\" and $1) | .labels.reason"; }
[ "$(reason_of '(.message | test("signature"; "i"))' | sort -u | tr '\n' ' ')" != "" ] &&
    [ "$(event_count '.name == "command.refused" and .labels.reason == "unsigned"')" -eq 1 ]
ok $? "unsigned: refused as unsigned"
[ "$(event_count '.name == "command.refused" and .labels.reason == "bad_signature"')" -eq 1 ]
ok $? "an envelope changed after signing: refused as bad_signature"
[ "$(event_count '.name == "command.refused" and .labels.reason == "unknown_key"')" -eq 1 ]
ok $? "signed by an untrusted key: refused as unknown_key"
[ "$(reason_of '.labels.run == "dep-expired"')" = expired ] &&
    [ "$(reason_of '.labels.run == "dep-future"')" = not_yet_valid ]
ok $? "outside its validity window: expired and not_yet_valid, naming the deployment"
[ "$(reason_of '.labels.run == "dep-good"')" = replayed ]
ok $? "the same command again: refused as replayed"
[ "$(reason_of '.labels.run == "dep-fetch"')" = action_not_allowed ] &&
    events | jq -r 'select(.labels.run == "dep-fetch") | .message' | grep -q "action fetch"
ok $? "a plan with an action the agent does not allow: refused as action_not_allowed, naming it"
[ "$(reason_of '.labels.run == "dep-badplan"')" = bad_plan ]
ok $? "a plan that does not parse: refused as bad_plan"
[ "$(event_count '.name == "command.refused" and (.labels.run == "dep-otherhost" or .labels.run == "dep-dev")')" -eq 0 ] &&
    [ ! -e "$T/otherhost" ] && [ ! -e "$T/dev" ]
ok $? "commands for another host or other labels are not run (and are no events: every agent sees them)"
for f in never badsig untrusted expired future x; do [ ! -e "$T/$f" ] || break; done
ok $? "no refused command ran anything" || ls "$T"
[ "$(wc -l <"$T/ran")" -eq 1 ]
ok $? "the replayed command did not run again"
grep -q 'command dep-expired refused: expired' "$T/pipitd.log"
ok $? "refusals are logged with their reason"

# a restart: the nonce journal survives, the committed offsets too
stop_pipitd
cp "$T/pipitd.log" "$T/first.log"
grep -q "command channel stopped: received=12 accepted=2 refused=8" "$T/first.log"
ok $? "at stop, the channel logs what it received, accepted and refused" || sed 's/^/#   /' "$T/first.log" | tail -20
start_pipitd "$T/p.yaml"
wait_for 20 log_has "reading signed commands from pipit.commands"
publish good2
wait_for 30 log_has "command dep-good2 refused: replayed"
[ $? -eq 0 ] && [ "$(wc -l <"$T/ran2")" -eq 1 ]
ok $? "after a restart, a command seen before is still a replay" || show_log
stop_pipitd
grep -q "command channel stopped: received=1 " "$T/pipitd.log"
ok $? "after a restart, the agent reads on from its offsets (<state>/commands.offsets)" || show_log
stop_broker
done_testing
