#!/bin/sh
# endpoints.sh: pipitd's /metrics, /healthz and /readyz over HTTP and HTTPS: figures that match known activity, readiness through an output failure, token auth, request bounds, off by default.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
. "$top_srcdir/tests/e2e/endpoints_lib.sh"
setup_e2e
plan 56

# listeners PID: TCP sockets PID listens on.
listeners() {
    local inodes n=0 ino
    inodes=$(ls -l "/proc/$1/fd" 2>/dev/null | sed -n 's/.*socket:\[\([0-9]*\)\]/\1/p')
    for ino in $inodes; do
        if awk -v i="$ino" '$4 == "0A" && $10 == i { f = 1 } END { exit !f }' \
            /proc/net/tcp /proc/net/tcp6 2>/dev/null; then n=$((n + 1)); fi
    done
    echo "$n"
}

# --- off by default in the agent role -----------------------------------
cat >"$T/off.yaml" <<YAML
agent:
  state_dir: $T/state-off
inputs:
  - plugin: $TESTSRC
    interval: 1h
outputs:
  - plugin: $PIPIT_TEST_LIB/out_testsink.so
    path: $T/off.out
YAML
start_pipitd "$T/off.yaml"
wait_for 20 log_has "running $T/off.yaml"
ok $? "pipitd runs without an http: section" || show_log
[ "$(listeners "$PIPITD_PID")" = 0 ] && ! log_has "serving /metrics"
ok $? "the agent role listens on no TCP port by default"
if awk '$2 ~ /:263E$/ && $4 == "0A" { f = 1 } END { exit !f }' /proc/net/tcp; then
    skip "another process listens on port 9790"
else
    curl -s --max-time 5 -o /dev/null "http://127.0.0.1:9790/healthz"
    [ $? = 7 ]
    ok $? "the default address 127.0.0.1:9790 refuses connections"
fi
stop_pipitd

# --- enabled in the agent role: loopback unless http.listen says otherwise
if awk '$2 ~ /:263E$/ && $4 == "0A" { f = 1 } END { exit !f }' /proc/net/tcp /proc/net/tcp6; then
    skip "another process listens on port 9790"
else
    printf 'http:\n  enabled: true\n' >>"$T/off.yaml"
    : >"$T/pipitd.log"
    start_pipitd "$T/off.yaml"
    wait_for 20 serving
    # 0100007F:263E is 127.0.0.1:9790 in /proc/net/tcp
    log_has "serving /metrics.* on http://127.0.0.1:9790 " && [ "$(listeners "$PIPITD_PID")" = 1 ] &&
        awk '$2 == "0100007F:263E" && $4 == "0A" { f = 1 } END { exit !f }' /proc/net/tcp
    ok $? "http.enabled alone listens on 127.0.0.1:9790 only" || show_log
    stop_pipitd
fi

# --- on by default in the aggregator role --------------------------------
cat >"$T/agg.yaml" <<YAML
agent:
  role: aggregator
  state_dir: $T/state-agg
http:
  listen: 0.0.0.0:0
  max_connections: 2
  timeout: 2s
outputs:
  - plugin: $PIPIT_TEST_LIB/out_testsink.so
    path: $T/agg.out
YAML
start_pipitd "$T/agg.yaml"
wait_for 20 serving
ok $? "the aggregator role serves the endpoints without http.enabled" || show_log
log_has "http.listen 0.0.0.0:0 is reachable from other hosts without a token or TLS"
ok $? "listening beyond loopback without a token or TLS is warned about" || show_log
[ "$(get /healthz)" = 200 ] && grep -q '"status":"ok"' "$T/body"
ok $? "/healthz answers 200 {\"status\":\"ok\"}" || cat "$T/body"
# Two idle connections fill max_connections: a third request waits until
# http.timeout closes one of them (so it cannot take less than ~2 s).
exec 3<>"/dev/tcp/127.0.0.1/$(port)" 4<>"/dev/tcp/127.0.0.1/$(port)"
took=$(curl -s -o /dev/null --max-time 60 -w '%{http_code} %{time_total}' \
    "http://127.0.0.1:$(port)/healthz")
exec 3<&- 4<&-
echo "$took" | awk '$1 == 200 && $2 >= 1.5 { f = 1 } END { exit !f }'
ok $? "max_connections holds a third client back until http.timeout closes an idle one ($took)"
stop_pipitd

