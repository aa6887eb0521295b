#!/bin/sh
# logging.sh: logfmt and JSON log lines carry level and instance; secrets never reach the log.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
setup_e2e
plan 6

SECRET_TOKEN="s3cr3t-$$-token"
export SECRET_TOKEN
printf 'file-%s-secret\n' "$$" >"$T/token"
chmod 600 "$T/token"
run_with_format() {
    cat >"$T/p.yaml" <<YAML
agent:
  state_dir: $T/state
  jitter: 0s
  log_level: debug
  log_format: $1
batch:
  linger_ms: 20
inputs:
  - plugin: $TESTSRC
    name: env
    token: \${SECRET_TOKEN}
    interval: 50ms
  - plugin: $TESTSRC
    name: file
    token: "Bearer \${file:$T/token}"
    interval: 50ms
    count: notanumber-\${SECRET_TOKEN}
outputs:
  - plugin: file
    path: $T/out.jsonl
YAML
}

# A config with a secret in a value that fails validation: never printed.
run_with_format logfmt
"$PIPIT" check -c "$T/p.yaml" --plugin-dir "$PIPIT_PLUGIN_DIR" >"$T/check.out" 2>&1
grep -q "inputs\[1\]\.count" "$T/check.out" && ! grep -q "$SECRET_TOKEN" "$T/check.out"
ok $? "pipit check reports the bad value without printing the secret" || sed 's/^/#   /' "$T/check.out"

sed -i '/count: notanumber/d' "$T/p.yaml"
start_pipitd "$T/p.yaml"
wait_for 20 more_lines_than "$T/out.jsonl" 4
stop_pipitd
! grep -v -E '^ts=[^ ]+ level=(error|warn|info|debug|trace) instance=[^ ]+ ' "$T/pipitd.log" | grep -q .
ok $? "every logfmt line has ts, level and instance" || show_log
grep -q 'level=debug instance=env plugin=testsrc msg="token of' "$T/pipitd.log"
ok $? "plugin lines carry the instance and plugin names"
! grep -q -e "$SECRET_TOKEN" -e "file-$$-secret" "$T/pipitd.log" "$T/pipitd.out" "$T/out.jsonl"
ok $? "expanded secrets appear in no log line and no record"

run_with_format json
sed -i '/count: notanumber/d' "$T/p.yaml"
start_pipitd "$T/p.yaml"
wait_for 20 log_has '"msg":"running'
stop_pipitd
jq -e -s 'all(.[]; has("ts") and has("level") and has("instance") and has("msg"))' \
    "$T/pipitd.log" >/dev/null
ok $? "every JSON log line parses and has ts, level, instance, msg" || show_log
jq -e -s 'any(.[]; .instance == "file" and .plugin == "testsrc")' "$T/pipitd.log" >/dev/null
ok $? "JSON plugin lines carry instance and plugin"
done_testing
