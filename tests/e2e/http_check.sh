#!/bin/sh
# http_check.sh: pipitd with two http_check inputs (one up, one refused) against httpd_fixture into the file output, and an up-to-down state event.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
. "$top_srcdir/tests/http/httpd.sh"
setup_e2e
plan 9

cleanup_all() { stop_httpd; cleanup_pipitd; }
trap cleanup_all EXIT

mkdir -p "$T/www"
echo "status: green" >"$T/www/health"
start_httpd "$T/www"
ok $? "httpd_fixture listens" || exit 1

cat >"$T/p.yaml" <<YAML
agent:
  state_dir: $T/state
  jitter: 0s
batch:
  linger_ms: 20
inputs:
  - plugin: http_check
    name: web
    url: http://127.0.0.1:$HTTPD_PORT/health
    body_contains: green
    check_interval: 200ms
    timeout: 150ms
  - plugin: http_check
    name: gone
    url: http://user:pw-hidden@127.0.0.1:1/health
    check_interval: 200ms
    timeout: 150ms
outputs:
  - plugin: file
    path: $T/out.jsonl
YAML
"$PIPIT" check -c "$T/p.yaml" --plugin-dir "$PIPIT_PLUGIN_DIR" >"$T/check.out" 2>&1
ok $? "pipit check accepts the configuration" || sed 's/^/#   /' "$T/check.out"

start_pipitd "$T/p.yaml"
has() { grep -q -- "$1" "$T/out.jsonl" 2>/dev/null; }
count() { n=$(grep -c -- "$1" "$T/out.jsonl" 2>/dev/null); echo "${n:-0}"; }
U="http://127.0.0.1:$HTTPD_PORT/health"
wait_for 20 has '"name":"http_check.up","type":"gauge","value":1,"labels":{"url":"'"$U"'"}'
ok $? "up 1 for the served URL" || show_log
wait_for 20 has '"name":"http_check.failures","type":"counter","value":[0-9]*,"labels":{"url":"http://127.0.0.1:1/health","reason":"connect"}'
ok $? "failures{reason=connect} for the refused one, its url without credentials" || show_log
grep -q "pw-hidden" "$T/out.jsonl" "$T/pipitd.log"
[ $? -ne 0 ]
ok $? "the password is in neither the records nor the log"

# Several checks later: one up event for the served URL, no more.
wait_for 20 eval '[ "$(count "\"name\":\"http_check.up\",\"type\":\"gauge\",\"value\":1,")" -ge 4 ]'
[ "$(count '"kind":"event".*"name":"http_check.state".*"status":"up"')" -eq 1 ]
ok $? "one up event across several up checks" || show_log

echo "status: red" >"$T/www/health"
wait_for 20 eval '[ "$(count "\"kind\":\"event\".*\"name\":\"http_check.state\".*\"status\":\"down\".*\"from\":\"up\"")" -ge 1 ]'
ok $? "a down event when the body stops matching" || { show_log; grep http_check.state "$T/out.jsonl" | sed 's/^/#   /'; }
grep -q "check of GET $U failed (body)" "$T/pipitd.log"
ok $? "the failure is logged with the URL and reason"
stop_pipitd
ok $PIPITD_STATUS "pipitd exited 0"
done_testing