# --- figures, readiness, auth and bounds ---------------------------------
TOKEN=s3cret-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
printf '%s\n' "$TOKEN" >"$T/token"
chmod 600 "$T/token"
cat >"$T/p.yaml" <<YAML
agent:
  state_dir: $T/state
  jitter: 0s
batch:
  linger_ms: 20
http:
  enabled: true
  listen: 127.0.0.1:0
  token_file: $T/token
  ready_grace: 1s
  max_request_bytes: 8KiB
inputs:
  - plugin: $TESTSRC
    name: src
    count: 25
    interval: 1h
  - plugin: $TESTSRC
    name: 'tick"q"\b'
    interval: 100ms
  - plugin: $TESTSRC
    name: flaky
    mode: fail
    interval: 100ms
outputs:
  - plugin: $PIPIT_TEST_LIB/out_testsink.so
    name: sink
    path: $T/out
    refuse_while: $T/refuse
YAML
start_pipitd "$T/p.yaml"
wait_for 20 serving
ok $? "pipitd serves the endpoints when http.enabled" || show_log
! grep -q "$TOKEN" "$T/pipitd.log"
ok $? "the token is not in the log"

code=$(get /metrics)
[ "$code" = 401 ] && grep -qi '^WWW-Authenticate: Bearer' "$T/head"
ok $? "/metrics without a token: 401 with WWW-Authenticate ($code)"
[ "$(get /healthz -H "Authorization: Bearer x$TOKEN")" = 401 ]
ok $? "a wrong token: 401"
[ "$(get /healthz -H "Authorization: Basic $TOKEN")" = 401 ]
ok $? "another scheme: 401"

wait_for 20 value_is 'pipit_input_records_total{input="src",plugin="testsrc"}' 25
ok $? "records in for src == the 25 it emitted" || cat "$T/promcheck.err" "$T/body"
scrape
ok $? "/metrics parses as Prometheus text, one HELP/TYPE per family, samples together" ||
    cat "$T/promcheck.err"
# Prometheus' own linter as a second reader where it is installed (Debian
# package prometheus; contrib/install-deps.sh --test leaves it out: it is a
# server its package starts).
if command -v promtool >/dev/null 2>&1; then
    promtool check metrics <"$T/body" >"$T/promtool.out" 2>&1
    ok $? "promtool check metrics: no problem found" || sed 's/^/#   /' "$T/promtool.out"
else
    skip "promtool is not installed (Debian package prometheus)"
fi
grep -q '^Content-Type: text/plain; version=0.0.4' "$T/head"
ok $? "/metrics has the text format's content type"
wait_for 20 value_above 'pipit_output_records_total{output="sink",plugin="testsink"}' 24
ok $? "records out for sink count what was delivered"
[ "$(value 'pipit_plugin_state{name="src",plugin="testsrc",role="input",state="running"}')" = 1 ] &&
    [ "$(value 'pipit_plugin_state{name="sink",plugin="testsink",role="output",state="disabled"}')" = 0 ]
ok $? "plugin states: src running, sink not disabled"
n=$(value 'pipit_output_delivery_latency_seconds_count{output="sink",plugin="testsink"}')
b=$(value 'pipit_output_batches_total{output="sink",plugin="testsink"}')
[ -n "$n" ] && [ "$n" -gt 0 ] && [ "$n" = "$b" ]
ok $? "one delivery latency observation per delivered batch ($n = $b)"
c=$(value 'pipit_collector_duration_seconds_count{input="src",plugin="testsrc"}')
r=$(value 'pipit_collector_runs_total{input="src",plugin="testsrc"}')
[ "$c" = 1 ] && [ "$r" = 1 ]
ok $? "one collector duration observation for src's one run ($c, $r)"
[ "$(value 'pipit_batch_records_count')" -gt 0 ] &&
    awk '$1 == "pipit_batch_compression_ratio" && $2 > 1 { f = 1 } END { exit !f }' "$T/samples"
ok $? "batch sizes and a compression ratio above 1"
value_above 'pipit_collector_runs_total{input="tick"q"\b",plugin="testsrc"}' 0
ok $? "a label value with quotes and a backslash is escaped and reads back"
[ -n "$(value 'pipit_spool_bytes')" ] && [ -n "$(value 'pipit_spool_entries')" ] &&
    [ "$(value 'pipit_records_dropped_total{reason="unrouted"}')" = 0 ]
ok $? "spool figures and drops by reason are there"
f=$(testsrc_value pipit_collector_failures_total flaky)
r=$(testsrc_value pipit_collector_runs_total flaky)
[ -n "$f" ] && [ "$f" -gt 0 ] && [ "$f" = "$r" ] &&
    [ "$(testsrc_value pipit_collector_failures_total src)" = 0 ] &&
    [ "$(testsrc_state flaky running)" = 1 ]
ok $? "collector failures: each run of the failing input counted ($f of $r), none for src, it keeps running"

[ "$(auth /healthz)" = 200 ] && grep -q '"status":"ok"' "$T/body"
ok $? "/healthz: 200 ok"
wait_for 10 ready_is 200
ok $? "/readyz: 200 while the output delivers" || cat "$T/body"
grep -q '"status":"ready"' "$T/body" && grep -q '"name":"sink"' "$T/body"
ok $? "/readyz's JSON names each output" || cat "$T/body"

touch "$T/refuse"
wait_for 20 ready_is 503
ok $? "/readyz: 503 once the output has failed for longer than ready_grace" || cat "$T/body"
grep -q '"reason":"failing for longer than ready_grace"' "$T/body"
ok $? "... and says which output and why" || cat "$T/body"
value_above 'pipit_output_retries_total{output="sink",plugin="testsink"}' 0 &&
    [ "$(value 'pipit_output_ready{output="sink",plugin="testsink"}')" = 0 ] &&
    [ "$(value 'pipit_ready')" = 0 ]
ok $? "retries counted; pipit_output_ready and pipit_ready are 0"
[ "$(auth /healthz)" = 200 ]
ok $? "/healthz stays 200: the process is alive"
rm -f "$T/refuse"
wait_for 60 ready_is 200
ok $? "/readyz: 200 again once the output delivers" || cat "$T/body"

[ "$(auth /metrics -X POST)" = 405 ] && grep -qi '^Allow: GET, HEAD' "$T/head"
ok $? "POST: 405 with Allow"
[ "$(auth /metrics -X DELETE)" = 405 ]
ok $? "DELETE: 405"
[ "$(auth /nope)" = 404 ] && grep -q '"error"' "$T/body"
ok $? "unknown path: JSON 404"
[ "$(auth /metrics -I)" = 200 ] && ! grep -q '^# HELP' "$T/body"
ok $? "HEAD /metrics: 200 without a body"
long=$(head -c 3000 /dev/zero | tr '\0' a)
[ "$(auth "/$long")" = 414 ]
ok $? "a 3000-byte path: 414"
[ "$(auth /metrics -X GET --data-binary @"$T/p.yaml")" = 413 ]
ok $? "a request with a body: 413"
big=$(head -c 20000 /dev/zero | tr '\0' b)
code=$(auth /metrics -H "X-Big: $big")
[ "$code" -ge 400 ] && [ "$code" -lt 500 ]
ok $? "20 KB of headers past max_request_bytes: refused ($code)"
! log_has "reachable from other hosts"
ok $? "no such warning on loopback"
counted() {
    scrape && [ "$(value 'pipit_http_requests_total{code="401"}')" -ge 3 ] &&
        [ "$(value 'pipit_http_requests_total{code="405"}')" -ge 2 ] &&
        [ "$(value 'pipit_http_requests_total{code="414"}')" = 1 ]
}
wait_for 10 counted
ok $? "requests counted by status (in the next snapshot)"
kill -HUP "$PIPITD_PID"
reloaded() { log_has "configuration reloaded"; }
wait_for 20 reloaded && wait_for 10 ready_is 200 && scrape &&
    [ "$(value 'pipit_output_retries_total{output="sink",plugin="testsink"}')" = 0 ]
ok $? "after a reload the same server answers, with the new configuration's figures (retries 0 again)"
kill -0 "$PIPITD_PID"
ok $? "pipitd is still running"
stop_pipitd
ok $PIPITD_STATUS "pipitd stops cleanly with the endpoints on"

# --- HTTPS ---------------------------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$T/key.pem" -out "$T/cert.pem" 2>"$T/openssl.err"
sed -i "s|^  token_file: .*|  tls_cert: $T/cert.pem\n  tls_key: $T/key.pem\n  token_file: $T/token|" "$T/p.yaml"
: >"$T/pipitd.log"
start_pipitd "$T/p.yaml"
wait_for 20 serving
SCHEME=https
[ "$(auth /healthz --cacert "$T/cert.pem")" = 200 ] && grep -q '"status":"ok"' "$T/body"
ok $? "HTTPS with the configured certificate: /healthz 200" || show_log
SCHEME=http
code=$(auth /healthz)
[ "$code" != 200 ]
ok $? "plain HTTP to the TLS port gets no answer ($code)"
stop_pipitd

echo "not a certificate" >"$T/cert.pem"
: >"$T/pipitd.log"
start_pipitd "$T/p.yaml"
wait "$PIPITD_PID"
status=$?
PIPITD_PID=
[ "$status" != 0 ] && log_has "cannot start the HTTP endpoints: cannot serve on 127.0.0.1:0"
ok $? "an unusable certificate stops pipitd at start, saying why ($status)" || show_log
! grep -q "BEGIN PRIVATE KEY\|$TOKEN" "$T/pipitd.log"
ok $? "neither the key nor the token is logged"

# --- the spool's high-water mark -----------------------------------------
# The output refuses every batch for longer than the test (ready_grace 1h
# keeps it ready), so only the spool filling past 90% of its bound turns
# /readyz to 503.
TOKEN=
cat >"$T/hw.yaml" <<YAML
agent:
  state_dir: $T/state-hw
  jitter: 0s
batch:
  linger_ms: 20
spool:
  max_bytes: 1MiB
  segment_bytes: 64KiB
  policy: block
  fsync: false
http:
  enabled: true
  listen: 127.0.0.1:0
  ready_grace: 1h
inputs:
  - plugin: $TESTSRC
    name: fill
    count: 200
    interval: 50ms
outputs:
  - plugin: $PIPIT_TEST_LIB/out_testsink.so
    name: sink
    path: $T/hw.out
    refuse_while: $T/refuse
YAML
touch "$T/refuse"
: >"$T/pipitd.log"
start_pipitd "$T/hw.yaml"
wait_for 20 serving
ok $? "pipitd serves the endpoints with a 1 MiB spool" || show_log
wait_for 60 ready_is 503
ok $? "/readyz: 503 once the spool passes its high-water mark" || cat "$T/body"
grep -q '^{"status":"not ready","reason":"buffer past its high-water mark"' "$T/body" &&
    grep -q '"spool":{"ready":false,"bytes":[0-9]*,"entries":[1-9][0-9]*,"max_bytes":1048576,"high_water_bytes":943650}' "$T/body" &&
    grep -q '"name":"sink","plugin":"testsink","state":"running","ready":true' "$T/body"
ok $? "... its JSON: the spool not ready with its bytes, entries and high_water_bytes, the output still ready" ||
    cat "$T/body"
scrape && [ "$(value pipit_ready_buffer)" = 0 ] && [ "$(value pipit_ready)" = 0 ] &&
    [ "$(value pipit_spool_entries)" -gt 0 ] && [ "$(value pipit_spool_bytes)" -ge 943650 ]
ok $? "pipit_ready_buffer 0, spool bytes and entries in /metrics" || cat "$T/promcheck.err"
rm -f "$T/refuse"
wait_for 60 ready_is 200 && grep -q '"spool":{"ready":true' "$T/body"
ok $? "/readyz: 200 again once the output drains the spool" || cat "$T/body"
stop_pipitd

# --- configuration errors ------------------------------------------------
printf 'http:\n  enabled: true\n  listen: localhost:99999\n' >"$T/bad.yaml"
"$PIPIT" check -c "$T/bad.yaml" >"$T/check.out" 2>&1
grep -q "bad.yaml:3: http.listen" "$T/check.out"
ok $? "a bad http.listen names file, line and key" || cat "$T/check.out"
printf 'http:\n  tls_cert: %s\n' "$T/cert.pem" >"$T/bad.yaml"
"$PIPIT" check -c "$T/bad.yaml" >"$T/check.out" 2>&1
grep -q "bad.yaml:2: http.tls_cert.*set both or neither" "$T/check.out"
ok $? "tls_cert without tls_key is refused" || cat "$T/check.out"
done_testing
